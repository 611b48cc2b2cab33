"""Policies: the losses and inference procedures against independent computations, the shared
interface (horizons, normalisation, checkpoints) and clear errors on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from dplearn.data import Normalizer
from dplearn.policies import (
    POLICIES,
    CategoricalConfig,
    IBCConfig,
    LSTMGMMConfig,
    MixtureConfig,
    Policy,
    PolicyConfig,
    RegressionConfig,
    load_policy,
    make_config,
    make_policy,
)
from dplearn.policies.categorical import bin_centers, discretize
from dplearn.policies.ibc import dfo_minimize, dfo_step, info_nce, langevin_minimize
from dplearn.policies.mixture import gmm_log_prob
from dplearn.policy_training import fit_policy
from dplearn.training import TrainConfig

SMALL = {"obs_dim": 3, "action_dim": 2, "hidden": 16, "n_layers": 2}
HORIZONS = {  # (T_o, T_p, T_a) each policy is exercised with
    "regression": (2, 6, 3), "categorical": (2, 4, 2), "mixture": (3, 5, 2),
    "lstm-gmm": (4, 4, 1), "ibc": (2, 3, 2), "diffusion-cnn": (2, 8, 4),
    "diffusion-transformer": (2, 6, 3),
}


def small_policy(name: str, **extra) -> Policy:
    t_o, t_p, t_a = HORIZONS[name]
    kw = dict(SMALL, obs_horizon=t_o, pred_horizon=t_p, action_horizon=t_a)
    if name == "ibc":
        kw.update(n_negatives=8, dfo_samples=32)
    if name == "diffusion-cnn":  # no MLP: a small U-Net, few diffusion steps, the state observation
        del kw["hidden"], kw["n_layers"]
        kw.update(down_dims=(8, 16), step_embed_dim=8, num_diffusion_steps=10, inference_steps=10,
                  obs_type="state")
    if name == "diffusion-transformer":  # a two-layer transformer, few diffusion steps
        del kw["hidden"], kw["n_layers"]
        kw.update(n_layer=2, n_head=2, n_emb=16, num_diffusion_steps=10, inference_steps=10,
                  obs_type="state")
    kw.update(extra)
    return make_policy(name, **kw)


def random_normalizers(rng: np.random.Generator, obs_dim: int, action_dim: int):
    lo_o = rng.uniform(-5, 0, obs_dim)
    lo_a = rng.uniform(0, 100, action_dim)
    return (Normalizer(lo_o, lo_o + rng.uniform(1, 10, obs_dim)),
            Normalizer(lo_a, lo_a + rng.uniform(10, 500, action_dim)))


# ---------------------------------------------------------------------------------------------
# regression: the MSE minimiser is the conditional mean
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p_left", [0.5, 0.25])
def test_regression_predicts_the_mean_of_a_bimodal_target(p_left):
    """For a ∈ {m_left, m_right} with probabilities (p, 1 − p) independent of o, argmin_c E|a − c|² is
    the mean p m_left + (1 − p) m_right: the modes are averaged."""
    rng = np.random.default_rng(0)
    m_left, m_right = np.array([-1.0, 0.5]), np.array([1.0, 0.5])
    n = 4096
    obs = rng.uniform(-1, 1, (n, 1, 2)).astype(np.float32)
    left = rng.random(n) < p_left
    action = np.where(left[:, None], m_left, m_right)[:, None, :].astype(np.float32)
    torch.manual_seed(0)
    policy = make_policy("regression", obs_dim=2, obs_horizon=1, pred_horizon=1, hidden=32, n_layers=2)
    trained, _ = fit_policy(policy, (obs, action), TrainConfig(steps=400, batch_size=256, lr=3e-3, progress=False,
                                                               warmup_steps=20),
                            normalizers=(Normalizer([-1, -1], [1, 1]), Normalizer([-1, -1], [1, 1])))
    expected = left.mean() * m_left + (1 - left.mean()) * m_right  # the analytic minimiser on this sample
    pred = trained.act(rng.uniform(-1, 1, (64, 1, 2)))[:, 0]
    assert np.allclose(pred.mean(0), expected, atol=0.06), (pred.mean(0), expected)
    assert np.abs(pred - expected).max() < 0.2  # the mean everywhere: never one of the modes
    assert np.abs(pred[:, 0] - m_left[0]).min() > 0.4 and np.abs(pred[:, 0] - m_right[0]).min() > 0.4


# ---------------------------------------------------------------------------------------------
# categorical: bins and decoding
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bins", [2, 7, 64])
def test_bins_partition_the_interval(n_bins):
    x = torch.as_tensor(np.r_[-1.0, np.random.default_rng(n_bins).uniform(-1, 1, 10_000), 1.0])
    edges = np.linspace(-1, 1, n_bins + 1)
    expected = np.clip(np.searchsorted(edges, x.numpy(), side="right") - 1, 0, n_bins - 1)
    assert np.array_equal(discretize(x, n_bins).numpy(), expected)
    assert np.allclose(bin_centers(n_bins).numpy(), (edges[:-1] + edges[1:]) / 2, atol=1e-6)
    # decoding to the centre of the right bin errs by at most half a bin, 1/K
    err = (bin_centers(n_bins).double()[discretize(x, n_bins)] - x).abs().max().item()
    assert err <= 1.0 / n_bins + 1e-6


def test_categorical_loss_is_the_cross_entropy_of_the_demonstrated_bins():
    rng = np.random.default_rng(1)
    policy = small_policy("categorical", n_bins=9)
    obs_n, act_n = random_normalizers(rng, 3, 2)
    policy.set_normalizers(obs_n, act_n)
    obs = rng.uniform(-5, 5, (7, 2, 3)).astype(np.float32)
    act = act_n.unnormalize(rng.uniform(-1, 1, (7, 4, 2))).astype(np.float32)
    loss = policy.loss({"obs": obs, "action": act}).item()
    with torch.no_grad():
        logits = policy.logits(torch.as_tensor(obs_n.normalize(obs), dtype=torch.float32)).double().numpy()
    y = act_n.normalize(act.astype(np.float64))
    bins = np.clip(np.floor((y + 1) / 2 * 9), 0, 8).astype(int)
    logp = logits - logsumexp(logits, axis=-1, keepdims=True)
    expected = -np.take_along_axis(logp, bins[..., None], -1).mean()
    assert loss == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# mixtures: the log-likelihood against scipy
# ---------------------------------------------------------------------------------------------
def _scipy_gmm_logpdf(logits, means, stds, x):
    """float64 log Σ_k π_k N(x; μ_k, diag σ_k²) with scipy's multivariate normal, one row at a time."""
    out = []
    for lg, mu, sd, xi in zip(logits, means, stds, x, strict=True):
        log_w = lg - logsumexp(lg)
        comps = [log_w[k] + stats.multivariate_normal(mu[k], np.diag(sd[k] ** 2)).logpdf(xi)
                 for k in range(len(lg))]
        out.append(logsumexp(comps))
    return np.array(out)


