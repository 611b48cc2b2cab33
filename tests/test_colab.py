"""Every chapter reads correctly in Colab and plain Jupyter.

The website's Colab button opens ``colab/notebooks/NN_name.ipynb``, a copy of the chapter in plain
Markdown written by ``dplearn exercises sync``. These tests render every Markdown cell of every copy
with a CommonMark renderer that knows no MyST (markdown-it-py, with the ``$`` math that Jupyter and
Colab add) and find no raw role, directive, fence or label, and no math macro that MathJax does not
define. They also keep the copies and the chapters' generated cells (macro cell, solution tags) in
step with the sources and ``_config.yml``.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from conftest import NOTEBOOKS, ROOT
from dplearn.exercises import colab
from dplearn.exercises.handout import SOLUTION_TAG, solution_cells

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
COPIES = ROOT / colab.COPY_DIR / "notebooks"

# TeX commands that MathJax 3 (the website, Jupyter) and KaTeX define out of the box. A command
# not listed here must be checked against https://docs.mathjax.org/en/latest/input/tex/macros/
# before it is added, or defined in _config.yml's macros.
MATHJAX_BUILTINS = set("""
alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi
varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi
Sigma Upsilon Phi Psi Omega
frac dfrac tfrac sqrt sum prod int iint oint lim limsup liminf sup inf max min arg argmax argmin
log ln exp sin cos tan arccos arcsin arctan sinh cosh tanh det dim ker deg gcd Pr bmod pmod mod
left right big Big bigg Bigg bigl bigr Bigl Bigr middle
mathrm mathbf mathit mathsf mathtt mathcal mathbb mathfrak mathscr boldsymbol bm text textbf
textit textrm operatorname operatorname* displaystyle textstyle scriptstyle
hat widehat tilde widetilde bar overline underline vec dot ddot breve check acute grave mathring
overbrace underbrace overset underset stackrel boxed cancel
quad qquad enspace thinspace negthinspace hspace vspace phantom
cdot cdots ldots dots vdots ddots times div pm mp ast star circ bullet oplus otimes odot cap cup
setminus wedge vee land lor neg lnot
le leq ge geq ll gg ne neq approx sim simeq cong equiv propto doteq prec succ subset supset
subseteq supseteq in notin ni mid nmid parallel perp models vdash
to gets leftarrow rightarrow Leftarrow Rightarrow leftrightarrow Leftrightarrow longrightarrow
longleftarrow Longrightarrow Longleftarrow Longleftrightarrow longleftrightarrow mapsto
longmapsto implies iff uparrow downarrow nearrow searrow hookrightarrow xrightarrow
infty partial nabla forall exists nexists emptyset varnothing ell hbar Re Im aleph top bot
angle triangle square blacksquare Box diamond dagger checkmark prime backslash
langle rangle lfloor rfloor lceil rceil lvert rvert lVert rVert vert Vert lbrace rbrace
begin end tag label nonumber notag limits nolimits substack
color textcolor not
""".split())

LEFTOVERS = {
    "role": re.compile(r"\{[a-z][\w:.+-]*\}\s*<code>"),
    "directive fence": re.compile(r'<code class="language-\{'),
    "colon fence": re.compile(r":{3,}\s*\{"),
    "label target": re.compile(r"(^|>)\s*\([\w:.-]+\)=\s*(<|$)", re.M),
    "directive option": re.compile(r"(^|>)\s*:(label|class|name|filter|all|alt|width|align):", re.M),
    "substitution": re.compile(r"\{\{.*?\}\}"),
}


def _markdown_cells(path) -> list[tuple[int, str]]:
    nb = json.loads(path.read_text())
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]


def jupyter_math(markdown: str) -> list[str]:
    """The formulas of a Markdown cell as Jupyter and Colab find them: cut out of the raw text
    (outside code) before the Markdown is parsed, ``$$...$$`` first, then ``$...$``."""
    text = re.sub(r"^(```|~~~).*?^\1\s*$", "", markdown, flags=re.S | re.M)  # fenced code
    text = re.sub(r"(`+)(?!`).+?(?<!`)\1(?!`)", "", text, flags=re.S)  # code spans
    display = re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
    text = re.sub(r"\$\$(.+?)\$\$", "", text, flags=re.S)
    return display + re.findall(r"(?<!\\)\$(.+?)(?<!\\)\$", text, flags=re.S)


def render_problems(markdown: str, defined: set[str] = frozenset()) -> list[str]:
    """What a Markdown cell would show raw in Colab/Jupyter: MyST syntax left in the text rendered
    by a CommonMark renderer (markdown-it-py with ``$`` math, no MyST), and formulas with Markdown
    syntax inside (such as a block quote's ``>``) or with a TeX command that neither MathJax nor
    ``defined`` knows."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table").use(dollarmath_plugin,
                                                                       double_inline=True)
    tokens = md.parse(markdown)
    problems = []
    html = md.renderer.render(tokens, md.options, {})
    html = re.sub(r'<(span|div) class="math[^"]*">.*?</\1>', "", html, flags=re.S)  # math is MathJax's
    for what, pattern in LEFTOVERS.items():
        for m in pattern.finditer(html):
            problems.append(f"raw {what}: {html[max(0, m.start() - 40):m.end() + 40]!r}")
    for formula in jupyter_math(markdown):
        if re.search(r"\n\s*>", formula):
            problems.append(f"block quote inside ${formula.strip()[:60]}$")
        for name in re.findall(r"\\([A-Za-z]+)", formula):
            if name not in MATHJAX_BUILTINS and name not in defined:
                problems.append(f"undefined macro \\{name} in ${formula.strip()[:80]}$")
    return problems


