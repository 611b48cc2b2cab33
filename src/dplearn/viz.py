"""Plotting and animation helpers shared by the chapters (matplotlib only).

Animations are returned as small self-contained jshtml strings so that they play on the
website without a kernel; widgets (ipywidgets) are for Jupyter/Colab, and every widget in the
book sits beside a static figure that the website shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from dplearn.validate import positive_int

COLORS = {
    "data": "#4c72b0",
    "model": "#dd8452",
    "forward": "#55a868",
    "reverse": "#c44e52",
    "neutral": "#8c8c8c",
}


def small_multiples(
    n: int, ncols: int = 4, size: float = 2.6, sharex: bool = True, sharey: bool = True
):
    """A grid of ``n`` square panels; returns ``(fig, axes)`` with ``axes`` flat and unused ones hidden."""
    n = positive_int("n", n)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), sharex=sharex, sharey=sharey,
        squeeze=False,
    )
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def animate(
    draw: Callable[[int], None],
    n_frames: int,
    fig,
    interval: int = 80,
    embed_limit_mb: float = 8.0,
) -> str:
    """Render ``draw(i)`` for ``i < n_frames`` on ``fig`` into jshtml (HTML + JS, plays offline).

    ``draw`` updates the figure for frame ``i``. The figure is closed afterwards so that it does
    not also show as a static image.
    """
    import matplotlib as mpl
    from matplotlib.animation import FuncAnimation

    n_frames = positive_int("n_frames", n_frames)
    with mpl.rc_context({"animation.embed_limit": embed_limit_mb}):
        anim = FuncAnimation(fig, lambda i: draw(i), frames=n_frames, interval=interval)
        html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


def show_html(html: str):
    """Display an HTML string (e.g. from :func:`animate`) in Jupyter and on the website."""
    from IPython.display import HTML, display

    display(HTML(html))


def scatter2d(ax, points: np.ndarray, color: str | None = None, s: float = 2.0, alpha: float = 0.5,
              label: str | None = None, lim: Sequence[float] | None = None):
    """Scatter ``points`` of shape (N, 2) on ``ax`` with equal aspect."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    ax.scatter(points[:, 0], points[:, 1], s=s, alpha=alpha, color=color or COLORS["data"],
               label=label, linewidths=0)
    ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(lim[0], lim[1])
        ax.set_ylim(lim[-2], lim[-1])
    return ax
