"""Sampling speed on the CPU: DDPM with 100 steps against DDIM with 10 and 20 steps.

The setting of Diffusion Policy (chapters 4 and 8): a denoiser trained with T = 100 steps of the
squared-cosine schedule, sampled either with every step (DDPM) or on a sub-sequence (DDIM, eta = 0).
The model is chapter 3's 2-D ``MLPDenoiser``; its weights do not change the speed, so it is left
untrained. Each sampler runs in the same process, on the same batch sizes, and the best of a few
repeats is reported.

    python benchmarks/sampling_speed.py                 # the default table
    python benchmarks/sampling_speed.py --threads 2 --batch 1 256 4096

Batch 1 is the latency of one action (one observation at a time, as a robot runs); large batches
show the throughput.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from dplearn.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule
from dplearn.nets import MLPDenoiser


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 1000], help="samples per call")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (best is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--hidden", type=int, default=128, help="width of the MLP denoiser")
    parser.add_argument("--layers", type=int, default=3, help="residual blocks of the MLP denoiser")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    schedule = NoiseSchedule.cosine(100)
    model = MLPDenoiser(x_dim=2, hidden=args.hidden, n_layers=args.layers, time_dim=32).eval()
    samplers = {
        "DDPM-100": DDPMSampler(schedule, clip_sample=False),
        "DDIM-20": DDIMSampler(schedule, num_steps=20, eta=0.0, clip_sample=False),
        "DDIM-10": DDIMSampler(schedule, num_steps=10, eta=0.0, clip_sample=False),
    }
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s); MLPDenoiser hidden={args.hidden} layers={args.layers}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; best of {args.repeats}")
    print()
    print(f"| {'sampler':9s} | {'net calls':>9s} | {'batch':>6s} | {'ms / batch':>10s} | {'samples / s':>12s} | {'speed-up':>8s} |")
    print(f"|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 12}|{'-' * 14}|{'-' * 10}|")
    for batch in args.batch:
        base = None
        for name, sampler in samplers.items():
            g = torch.Generator().manual_seed(0)

            def run(sampler=sampler, batch=batch, g=g):
                return sampler.sample(model, (batch, 2), generator=g)

            seconds = best_time(run, args.repeats)
            base = base or seconds
            print(f"| {name:9s} | {sampler.num_steps:9d} | {batch:6d} | {1000 * seconds:10.2f} | "
                  f"{batch / seconds:12.0f} | {base / seconds:7.1f}x |")


if __name__ == "__main__":
    main()
