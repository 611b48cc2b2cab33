"""The instructor kit: ``dplearn exercises strip`` writes a student notebook without the worked
solutions that keeps every exercise prompt and checker call and still runs top to bottom."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

from conftest import NOTEBOOKS, ROOT
from dplearn.exercises import colab
from dplearn.exercises.handout import SOLUTION_TAG, solution_cells, strip_solutions

COPIES = ROOT / colab.COPY_DIR / "notebooks"


def _source(cell) -> str:
    return "".join(cell["source"])


def _tagged(cell) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.parametrize("kind", ["chapter", "colab copy"])
def test_strip_removes_the_solutions_and_nothing_else(path, kind):
    nb = json.loads((path if kind == "chapter" else COPIES / path.name).read_text())
    solutions = [c for c in nb["cells"] if _tagged(c)]
    others = [c for c in nb["cells"] if not _tagged(c)]
    assert solutions, f"{path.name} ({kind}): no cell is tagged {SOLUTION_TAG!r}"
    student = strip_solutions(nb)
    assert student["cells"] == others  # every prompt, starter cell and checker call, in order
    kept = {_source(c).strip() for c in student["cells"]}
    leaked = [_source(c)[:60] for c in solutions if _source(c).strip() in kept]
    assert not leaked, f"solution text left in the handout: {leaked}"
    text = "\n".join(_source(c) for c in student["cells"])
    assert "solution-start" not in text and "#### Solution" not in text
    exercises = len(re.findall(r"^(````+\{exercise\}|### Exercise)", text, re.M))
    assert exercises >= 3 and text.count("check_") >= 2, "exercise prompts or checker calls are gone"


def test_strip_refuses_a_solution_that_is_not_tagged():
    nb = json.loads(NOTEBOOKS[0].read_text())
    first = solution_cells(nb)[0]
    nb["cells"][first]["metadata"]["tags"].remove(SOLUTION_TAG)
    with pytest.raises(ValueError, match="not tagged"):
        strip_solutions(nb)


def _names(src: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads), IPython magics and shell lines left out."""
    src = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in src.split("\n"))
    tree = ast.parse(src)
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound, read


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_cell_outside_a_solution_needs_one(path):
    """A handout runs top to bottom only if no kept cell reads a name that only a solution binds."""
    nb = json.loads(path.read_text())
    from_solutions, elsewhere, needs = set(), set(), []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        bound, read = _names(_source(cell))
        if _tagged(cell):
            from_solutions |= bound
            continue
        missing = (read - bound - elsewhere) & from_solutions
        if missing:
            needs.append(f"cell {i} reads {sorted(missing)}")
        elsewhere |= bound
    assert not needs, f"{path.name}: cells outside the solutions use names only solutions define: {needs}"


@pytest.mark.notebooks
def test_student_notebook_runs_to_its_exercises(tmp_path, notebook_runner):
    """Chapter 1's Colab copy, stripped by the command, runs top to bottom at the quick budget:
    everything up to the first exercise, then every checker says 'Not attempted yet'."""
    source = COPIES / NOTEBOOKS[0].name
    student = tmp_path / f"{NOTEBOOKS[0].stem}_student.ipynb"
    proc = subprocess.run([sys.executable, "-m", "dplearn", "exercises", "strip", str(source),
                           "-o", str(student)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "solution cells removed" in proc.stdout
    run = notebook_runner.run(student)
    assert run.error is None, f"the student notebook failed after {run.seconds:.0f}s:\n{run.error}"
    nb = json.loads(run.executed.read_text())
    first_exercise = next(i for i, c in enumerate(nb["cells"])
                          if c["cell_type"] == "markdown" and _source(c).startswith("### Exercise"))
    before = [c for c in nb["cells"][:first_exercise] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in before), "a cell before the first exercise did not run"
    checks = [c for c in nb["cells"][first_exercise:]
              if c["cell_type"] == "code" and ".check_" in _source(c)]
    outputs = ["".join(o.get("text", "")) + json.dumps(o.get("data", {})) for c in checks
               for o in c["outputs"]]
    assert checks and all("Not attempted" in out for out in outputs), outputs


def test_instructor_guide_lists_every_exercise():
    """book/instructors.md has a row for every exercise of every chapter, and none for others."""
    from dplearn.exercises.colab import find_labels

    guide = (ROOT / "book" / "instructors.md").read_text()
    listed = set(re.findall(r"\{ref\}`(ex-[\w-]+)`", guide))
    exercises = {label for path in NOTEBOOKS
                 for label in find_labels(json.loads(path.read_text()), path.stem)
                 if label.startswith("ex-")}
    assert exercises, "no exercise labels found"
    assert not exercises - listed, f"add these exercises to book/instructors.md: {sorted(exercises - listed)}"
    if len(NOTEBOOKS) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))):
        assert not listed - exercises, f"book/instructors.md lists unknown exercises: {sorted(listed - exercises)}"
