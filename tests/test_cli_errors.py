"""Bad input to the library's loaders and to the `dplearn` command: one line naming the problem.

Every expected failure (a missing or foreign file, a damaged checkpoint, an unknown device) must
end in a message that names the file or option and says what is wrong, never in a Python
traceback, and never with advice to unpickle an untrusted file (``weights_only=False``).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from dplearn.atomic import CheckpointError, torch_load
from dplearn.policies import load_policy, make_policy
from dplearn.training import TrainConfig, load_checkpoint_model, read_train_state, train

ROOT = Path(__file__).resolve().parents[1]


class _Foreign:
    """A class no weights-only unpickler knows (a pickle of it is a foreign checkpoint)."""


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("notes.txt", "not a checkpoint")
    return buffer.getvalue()


def _policy_checkpoint() -> dict:
    return make_policy("regression", hidden=8, n_layers=1).checkpoint()


def _without(key: str) -> bytes:
    state = _policy_checkpoint()
    del state[key]
    return _torch_bytes(state)


def _with_nan() -> bytes:
    state = _policy_checkpoint()
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and v.ndim == 2)
    state["state_dict"][name][0, 0] = math.nan
    return _torch_bytes(state)


def _config_missing_field() -> bytes:
    state = _policy_checkpoint()
    del state["config"]["hidden"]  # the default (256) is not the width of the stored weights (8)
    return _torch_bytes(state)


def _not_tensors() -> bytes:
    state = _policy_checkpoint()
    state["state_dict"] = {k: 3 for k in state["state_dict"]}
    return _torch_bytes(state)


_REAL = _torch_bytes(_policy_checkpoint())

#: (name, file content, what the message must say after "'<file>' ")
BAD_CHECKPOINTS = [
    ("empty", b"", "is not a readable dplearn policy checkpoint: it is empty"),
    ("truncated", _REAL[: len(_REAL) // 2],
     "is not a readable dplearn policy checkpoint: it is truncated (an incomplete zip archive)"),
    ("zip", _zip_bytes(), "is not a readable dplearn policy checkpoint: it is a zip archive but not a torch file"),
    ("pickle", pickle.dumps(_Foreign()),
     "is not a readable dplearn policy checkpoint: it holds Python objects other than tensors"),
    ("torch-object", _torch_bytes(_Foreign()),
     "is not a readable dplearn policy checkpoint: it holds Python objects other than tensors"),
    ("text", b"hello, I am not a checkpoint",
     "is not a readable dplearn policy checkpoint: it is damaged or not a torch file ("),
    ("foreign-dict", _torch_bytes({"a": 1}),
     "is not a dplearn policy checkpoint of format 'dplearn-policy/2' (found a mapping with no 'format' entry"),
    ("list", _torch_bytes([1, 2]), "is not a dplearn policy checkpoint of format 'dplearn-policy/2' (found a list)"),
    ("no-config", _without("config"), ": the checkpoint has no 'config' entry"),
    ("no-weights", _without("state_dict"), ": the checkpoint has no 'state_dict' entry"),
    ("no-policy", _without("policy"), ": the checkpoint has no 'policy' entry"),
    ("no-normalizer", _without("action_normalizer"), ": the checkpoint has no 'action_normalizer' entry"),
    ("config-field", _config_missing_field(),
     ": checkpoint shapes do not match the 'regression' policy built from its config (its config has no ['hidden']"),
    ("not-tensors", _not_tensors(), ": the checkpoint's state_dict is not a mapping of tensors"),
    ("nan", _with_nan(), ": the checkpoint's weights contain NaN or infinite values"),
]


@pytest.mark.parametrize("name, content, message", BAD_CHECKPOINTS, ids=[c[0] for c in BAD_CHECKPOINTS])
def test_bad_policy_checkpoints_are_refused_in_one_line_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / f"{name}.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_policy(path)
    text = str(info.value)
    assert text.startswith(f"{str(path)!r}") and message in text, text
    assert "\n" not in text and "weights_only=False" not in text and "weights_only" not in text
    assert isinstance(info.value, ValueError)


def test_a_missing_checkpoint_is_named():
    with pytest.raises(CheckpointError, match="'absent.pt' is not a readable dplearn policy checkpoint: no such file"):
        load_policy("absent.pt")
    with pytest.raises(CheckpointError, match="is not a readable dplearn training state: it is not a file"):
        read_train_state(ROOT / "tests")


@pytest.mark.parametrize("name, content, message", BAD_CHECKPOINTS[:6], ids=[c[0] for c in BAD_CHECKPOINTS[:6]])
def test_bad_training_states_are_refused_in_one_line(tmp_path, name, content, message):
    path = tmp_path / f"{name}.state"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_train_state(path)
    assert message.replace("policy checkpoint", "training state") in str(info.value)
    assert "weights_only" not in str(info.value)


def _train_state(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = torch.nn.Linear(2, 1)
    path = tmp_path / "run.state"
    data = torch.randn(16, 2)
    train(model, lambda m, x: m(x).pow(2).mean(), data,
          TrainConfig(steps=2, batch_size=4, warmup_steps=0, device="cpu", progress=False, checkpoint_path=path))
    return model, path


def test_training_states_with_nan_weights_or_misfitting_weights_are_refused(tmp_path):
    model, path = _train_state(tmp_path)
    state = torch.load(path, weights_only=True)
    state["model"]["weight"][0, 0] = math.nan
    torch.save(state, tmp_path / "nan.state")
    with pytest.raises(CheckpointError, match=r"nan.state': the 'model' weights contain NaN or infinite values: "
                                              r"\['weight'\]"):
        read_train_state(tmp_path / "nan.state")
    with pytest.raises(CheckpointError, match=r"run.state': its weights do not fit the model \(Error"):
        load_checkpoint_model(torch.nn.Linear(3, 1), path)


def test_torch_load_names_what_the_file_should_have_been(tmp_path):
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="'.*e.bin' is not a readable dplearn frobnicator: it is empty"):
        torch_load(tmp_path / "e.bin", "frobnicator")
    torch.save({"x": torch.ones(2)}, tmp_path / "ok.bin")
    assert torch.equal(torch_load(tmp_path / "ok.bin")["x"], torch.ones(2))


# ---------------------------------------------------------------------------------- the CLI --
def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "DPLEARN_BUDGET": "quick", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    return subprocess.run([sys.executable, "-m", "dplearn", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


#: the checkpoints also fed to `dplearn eval` (the library test above covers every one)
CLI_CHECKPOINTS = ("empty", "truncated", "zip", "pickle", "foreign-dict", "no-config", "nan")


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Run every bad command line once, side by side (each is a fresh interpreter)."""
    tmp = tmp_path_factory.mktemp("cli")
    for name, content, _ in BAD_CHECKPOINTS:
        (tmp / f"{name}.pt").write_bytes(content)
    np.savez(tmp / "foreign.npz", a=np.zeros(3))
    (tmp / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp / "text.npz").write_text("state,action\n1,2\n")  # NumPy would advise allowing pickles
    np.savez(tmp / "whole.npz", state=np.zeros((3, 5)))
    (tmp / "cut.npz").write_bytes((tmp / "whole.npz").read_bytes()[:150])
    train = ["train", "--policy", "regression", "--out", "out.pt", "--no-progress"]
    cases = {
        "demos-missing": ([*train, "--device", "cpu", "--demos", "absent.npz"],
                          "dplearn train: --demos: path 'absent.npz' is not a file"),
        "demos-foreign": ([*train, "--device", "cpu", "--demos", "foreign.npz"],
                          "dplearn train: --demos: foreign.npz: missing keys ['state', 'action', 'episode_ends'"),
        "demos-broken": ([*train, "--device", "cpu", "--demos", "broken.npz"],
                         "dplearn train: --demos: broken.npz: not a readable demonstrations file"),
        "demos-text": ([*train, "--device", "cpu", "--demos", "text.npz"],
                       "dplearn train: --demos: text.npz: not a readable demonstrations file (not a NumPy file, "
                       "or one holding pickled Python objects, which are not loaded)"),
        "demos-truncated": ([*train, "--device", "cpu", "--demos", "cut.npz"],
                            "dplearn train: --demos: cut.npz: not a readable demonstrations file (not an .npz "
                            "archive, or a truncated one)"),
        "device-unknown": ([*train, "--device", "nonsense"],
                           "dplearn: --device must be auto, cpu, cuda or cuda:N, got 'nonsense'"),
        "device-meta": (["eval", "--checkpoint", "empty.pt", "--device", "meta"],
                        "dplearn: --device must be auto, cpu, cuda or cuda:N, got 'meta'"),
        "resume-foreign": ([*train, "--device", "cpu", "--steps", "2", "--resume", "pickle.pt"],
                           "dplearn train: 'pickle.pt' is not a readable dplearn training state: it holds Python "
                           "objects other than tensors"),
    }
    if not torch.cuda.is_available():
        cases["device-cuda"] = ([*train, "--device", "cuda"],
                                "dplearn: --device cuda: no CUDA GPU is available on this machine")
    for name, _, message in BAD_CHECKPOINTS:
        if name not in CLI_CHECKPOINTS:
            continue
        cases[f"checkpoint-{name}"] = (["eval", "--checkpoint", f"{name}.pt", "--episodes", "1", "--no-progress"],
                                       f"dplearn eval: '{name}.pt'{'' if message.startswith(':') else ' '}{message}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, *args, cwd=tmp) for name, (args, _) in cases.items()}
        return {name: (futures[name].result(), cases[name][1]) for name in cases}


CLI_CASES = ["demos-missing", "demos-foreign", "demos-broken", "demos-text", "demos-truncated", "device-unknown", "device-meta", "device-cuda",
             "resume-foreign"] + [f"checkpoint-{name}" for name in CLI_CHECKPOINTS]


@pytest.mark.parametrize("case", CLI_CASES)
def test_command_line_turns_bad_input_into_one_line_and_a_nonzero_exit(cli_results, case):
    if case not in cli_results:
        pytest.skip("this machine has a CUDA GPU")
    result, message = cli_results[case]
    err = result.stderr.strip()
    assert result.returncode != 0
    assert "Traceback" not in err and "weights_only" not in err and "allow_pickle" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(message) or message in err, err