@pytest.fixture(scope="module")
def book() -> colab.Book:
    return colab.Book.from_root(ROOT)


def test_chapters_and_copies_are_in_sync():
    report = colab.sync(ROOT, check=True)
    assert not report, ("out of date: " + ", ".join(report.changed)
                        + " — run `dplearn exercises sync` and commit the result")


def test_colab_button_opens_the_copies():
    """The launch button's URL is .../blob/BRANCH/<path_to_book>/notebooks/NN_name.ipynb."""
    assert CONFIG["repository"]["path_to_book"].strip("/") == colab.COPY_DIR.as_posix()
    assert CONFIG["launch_buttons"]["colab_url"]
    for path in NOTEBOOKS:
        assert (COPIES / path.name).is_file(), f"no Colab copy of {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_copy_renders_without_myst(path):
    copy = COPIES / path.name
    assert copy.is_file(), f"no Colab copy of {path.name}; run `dplearn exercises sync`"
    problems = [f"cell {i}: {p}" for i, text in _markdown_cells(copy) for p in render_problems(text)]
    assert not problems, f"{copy.relative_to(ROOT)} renders with raw MyST or undefined macros:\n" + \
        "\n".join(problems[:20])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_defines_its_macros_for_jupyter(path, book):
    """A chapter opened in plain Jupyter: its first cell defines every macro its math uses."""
    nb = json.loads(path.read_text())
    first = nb["cells"][0]
    assert colab.is_macro_cell(first), f"{path.name}: the first cell is not the macro cell (run sync)"
    assert "remove-cell" in first["metadata"].get("tags", []), "the website must hide the macro cell"
    defined = set(re.findall(r"\\newcommand\{\\(\w+)\}", "".join(first["source"])))
    assert defined == set(book.macros), "the macro cell differs from _config.yml's macros"
    defined |= {"newcommand"}
    undefined = [p for _, text in _markdown_cells(path) for p in render_problems(text, defined)
                 if p.startswith("undefined")]
    assert not undefined, f"{path.name}: " + "\n".join(undefined[:20])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_solution_cell_is_tagged(path):
    nb = json.loads(path.read_text())
    marked = set(solution_cells(nb))
    assert marked, f"{path.name} has no worked solutions"
    tagged = {i for i, c in enumerate(nb["cells"]) if SOLUTION_TAG in c["metadata"].get("tags", [])}
    assert tagged == marked, (f"{path.name}: cells {sorted(marked - tagged)} are in a solution but not "
                              f"tagged, cells {sorted(tagged - marked)} are tagged but in none "
                              "(run `dplearn exercises sync`)")


def test_the_check_finds_raw_myst_and_unknown_macros():
    """The rendering check is not vacuous: the MyST sources themselves fail it."""
    source = dict(_markdown_cells(NOTEBOOKS[0]))
    found = [p for text in source.values() for p in render_problems(text)]
    assert any(p.startswith("raw role") for p in found)
    assert any(p.startswith("raw directive fence") for p in found)
    assert render_problems("(sec-x)=\n## A section") and render_problems(":::{note}\nhi\n:::")
    assert render_problems(r"Take $x \sim \N(0, 1)$.") == [r"undefined macro \N in $x \sim \N(0, 1)$"]
    assert render_problems("> $$\n> x = 1\n> $$") == ["block quote inside $> x = 1\n>$"]
    assert not render_problems("Costs `$5` and $$\nx\n$$ and $y$.")
    assert not render_problems(r"Take $x \sim \N(0, 1)$.", {"N"})