def test_gmm_log_prob_matches_scipy():
    rng = np.random.default_rng(2)
    B, K, D = 6, 4, 3
    logits, means = rng.normal(size=(B, K)), rng.normal(size=(B, K, D))
    stds, x = rng.uniform(0.05, 2.0, (B, K, D)), rng.normal(size=(B, D))
    ours = gmm_log_prob(*(torch.as_tensor(a) for a in (logits, means, stds, x))).numpy()
    assert np.allclose(ours, _scipy_gmm_logpdf(logits, means, stds, x), rtol=1e-10, atol=1e-10)


def test_mixture_policy_loss_is_the_negative_log_likelihood():
    rng = np.random.default_rng(3)
    policy = small_policy("mixture", n_components=3)
    obs_n, act_n = random_normalizers(rng, 3, 2)
    policy.set_normalizers(obs_n, act_n)
    obs = rng.uniform(-5, 5, (5, 3, 3)).astype(np.float32)
    act = act_n.unnormalize(rng.uniform(-1, 1, (5, 5, 2))).astype(np.float32)
    loss = policy.loss((obs, act)).item()
    with torch.no_grad():
        params = policy.mixture(torch.as_tensor(obs_n.normalize(obs), dtype=torch.float32))
    logits, means, stds = (p.double().numpy() for p in params)
    y = act_n.normalize(act.astype(np.float64)).reshape(5, -1)  # the flattened chunk (T_p · action_dim)
    assert loss == pytest.approx(-_scipy_gmm_logpdf(logits, means, stds, y).mean(), rel=1e-4)


