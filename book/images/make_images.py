"""Makes the book's front-matter pictures from the project itself: ``python book/images/make_images.py``.

welcome.png — a Push-T start rendered by dplearn's renderer, with the scripted expert's pusher paths
from that one start for several expert seeds: some go round the block on the left, some on the right.
logo.png    — the same scene, small.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dplearn.envs.render import render_state
from dplearn.experts.pusht import ROUTES_START_STATE, rollout_expert

HERE = Path(__file__).resolve().parent


def main() -> None:
    start = np.asarray(ROUTES_START_STATE, dtype=np.float64)
    image = render_state(start, size=512)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image, extent=(0, 512, 512, 0))
    colors = {"left": "#d1495b", "right": "#2e86ab"}
    for seed in range(10):
        states, _, _ = rollout_expert(start, expert_seed=seed)
        path = np.asarray(states)[:, :2]
        # the approach: until the pusher has got behind the block (below its centre)
        behind = np.nonzero(path[:, 1] > start[3] + 40)[0]
        approach = path[: (behind[0] + 1 if len(behind) else len(path))]
        side = "left" if approach[:, 0].min() < start[2] - 60 else "right"
        ax.plot(approach[:, 0], approach[:, 1], "-", lw=2.2, alpha=0.85, color=colors[side])
        ax.plot(*approach[-1], "o", ms=5, color=colors[side])
    ax.set_xlim(0, 512)
    ax.set_ylim(512, 0)
    ax.axis("off")
    fig.savefig(HERE / "welcome.png", dpi=90, bbox_inches="tight", pad_inches=0.02)
    plt.close(fig)

    logo = render_state(start, size=160)
    plt.imsave(HERE / "logo.png", logo)


if __name__ == "__main__":
    main()
