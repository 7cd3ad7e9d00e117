"""Rendering of a Warehouse environment: a status table and an episode chart."""

from __future__ import annotations

import numpy as np

from paretochain.envs.render import figure_to_rgb


def ansi_table(snapshot: dict[str, np.ndarray], max_skus: int = 8) -> str:
    """A text table of one environment's state: per node and SKU, stock, pipeline, backlog, last demand and order."""
    on_hand, pipeline, orders = snapshot["on_hand"], snapshot["pipeline"], snapshot["orders"]
    demand, backlog = snapshot["demand"], snapshot["backlog"]
    num_nodes, num_skus = on_hand.shape
    num_wh = demand.shape[0]
    lines = [
        f"period {int(snapshot['t'])}",
        f"{'node':<6}{'sku':>5}{'on_hand':>10}{'pipeline':>10}{'ordered':>10}{'demand':>10}{'backlog':>10}",
    ]
    for n in range(num_nodes):
        name = f"W{n}" if n < num_wh else "DC"
        for s in range(min(num_skus, max_skus)):
            dem = f"{demand[n, s]:10.0f}" if n < num_wh else f"{'-':>10}"
            back = f"{backlog[n, s]:10.0f}" if n < num_wh else f"{'-':>10}"
            lines.append(f"{name:<6}{s:>5}{on_hand[n, s]:10.0f}{pipeline[n, s]:10.0f}{orders[n, s]:10.0f}{dem}{back}")
        if num_skus > max_skus:
            lines.append(f"{name:<6}  ... {num_skus - max_skus} more SKUs")
    return "\n".join(lines)


def episode_chart(history: list[dict[str, np.ndarray]], width_px: int = 800, height_px: int = 500) -> np.ndarray:
    """An RGB chart (``(H, W, 3)`` uint8) of stock, pipeline, orders and demand over the episode so far, summed over SKUs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([int(h["t"]) for h in history])
    on_hand = np.array([h["on_hand"].sum() for h in history])
    pipeline = np.array([h["pipeline"].sum() for h in history])
    orders = np.array([h["orders"].sum() for h in history])
    demand = np.array([h["demand"].sum() for h in history])
    fig, ax = plt.subplots(figsize=(width_px / 100, height_px / 100), dpi=100)
    ax.step(t, on_hand, where="post", label="on hand (end of period)")
    ax.step(t, pipeline, where="post", label="in transit")
    ax.bar(t, orders, alpha=0.3, label="ordered", color="tab:green")
    ax.plot(t, demand, "k.", label="demand")
    ax.set_xlabel("period")
    ax.set_ylabel("units (all SKUs)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return figure_to_rgb(fig)
