"""Colab and plain-Jupyter copies of the chapters: the same cells, with MyST turned into Markdown.

The chapter notebooks (``notebooks/NN_name.ipynb``) are written for Jupyter Book: the math macros
(``\\N``, ``\\E``, ``\\KL``, ...) are defined in ``_config.yml``, and citations, cross-references,
exercises and solutions are MyST roles and directives, which Colab and Jupyter show as raw text.
``dplearn exercises sync`` (:func:`sync`) keeps two things in step with the sources:

* each chapter's first cell defines the macros for Jupyter (``$\\newcommand...$``, generated from
  ``_config.yml``, tagged ``remove-cell`` so the website hides it), and every cell of a worked
  solution is tagged ``solution`` (:func:`dplearn.exercises.handout.tag_solutions`);
* ``colab/notebooks/NN_name.ipynb`` is the chapter in plain Markdown (:func:`plain_copy`), which the
  website's Colab button opens (``repository.path_to_book: colab`` in ``_config.yml``).

In a copy the macros are expanded in place (Colab does not carry a ``\\newcommand`` from one cell to
the next), ``{cite}`` becomes an author-year reference, ``{ref}`` the target's title (a link to the
website for another chapter), an exercise an ``### Exercise 3.1 (title)`` heading, a worked solution
a ``#### Solution`` heading that Colab and JupyterLab show folded, a dropdown a ``<details>``
element, another admonition a paragraph led by its title in bold, and ``{bibliography}`` the
chapter's reference list. Code cells are copied unchanged. A construct this module does not know
raises :class:`MystError`, so that none reaches Colab as raw text.

    dplearn exercises sync            # refresh the chapters' generated cells and the copies
    dplearn exercises sync --check    # exit 1 when something is out of date (what the tests check)
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dplearn.atomic import atomic_write
from dplearn.exercises.handout import solution_cells, tag_solutions

__all__ = ["Book", "MystError", "macro_cell_source", "plain_copy", "plain_markdown", "sync"]

COPY_DIR = Path("colab")  # copies live in COPY_DIR / "notebooks", mirroring the chapters
MACRO_MARKER = "<!-- math macros for Jupyter"
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso", "admonition", "margin", "sidebar", "dropdown", "topic"}


class MystError(ValueError):
    """A MyST construct that :func:`plain_markdown` cannot turn into plain Markdown."""


# ------------------------------------------------------------------------------- the book --
@dataclass(frozen=True)
class Reference:
    """One bibliography entry: its in-text label (``Ho et al., 2020``) and its list entry."""

    label: str
    entry: str


@dataclass
class Book:
    """What a copy needs to know about the whole book: macros, references, labels and addresses."""

    macros: dict[str, tuple[str, int]]
    references: dict[str, Reference]
    site_url: str  # e.g. https://dplearn.github.io/dplearn/
    raw_url: str  # where the repository's files are served raw, for images
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (chapter, title)

    @classmethod
    def from_root(cls, root: Path | str) -> Book:
        """Read ``_config.yml``, ``book/references.bib`` and the chapters' labels under ``root``."""
        import yaml

        root = Path(root)
        config = yaml.safe_load((root / "_config.yml").read_text())
        repo = config["repository"]
        org_name = repo["url"].rstrip("/").removeprefix("https://github.com/")
        book = cls(
            macros=config_macros(config),
            references=read_references([root / p for p in config.get("bibtex_bibfiles", [])]),
            site_url=config["html"]["baseurl"].rstrip("/") + "/",
            raw_url=f"https://raw.githubusercontent.com/{org_name}/{repo.get('branch', 'main')}/",
        )
        for path in chapters(root):
            book.labels.update(find_labels(json.loads(path.read_text()), f"notebooks/{path.stem}"))
        return book