# ----------------------------------------------------------------------- the conversion --
def _plain(text: str, book: colab.Book, doc: str = "notebooks/01_kl_divergence") -> str:
    return colab.plain_markdown(text, book, doc)


def test_citations_become_author_year(book):
    out = _plain("as shown {cite}`ho2020ddpm,chi2023diffusion` and by {cite:t}`kullback1951`.", book)
    assert out == "as shown (Ho et al., 2020; Chi et al., 2023) and by Kullback and Leibler (1951)."
    with pytest.raises(colab.MystError, match="unknown references"):
        _plain("{cite}`nobody2099`", book)


def test_references_and_labels(book):
    assert _plain("see {ref}`the proof <sec-01-mle>`", book) == "see the proof"
    out = _plain("see {ref}`ex-03-posterior`", book)
    assert out == f"see [Exercise 3.1]({book.site_url}notebooks/03_ddpm.html#ex-03-posterior)"
    assert _plain("see {ref}`ex-03-posterior`", book, "notebooks/03_ddpm") == "see *Exercise 3.1*"
    assert _plain("(sec-a)=\n## A", book) == "## A"
    with pytest.raises(colab.MystError, match="unknown label"):
        _plain("{ref}`no-such-label`", book)


def test_exercise_solution_and_admonition(book):
    text = "````{exercise} Title with $\\N$\n:label: ex-01-predict\n\nDo {cite}`ho2020ddpm`.\n````"
    assert _plain(text, book) == ("### Exercise 1.4 (Title with $\\mathcal{N}$)\n\n"
                                  "Do (Ho et al., 2020).")
    solution = "```{solution-start} ex-01-predict\n:class: dropdown\n```"
    assert _plain(solution, book) == "#### Solution to Exercise 1.4"
    assert _plain("```{solution-end}\n```", book) == ""
    note = _plain(":::{note}\nTwo\n\nparagraphs.\n:::", book)
    assert note == "**Note.**\n\nTwo\n\nparagraphs."
    fold = _plain("```{admonition} Why\n:class: dropdown\n\n$$\nx\n$$\n```", book)
    assert fold == "<details>\n<summary><b>Why</b></summary>\n\n$$\nx\n$$\n\n</details>"
    assert _plain("```python\n{cite}`x`\n```", book) == "```python\n{cite}`x`\n```"  # code: verbatim
    with pytest.raises(colab.MystError, match="directive"):
        _plain("```{glue:figure} fig\n```", book)
    with pytest.raises(colab.MystError, match="role"):
        _plain("{eq}`my-eq`", book)


def test_macros_expand_with_arguments():
    macros = {"N": ("\\mathcal{N}", 0), "norm": ("\\lVert #1 \\rVert", 1), "KL": ("\\mathrm{KL}", 0)}
    assert colab._expand_macros(r"$\N(0,1)$, $\Nu$, $\norm{x_{\KL}}$", macros) == \
        r"$\mathcal{N}(0,1)$, $\Nu$, $\lVert x_{\mathrm{KL}} \rVert$"


def test_images_point_at_the_repository(book):
    out = _plain("![T](../book/images/logo.png) and <img src=\"../book/images/logo.png\">", book)
    assert out.count(book.raw_url + "book/images/logo.png") == 2


def test_sync_writes_what_check_then_accepts(tmp_path):
    """In a fresh checkout of one chapter: sync adds the macro cell and the solution tags, writes
    the copy and removes a stale one; afterwards the check finds nothing to do."""
    import shutil

    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    for rel in CONFIG.get("bibtex_bibfiles", []):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "notebooks").mkdir()
    chapter = json.loads(NOTEBOOKS[0].read_text())
    chapter["cells"] = [c for c in chapter["cells"] if not colab.is_macro_cell(c)]
    for c in chapter["cells"]:
        c["metadata"].pop("tags", None)
    (tmp_path / "notebooks" / NOTEBOOKS[0].name).write_text(json.dumps(chapter))
    stale = tmp_path / "colab" / "notebooks" / "99_gone.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")

    report = colab.sync(tmp_path)
    assert sorted(report.changed) == sorted([f"notebooks/{NOTEBOOKS[0].name}",
                                             f"colab/notebooks/{NOTEBOOKS[0].name}",
                                             "colab/notebooks/99_gone.ipynb"])
    assert not stale.exists() and not colab.sync(tmp_path, check=True)
    synced = json.loads((tmp_path / "notebooks" / NOTEBOOKS[0].name).read_text())
    assert colab.is_macro_cell(synced["cells"][0])
    assert any(SOLUTION_TAG in c["metadata"].get("tags", []) for c in synced["cells"])
