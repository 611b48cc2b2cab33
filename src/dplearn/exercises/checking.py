"""The machinery every exercise checker shares: results, safe calls, comparisons, and multiple
choice with the answer key stored as salted hashes (:class:`MultipleChoice`)."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Result:
    """Outcome of one check: ``passed`` and a message (with a hint when it failed).

    Truthy when passed, so tests can ``assert check(...)``. Displays as one line in Jupyter.
    """

    passed: bool
    message: str
    hint: str | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        text = f"{mark} {self.message}"
        if not self.passed and self.hint:
            text += f"\n  Hint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.passed else "#cf222e"
        mark = "✓" if self.passed else "✗"
        out = f'<div style="color:{color};font-weight:600">{mark} {html.escape(self.message)}</div>'
        if not self.passed and self.hint:
            out += f'<div style="margin-left:1.2em"><em>Hint:</em> {html.escape(self.hint)}</div>'
        return out


class NotAttempted(Exception):
    """Raised inside a checker when the answer is still the starter stub."""


def passed(message: str = "Correct!") -> Result:
    return Result(True, message)


def failed(message: str, hint: str | None = None) -> Result:
    return Result(False, message, hint)


def not_attempted(what: str) -> Result:
    return Result(False, f"Not attempted yet: {what}", "Replace the `...`/`None` in the cell above and run it again.")


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the reader's ``fn``; a stub (``None`` result or ``NotImplementedError``) raises :class:`NotAttempted`."""
    if fn is None or fn is Ellipsis:
        raise NotAttempted
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted from exc
    if out is None or out is Ellipsis:
        raise NotAttempted
    return out


def quiet_call(fn: Callable[..., Any], *args: Any) -> np.ndarray:
    """:func:`call` with NumPy's floating-point warnings silenced; the result as a float64 array."""
    import warnings

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return as_numpy(call(fn, *args))


def as_numpy(x: Any) -> np.ndarray:
    """A float64 NumPy copy of a number, array or torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Same shape and ``allclose`` in float64."""
    a, e = as_numpy(actual), as_numpy(expected)
    return a.shape == e.shape and bool(np.allclose(a, e, rtol=rtol, atol=atol))


def checker(what: str):
    """Decorator: turn stubs into 'not attempted' and unexpected errors into a failed result.

    The decorated function returns a :class:`Result`; ``what`` names the task in messages.
    """

    def wrap(fn: Callable[..., Result]) -> Callable[..., Result]:
        def inner(*args: Any, **kwargs: Any) -> Result:
            try:
                return fn(*args, **kwargs)
            except NotAttempted:
                return not_attempted(what)
            except Exception as exc:  # the reader's code raised: show it, don't crash the notebook
                return failed(f"{what}: your code raised {type(exc).__name__}: {exc}",
                              "Run your function on a small input by hand and read the traceback.")

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        inner.__wrapped__ = fn
        return inner

    return wrap


# ---------------------------------------------------------------------------------------------
# Multiple choice: the key is a salted hash, so reading the checker's source does not answer it
# ---------------------------------------------------------------------------------------------
def choice_digest(question: str, option: str) -> str:
    """The salted hash that stands for ``option`` of ``question`` in a checker's source.

    SHA-256 of ``"dplearn/<question>/<option>"``, first 16 hex digits. The salt (the question's
    name) makes the same letter hash differently in every question. To write a key or a hint:
    ``python -c "from dplearn.exercises.checking import choice_digest as d; print(d('ch03.small-beta', 'b'))"``.
    """
    return hashlib.sha256(f"dplearn/{question}/{option}".encode()).hexdigest()[:16]


def normalise_choice(answer: str) -> str:
    """Lower case without spaces; a bracketed letter loses its brackets: ``" (B) "`` → ``"b"``."""
    text = answer.strip().lower().replace(" ", "")
    letter = re.fullmatch(r"\(?([a-z])\)?\.?", text)
    return letter[1] if letter else text


@dataclass(frozen=True)
class MultipleChoice:
    """A multiple-choice question whose answer key is not readable in the source.

    ``options`` are the accepted answers (after :func:`normalise_choice`, then ``aliases``, which map
    other spellings such as ``"kl(p||q)"`` to an option); ``key`` is :func:`choice_digest` of the
    right option; ``hints`` maps the digest of a wrong option to its hint; ``correct`` is the message
    for the right answer (it explains, without restating the option).
    """

    question: str
    options: tuple[str, ...]
    key: str
    hints: dict[str, str]
    correct: str = "Correct!"
    aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        digests = {choice_digest(self.question, o): o for o in self.options}
        assert self.key in digests, f"{self.question}: the key is not the digest of an option"
        assert set(self.hints) <= set(digests) - {self.key}, f"{self.question}: a hint for no wrong option"

    def check(self, answer: Any) -> Result:
        """✓ for the right option, ✗ with the option's hint for a wrong one; a stub raises
        :class:`NotAttempted`."""
        if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
            raise NotAttempted
        quoted = [f'"{o}"' for o in self.options]
        listed = " or ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else quoted[0]
        if not isinstance(answer, str):
            return failed(f"answer must be a string, got {type(answer).__name__}", f"Write one of {listed}.")
        choice = normalise_choice(answer)
        choice = self.aliases.get(choice, choice)
        if choice not in self.options:
            return failed(f"{answer!r} is not one of the choices", f"Answer with one of {listed}.")
        digest = choice_digest(self.question, choice)
        if digest == self.key:
            return passed(self.correct)
        return failed("Not this one.", self.hints.get(digest, "Read the question once more."))
