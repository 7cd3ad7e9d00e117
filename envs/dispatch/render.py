"""Rendering of a Dispatch environment: a status table and a map of the routes so far."""

from __future__ import annotations

import itertools

import numpy as np

from paretochain.envs.render import figure_to_rgb


def ansi_table(snapshot: dict[str, np.ndarray]) -> str:
    """A text table of one environment's state: clock, order counts, then one line per vehicle."""
    valid, visible, served, late = snapshot["valid"], snapshot["visible"], snapshot["served"], snapshot["late"]
    D = int(snapshot["num_depots"])
    cap = float(snapshot["capacity"])
    lines = [
        f"decision {int(snapshot['t'])}  clock {float(snapshot['clock']):.1f} / shift end {float(snapshot['shift_end']):.1f}"
        + ("  (episode over)" if bool(snapshot["done"]) else ""),
        f"orders: {int(valid.sum())} total, {int((valid & ~visible).sum())} not yet released, "
        f"{int((visible & ~served).sum())} open, {int(served.sum())} served ({int(late.sum())} late)",
        f"{'vehicle':<8}{'at':>10}{'load':>12}{'free at':>10}  status",
    ]
    for v, node in enumerate(snapshot["vehicle_node"]):
        where = f"depot {node}" if node < D else f"order {node - D}"
        status = (
            "parked"
            if snapshot["parked"][v]
            else ("deciding" if v == int(snapshot["current"]) and not bool(snapshot["done"]) else "busy")
        )
        free = "-" if snapshot["parked"][v] else f"{snapshot['vehicle_free'][v]:.1f}"
        lines.append(f"{v:<8}{where:>10}{snapshot['vehicle_load'][v]:>6.0f}/{cap:<5.0f}{free:>10}  {status}")
    return "\n".join(lines)


def route_map(history: list[dict[str, np.ndarray]], width_px: int = 700, height_px: int = 700) -> np.ndarray:
    """An RGB map (``(H, W, 3)`` uint8): depots, customers served / open / not yet released, each vehicle's route so far, a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = history[-1]
    coords = last["coords"]
    D = int(last["num_depots"])
    cust = coords[D:]
    valid, visible, served = last["valid"], last["visible"], last["served"]
    fig, ax = plt.subplots(figsize=(width_px / 100, height_px / 100), dpi=100)
    cmap = plt.get_cmap("tab10")
    num_vehicles = last["vehicle_node"].shape[0]
    for v in range(num_vehicles):
        path = [int(h["vehicle_node"][v]) for h in history]
        nodes = [path[0]] + [b for a, b in itertools.pairwise(path) if b != a]
        if len(nodes) > 1:
            xy = coords[nodes]
            ax.plot(
                xy[:, 0], xy[:, 1], "-", color=cmap(v % 10), lw=1.5, alpha=0.8, label=f"vehicle {v}" if v < 10 else None
            )
    groups = [
        (valid & served, "o", "tab:green", "served"),
        (valid & visible & ~served, "o", "tab:red", "open"),
        (valid & ~visible, "o", "lightgrey", "not yet released"),
    ]
    for sel, marker, color, label in groups:
        if sel.any():
            ax.scatter(
                cust[sel, 0],
                cust[sel, 1],
                marker=marker,
                s=28,
                c=color,
                edgecolors="k",
                linewidths=0.4,
                label=label,
                zorder=3,
            )
    ax.scatter(coords[:D, 0], coords[:D, 1], marker="s", s=90, c="black", label="depot", zorder=4)
    ax.set_title(f"decision {int(last['t'])}, clock {float(last['clock']):.1f}")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax.grid(alpha=0.2)
    return figure_to_rgb(fig)


def timeline(history: list[dict[str, np.ndarray]], width_px: int = 900, height_px: int = 420) -> np.ndarray:
    """An RGB Gantt chart (``(H, W, 3)`` uint8): per vehicle, each move as a bar from departure to free time.

    Bars to an order are green when its service started within the window, red when late;
    returns to a depot are grey, waits light grey. The dashed line is the shift end.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = history[0]
    num_vehicles = len(first["vehicle_free"])
    num_depots = int(first["num_depots"])
    fig, ax = plt.subplots(figsize=(width_px / 100, height_px / 100), dpi=100)
    for before, after in itertools.pairwise(history):
        v = int(before["current"])
        if v < 0 or v >= num_vehicles:
            continue
        start = float(before["clock"])
        end = float(after["vehicle_free"][v])
        if end <= start:
            continue
        node = int(after["vehicle_node"][v])
        if node == int(before["vehicle_node"][v]):
            color = "#dddddd"  # waited
        elif node < num_depots:
            color = "#888888"  # back to a depot
        else:
            order = node - num_depots
            late = bool(after["late"][order]) if order < len(after["late"]) else False
            color = "tab:red" if late else "tab:green"
        ax.barh(v, end - start, left=start, height=0.6, color=color, edgecolor="k", linewidth=0.3)
    ax.axvline(float(first["shift_end"]), color="k", linestyle="--", linewidth=1)
    ax.set_yticks(range(num_vehicles))
    ax.set_yticklabels([f"vehicle {v}" for v in range(num_vehicles)])
    ax.set_xlabel("minutes into the shift")
    ax.set_title("timeline: green on time, red late, grey to depot, light grey waiting")
    ax.grid(alpha=0.3, axis="x")
    return figure_to_rgb(fig)
