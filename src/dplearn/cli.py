"""The ``dplearn`` command: ``dplearn collect`` (and the other subcommands as they are added).

Introduced in chapter 5.

    dplearn collect --episodes 200 --seed 1000000 --workers 4 --out data/pusht_demos.npz

Each subcommand is a function ``add_<name>(subparsers)`` that adds its parser and sets
``func`` to the function that runs it with the parsed arguments; :func:`main` dispatches.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


# ---------------------------------------------------------------------------------- collect --
def add_collect(subparsers) -> None:
    p = subparsers.add_parser(
        "collect",
        help="collect successful Push-T demonstrations of the scripted expert",
        description="Run the scripted Push-T expert on seeded starts (in parallel), keep the "
        "successful episodes and write them as a compressed .npz in the replay-buffer layout.",
    )
    p.add_argument("--episodes", type=_positive_int, default=200,
                   help="successful episodes to keep (default 200)")
    p.add_argument("--seed", type=_seed, default=1_000_000,
                   help="first environment seed; episode i starts from seed + i (default 1000000)")
    p.add_argument("--workers", type=_positive_int, default=max(1, (os.cpu_count() or 1)),
                   help="worker processes (default: all CPU cores)")
    p.add_argument("--out", default="data/pusht_demos.npz", help="output .npz file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    from dplearn.collection import collect_demos
    from dplearn.data import save_demos

    if not str(args.out).endswith(".npz"):
        raise SystemExit(f"dplearn collect: --out must end in .npz, got {args.out!r}")
    command = "dplearn collect " + " ".join(
        shlex.quote(a) for a in (
            "--episodes", str(args.episodes), "--seed", str(args.seed),
            "--workers", str(args.workers), "--out", str(args.out),
        )
    )
    demos = collect_demos(
        args.episodes, seed=args.seed, workers=args.workers, progress=not args.no_progress,
        command=command,
    )
    path = save_demos(args.out, demos)
    m = demos.meta
    print(
        f"wrote {path}: {demos.n_episodes} episodes, {len(demos.state)} steps "
        f"(length mean {m['episode_length']['mean']:.1f}, median {m['episode_length']['median']:.1f}); "
        f"{len(m['failed_seeds'])} of {m['attempts']} attempts failed; "
        f"{m['wall_seconds']:.1f} s with {args.workers} workers; {path.stat().st_size / 1e6:.2f} MB"
    )
    return 0


# ------------------------------------------------------------------------------------- main --
SUBCOMMANDS = [add_collect]


def build_parser() -> argparse.ArgumentParser:
    """The ``dplearn`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dplearn", description="Diffusion Policy from first principles: command-line tools."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dplearn`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
