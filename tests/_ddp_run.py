"""Run under torchrun by tests/test_distributed.py: data-parallel runs of dplearn.training.train on the
CPU (gloo), written to OUT/rank{r}.pt for the test to compare with one-process runs.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/_ddp_run.py OUT

The problems are defined here so that the test builds the same ones in its own process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

#: the shared run: 40 steps of a global batch of 16 drawn from 200 rows
CONFIG = dict(steps=40, batch_size=16, lr=1e-2, warmup_steps=5, ema_decay=0.9, ema_power=0.75, seed=3,
              progress=False, device="cpu")
STOP_AT = 17  # the interrupted run: rank 1 alone asks to stop after this step
CHECKPOINT_EVERY = 10


def problem(init_seed: int = 123) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1))
    data = torch.randn(200, 3, generator=torch.Generator().manual_seed(5))
    return model, data


def plain_loss(m: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Deterministic: the loss of a batch depends on its rows only."""
    return ((m(batch[:, :2]) - batch[:, 2:]) ** 2).mean()


def noisy_loss(m: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Draws from the global generator, like a diffusion policy's noise: resuming must restore it."""
    jitter = 0.1 * torch.randn(batch.shape[0], 2, device=batch.device)
    return ((m(batch[:, :2] + jitter) - batch[:, 2:]) ** 2).mean()


def main(out: Path) -> None:
    import dplearn.training as training
    from dplearn.distributed import current, init_distributed, shutdown
    from dplearn.training import TrainConfig, train

    torch.set_num_threads(1)
    info = init_distributed("cpu", timeout_s=120)
    assert info is not None and info.backend == "gloo" and current() == info
    rank = info.rank
    saves: list[str] = []  # training states this process wrote
    real_save = training._save_atomic

    def recording_save(obj, path):
        saves.append(Path(path).name)
        return real_save(obj, path)

    training._save_atomic = recording_save
    results = {"world_size": info.world_size}

    model, data = problem()
    r = train(model, plain_loss, data, TrainConfig(**CONFIG))
    results["plain"] = {"losses": r.losses, "weights": [p.detach().clone() for p in model.parameters()],
                        "ema": [p.detach().clone() for p in r.ema_model.parameters()]}

    model, data = problem()
    r = train(model, noisy_loss, data, TrainConfig(**CONFIG))
    results["noisy"] = {"losses": r.losses, "weights": [p.detach().clone() for p in model.parameters()]}

    state = out / "noisy.state"
    config = TrainConfig(**CONFIG, checkpoint_path=state, checkpoint_every=CHECKPOINT_EVERY)

    def interrupt(step, loss):
        if rank == 1 and step == STOP_AT:
            raise KeyboardInterrupt

    model, data = problem()
    try:
        train(model, noisy_loss, data, config, callback=interrupt)
        results["stopped_at"] = None
    except KeyboardInterrupt as exc:
        results["stopped_at"] = str(exc)
    results["saved_step"] = int(torch.load(state, weights_only=True)["step"]) if state.exists() else None

    model, data = problem(init_seed=999 + rank)  # other weights on each rank: all must come from the file
    torch.manual_seed(1000 + rank)
    r = train(model, noisy_loss, data, config)
    results["resumed"] = {"losses": r.losses, "weights": [p.detach().clone() for p in model.parameters()]}

    try:
        train(model, plain_loss, data, TrainConfig(**{**CONFIG, "batch_size": 15}))
        results["indivisible"] = None
    except ValueError as exc:
        results["indivisible"] = str(exc)

    results["saves"] = saves
    torch.save(results, out / f"rank{rank}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