def chapters(root: Path | str) -> list[Path]:
    """The chapter notebooks, ``notebooks/NN_name.ipynb``, in order."""
    return sorted((Path(root) / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def config_macros(config: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """The MathJax macros of ``_config.yml`` as ``{name: (body, number of arguments)}``."""
    raw = (config.get("sphinx", {}).get("config", {}).get("mathjax3_config", {})
           .get("tex", {}).get("macros", {}))
    return {name: (value, 0) if isinstance(value, str) else (value[0], int(value[1]))
            for name, value in raw.items()}


def macro_cell_source(macros: dict[str, tuple[str, int]]) -> str:
    """The Markdown of a chapter's first cell: the macros as ``\\newcommand`` for Jupyter."""
    defs = "".join(f"\\newcommand{{\\{name}}}" + (f"[{n}]" if n else "") + f"{{{body}}}"
                   for name, (body, n) in sorted(macros.items()))
    return (f"{MACRO_MARKER} (the website defines them in _config.yml); "
            "written by `dplearn exercises sync` -->\n"
            f"${defs}$")


# ------------------------------------------------------------------------------ references --
_LATEX_ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303",
                  "c": "\u0327", "v": "\u030c", "u": "\u0306", "=": "\u0304", ".": "\u0307"}
_LATEX_LETTERS = {"L": "Ł", "l": "ł", "o": "ø", "O": "Ø", "ss": "ß", "i": "ı", "aa": "å",
                  "AA": "Å", "ae": "æ", "AE": "Æ"}


def latex_to_text(text: str) -> str:
    """Plain Unicode text from a BibTeX field: accents (``{\\'e}`` → é), ``{\\L}``, braces."""
    import unicodedata

    def accent(m: re.Match) -> str:
        base = m["base"]
        if base in ("\\i", "\\j"):  # dotless i and j take the accent as plain i and j
            base = base[1]
        base = _LATEX_LETTERS.get(base.lstrip("\\"), base) if base.startswith("\\") else base
        return unicodedata.normalize("NFC", base + _LATEX_ACCENTS[m["acc"]])

    text = re.sub(r"\\(?P<acc>['`\"^~=.]|[cvu](?=[\s{]))\s*\{?(?P<base>\\[a-zA-Z]+|[a-zA-Z])\}?",
                  accent, text)
    text = re.sub(r"\\(L|l|o|O|ss|aa|AA|ae|AE|i)\b\s?", lambda m: _LATEX_LETTERS[m[1]], text)
    text = text.replace("--", "–").replace("~", " ")
    if "\\" in text:
        raise MystError(f"cannot read the LaTeX in the bibliography field {text!r}")
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def _bib_entries(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``{key: (entry type, {field: raw value})}`` from BibTeX source (braced or quoted values)."""
    entries = {}
    field_start, bare_value, separator = (re.compile(r"\s*(\w+)\s*=\s*"), re.compile(r"[^,}\s]+"),
                                          re.compile(r"\s*,?"))
    for m in re.finditer(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", text):
        kind, key, i = m[1].lower(), m[2], m.end()
        fields: dict[str, str] = {}
        while True:
            f = field_start.match(text, i)
            if not f:
                break
            i = f.end()
            if text[i] == "{":
                depth, j = 0, i
                while True:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                    if depth == 0:
                        break
                value, i = text[i + 1:j - 1], j
            elif text[i] == '"':
                j = text.index('"', i + 1)
                value, i = text[i + 1:j], j + 1
            else:
                v = bare_value.match(text, i)
                value, i = v[0], v.end()
            fields[f[1].lower()] = value
            i = separator.match(text, i).end()
        entries[key] = (kind, fields)
    return entries


def _last_names(authors: str) -> list[str]:
    names = []
    for person in re.split(r"\s+and\s+", authors.strip()):
        person = latex_to_text(person)
        names.append(person.split(",")[0].strip() if "," in person else person.split()[-1])
    return names


def read_references(paths: list[Path]) -> dict[str, Reference]:
    """Author-year labels and list entries (Markdown) for every entry of the BibTeX files."""
    refs = {}
    for path in paths:
        for key, (_kind, f) in _bib_entries(Path(path).read_text()).items():
            last = _last_names(f.get("author", f.get("editor", "Anonymous")))
            year = f.get("year", "n.d.")
            who = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
                   else f"{last[0]} et al.")
            people = ", ".join(_full_names(f.get("author", f.get("editor", "Anonymous"))))
            title = latex_to_text(f.get("title", ""))
            venue = latex_to_text(f.get("booktitle", f.get("journal", f.get("publisher", ""))))
            link = f.get("url") or (f"https://doi.org/{f['doi']}" if "doi" in f else "")
            title_md = f"[{title}]({link})" if link else title
            entry = f"{people} ({year}). {title_md}." + (f" *{venue}*." if venue else "")
            refs[key] = Reference(f"{who}, {year}", entry)
    return refs


def _full_names(authors: str) -> list[str]:
    out = []
    for person in re.split(r"\s+and\s+", authors.strip()):
        person = latex_to_text(person)
        if "," in person:
            last, first = (s.strip() for s in person.split(",", 1))
            person = f"{first} {last}"
        out.append(person)
    return out


# --------------------------------------------------------------------------------- labels --
_TARGET = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$", re.M)
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)
_FENCE_OPEN = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|:{3,}|~{3,})\s*(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")


def find_labels(nb: dict[str, Any], docname: str) -> dict[str, tuple[str, str]]:
    """``{label: (docname, title)}`` for the section targets and exercises of one chapter; an
    exercise's title is its number as the website shows it, ``Exercise 3.1`` (the chapter's number
    is its file's, ``03_ddpm``, which is its place in the table of contents)."""
    labels = {}
    number = re.match(r"(\d+)_", Path(docname).name)
    k = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = _text(cell)
        for m in _TARGET.finditer(text):
            h = _HEADING.search(text, m.end())
            title = h["title"] if h else m["label"]
            labels[m["label"]] = (docname, title)
        for block in _directives(text):
            if block.name == "exercise" and "nonumber" not in block.options:
                k += 1
                if "label" in block.options:
                    title = f"Exercise {int(number[1])}.{k}" if number else f"Exercise {k}"
                    labels[block.options["label"]] = (docname, title)
    return labels


# ------------------------------------------------------------------------------ directives --
@dataclass
class Directive:
    name: str
    arg: str
    options: dict[str, str]
    body: str


def _fence_close(lines: list[str], start: int, fence: str) -> int:
    """Index of the line closing the fence opened at ``start`` (CommonMark: same character, at
    least as long); ``len(lines)`` when it is never closed."""
    char, n = fence[0], len(fence)
    closing = re.compile(rf"^[ ]{{0,3}}{re.escape(char)}{{{n},}}\s*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j]):
            return j
    return len(lines)


def _parse_directive(name: str, arg: str, body_lines: list[str]) -> Directive:
    options: dict[str, str] = {}
    i = 0
    if body_lines and body_lines[0].strip() == "---":  # YAML options block
        import yaml

        end = body_lines.index("---", 1) if "---" in body_lines[1:] else 0
        options = {k: str(v) for k, v in (yaml.safe_load("\n".join(body_lines[1:end])) or {}).items()}
        i = end + 1
    while i < len(body_lines) and (m := _OPTION.match(body_lines[i])):
        options[m["key"]] = m["value"].strip()
        i += 1
    return Directive(name, arg.strip(), options, "\n".join(body_lines[i:]).strip("\n"))


def _directives(text: str) -> list[Directive]:
    """The top-level directives of a Markdown text (for finding labels)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m:
            j = _fence_close(lines, i, m["fence"])
            d = _DIRECTIVE.match(m["info"].strip())
            if d:
                out.append(_parse_directive(d["name"], d["arg"], lines[i + 1:j]))
            i = j + 1
        else:
            i += 1
    return out


# ------------------------------------------------------------------------- the conversion --
@dataclass
class _Context:
    book: Book
    docname: str  # e.g. notebooks/03_ddpm
    cited: list[str] = field(default_factory=list)  # keys in order of first citation


def plain_markdown(text: str, book: Book, docname: str, _ctx: _Context | None = None) -> str:
    """One Markdown cell's MyST turned into Markdown that Colab and Jupyter render.

    Raises :class:`MystError` on a role or directive it does not know.
    """
    ctx = _ctx or _Context(book, docname)
    lines, out, i = text.split("\n"), [], 0
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(_inline("\n".join(prose), ctx))
            prose.clear()

    while i < len(lines):
        line = lines[i]
        if _TARGET.match(line):  # (label)= : the website's anchor, nothing to show
            i += 1
            continue
        m = _FENCE_OPEN.match(line)
        if not m:
            prose.append(re.sub(r"^(\s*\$\$)\s*\([^)\s]+\)\s*$", r"\1", line))  # $$ (label)
            i += 1
            continue
        flush()
        j = _fence_close(lines, i, m["fence"])
        d = _DIRECTIVE.match(m["info"].strip())
        if not d:  # ordinary code fence: verbatim
            out.append("\n".join(lines[i:j + 1]))
        else:
            directive = _parse_directive(d["name"], d["arg"], lines[i + 1:j])
            out.append(_directive(directive, ctx))
        i = j + 1
    flush()
    return "\n".join(out)


def _directive(d: Directive, ctx: _Context) -> str:
    body = plain_markdown(d.body, ctx.book, ctx.docname, ctx) if d.body else ""
    name = d.name
    if name == "exercise":
        label = d.options.get("label")
        heading = ctx.book.labels[label][1] if label in ctx.book.labels else "Exercise"
        if d.arg:
            heading += f" ({_inline(d.arg, ctx)})"
        return f"### {heading}\n\n{body}"
    if name in ("solution-start", "solution"):
        target = ctx.book.labels.get(d.arg.strip(), (None, ""))[1]
        heading = f"#### Solution to {target}" if target else "#### Solution"
        return heading + (f"\n\n{body}" if body else "")
    if name == "solution-end":
        return ""
    if name in ADMONITIONS:
        # no block quote: Jupyter cuts the math out before it parses the Markdown, so a "> " in
        # front of each line would land inside multi-line formulas
        title = _inline(d.arg, ctx) if d.arg else name.capitalize()
        if name == "dropdown" or "dropdown" in d.options.get("class", "").split():
            return f"<details>\n<summary><b>{title}</b></summary>\n\n{body}\n\n</details>"
        return f"**{title}.**\n\n{body}" if body else f"**{title}.**"
    if name == "bibliography":
        keys = list(ctx.book.references) if "all" in d.options else ctx.cited
        missing = [k for k in keys if k not in ctx.book.references]
        if missing:
            raise MystError(f"{ctx.docname}: unknown references {missing}")
        entries = [r.entry for r in sorted((ctx.book.references[k] for k in keys),
                                           key=lambda r: r.label)]
        return "\n".join(f"- {e}" for e in entries)
    if name in ("figure", "image"):
        src = _asset_url(d.arg, ctx)
        alt = d.options.get("alt", "")
        return f"![{alt}]({src})" + (f"\n\n*{body}*" if body else "")
    if name == "math":
        return f"$$\n{_expand_macros(d.body, ctx.book.macros)}\n$$"
    if name in ("code", "code-block", "code-cell", "sourcecode"):
        return f"```{d.arg}\n{d.body}\n```"
    raise MystError(f"{ctx.docname}: no plain-Markdown form for the directive {{{name}}}")


_ROLE_OR_CODE = re.compile(
    r"\{(?P<role>[a-z][\w:.+-]*)\}(?P<ticks>`+)(?P<body>.+?)(?P=ticks)"
    r"|(?P<code>`+)(?P<cbody>.+?)(?P=code)", re.S)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


def _inline(text: str, ctx: _Context) -> str:
    out, pos = [], 0
    for m in _ROLE_OR_CODE.finditer(text):
        out.append(_plain_text(text[pos:m.start()], ctx))
        out.append(_role(m["role"], m["body"], ctx) if m["role"] else m[0])
        pos = m.end()
    out.append(_plain_text(text[pos:], ctx))
    return "".join(out)


def _plain_text(text: str, ctx: _Context) -> str:
    if "{{" in text:
        raise MystError(f"{ctx.docname}: MyST substitutions ({{{{ ... }}}}) have no plain form")
    text = _expand_macros(text, ctx.book.macros)
    # relative images: Colab opens the notebook alone, so point at the repository's raw files
    text = re.sub(r"(!\[[^\]]*\]\()(?!https?:|data:|#)([^)\s]+)",
                  lambda m: m[1] + _asset_url(m[2], ctx), text)
    return re.sub(r"(<img\b[^>]*\bsrc=\")(?!https?:|data:)([^\"]+)",
                  lambda m: m[1] + _asset_url(m[2], ctx), text)


def _asset_url(path: str, ctx: _Context) -> str:
    if re.match(r"https?:|data:", path):
        return path
    base = Path(ctx.docname).parent
    parts: list[str] = []
    for part in (base / path).as_posix().split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return ctx.book.raw_url + "/".join(parts)


def _role(name: str, body: str, ctx: _Context) -> str:
    if name.startswith("cite"):
        keys = [k.strip() for k in body.split(",") if k.strip()]
        unknown = [k for k in keys if k not in ctx.book.references]
        if unknown:
            raise MystError(f"{ctx.docname}: {{cite}} of unknown references {unknown}")
        for k in keys:
            if k not in ctx.cited:
                ctx.cited.append(k)
        labels = [ctx.book.references[k].label for k in keys]
        if name in ("cite:t", "cite:ts"):
            return "; ".join(re.sub(r", (\S+)$", r" (\1)", label) for label in labels)
        return "(" + "; ".join(labels) + ")"
    if name in ("ref", "numref", "doc"):
        m = _EXPLICIT.match(body)
        text, target = (m["text"], m["target"]) if m else (None, body.strip())
        if name == "doc":
            doc = str((Path(ctx.docname).parent / target).as_posix())
            doc = re.sub(r"[^/]+/\.\./", "", doc).removesuffix(".ipynb").removesuffix(".md")
            return f"[{text or Path(doc).name}]({ctx.book.site_url}{doc}.html)"
        if target not in ctx.book.labels:
            raise MystError(f"{ctx.docname}: {{{name}}} to an unknown label {target!r}")
        doc, title = ctx.book.labels[target]
        text = _inline(text, ctx) if text else f"*{_inline(title, ctx)}*"
        if doc == ctx.docname:
            return text
        return f"[{text.strip('*')}]({ctx.book.site_url}{doc}.html#{target})"
    if name == "math":
        return f"${_expand_macros(body, ctx.book.macros)}$"
    if name in ("sub", "sup"):
        return f"<{name}>{body}</{name}>"
    if name in ("abbr", "term"):
        m = _EXPLICIT.match(body)
        return m["text"] if m else re.sub(r"\s*\(.*\)$", "", body)
    raise MystError(f"{ctx.docname}: no plain-Markdown form for the role {{{name}}}")


def _expand_macros(text: str, macros: dict[str, tuple[str, int]]) -> str:
    """Replace each ``\\name`` of ``macros`` (not followed by a letter) by its body, arguments
    substituted; repeated until no macro is left (macros may use one another)."""
    if not macros:
        return text
    pattern = re.compile(r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True))
                         + r")(?![A-Za-z])")
    for _ in range(10):
        m = pattern.search(text)
        if not m:
            return text
        out, pos = [], 0
        for m in pattern.finditer(text):
            if m.start() < pos:
                continue
            body, nargs = macros[m[1]]
            end = m.end()
            for k in range(1, nargs + 1):
                arg, end = _brace_group(text, end)
                body = body.replace(f"#{k}", arg)
            out.append(text[pos:m.start()] + body)
            pos = end
        text = "".join(out) + text[pos:]
    raise MystError("math macros expand into one another without end")


def _brace_group(text: str, i: int) -> tuple[str, int]:
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] != "{":
        return text[i], i + 1
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j], j + 1
    raise MystError(f"unbalanced braces in a macro argument: {text[i:i + 40]!r}")


# ---------------------------------------------------------------------------- notebooks --
def _text(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _lines(text: str) -> list[str]:
    """nbformat's on-disk form of a cell's source: lines that keep their newlines."""
    return text.splitlines(keepends=True)


def _cell_id(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:12]


def is_macro_cell(cell: dict[str, Any]) -> bool:
    return cell["cell_type"] == "markdown" and _text(cell).startswith(MACRO_MARKER)


def with_generated_cells(nb: dict[str, Any], book: Book, name: str) -> dict[str, Any]:
    """A copy of a chapter with its macro cell (first) and its solution tags up to date."""
    nb = copy.deepcopy(nb)
    cells = [c for c in nb["cells"] if not is_macro_cell(c)]
    old = next((c for c in nb["cells"] if is_macro_cell(c)), None)
    if book.macros:
        cell = {"cell_type": "markdown", "id": old["id"] if old and "id" in old else _cell_id(name, "macros"),
                "metadata": {"tags": ["remove-cell"]}, "source": _lines(macro_cell_source(book.macros))}
        cells.insert(0, cell)
    nb["cells"] = cells
    return tag_solutions(nb)


def plain_copy(nb: dict[str, Any], book: Book, docname: str) -> dict[str, Any]:
    """The Colab / Jupyter copy of one chapter (see the module's docstring)."""
    ctx = _Context(book, docname)
    number = re.match(r"(\d+)_", Path(docname).name)
    page = f"{book.site_url}{docname}.html"
    source_name = f"{docname}.ipynb"
    which = f"chapter {int(number[1])}" if number else Path(docname).name
    header = (f"> This is the Colab and Jupyter copy of {which} of [the book]({page}), written "
              f"from `{source_name}` by `dplearn exercises sync` (edit that notebook, not this "
              "copy). Worked solutions are folded under the **Solution** headings.")
    cells = [{"cell_type": "markdown", "id": _cell_id(docname, "header"), "metadata": {},
              "source": _lines(header)}]
    folded = []
    inside = set(solution_cells(nb))
    for i, cell in enumerate(nb["cells"]):
        if is_macro_cell(cell):
            continue
        new = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown":
            text = plain_markdown(_text(cell), book, docname, ctx).strip("\n")
            if not text.strip():
                continue
            new["source"] = _lines(text)
            if text.startswith("#### Solution") and i in inside:  # folded, as on the website
                new.setdefault("metadata", {})["jp-MarkdownHeadingCollapsed"] = True  # JupyterLab
                new["metadata"]["id"] = new.get("id", _cell_id(docname, str(i)))  # Colab
                folded.append(new["metadata"]["id"])
        cells.append(new)
    out = {k: copy.deepcopy(v) for k, v in nb.items() if k != "cells"}
    out["cells"] = cells
    out.setdefault("metadata", {})["colab"] = {"provenance": [], "toc_visible": True,
                                               "collapsed_sections": folded}
    return out


def _dumps(nb: dict[str, Any]) -> str:
    """nbformat's own layout (indent 1, keys sorted, trailing newline), so rewrites are stable."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


@dataclass
class SyncReport:
    """What :func:`sync` changed (or, with ``check``, would change): paths relative to the root."""

    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed)


def sync(root: Path | str = ".", check: bool = False,
         log: Callable[[str], None] | None = None) -> SyncReport:
    """Refresh every chapter's generated cells and write its Colab copy (see the module docstring).

    With ``check`` nothing is written; the report lists what is out of date.
    """
    root = Path(root)
    book = Book.from_root(root)
    report = SyncReport()
    paths = chapters(root)
    copies = root / COPY_DIR / "notebooks"
    wanted = {copies / p.name for p in paths}
    for path in paths:
        # read, update, write at once: others may be editing the same notebook
        text = path.read_text()
        nb = with_generated_cells(json.loads(text), book, path.stem)
        new_text = _dumps(nb)
        if json.loads(new_text) != json.loads(text):
            report.changed.append(str(path.relative_to(root)))
            if not check:
                _write(path, new_text)
        target = copies / path.name
        plain = _dumps(plain_copy(nb, book, f"notebooks/{path.stem}"))
        if not target.exists() or target.read_text() != plain:
            report.changed.append(str(target.relative_to(root)))
            if not check:
                _write(target, plain)
    for stale in sorted(set(copies.glob("*.ipynb")) - wanted) if copies.is_dir() else []:
        report.changed.append(str(stale.relative_to(root)))
        if not check:
            stale.unlink()
    if log:
        for p in report.changed:
            log(("out of date: " if check else "wrote ") + p)
    return report