def test_lstm_gmm_loss_sums_per_step_log_likelihoods():
    rng = np.random.default_rng(4)
    policy = small_policy("lstm-gmm", n_components=2)
    obs = rng.normal(size=(3, 4, 3)).astype(np.float32)
    act = rng.uniform(-1, 1, (3, 4, 2)).astype(np.float32)
    loss = policy.loss({"obs": obs, "action": act}).item()
    with torch.no_grad():
        logits, means, stds = (p.double().numpy() for p in policy.mixture(torch.as_tensor(obs)))
    per_step = np.stack([_scipy_gmm_logpdf(logits[:, t], means[:, t], stds[:, t], act[:, t].astype(np.float64))
                         for t in range(4)], axis=1)
    assert loss == pytest.approx(-per_step.sum(1).mean(), rel=1e-4)


def test_lstm_gmm_reads_the_history_causally():
    """The action of step i depends on o_1..o_i only: changing the last observation leaves earlier steps."""
    policy = small_policy("lstm-gmm")
    obs = torch.randn(2, 4, 3)
    changed = obs.clone()
    changed[:, -1] += 1.0
    with torch.no_grad():
        a, b = policy.mixture(obs), policy.mixture(changed)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x[:, :-1], y[:, :-1]) and not torch.equal(x[:, -1], y[:, -1])


# ---------------------------------------------------------------------------------------------
# IBC: InfoNCE and derivative-free optimisation
# ---------------------------------------------------------------------------------------------
def test_info_nce_is_cross_entropy_over_positive_and_negatives():
    rng = np.random.default_rng(5)
    e_pos, e_neg = rng.normal(size=7) * 3, rng.normal(size=(7, 12)) * 3
    for tau in (1.0, 0.3):
        logits = -np.concatenate([e_pos[:, None], e_neg], axis=1) / tau
        expected = np.mean(-(logits[:, 0] - logsumexp(logits, axis=1)))
        ours = info_nce(torch.as_tensor(e_pos), torch.as_tensor(e_neg), tau).item()
        assert ours == pytest.approx(expected, rel=1e-12)


def test_ibc_loss_uses_uniform_counter_examples_in_the_box():
    """Re-draw the same counter-examples (same seed) and compute InfoNCE by hand in float64."""
    rng = np.random.default_rng(6)
    policy = small_policy("ibc", n_negatives=16, temperature=0.5)
    obs = rng.normal(size=(4, 2, 3)).astype(np.float32)
    act = rng.uniform(-1, 1, (4, 3, 2)).astype(np.float32)
    torch.manual_seed(123)
    loss = policy.loss((obs, act)).item()
    torch.manual_seed(123)
    negatives = -1 + 2 * torch.rand(4, 16, 6)
    assert negatives.min() >= -1 and negatives.max() <= 1
    with torch.no_grad():
        cand = torch.cat([torch.as_tensor(act).flatten(1)[:, None], negatives], 1)
        energies = policy.energy(torch.as_tensor(obs), cand).double().numpy()
    logits = -energies / 0.5
    expected = np.mean(logsumexp(logits, axis=1) - logits[:, 0])
    assert loss == pytest.approx(expected, rel=1e-5)


def test_ibc_executed_energy_reads_the_executed_actions_only():
    """energy_actions="executed" (the Diffusion Policy paper's IBC): InfoNCE by hand in float64 on
    a_t..a_{t+T_a-1} alone, with counter-examples of that size; the past action does not matter."""
    rng = np.random.default_rng(16)
    policy = small_policy("ibc", n_negatives=16, temperature=0.5, energy_actions="executed")
    assert policy.action_size == 2 * 2  # T_a = 2 actions of 2 numbers, not T_p = 3
    obs = rng.normal(size=(4, 2, 3)).astype(np.float32)
    act = rng.uniform(-1, 1, (4, 3, 2)).astype(np.float32)
    other_past = act.copy()
    other_past[:, 0] = rng.uniform(-1, 1, (4, 2))
    losses = []
    for a in (act, other_past):
        torch.manual_seed(123)
        losses.append(policy.loss((obs, a)).item())
    assert losses[0] == losses[1]
    torch.manual_seed(123)
    negatives = -1 + 2 * torch.rand(4, 16, 4)
    with torch.no_grad():
        cand = torch.cat([torch.as_tensor(act[:, 1:3]).flatten(1)[:, None], negatives], 1)
        energies = policy.energy(torch.as_tensor(obs), cand).double().numpy()
    logits = -energies / 0.5
    expected = np.mean(logsumexp(logits, axis=1) - logits[:, 0])
    assert losses[0] == pytest.approx(expected, rel=1e-5)


