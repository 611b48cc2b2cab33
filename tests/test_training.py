"""The training loop: the learning-rate schedule and EMA follow their formulas, training reaches a
known optimum, and a run resumed from a checkpoint continues bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dplearn.training import EMA, TrainConfig, load_checkpoint_model, train, warmup_cosine


# --------------------------------------------------------------------------- warmup + cosine
def test_warmup_cosine_key_points():
    w, n = 100, 1100
    assert warmup_cosine(0, w, n) == 0.0
    assert warmup_cosine(25, w, n) == pytest.approx(0.25)
    assert warmup_cosine(w, w, n) == pytest.approx(1.0)
    assert warmup_cosine(w + 250, w, n) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)  # a quarter in
    assert warmup_cosine(w + 500, w, n) == pytest.approx(0.5)                              # half way
    assert warmup_cosine(n, w, n) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(n + 10, w, n) == 0.0
    # without warmup it starts at 1
    assert warmup_cosine(0, 0, 10) == 1.0
    values = [warmup_cosine(s, w, n) for s in range(w, n + 1)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("args, name", [((-1, 0, 10), "step"), ((0, 11, 10), "warmup"),
                                        ((0, 0, 0), "total"), ((1.5, 0, 10), "step")])
def test_warmup_cosine_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        warmup_cosine(*args)


class _Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(1, dtype=torch.float64))


def test_train_applies_the_schedule_to_adamw():
    # loss = theta has gradient 1 every step: Adam's bias-corrected step is lr / (1 + eps) exactly,
    # so theta_n = -sum_k lr * lambda(k) / (1 + 1e-8): the schedule shows in the trajectory
    steps, warm, lr = 40, 10, 0.01
    model = _Constant()
    config = TrainConfig(steps=steps, batch_size=1, lr=lr, weight_decay=0.0, warmup_steps=warm,
                         grad_clip=None, progress=False)
    trajectory = []
    train(model, lambda m, batch: m.theta.sum(), torch.zeros(4, 1), config,
          callback=lambda step, loss: trajectory.append(model.theta.item()))
    expected = -np.cumsum([lr * warmup_cosine(k, warm, steps) / (1 + 1e-8) for k in range(steps)])
    np.testing.assert_allclose(trajectory, expected, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------- EMA
@pytest.mark.parametrize("power", [None, 0.75])
def test_ema_equals_exponential_average(power):
    decay = 0.9
    model = _Constant()
    ema = EMA(model, decay=decay, power=power)
    rng = np.random.default_rng(0)
    values = rng.normal(size=25)
    avg = 0.0  # the average starts at the model's initial weight, 0
    for k, v in enumerate(values):
        with torch.no_grad():
            model.theta.fill_(v)
        ema.update(model)
        d = decay if power is None else min(decay, 1 - (1 + k) ** (-power))
        avg = d * avg + (1 - d) * v
    assert ema.model.theta.item() == pytest.approx(avg, rel=1e-12, abs=1e-12)
    if power is None:  # closed form: sum_k (1-d) d^(n-1-k) v_k
        n = len(values)
        closed = sum((1 - decay) * decay ** (n - 1 - k) * v for k, v in enumerate(values))
        assert ema.model.theta.item() == pytest.approx(closed, rel=1e-12)
    else:  # the first update copies the weights (d_0 = 0)
        assert ema.decay_at(0) == 0.0


def test_ema_rejects_bad_arguments():
    with pytest.raises(ValueError, match="decay"):
        EMA(_Constant(), decay=1.0)
    with pytest.raises(ValueError, match="power"):
        EMA(_Constant(), decay=0.9, power=0)
    with pytest.raises(ValueError, match="model"):
        EMA("not a model")


# --------------------------------------------------------------------------- the loop on a known optimum
def _regression_problem(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    w_true = torch.tensor([[1.5], [-2.0], [0.5]])
    y = X @ w_true + 0.3 + 0.1 * torch.randn(n, 1, generator=g)
    # the least-squares optimum, computed independently in float64
    A = np.hstack([X.double().numpy(), np.ones((n, 1))])
    coef, *_ = np.linalg.lstsq(A, y.double().numpy(), rcond=None)
    return X, y, coef.ravel()


@pytest.mark.parametrize("kind", ["tuple", "dataset", "callable"])
def test_train_reaches_least_squares_optimum(kind):
    X, y, coef = _regression_problem()
    if kind == "tuple":
        data = (X, y)
    elif kind == "dataset":
        data = torch.utils.data.TensorDataset(X, y)
    else:
        def data(batch_size, generator):
            idx = torch.randint(0, X.shape[0], (batch_size,), generator=generator)
            return X[idx], y[idx]
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    config = TrainConfig(steps=600, batch_size=64, lr=0.05, weight_decay=0.0, warmup_steps=20,
                         ema_decay=0.95, progress=False)
    result = train(model, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), data, config)
    got = np.concatenate([model.weight.detach().cpu().numpy().ravel(), model.bias.detach().cpu().numpy()])
    np.testing.assert_allclose(got, coef, atol=0.02)
    ema = result.ema_model
    got_ema = np.concatenate([ema.weight.detach().cpu().numpy().ravel(), ema.bias.detach().cpu().numpy()])
    np.testing.assert_allclose(got_ema, coef, atol=0.02)
    assert result.step == 600 and result.losses.shape == (600,)
    assert result.losses[-50:].mean() < 0.1 * result.losses[:10].mean()
    assert result.eval_model is result.ema_model


# --------------------------------------------------------------------------- checkpoints and resume
class _Stop(Exception):
    pass


def _noisy_problem():
    torch.manual_seed(123)  # model initialisation
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    data = torch.randn(50, 3, generator=torch.Generator().manual_seed(5))

    def loss_fn(m, batch):  # random inside the loss: resuming must restore the global torch RNG
        jitter = 0.1 * torch.randn(batch.shape[0], 2, device=batch.device)
        return ((m(batch[:, :2] + jitter) - batch[:, 2:]) ** 2).mean()

    return model, data, loss_fn


def test_resume_is_bit_identical(tmp_path):
    common = dict(steps=30, batch_size=8, lr=1e-2, warmup_steps=5, ema_decay=0.9, ema_power=0.75,
                  seed=3, progress=False)
    model_a, data, loss_fn = _noisy_problem()
    full = train(model_a, loss_fn, data, TrainConfig(**common))

    path = tmp_path / "run" / "ckpt.pt"
    config = TrainConfig(**common, checkpoint_path=path, checkpoint_every=10)
    model_b, _, _ = _noisy_problem()

    def stop_at_17(step, loss):
        if step == 17:
            raise _Stop

    with pytest.raises(_Stop):
        train(model_b, loss_fn, data, config, callback=stop_at_17)
    assert torch.load(path, weights_only=True)["step"] == 10

    torch.manual_seed(999)  # a different model and global RNG: everything must come from the file
    model_c = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    torch.randn(100)
    resumed = train(model_c, loss_fn, data, config)

    assert resumed.step == 30
    np.testing.assert_array_equal(resumed.losses, full.losses)
    for p, q in zip(model_c.parameters(), model_a.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(resumed.ema_model.parameters(), full.ema_model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [f.name for f in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary files left behind

    loaded = load_checkpoint_model(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)), path)
    for p, q in zip(loaded.parameters(), full.ema_model.parameters(), strict=True):
        assert torch.equal(p, q.cpu())


def test_resume_refuses_a_different_length(tmp_path):
    model, data, loss_fn = _noisy_problem()
    path = tmp_path / "ckpt.pt"
    train(model, loss_fn, data, TrainConfig(steps=5, batch_size=4, progress=False, checkpoint_path=path))
    with pytest.raises(ValueError, match="steps"):
        train(model, loss_fn, data, TrainConfig(steps=8, batch_size=4, progress=False, checkpoint_path=path))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("steps", 2.5), ("batch_size", 0), ("lr", 0.0), ("lr", -1e-3), ("weight_decay", -1.0),
    ("warmup_steps", -1), ("warmup_steps", 20), ("grad_clip", 0.0), ("ema_decay", 1.0),
    ("ema_decay", -0.1), ("ema_power", 0.0), ("seed", -1), ("log_every", 0), ("progress", "yes"),
    ("checkpoint_every", -5), ("checkpoint_path", 3),
])
def test_bad_config_names_the_field(field, value):
    kwargs = {"steps": 10, field: value}
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**kwargs)


def test_train_rejects_bad_arguments():
    model = nn.Linear(1, 1)
    config = TrainConfig(steps=2, progress=False)
    with pytest.raises(ValueError, match="data"):
        train(model, lambda m, b: m(b).sum(), 42, config)
    with pytest.raises(ValueError, match="config"):
        train(model, lambda m, b: m(b).sum(), torch.zeros(4, 1), {"steps": 2})
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        train(model, lambda m, b: m(b), torch.zeros(4, 1), config)
    with pytest.raises(ValueError, match="share"):
        train(model, lambda m, b: m(b[0]).sum(), (torch.zeros(4, 1), torch.zeros(3, 1)), config)


@pytest.mark.parametrize("make, message", [
    (lambda: TrainConfig(steps=10, lr=math.inf), "TrainConfig.lr must be a finite number > 0.0, got inf"),
    (lambda: TrainConfig(steps=10, lr=math.nan), "TrainConfig.lr must be a finite number > 0.0, got nan"),
    (lambda: TrainConfig(steps=10, grad_clip=math.inf), "TrainConfig.grad_clip must be a finite number > 0.0"),
    (lambda: TrainConfig(steps=10, weight_decay=math.nan), "TrainConfig.weight_decay must be a finite number >= 0.0"),
    (lambda: TrainConfig(steps=10, betas=(0.9, math.nan)), r"TrainConfig.betas\[1\] must be a finite number in "
                                                           r"\[0.0, 1.0\)"),
    (lambda: TrainConfig(steps=10, amp="fp8"), "TrainConfig.amp must be one of"),
    (lambda: EMA(_Constant(), decay=math.nan), r"decay must be a finite number in \[0.0, 1.0\), got nan"),
    (lambda: EMA(_Constant(), decay=0.9, power=math.inf), "power must be a finite number > 0.0, got inf"),
    (lambda: warmup_cosine(0, np.int64(11), 10), r"warmup must be an integer in \[0, 10\], got np.int64\(11\)"),
])
def test_float_arguments_refuse_inf_and_nan(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_numpy_numbers_are_accepted_like_python_ones():
    config = TrainConfig(steps=np.int64(10), batch_size=np.int32(4), lr=np.float32(1e-3), betas=(np.float32(0.9), 0.99))
    assert type(config.steps) is int and config.steps == 10 and type(config.lr) is float
    assert warmup_cosine(np.int64(5), np.int64(0), np.int64(10)) == warmup_cosine(5, 0, 10)
    assert EMA(_Constant(), decay=np.float32(0.5)).decay == 0.5
