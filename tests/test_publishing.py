"""Everything that names the book's addresses agrees: the website's address (GitHub Pages of the
repository in _config.yml) in _config.yml, the README, CITATION.cff and pyproject.toml; the README's
badges point at the workflows that exist; and the citation matches the project's version and
licences."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
README = (ROOT / "README.md").read_text()
REPOSITORY = CONFIG["repository"]["url"].rstrip("/")


def _owner_and_name(url: str) -> tuple[str, str]:
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url)
    assert match, f"_config.yml's repository.url is not a GitHub repository: {url}"
    return match[1], match[2]


def _pages_address() -> str:
    """Where GitHub Pages serves a project repository's site."""
    owner, name = _owner_and_name(REPOSITORY)
    return f"https://{owner.lower()}.github.io/{name}/"


def _readme_top() -> str:
    """The title area: everything before the first section."""
    return README.split("\n## ", 1)[0]


def _readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match[1]


@pytest.fixture(scope="module")
def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_config_knows_the_site_address():
    assert CONFIG["html"]["baseurl"] == _pages_address()
    assert PYPROJECT["urls"]["Documentation"] == _pages_address()
    assert {PYPROJECT["urls"]["Homepage"], PYPROJECT["urls"]["Repository"]} == {REPOSITORY}


def test_readme_names_the_website_under_the_title():
    links = re.findall(r"https://[\w.-]+\.github\.io/[^\s)>\]]*", _readme_top())
    assert links == [_pages_address()], f"the README's title area links {links}, not {_pages_address()}"


def test_readme_badges_point_at_the_workflows():
    top = _readme_top()
    badges = re.findall(r"\(https://github\.com/([\w.-]+/[\w.-]+)/actions/workflows/([\w.-]+)/badge\.svg", top)
    assert sorted(name for _, name in badges) == ["book.yml", "tests.yml"]
    assert all(f"https://github.com/{repo}" == REPOSITORY for repo, _ in badges)
    for _, name in badges:
        assert (ROOT / ".github" / "workflows" / name).is_file(), f"badge for a missing workflow {name}"
    prefix = "Programming Language :: Python :: "
    supported = [c.removeprefix(prefix) for c in PYPROJECT["classifiers"]
                 if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)]
    (stated,) = re.findall(r"\[!\[Python ([\d. |]+)\]", top)
    assert stated.split(" | ") == supported, f"README says Python {stated}, pyproject.toml {supported}"
    assert "LICENSE" in top and "CC BY 4.0" in top


def test_citation_is_valid_cff(citation):
    assert citation["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "version", "url", "repository-code", "license"):
        assert citation.get(key), f"CITATION.cff has no {key}"
    assert citation["type"] == "software"
    assert all(set(a) == {"name"} for a in citation["authors"]), "authors are entities, with a name"


def test_citation_agrees_with_the_project(citation):
    assert citation["version"] == PYPROJECT["version"]
    assert citation["url"] == _pages_address()
    assert citation["repository-code"] == REPOSITORY
    assert [a["name"] for a in citation["authors"]] == [a["name"] for a in PYPROJECT["authors"]]
    assert [a["name"] for a in citation["authors"]] == [CONFIG["author"]]
    assert citation["license"] == PYPROJECT["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_citation_cites_the_book(citation):
    book = citation["preferred-citation"]
    assert book["type"] == "book"
    assert book["title"] == CONFIG["title"]
    assert book["authors"] == citation["authors"]
    assert book["year"] == int(CONFIG["copyright"])
    assert book["version"] == citation["version"]
    assert book["url"] == citation["url"] and book["repository-code"] == citation["repository-code"]
    assert book["license"] == "CC-BY-4.0" and "CC BY 4.0" in (ROOT / "LICENSE").read_text()


def test_readme_bibtex_agrees_with_citation(citation):
    (entry,) = re.findall(r"```bibtex\n(.*?)```", _readme_section("Cite this book"), re.S)
    fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", entry, re.M))
    book = citation["preferred-citation"]
    assert entry.lstrip().startswith("@book{")
    assert fields["title"] == book["title"]
    assert fields["author"] == "{" + book["authors"][0]["name"] + "}"  # braces keep the name whole
    assert fields["year"] == str(book["year"])
    assert fields["version"] == book["version"]
    assert fields["url"] == book["url"]
    assert book["repository-code"] in entry