def test_ibc_executed_sample_fills_the_chunk_around_the_minimiser():
    """The chunk's executed slots are DFO's minimiser of the energy on T_a actions (the same search
    run by hand with the same generator) and the past slot repeats a_t; a bad energy_actions is named."""
    policy = small_policy("ibc", energy_actions="executed", dfo_samples=64)
    obs = torch.as_tensor(np.random.default_rng(17).normal(size=(5, 2, 3)), dtype=torch.float32)
    chunk = policy.sample(obs, torch.Generator().manual_seed(0))
    assert chunk.shape == (5, 3, 2)
    assert torch.equal(chunk[:, 0], chunk[:, 1])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        best = dfo_minimize(lambda a: policy.energy(obs, a), 5, 4, 64, policy.config.dfo_iterations,
                            policy.config.dfo_noise, policy.config.dfo_shrink, policy.config.temperature,
                            generator=g)
    assert torch.equal(chunk[:, 1:].flatten(1), best)
    with pytest.raises(ValueError, match="energy_actions"):
        small_policy("ibc", energy_actions="window")


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_dfo_finds_the_minimum_of_a_quadratic_energy(dim):
    rng = np.random.default_rng(7 + dim)
    target = torch.as_tensor(rng.uniform(-0.8, 0.8, (3, dim)), dtype=torch.float32)
    scale = torch.as_tensor(rng.uniform(1, 4, dim), dtype=torch.float32)

    def energy(a):  # (B, M, D) -> (B, M), minimum 0 at `target`
        return 50.0 * (scale * (a - target[:, None]) ** 2).sum(-1)

    g = torch.Generator().manual_seed(0)
    best = dfo_minimize(energy, 3, dim, n_samples=2048, iterations=6, noise_scale=0.2, shrink=0.5, generator=g)
    assert best.shape == (3, dim)
    assert (best - target).abs().max().item() < 0.05 * dim ** 0.5
    # Langevin from a wide start also finds it
    a = langevin_minimize(energy, torch.rand(3, 8, dim, generator=g) * 2 - 1, steps=200, step_size=2e-3,
                          noise=0.01, generator=g)
    assert (a - target[:, None]).abs().max().item() < 0.05


def test_dfo_step_resamples_in_proportion_to_the_boltzmann_weights():
    samples = torch.tensor([[[-0.5], [0.0], [0.5]]])  # (1, 3, 1)
    energies = torch.tensor([0.0, math.log(2.0), math.log(4.0)])  # weights ∝ 4 : 2 : 1

    def energy(a):
        return energies[((a[..., 0] + 0.5) * 2).round().long()]

    g = torch.Generator().manual_seed(0)
    out = torch.cat([dfo_step(energy, samples.expand(1, 3, 1).contiguous(), 0.0, generator=g)
                     for _ in range(4000)], dim=1)
    freq = np.array([(out == v).float().mean().item() for v in (-0.5, 0.0, 0.5)])
    assert np.allclose(freq, [4 / 7, 2 / 7, 1 / 7], atol=0.02)


