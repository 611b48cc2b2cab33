"""Demo storage, sequence windows with edge padding, episode splits and the min-max normaliser."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dplearn.data import (
    Demos,
    Normalizer,
    SequenceDataset,
    load_demos,
    load_pusht_demos,
    save_demos,
    split_episodes,
    window_indices,
)
from dplearn.data.demos import shipped_demos_path


def make_demos(lengths=(7, 3, 12), seed=0) -> Demos:
    rng = np.random.default_rng(seed)
    episodes = [(rng.uniform(0, 512, (n, 5)), rng.uniform(0, 512, (n, 2))) for n in lengths]
    return Demos.from_episodes(episodes, meta={"how": "test", "lengths": list(lengths)})


# ---- storage --------------------------------------------------------------------------------
def test_episode_ends_layout_and_episode_access():
    d = make_demos((7, 3, 12))
    assert d.episode_ends.tolist() == [7, 10, 22]
    assert d.episode_ends.dtype == np.int64 and d.state.dtype == np.float32
    assert d.n_episodes == 3 and d.n_steps == 22
    assert d.episode_lengths.tolist() == [7, 3, 12]
    s, a = d.episode(1)
    np.testing.assert_array_equal(s, d.state[7:10])
    np.testing.assert_array_equal(a, d.action[7:10])
    assert [e[0].shape[0] for e in d.episodes()] == [7, 3, 12]
    np.testing.assert_array_equal(d.episode(-1)[0], d.state[10:])
    with pytest.raises(ValueError, match="episode index"):
        d.episode(3)


def test_save_load_round_trip_is_exact(tmp_path):
    d = make_demos()
    path = save_demos(tmp_path / "sub" / "demos.npz", d)
    assert path.exists()
    assert not [p for p in path.parent.iterdir() if p.name != "demos.npz"], "temp file left behind"
    e = load_demos(path)
    np.testing.assert_array_equal(e.state, d.state)
    np.testing.assert_array_equal(e.action, d.action)
    np.testing.assert_array_equal(e.episode_ends, d.episode_ends)
    assert e.meta == d.meta
    # the meta is stored as a JSON string, readable without dplearn
    with np.load(path) as f:
        assert json.loads(str(f["meta"])) == d.meta


def _write(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


def _good_arrays():
    d = make_demos()
    return dict(state=d.state, action=d.action, episode_ends=d.episode_ends,
                meta=np.array(json.dumps({"v": 1})))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("episode_ends"), "missing keys"),
        (lambda a: a.update(state=a["state"][:, 0]), r"state must have shape \(N, S\)"),
        (lambda a: a.update(action=a["action"][:-1]), "same length"),
        (lambda a: a.update(state=a["state"].astype(np.float64)), "float32"),
        (lambda a: a.update(episode_ends=np.array([7, 5, 22])), "strictly increasing"),
        (lambda a: a.update(episode_ends=np.array([7, 10, 21])), "must end at N=22"),
        (lambda a: a.update(episode_ends=a["episode_ends"].astype(np.float64)), "integer dtype"),
        (lambda a: a["state"].__setitem__((3, 2), np.nan), "NaN"),
        (lambda a: a.update(meta=np.array("{not json")), "not valid JSON"),
    ],
)
def test_load_refuses_corrupt_files(tmp_path, change, message):
    arrays = _good_arrays()
    change(arrays)
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_demos(path)
    with pytest.raises(ValueError, match=message):
        load_pusht_demos(path)


def test_state_width_comes_from_the_data_but_push_t_needs_five(tmp_path):
    arrays = _good_arrays()
    arrays["state"] = arrays["state"][:, :4]
    path = _write(tmp_path / "narrow.npz", **arrays)
    assert load_demos(path).state.shape[1] == 4
    with pytest.raises(ValueError, match=r"state \(N, 5\)"):
        load_pusht_demos(path)


def test_load_refuses_non_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        load_demos(path)
    with pytest.raises(ValueError, match="not a file"):
        load_demos(tmp_path / "missing.npz")


def test_save_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="demos must be a Demos"):
        save_demos(tmp_path / "x.npz", {"state": 1})
    with pytest.raises(ValueError, match=r"\.npz"):
        save_demos(tmp_path / "x.npy", make_demos())
    d = make_demos()
    d.meta["bad"] = object()
    with pytest.raises(ValueError, match="JSON"):
        save_demos(tmp_path / "x.npz", d)


def test_demos_constructor_validates():
    with pytest.raises(ValueError, match="episode_ends must end"):
        Demos(np.zeros((4, 5)), np.zeros((4, 2)), np.array([2, 3]))
    with pytest.raises(ValueError, match="episodes"):
        Demos.from_episodes([])


def test_shipped_demos_are_consistent():
    try:
        path = shipped_demos_path()
    except FileNotFoundError:
        pytest.skip("data/pusht_demos.npz not made yet")
    d = load_pusht_demos()
    assert d.n_episodes >= 10
    assert str(path).endswith("pusht_demos.npz")
    # actions are targets inside the workspace, states inside it too
    assert d.action.min() >= 0 and d.action.max() <= 512
    assert d.state[:, :4].min() >= 0 and d.state[:, :4].max() <= 512
    assert d.state[:, 4].min() >= 0 and d.state[:, 4].max() < 2 * np.pi + 1e-5


# ---- windows --------------------------------------------------------------------------------
def benchmark_indices(episode_ends, sequence_length, pad_before, pad_after):
    """Diffusion Policy's create_indices + sample_sequence, as (buffer start, end, sample start, end)
    rows turned into per-frame flat indices: an independent second algorithm."""
    pad_before = min(max(pad_before, 0), sequence_length - 1)
    pad_after = min(max(pad_after, 0), sequence_length - 1)
    rows = []
    for i in range(len(episode_ends)):
        start_idx = 0 if i == 0 else episode_ends[i - 1]
        length = episode_ends[i] - start_idx
        for idx in range(-pad_before, length - sequence_length + pad_after + 1):
            b0 = max(idx, 0) + start_idx
            b1 = min(idx + sequence_length, length) + start_idx
            s0 = b0 - (idx + start_idx)
            s1 = sequence_length - ((idx + sequence_length + start_idx) - b1)
            sample = list(range(b0, b1))
            window = [sample[0]] * s0 + sample + [sample[-1]] * (sequence_length - s1)
            rows.append(window)
    return np.array(rows, dtype=np.int64).reshape(-1, sequence_length)


@pytest.mark.parametrize("t_o, t_p, t_a", [(1, 1, 1), (2, 16, 8), (2, 4, 2), (3, 5, 3), (1, 8, 8)])
@pytest.mark.parametrize("lengths", [(7, 3, 12), (1, 20), (30,)])
def test_window_indices_match_the_benchmark_sampler(t_o, t_p, t_a, lengths):
    ends = np.cumsum(lengths)
    ours = window_indices(ends, t_p, pad_before=t_o - 1, pad_after=t_a - 1)
    np.testing.assert_array_equal(ours, benchmark_indices(ends, t_p, t_o - 1, t_a - 1))


def test_windows_by_hand():
    # one episode of length 4, T_o = 2, T_p = 3, T_a = 2: starts t = -1, 0, 1, 2
    ours = window_indices(np.array([4]), 3, pad_before=1, pad_after=1)
    assert ours.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def test_dataset_items_are_edge_padded_windows():
    d = make_demos((6, 9))
    ds = SequenceDataset(d, obs_horizon=2, pred_horizon=4, action_horizon=2)
    # episode 0 (length 6): t from -1 to 6 - 4 + 1 = 3 -> 5 windows; episode 1: -1 .. 6 -> 8
    assert len(ds) == 5 + 8
    first = ds[0]
    assert first["obs"].shape == (2, 5) and first["action"].shape == (4, 2)
    assert first["obs"].dtype == torch.float32
    s0, a0 = d.episode(0)
    torch.testing.assert_close(first["obs"], torch.tensor(s0[[0, 0]]))  # first frame repeated
    torch.testing.assert_close(first["action"], torch.tensor(a0[[0, 0, 1, 2]]))
    last = ds[4]  # t = 3: frames 3, 4, 5, 5
    torch.testing.assert_close(last["action"], torch.tensor(a0[[3, 4, 5, 5]]))
    torch.testing.assert_close(last["obs"], torch.tensor(s0[[3, 4]]))
    # windows never mix episodes
    s1, a1 = d.episode(1)
    torch.testing.assert_close(ds[5]["obs"], torch.tensor(s1[[0, 0]]))


def test_dataset_episode_subset_and_normalizer():
    d = make_demos((6, 9, 5))
    ds = SequenceDataset(d, 2, 4, 2, episodes=[2, 0])
    assert len(ds) == (5 - 4 + 1 + 1 + 1) + (6 - 4 + 1 + 1 + 1)
    s2, a2 = d.episode(2)
    torch.testing.assert_close(ds[0]["obs"][1], torch.tensor(s2[0]))
    norms = ds.get_normalizer()
    used = np.concatenate([d.episode(0)[1], d.episode(2)[1]])
    np.testing.assert_allclose(norms["action"].data_min, used.min(0))
    np.testing.assert_allclose(norms["action"].data_max, used.max(0))
    assert set(norms) == {"action", "obs"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(obs_horizon=0), "obs_horizon"),
        (dict(obs_horizon=5, pred_horizon=4), "pred_horizon"),
        (dict(obs_horizon=2, pred_horizon=4, action_horizon=4), "action_horizon"),
        (dict(obs_type="rgb"), "obs_type"),
    ],
)
def test_dataset_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequenceDataset(make_demos(), **kwargs)


# ---- splits ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n, frac", [(10, 0.1), (10, 0.25), (3, 0.01), (2, 0.9), (50, 0.0)])
def test_split_episodes_partitions(n, frac):
    train, val = split_episodes(n, frac, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))
    expected_val = 0 if frac == 0 else min(max(1, round(n * frac)), n - 1)
    assert len(val) == expected_val
    again = split_episodes(n, frac, seed=3)
    np.testing.assert_array_equal(again[1], val)


def test_split_episodes_rejects_bad_input():
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(10, 1.0)
    with pytest.raises(ValueError, match="n_episodes"):
        split_episodes(0, 0.1)


# ---- normaliser -----------------------------------------------------------------------------
def test_normalizer_maps_range_to_unit_box_by_hand():
    x = np.array([[0.0, 10.0, 3.0], [4.0, 30.0, 3.0], [2.0, 20.0, 3.0]])
    n = Normalizer.fit(x)
    # hand computation: dim 0 range [0, 4], dim 1 [10, 30], dim 2 constant -> 0
    expected = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(n.normalize(x), expected, atol=1e-12)
    np.testing.assert_allclose(n.unnormalize(expected), x, atol=1e-12)
    assert n.constant.tolist() == [False, False, True]


def test_normalizer_round_trip_numpy_and_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 50, 6)) * rng.uniform(0.1, 300, size=6) + rng.uniform(-100, 100, size=6)
    n = Normalizer.fit(x)
    y = n.normalize(x)
    assert y.min() >= -1 - 1e-12 and y.max() <= 1 + 1e-12
    np.testing.assert_allclose(y.reshape(-1, 6).min(0), -1, atol=1e-12)
    np.testing.assert_allclose(n.unnormalize(y), x, rtol=1e-12, atol=1e-9)
    t = torch.tensor(x, dtype=torch.float32)
    yt = n.normalize(t)
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-5)
    torch.testing.assert_close(n.unnormalize(yt), t, rtol=1e-5, atol=1e-3)


def test_normalizer_state_dict_round_trip(tmp_path):
    n = Normalizer.fit(np.random.default_rng(2).uniform(-5, 9, size=(100, 3)))
    torch.save(n.state_dict(), tmp_path / "n.pt")
    m = Normalizer.from_state_dict(torch.load(tmp_path / "n.pt"))
    x = np.random.default_rng(3).uniform(-5, 9, size=(10, 3))
    np.testing.assert_array_equal(m.normalize(x), n.normalize(x))


def test_normalizer_rejects_bad_input():
    n = Normalizer.fit(np.zeros((3, 2)) + [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(ValueError, match="last dimension D=2"):
        n.normalize(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="finite"):
        Normalizer.fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="data_max must be >= data_min"):
        Normalizer([1.0], [0.0])


# ---- observations rendered from stored states match the env's own observations ---------------
def test_dataset_observations_match_the_env():
    from dplearn.envs import PushTEnv

    envs = {t: PushTEnv(obs_type=t) for t in ("state", "keypoints", "pixels_agent_pos")}
    rng = np.random.default_rng(0)
    obs = {t: [e.reset(seed=4)[0]] for t, e in envs.items()}
    actions = []
    for _ in range(5):
        a = rng.uniform(100, 400, size=2)
        actions.append(a)
        for t, e in envs.items():
            obs[t].append(e.step(a)[0])
    states = np.array(obs["state"][:-1])
    demos = Demos.from_episodes([(states, np.array(actions))])
    # T_o = T_p = T_a = 1: window i is step i
    for obs_type in ("state", "keypoints", "pixels", "pixels_agent_pos"):
        ds = SequenceDataset(demos, 1, 1, 1, obs_type=obs_type)
        assert len(ds) == 5
        for i in range(5):
            item = ds[i]["obs"]
            if obs_type in ("state", "keypoints"):
                np.testing.assert_allclose(item[0].numpy(), obs[obs_type][i], rtol=1e-6, atol=1e-3)
            else:
                env_obs = obs["pixels_agent_pos"][i]
                image = item["image"][0]
                assert image.shape == (3, 96, 96)
                # float32 storage of the state moves edges by a hair: compare as images
                diff = np.abs(image.permute(1, 2, 0).numpy() * 255 - env_obs["pixels"])
                assert diff.mean() < 0.5 and diff.max() <= 255
                if obs_type == "pixels_agent_pos":
                    np.testing.assert_allclose(item["agent_pos"][0].numpy(), env_obs["agent_pos"],
                                               rtol=1e-6, atol=1e-3)
                else:
                    assert set(item) == {"image"}
    assert set(SequenceDataset(demos, 1, 1, 1, obs_type="pixels_agent_pos").get_normalizer()) == \
        {"action", "agent_pos"}


def test_loading_ranges_into_a_normaliser_updates_its_map():
    fitted = Normalizer.fit(np.random.default_rng(4).uniform(-5, 9, size=(100, 3)))
    other = Normalizer(-np.ones(3), np.ones(3))  # the identity, e.g. a freshly built policy's
    other.load_state_dict(fitted.state_dict())
    x = np.random.default_rng(5).uniform(-5, 9, size=(10, 3))
    np.testing.assert_array_equal(other.normalize(x), fitted.normalize(x))
    xt = torch.as_tensor(x, dtype=torch.float32)
    torch.testing.assert_close(other.normalize(xt), fitted.normalize(xt))
