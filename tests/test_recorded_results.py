"""The paper's statistic (summarize_seeds) and the recorded result files the chapters read."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from dplearn.data.results import load_results, recorded_run, shipped_data_path
from dplearn.envs.benchmark import PAPER_PUSHT, summarize_seeds
from dplearn.policies import make_policy


def test_summarize_seeds_equals_the_statistics_module():
    rng = np.random.default_rng(0)
    for n_seeds in (2, 3, 5):
        scores = [list(rng.uniform(0, 1, size=rng.integers(1, 7))) for _ in range(n_seeds)]
        best = [max(s) for s in scores]
        mean = [statistics.fmean(s) for s in scores]
        got = summarize_seeds(scores)
        assert got.n_seeds == n_seeds
        assert got.max == pytest.approx(statistics.fmean(best), abs=1e-12)
        assert got.max_sd == pytest.approx(statistics.stdev(best), abs=1e-12)
        assert got.avg == pytest.approx(statistics.fmean(mean), abs=1e-12)
        assert got.avg_sd == pytest.approx(statistics.stdev(mean), abs=1e-12)


def test_summarize_seeds_one_seed_has_no_spread():
    got = summarize_seeds([[0.2, 0.9, 0.4]])
    assert (got.max, got.max_sd, got.avg, got.avg_sd) == pytest.approx((0.9, 0.0, 0.5, 0.0))


@pytest.mark.parametrize("bad", [[], [[]], [[0.5, float("nan")]], "0.5", [[[0.1]]], None])
def test_summarize_seeds_refuses_bad_input(bad):
    with pytest.raises(ValueError, match="scores"):
        summarize_seeds(bad)


def test_paper_table_is_max_above_avg_on_both_observations():
    for obs, rows in PAPER_PUSHT.items():
        assert rows, obs
        for method, (best, avg) in rows.items():
            assert 0 < avg <= best <= 1, (obs, method)


def test_missing_and_malformed_results(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no_such_results.json"):
        load_results("no_such_results")
    with pytest.raises(ValueError, match="file"):
        shipped_data_path("../etc/passwd")


@pytest.mark.parametrize("name", ["comparison", "vision"])
def test_recorded_comparison_rows_follow_from_their_runs(name):
    comparison = load_results(name)
    assert comparison["episodes"] >= 1 and comparison["table"]
    for key, row in comparison["table"].items():
        runs = row["per_run"]
        assert row["runs"] == len(runs) >= 1, key
        assert row["max"] == pytest.approx(statistics.fmean([r["max"] for r in runs]), abs=1e-3), key
        assert row["mean"] == pytest.approx(statistics.fmean([r["mean"] for r in runs]), abs=1e-3), key
        for r in runs:  # every run says how it was made
            assert r["command"].startswith("dplearn train --policy " + row["method"]), key
            assert r["steps"] >= 1 and r["trained_on"], key
            assert 0 <= r["mean"] <= r["max"] <= 1, key


def test_recorded_ablations_hold_the_three_sweeps():
    ablations = load_results("ablations")
    sweeps = ablations["sweeps"]
    assert {"action-horizon", "latency", "samplers"} <= set(sweeps)
    assert ablations["episodes"] >= 1 and ablations["command"].startswith("python benchmarks/ablations.py")
    for rows in sweeps.values():
        assert all(0 <= r["score"] <= 1 and 0 <= r["success_rate"] <= 1 for r in rows)


@pytest.mark.parametrize("name", ["ablations", "ablations-obs1"])
def test_recorded_horizon_sweeps_fit_the_chunk_and_agree_where_they_meet(name):
    """Every executed row lies inside the policy's chunk (T_o - 1 + k + T_a <= T_p), the policy's T_o is
    the one its training command asked for, and the two sweeps' common point (T_a of the recipe, no
    latency) is the same evaluation, run twice: it must give the same score."""
    ablations = load_results(name)
    policy, sweeps = ablations["policy"], ablations["sweeps"]
    t_o, t_p = policy["obs_horizon"], policy["pred_horizon"]
    words = ablations["trained_by"].split()
    from dplearn.policy_training import recipe_for

    default = recipe_for(words[words.index("--policy") + 1], words[words.index("--obs") + 1])[1].config
    asked = int(words[words.index("--obs-horizon") + 1]) if "--obs-horizon" in words else default["obs_horizon"]
    assert t_o == asked
    for row in sweeps["action-horizon"]:
        assert t_o - 1 + row["action_horizon"] <= t_p
    for row in sweeps["latency"]:
        assert t_o - 1 + row["latency"] + policy["action_horizon"] <= t_p
    same = [r["score"] for r in sweeps["action-horizon"] if r["action_horizon"] == policy["action_horizon"]]
    same += [r["score"] for r in sweeps["latency"] if r["latency"] == 0]
    assert len(same) == 2 and same[0] == pytest.approx(same[1], abs=1e-9)


def test_the_one_observation_sweep_reaches_the_whole_chunk_and_its_policy_is_in_the_table():
    ablations = load_results("ablations-obs1")
    policy = ablations["policy"]
    longest = max(r["action_horizon"] for r in ablations["sweeps"]["action-horizon"])
    assert policy["obs_horizon"] == 1 and longest == policy["pred_horizon"] == 16
    # the swept file is one the comparison table scored: its command is one of the table's runs
    commands = {run["command"] for row in load_results("comparison")["table"].values()
                for run in row["per_run"]}
    assert ablations["trained_by"] in commands


def test_shipped_path_prefers_the_installed_copy_then_the_repository(tmp_path, monkeypatch):
    import dplearn.shipped as shipped

    repo = Path(__file__).resolve().parent.parent
    # a checkout: the repository's own folders
    assert shipped.shipped_path("data", "pusht_demos.npz").samefile(repo / "data" / "pusht_demos.npz")
    assert shipped.shipped_path("checkpoints", "regression-keypoints.pt").samefile(
        repo / "checkpoints" / "regression-keypoints.pt")
    # an installed package: a fake package directory with _shipped/ wins over the repository
    package = tmp_path / "site" / "dplearn"
    (package / "_shipped" / "data").mkdir(parents=True)
    (package / "_shipped" / "data" / "x.json").write_text("{}")
    monkeypatch.setattr(shipped, "__file__", str(package / "shipped.py"))
    assert shipped.shipped_path("data", "x.json") == package / "_shipped" / "data" / "x.json"
    with pytest.raises(FileNotFoundError, match=r"y\.json.*_shipped/data.*data/"):
        shipped.shipped_path("data", "y.json")


@pytest.mark.parametrize("folder, file, match", [("notebooks", "a.json", "folder"), ("data", "", "file"),
                                                 ("data", "sub/a.json", "file"), ("data", "..", "file")])
def test_shipped_path_refuses_other_places(folder, file, match):
    from dplearn.shipped import shipped_path

    with pytest.raises(ValueError, match=match):
        shipped_path(folder, file)


@pytest.mark.parametrize("name", ["comparison", "vision"])
def test_each_shipped_checkpoint_finds_its_own_recorded_run(name):
    """The rows were recorded from the shipped files: each one's metadata, read straight from the
    file, finds the run whose command made it, and a retrained file (same command, other time or
    steps) finds none."""
    import torch

    from dplearn.shipped import shipped_path

    results = load_results(name)
    found = 0
    for key, row in results["table"].items():
        if row.get("control", "position") != "position":
            continue
        try:
            path = shipped_path("checkpoints", f"{key}.pt")
        except FileNotFoundError:
            continue
        meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
        run = recorded_run(results, key, meta)
        assert run is not None, key
        assert run["command"] == meta["command"] and run["steps"] == meta["train_steps"], key
        found += 1
        assert recorded_run(results, key, {**meta, "train_seconds": meta["train_seconds"] + 1.0}) is None
        assert recorded_run(results, key, {**meta, "train_steps": meta["train_steps"] + 1}) is None
        assert recorded_run(results, key, {**meta, "command": meta["command"] + " --lr 1e-3"}) is None
        assert recorded_run(results, "no-such-row", meta) is None
    assert found >= 3


def test_recorded_run_picks_the_matching_seed_and_refuses_bad_input():
    runs = [{"command": f"dplearn train --seed {s}", "steps": 100, "wall_seconds": 10.0 + s, "max": s / 10,
             "mean": s / 20, "success_rate": 0.0} for s in range(3)]
    results = {"table": {"m-keypoints": {"per_run": runs}}}
    meta = {"command": "dplearn train --seed 2", "train_steps": 100, "train_seconds": 12.04}
    assert recorded_run(results, "m-keypoints", meta)["max"] == pytest.approx(0.2)
    assert recorded_run(results, "m-keypoints", {**meta, "train_seconds": 12.2}) is None
    assert recorded_run(results, "m-keypoints", {k: v for k, v in meta.items() if k != "train_seconds"}) is None
    with pytest.raises(ValueError, match="results"):
        recorded_run({"rows": {}}, "m-keypoints", meta)
    with pytest.raises(ValueError, match="meta"):
        recorded_run(results, "m-keypoints", None)


def test_comparison_summary_keeps_the_standard_error_of_each_runs_best_checkpoint():
    """benchmarks/comparison.py's per-run record: ``max_sem`` is the standard error of the checkpoint
    that gives the run's max, not of another one; the table's statistic is the paper's."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "comparison.py"
    spec = importlib.util.spec_from_file_location("comparison_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checkpoints = [[(0.5, 0.07), (0.8, 0.03), (0.6, 0.05)], [(0.9, 0.02), (None, None), (0.4, 0.06)]]
    runs = [{"key": "m-keypoints", "method": "m", "obs": "keypoints", "seed": seed, "partial": False,
             "checkpoints": [{"score": s, "sem": e, "success_rate": 0.5} if s is not None else {"score": None}
                             for s, e in cks]}
            for seed, cks in enumerate(checkpoints)]
    row = module.summarise(runs, last=3)["m-keypoints"]
    assert [r["max_sem"] for r in row["per_run"]] == [0.03, 0.02]
    best = [0.8, 0.9]
    means = [statistics.fmean([0.5, 0.8, 0.6]), statistics.fmean([0.9, 0.4])]
    assert row["max"] == pytest.approx(statistics.fmean(best), abs=1e-4)
    assert row["mean_sd"] == pytest.approx(statistics.stdev(means), abs=1e-4)
    assert row["partial"]  # the second run has 2 scored checkpoints of the 3 asked


def test_recorded_standard_errors_are_possible_for_scores_in_the_unit_interval():
    """A score is a mean of per-episode rewards in [0, 1]; their sample standard deviation is at most
    0.5 * sqrt(n / (n - 1)), so the standard error of n episodes at most 0.5 / sqrt(n - 1)."""
    comparison = load_results("comparison")
    n = comparison["episodes"]
    bound = 0.5 / (n - 1) ** 0.5
    runs = [r for row in comparison["table"].values() for r in row["per_run"]]
    assert all("max_sem" in r for r in runs)
    for r in runs:
        # a score s of rewards in [0, 1] also bounds the spread: variance <= s (1 - s)
        assert 0 <= r["max_sem"] <= min(bound, (r["max"] * (1 - r["max"]) * n / (n - 1)) ** 0.5 / n ** 0.5) + 1e-3


def test_comparison_puts_checkpoints_of_one_recipe_and_several_seeds_in_one_row(tmp_path):
    """benchmarks/comparison.py --checkpoints: files whose commands differ only in --seed and --out
    are the seeds of one row; another option (here --lr, or the control) makes another row, and so does
    the same command made with another config (a recipe that changed since)."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "comparison.py"
    spec = importlib.util.spec_from_file_location("comparison_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = "dplearn train --policy regression --obs keypoints --budget full"
    made = {"a": (f"{base} --seed 0 --out a.pt", "position"), "b": (f"{base} --seed 1 --out b.pt", "position"),
            "c": (f"{base} --seed 0 --lr 0.001 --out c.pt", "position"),
            "d": (f"{base} --seed 2 --control velocity --out d.pt", "velocity"),
            "e": (f"{base} --seed 5 --out e.pt", "position"), "f": (f"{base} --seed 1 --out f.pt", "position")}
    files = []
    for name, (command, control) in made.items():
        policy = make_policy("regression", obs_dim=20, obs_type="keypoints", hidden=16 if name == "f" else 8,
                             n_layers=1, control=control)
        files.append(str(policy.save(tmp_path / f"{name}.pt", meta={"command": command, "train_steps": 1})))
    keys = {Path(r["checkpoints"][0]["path"]).stem: r["key"] for r in module.checkpoint_runs(files)}
    assert keys == {"a": "a", "b": "a", "c": "c", "d": "d", "e": "a", "f": "f"}


def test_comparison_reuses_a_score_only_for_the_same_file_scored_alike(tmp_path):
    """benchmarks/comparison.py --reuse: a checkpoint takes a recorded score only when an earlier session
    scored a file with the same bytes (SHA-256, checked against hashlib) with the same episodes, test
    starts, device kind and torch; the latest such session wins and the record says when it was measured."""
    import hashlib
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "comparison.py"
    spec = importlib.util.spec_from_file_location("comparison_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"weights of a" * 100_000)  # more than one 1 MiB block
    b.write_bytes(b"weights of b")
    sha_a, sha_b = (module.file_sha256(f) for f in (a, b))
    assert sha_a == hashlib.sha256(a.read_bytes()).hexdigest() and sha_b != sha_a

    def session(started, score, **kw):
        alike = {"episodes": 50, "eval_seed": 100_000, "device": "cpu", "torch": "2.13.0+cpu"} | kw
        ck = {"sha256": sha_a, "score": score, "sem": 0.04, "success_rate": 0.2, "seconds": 9, "command": "x"}
        return alike | {"started": started, "runs": [{"checkpoints": [ck]}]}

    sessions = [session("2026-01-01", 0.5), session("2026-02-01", 0.6),  # the later one wins
                session("2026-03-01", 0.1, episodes=10), session("2026-04-01", 0.2, eval_seed=7),
                session("2026-05-01", 0.3, device="cuda"), session("2026-06-01", 0.4, torch="2.2.0")]
    runs = [{"checkpoints": [{"path": "a.pt", "sha256": sha_a}, {"path": "b.pt", "sha256": sha_b}]}]
    n = module.reuse_scores(runs, sessions, episodes=50, eval_seed=100_000, device="cpu", torch_version="2.13.0+cpu")
    got_a, got_b = runs[0]["checkpoints"]
    assert n == 1 and "score" not in got_b
    assert (got_a["score"], got_a["sem"], got_a["scored_in"]) == (0.6, 0.04, "2026-02-01")
    runs = [{"checkpoints": [{"path": "a.pt", "sha256": sha_a}]}]
    assert module.reuse_scores(runs, sessions, episodes=50, eval_seed=100_000, device="cuda:0",
                               torch_version="2.13.0+cpu") == 1
    assert runs[0]["checkpoints"][0]["score"] == 0.3  # cuda:0 is the kind cuda


def _comparison_module():
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "comparison.py"
    spec = importlib.util.spec_from_file_location("comparison_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_comparison_reuses_a_cpu_score_only_with_the_thread_count_this_session_keeps():
    """With a thread count fixed (``--threads`` or ``DPLEARN_THREADS``), a CPU record is reused only if it
    was made with as many threads; a record without its thread count is not; on a GPU threads do not count,
    and with no fixed count any record is taken (the latest)."""
    module = _comparison_module()
    alike = {"episodes": 50, "eval_seed": 100_000, "torch": "2.13.0+cpu"}

    def session(started, score, device="cpu", **ck):
        return alike | {"device": device, "started": started,
                        "runs": [{"checkpoints": [{"sha256": "s", "score": score, **ck}]}]}

    sessions = [session("1", 0.1, threads=1), session("2", 0.2, threads=2), session("3", 0.3),
                session("4", 0.4, device="cuda", threads=16)]

    def reused(device, threads):
        runs = [{"checkpoints": [{"sha256": "s"}]}]
        module.reuse_scores(runs, sessions, episodes=50, eval_seed=100_000, device=device,
                            torch_version="2.13.0+cpu", threads=threads)
        return runs[0]["checkpoints"][0].get("score"), runs[0]["checkpoints"][0].get("threads")

    assert reused("cpu", 1) == (0.1, 1)
    assert reused("cpu", 2) == (0.2, 2)
    assert reused("cpu", 4) == (None, None)
    assert reused("cpu", None) == (0.3, None)  # the latest CPU record, whatever its threads
    assert reused("cuda", 1) == (0.4, 16)


@pytest.mark.parametrize("env, asked, share, expected", [
    (None, None, 8, 8), (None, 3, 8, 3), ("2", 3, 8, 2), ("1", None, 8, 1), (None, None, 0, 1)])
def test_child_processes_follow_the_projects_thread_rule(monkeypatch, env, asked, share, expected):
    """DPLEARN_THREADS always wins (dplearn.compute's rule), then --threads, then the cores' share."""
    gs = _comparison_module().gs
    if env is None:
        monkeypatch.delenv("DPLEARN_THREADS", raising=False)
    else:
        monkeypatch.setenv("DPLEARN_THREADS", env)
    assert gs.process_threads(asked, share) == expected
    monkeypatch.setenv("DPLEARN_THREADS", "zero")
    with pytest.raises(SystemExit, match="DPLEARN_THREADS"):
        gs.process_threads(asked, share)


def test_the_transformer_sampler_sweep_is_the_shipped_file_and_agrees_with_the_table():
    """data/ablations-transformer.json sweeps the shipped transformer (its training command is the file's
    own), and its DDPM-100 point is the same evaluation as the comparison table's row for that file
    (50 test starts, one thread, the policy's own sampler), made by another script on another day."""
    import torch

    from dplearn.shipped import shipped_path

    sweep = load_results("ablations-transformer")
    meta = torch.load(shipped_path("checkpoints", "diffusion-transformer-keypoints.pt"), map_location="cpu",
                      weights_only=True)["meta"]
    assert sweep["checkpoint"] == "checkpoints/diffusion-transformer-keypoints.pt"
    assert sweep["trained_by"] == meta["command"] and sweep["threads"] == 1
    comparison = load_results("comparison")
    run = recorded_run(comparison, "diffusion-transformer-keypoints", meta)
    assert run is not None and run["eval_threads"] == [1] and comparison["episodes"] == sweep["episodes"]
    ddpm = [r for r in sweep["sweeps"]["samplers"] if r["sampler"] == f"ddpm-{sweep['policy']['inference_steps']}"]
    assert sweep["policy"]["sampler"] == "ddpm" and len(ddpm) == 1
    assert ddpm[0]["score"] == pytest.approx(run["mean"], abs=6e-4)
    assert ddpm[0]["success_rate"] == pytest.approx(run["success_rate"], abs=1e-9)