# ---------------------------------------------------------------------------------------------
# the interface: horizons, normalisation, determinism
# ---------------------------------------------------------------------------------------------
def test_act_executes_the_actions_from_the_current_step_in_raw_units():
    """Chunk index j holds a_{t-T_o+1+j}: act returns j = T_o-1 .. T_o-2+T_a, unnormalised."""
    rng = np.random.default_rng(8)
    t_o, t_p, t_a = 3, 7, 4
    policy = make_policy("regression", obs_dim=3, obs_horizon=t_o, pred_horizon=t_p, action_horizon=t_a,
                         hidden=8, n_layers=1)
    obs_n, act_n = random_normalizers(rng, 3, 2)
    policy.set_normalizers(obs_n, act_n)
    chunk = rng.uniform(-1, 1, (t_p, 2))
    with torch.no_grad():  # make the network output a known normalised chunk whatever the input
        policy.net[-1].weight.zero_()
        policy.net[-1].bias.copy_(torch.as_tensor(chunk.reshape(-1)))
    out = policy.act(rng.normal(size=(t_o, 3)))
    lo, hi = act_n.data_min.numpy(), act_n.data_max.numpy()
    raw = lo + (chunk + 1) / 2 * (hi - lo)
    assert out.shape == (t_a, 2)
    assert np.allclose(out, raw[t_o - 1:t_o - 1 + t_a], rtol=1e-5)
    batch = policy(rng.normal(size=(5, t_o, 3)))  # the evaluation protocol: policy(batch) -> (B, T_a, 2)
    assert batch.shape == (5, t_a, 2) and np.allclose(batch, raw[None, t_o - 1:t_o - 1 + t_a], rtol=1e-5)
    assert policy.obs_horizon == t_o


#: The policies that draw at inference (a mixture component, a DFO population, diffusion noise);
#: the others are functions of the observation.
SAMPLING = {"mixture", "lstm-gmm", "ibc", "diffusion-cnn", "diffusion-transformer"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_act_is_reproducible_with_a_generator(name):
    """The same generator seed gives the same actions, whatever the global RNG did in between; and,
    so that this is not trivially true, a sampling policy gives other actions for another seed
    (it really draws from the generator) while a deterministic one ignores the generator."""
    torch.manual_seed(0)
    policy = small_policy(name)
    obs = torch.randn(16, policy.config.obs_horizon, 3)
    a = policy.act(obs, torch.Generator().manual_seed(3))
    torch.manual_seed(123)
    b = policy.act(obs, torch.Generator().manual_seed(3))
    assert np.array_equal(a, b)
    assert a.shape == (16, policy.config.action_horizon, 2)
    other = policy.act(obs, torch.Generator().manual_seed(4))
    if name in SAMPLING:
        assert not np.array_equal(a, other)
    else:
        assert np.array_equal(a, other) and np.array_equal(a, policy.act(obs))


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_round_trips_bit_exactly(name, tmp_path):
    rng = np.random.default_rng(9)
    policy = small_policy(name)
    policy.set_normalizers(*random_normalizers(rng, 3, 2))
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the initialisation
    path = policy.save(tmp_path / f"{name}.pt", meta={"note": "test"})
    loaded = load_policy(path)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    assert loaded.meta == {"note": "test"}
    own, other = policy.state_dict(), loaded.state_dict()
    assert own.keys() == other.keys()
    assert all(torch.equal(own[k], other[k]) for k in own)
    for attr in ("obs_normalizer", "action_normalizer"):
        a, b = getattr(policy, attr), getattr(loaded, attr)
        assert torch.equal(a.data_min, b.data_min) and torch.equal(a.data_max, b.data_max)
    obs = rng.normal(size=(3, policy.config.obs_horizon, 3)) * 4
    assert np.array_equal(policy.act(obs, torch.Generator().manual_seed(1)),
                          loaded.act(obs, torch.Generator().manual_seed(1)))
    # the class method of the right class loads it too; the wrong class refuses
    assert type(type(policy).load(path)) is type(policy)
    other_name = next(n for n in POLICIES if n != name)
    with pytest.raises(ValueError, match=f"holds a {name!r} policy"):
        POLICIES[other_name].load(path)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    policy = small_policy("regression")
    policy.save(tmp_path / "a.pt")
    policy.save(tmp_path / "a.pt")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


def test_mismatched_checkpoint_shapes_give_a_clear_error(tmp_path):
    policy = small_policy("mixture")
    state = policy.checkpoint()
    state["config"]["hidden"] = 32  # the config now disagrees with the stored weights
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"shapes do not match.*trunk\.0\.weight"):
        load_policy(tmp_path / "bad.pt")
    state = policy.checkpoint()
    del state["state_dict"]["head.proj.bias"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="missing"):
        load_policy(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a dplearn policy checkpoint"):
        load_policy(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="absent.pt' is not a readable dplearn policy checkpoint: no such file"):
        load_policy(tmp_path / "absent.pt")


# ---------------------------------------------------------------------------------------------
# configs and registry
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, field", [
    (RegressionConfig, {"obs_dim": 0}, "obs_dim"),
    (RegressionConfig, {"hidden": 2.5}, "hidden"),
    (RegressionConfig, {"obs_horizon": 3, "pred_horizon": 2}, "pred_horizon"),
    (RegressionConfig, {"action_horizon": True}, "action_horizon"),
    (CategoricalConfig, {"n_bins": 1}, "n_bins"),
    (CategoricalConfig, {"decode": "mode"}, "decode"),
    (MixtureConfig, {"n_components": 0}, "n_components"),
    (MixtureConfig, {"min_std": 0.0}, "min_std"),
    (MixtureConfig, {"low_noise_eval": "yes"}, "low_noise_eval"),
    (LSTMGMMConfig, {"obs_horizon": 4, "pred_horizon": 6}, "pred_horizon must equal obs_horizon"),
    (IBCConfig, {"n_negatives": 0}, "n_negatives"),
    (IBCConfig, {"temperature": -1.0}, "temperature"),
    (IBCConfig, {"dfo_shrink": 1.5}, "dfo_shrink"),
    (IBCConfig, {"inference": "mcmc"}, "inference"),
])
def test_bad_configs_raise_value_errors_naming_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_registry_builds_every_policy_and_rejects_unknown_names():
    assert set(POLICIES) == {"regression", "categorical", "mixture", "lstm-gmm", "ibc", "diffusion-cnn",
                             "diffusion-transformer"}
    for name, cls in POLICIES.items():
        policy = make_policy(name)
        assert isinstance(policy, cls) and isinstance(policy.config, PolicyConfig)
    with pytest.raises(ValueError, match="registered policies"):
        make_policy("bet")
    with pytest.raises(ValueError, match="no fields"):
        make_policy("regression", n_bins=4)
    with pytest.raises(ValueError, match="must be a CategoricalConfig"):
        make_policy("categorical", RegressionConfig())
    assert make_config("mixture", {"n_components": 3}, hidden=8).hidden == 8


