"""Student notebooks: a chapter without its worked solutions, for an instructor to hand out.

Every cell of a worked solution carries the tag ``solution``: in the chapter notebooks these are the
cells from a ``{solution-start}`` marker to its ``{solution-end}`` (or one ``{solution}`` cell), tagged
by :func:`tag_solutions`; in the Colab copies they are the cells under a *Solution* heading.
:func:`strip_solutions` drops the tagged cells and keeps everything else (exercise prompts, starter
cells, checker calls), so the handout runs top to bottom and each checker reports *Not attempted
yet* until the student fills in the stub.

    dplearn exercises strip notebooks/03_ddpm.ipynb -o 03_ddpm_student.ipynb
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["SOLUTION_TAG", "solution_cells", "tag_solutions", "strip_solutions"]

SOLUTION_TAG = "solution"

_START = re.compile(r"^(`{3,}|:{3,})\s*\{solution-start\}", re.M)
_END = re.compile(r"^(`{3,}|:{3,})\s*\{solution-end\}", re.M)
_SINGLE = re.compile(r"^(`{3,}|:{3,})\s*\{solution\}", re.M)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def solution_cells(nb: dict[str, Any]) -> list[int]:
    """Indices of the cells of every worked solution, read from the MyST markers.

    A solution is a ``{solution-start}`` Markdown cell, the cells after it and the matching
    ``{solution-end}`` cell, or a single cell holding a ``{solution}`` directive. Raises
    ``ValueError`` on a start without an end (or an end without a start).
    """
    indices: list[int] = []
    start = None
    for i, cell in enumerate(nb["cells"]):
        text = _source(cell) if cell["cell_type"] == "markdown" else ""
        if _START.search(text):
            if start is not None:
                raise ValueError(f"cell {i}: solution-start inside the solution opened in cell {start}")
            start = i
        if start is not None:
            indices.append(i)
        elif _SINGLE.search(text):
            indices.append(i)
        if _END.search(text):
            if start is None:
                raise ValueError(f"cell {i}: solution-end without a solution-start")
            start = None
    if start is not None:
        raise ValueError(f"cell {start}: solution-start without a solution-end")
    return indices


def tag_solutions(nb: dict[str, Any]) -> dict[str, Any]:
    """Tag exactly the cells of :func:`solution_cells` with ``solution`` (in place; returns ``nb``)."""
    inside = set(solution_cells(nb))
    for i, cell in enumerate(nb["cells"]):
        tags = [t for t in _tags(cell) if t != SOLUTION_TAG]
        if i in inside:
            tags.append(SOLUTION_TAG)
        if tags:
            cell.setdefault("metadata", {})["tags"] = tags
        else:
            cell.get("metadata", {}).pop("tags", None)
    return nb


def strip_solutions(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``nb`` without the cells tagged ``solution``.

    Raises ``ValueError`` when a solution marker is left outside the tagged cells (the chapter was
    edited without re-tagging: run ``dplearn exercises sync``), so that no solution slips through.
    """
    kept = [cell for cell in nb["cells"] if SOLUTION_TAG not in _tags(cell)]
    for cell in kept:
        text = _source(cell)
        if cell["cell_type"] == "markdown" and (_START.search(text) or _END.search(text)
                                                or _SINGLE.search(text)):
            raise ValueError("a solution marker is not tagged 'solution' (untagged solution cells "
                             "would stay in the handout); run `dplearn exercises sync` first")
    out = {k: v for k, v in nb.items() if k != "cells"}
    out = copy.deepcopy(out)
    out["cells"] = copy.deepcopy(kept)
    return out
