"""Shared rendering helper: a finished matplotlib figure as an RGB array."""

from __future__ import annotations

from typing import Any

import numpy as np


def figure_to_rgb(fig: Any) -> np.ndarray:
    """Lay out and draw ``fig``, return it as ``(H, W, 3)`` uint8, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
