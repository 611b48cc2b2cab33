"""Recorded results that ship with dplearn: small JSON files under ``data/`` that chapters plot.

Introduced in chapter 10.

Some numbers take a GPU or an hour of CPU to make — the execution-time ablations of the shipped
policy, the comparison of every method over training seeds. Scripts in ``benchmarks/`` write them
once, with the command, machine and time that made them, into a small JSON file beside the shipped
demonstrations; a chapter reads the file instead of typing a number:

==========================  ============================================================================
``ablations``               ``benchmarks/ablations.py``: score of the shipped ``diffusion-cnn`` against
                            the action horizon, a latency and the sampler, on the paper's 50 test starts
``ablations-obs1``          the same script's action-horizon and latency sweeps of a ``diffusion-cnn``
                            trained with one observation (T_o = 1), whose chunk allows T_a = 16
``ablations-transformer``   the same script's sampler sweep of the shipped ``diffusion-transformer``
                            (chapter 10 sets it beside the CNN's)
``comparison``              ``benchmarks/comparison.py``: per method, the paper's max / avg statistic
                            over training seeds (:func:`dplearn.envs.benchmark.summarize_seeds`)
``vision``                  ``benchmarks/comparison.py --checkpoints``: the shipped ``diffusion-cnn``
                            policies on keypoints, pixels and two cameras, on the same 50 test starts
                            (chapter 9)
==========================  ============================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dplearn.shipped import shipped_path

__all__ = ["shipped_data_path", "load_results", "recorded_run"]

#: recorded training times are rounded to 0.1 s
_SECONDS_TOLERANCE = 0.051


def shipped_data_path(file: str) -> Path:
    """Where the shipped data file ``file`` (e.g. ``"pusht_demos.npz"``) lives: inside the installed
    package (``dplearn/_shipped/data``), else the repository's ``data/``
    (:func:`dplearn.shipped.shipped_path`).

    Raises ``FileNotFoundError`` naming both places when it is in neither.
    """
    return shipped_path("data", file)


def load_results(name: str) -> dict[str, Any]:
    """The recorded results ``data/NAME.json`` (see the module's table) as a dict.

    A missing file raises ``FileNotFoundError``; a file that is not a JSON object raises
    ``ValueError`` naming it.
    """
    path = shipped_data_path(f"{name}.json" if isinstance(name, str) else name)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object, got {type(data).__name__}")
    return data


def recorded_run(results: Mapping[str, Any], row: str, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The recorded run of the checkpoint whose metadata is ``meta``, or ``None``.

    ``results`` is a comparison file (:func:`load_results`: ``"comparison"`` or ``"vision"``) and
    ``row`` a key of its ``table`` (``"<method>-<obs>"``). A run is the checkpoint's when it has the
    same command, the same number of training steps and the same training time (to the recorded
    0.1 s). Rerunning a command makes a new file with another training time, so a retrained checkpoint
    never borrows the score recorded for its predecessor: the caller scores it instead.

    The run is a dict with at least ``max``, ``mean`` and ``success_rate`` (over the file's
    ``episodes`` test starts) and ``command``, ``steps``, ``wall_seconds``, ``trained_on``.
    """
    if not isinstance(results, Mapping) or not isinstance(results.get("table"), Mapping):
        raise ValueError("results must be a recorded comparison (a dict with a 'table'), "
                         f"got {type(results).__name__}")
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a checkpoint's metadata dict, got {type(meta).__name__}")
    entry = results["table"].get(row)
    if entry is None:
        return None
    seconds = meta.get("train_seconds")
    for run in entry.get("per_run", []):
        recorded = run.get("wall_seconds")
        if (run.get("command") == meta.get("command") and run.get("steps") == meta.get("train_steps")
                and seconds is not None and recorded is not None
                and abs(float(recorded) - float(seconds)) <= _SECONDS_TOLERANCE):
            return dict(run)
    return None
