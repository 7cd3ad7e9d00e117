"""Rendering of a Pricing environment: a status table and an episode chart."""

from __future__ import annotations

import numpy as np

from paretochain.envs.render import figure_to_rgb


def ansi_table(snapshot: dict[str, np.ndarray], channel_names: list[str], max_skus: int = 8) -> str:
    """A text table of one environment's state: per SKU, stock, then price, sales and demand per channel."""
    on_hand, price, sales, demand = snapshot["on_hand"], snapshot["price"], snapshot["sales"], snapshot["demand"]
    num_skus = on_hand.shape[0]
    width = max(10, *(len(name) for name in channel_names)) + 2
    head = f"{'sku':>4}{'on_hand':>9}" + "".join(f"{name:>{width}}{'sold':>6}{'asked':>6}" for name in channel_names)
    lines = [f"period {int(snapshot['t'])}", head]
    for s in range(min(num_skus, max_skus)):
        cells = "".join(
            f"{price[s, c]:{width}.2f}{sales[s, c]:6.0f}{demand[s, c]:6.0f}" for c in range(len(channel_names))
        )
        lines.append(f"{s:>4}{on_hand[s]:9.0f}{cells}")
    if num_skus > max_skus:
        lines.append(f"  ... {num_skus - max_skus} more SKUs")
    return "\n".join(lines)


def episode_chart(
    history: list[dict[str, np.ndarray]], channel_names: list[str], width_px: int = 800, height_px: int = 500
) -> np.ndarray:
    """An RGB chart (``(H, W, 3)`` uint8): mean price ratio per channel and stock and sales over the season so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([int(h["t"]) for h in history])
    ratio = np.array([h["price_ratio"].mean(axis=0) for h in history])  # (T, C)
    stock = np.array([h["on_hand"].sum() for h in history])
    sold = np.array([h["sales"].sum() for h in history])
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(width_px / 100, height_px / 100), dpi=100)
    for c, name in enumerate(channel_names):
        top.step(t, ratio[:, c], where="post", label=name)
    top.set_ylabel("price / list price")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    bottom.step(t, stock, where="post", label="on hand (all SKUs)")
    bottom.bar(t, sold, alpha=0.3, color="tab:green", label="sold")
    bottom.set_xlabel("period")
    bottom.set_ylabel("units")
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    return figure_to_rgb(fig)