def test_bad_inputs_name_the_argument():
    policy = small_policy("regression")
    with pytest.raises(ValueError, match="obs_history must have shape"):
        policy.act(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="batch action must have shape"):
        policy.loss({"obs": np.zeros((2, 2, 3)), "action": np.zeros((2, 5, 2))})
    with pytest.raises(ValueError, match="keys 'obs' and 'action'"):
        policy.loss({"observation": np.zeros((2, 2, 3))})
    with pytest.raises(ValueError, match="obs_normalizer has dimension 4"):
        policy.set_normalizers(Normalizer(np.zeros(4), np.ones(4)))


def test_dict_observations_get_one_normaliser_per_key_and_round_trip(tmp_path):
    """Observations may be dicts of named arrays: keys with a normaliser are mapped to [-1, 1], the rest
    (e.g. images already in [0, 1]) pass through, and the normalisers travel in the checkpoint."""
    policy = small_policy("regression")
    rng = np.random.default_rng(3)
    norms = {"agent_pos": Normalizer([0.0, 0.0], [512.0, 512.0]), "depth": Normalizer([1.0], [3.0])}
    policy.set_normalizers(norms)
    obs = {"agent_pos": torch.as_tensor(rng.uniform(0, 512, (4, 2, 2))), "image": torch.rand(4, 2, 3, 8, 8),
           "depth": torch.as_tensor(rng.uniform(1, 3, (4, 2, 1)))}
    out = policy.normalize_obs(obs)
    torch.testing.assert_close(out["agent_pos"], obs["agent_pos"] / 256 - 1)
    torch.testing.assert_close(out["depth"], obs["depth"] - 2)
    assert out["image"] is obs["image"]
    assert {"obs_normalizer.agent_pos.data_min", "obs_normalizer.depth.data_max"} <= set(policy.state_dict())
    loaded = load_policy(policy.save(tmp_path / "dict.pt"))
    torch.testing.assert_close(loaded.normalize_obs(obs)["agent_pos"], out["agent_pos"])
    with pytest.raises(ValueError, match="reads dict observations"):
        policy.normalize_obs(torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match="must map observation keys"):
        policy.set_normalizers({"agent_pos": "not a normaliser"})
