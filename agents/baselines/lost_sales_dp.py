"""Exact average-cost optimum of the single-SKU lost-sales model, by relative value iteration.

The model (the packaged ``lost_sales`` config and any config like it): one SKU at one
location, Poisson demand, lead time L >= 1 periods, lost sales, holding cost h per
unit left at the end of a period, penalty p per lost unit, no ordering costs.

State at the moment of ordering: ``x`` = stock on hand once this period's delivery is
in, and the L - 1 orders still to arrive (oldest first). The cost of the period,
``h E(x - D)+ + p E(D - x)+``, does not depend on the order, which only shapes the
future: ``x' = min((x - D)+ + q_1, X)``, and the pipeline shifts in the new order.
Relative value iteration on the truncated state space gives the optimal average
cost per period ``g`` and the optimal order for every state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.envs.warehouse.core import WarehouseCore


@dataclass
class LostSalesSolution:
    """Result of :func:`solve_lost_sales`.

    Attributes:
        average_cost: optimal long-run cost per period ``g``.
        orders: optimal order per state, array over (x, q_1, ..., q_{L-1}).
        max_stock: truncation of on-hand stock ``X``.
        max_order: largest order considered.
        iterations: value-iteration sweeps until the span of the update fell below tolerance.
    """

    average_cost: float
    orders: np.ndarray
    max_stock: int
    max_order: int
    iterations: int


def _poisson_pmf(mean: float, upto: int) -> np.ndarray:
    k = np.arange(upto + 1)
    logp = k * math.log(mean) - mean - np.array([math.lgamma(i + 1) for i in k])
    pmf = np.exp(logp)
    pmf[-1] += max(0.0, 1.0 - pmf.sum())  # the tail lumped on the last value
    return pmf


def solve_lost_sales(
    mean: float,
    lead_time: int,
    holding_cost: float,
    penalty: float,
    max_order: int | None = None,
    max_stock: int | None = None,
    tolerance: float = 1e-7,
    max_iterations: int = 20_000,
) -> LostSalesSolution:
    """Optimal policy and average cost of the lost-sales model.

    Args:
        mean: Poisson demand mean per period.
        lead_time: periods between ordering and receipt (>= 1).
        holding_cost, penalty: per unit left at period end, per unit lost.
        max_order: largest order considered (default: a generous multiple of the mean).
        max_stock: truncation of on-hand stock (default likewise).
        tolerance: stop when the span of ``V_new - V`` is below this.
    """
    if lead_time < 1:
        raise ValueError("the dynamic program needs a lead time of at least one period")
    max_order = max_order if max_order is not None else math.ceil(mean + 6 * math.sqrt(mean) + 2)
    max_stock = (
        max_stock
        if max_stock is not None
        else math.ceil((lead_time + 1) * mean + 8 * math.sqrt((lead_time + 1) * mean))
    )
    n_states = (max_stock + 1) * (max_order + 1) ** (lead_time - 1)
    if n_states > 2_000_000:
        raise ValueError(
            f"{n_states} states: too large for exact dynamic programming (reduce the lead time or the mean)"
        )
    d_max = math.ceil(mean + 12 * math.sqrt(mean) + 12)
    pmf = _poisson_pmf(mean, d_max)
    x = np.arange(max_stock + 1)
    d = np.arange(d_max + 1)
    left = np.maximum(x[:, None] - d[None, :], 0)  # (X, D)
    lost = np.maximum(d[None, :] - x[:, None], 0)
    cost = (holding_cost * left + penalty * lost) @ pmf  # (X,)
    # P[x, q1, x'] = probability that stock x with q1 arriving becomes x' next period
    trans = np.zeros((max_stock + 1, max_order + 1, max_stock + 1))
    for q1 in range(max_order + 1):
        nxt = np.minimum(left + q1, max_stock)
        for j in range(d_max + 1):
            trans[x, q1, nxt[:, j]] += pmf[j]
    shape = (max_stock + 1,) + (max_order + 1,) * (lead_time - 1)
    value = np.zeros(shape)
    cost_b = cost.reshape((-1,) + (1,) * (lead_time - 1))
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        if lead_time == 1:
            # order arrives next period: x' = min((x - D)+ + q, X)
            future = np.einsum("aqy,y->aq", trans, value)  # (X, Q)
            best = future.min(axis=1)
        else:
            # future[x, q1, q2.., q] = sum_x' P[x, q1, x'] V[x', q2, .., q]
            future = np.tensordot(trans, value, axes=([2], [0]))  # (X, Q1, Q2, ..., Q)
            best = future.min(axis=-1)
        new = cost_b + best
        diff = new - value
        value = new - new.flat[0]
        if diff.max() - diff.min() < tolerance:
            break
    gain = float((diff.max() + diff.min()) / 2)
    orders = future.argmin(axis=-1)
    return LostSalesSolution(gain, orders, max_stock, max_order, iterations)


class LostSalesDPPolicy:
    """The optimal policy of :func:`solve_lost_sales` acting in a lost-sales Warehouse environment.

    Args:
        env: a single-SKU, single-location, lost-sales Warehouse environment (or its core)
            with Poisson demand, a fixed lead time >= 1 and no ordering costs.
    """

    def __init__(self, env: object, solution: LostSalesSolution | None = None) -> None:
        core = getattr(env, "core", None) or getattr(getattr(env, "unwrapped", None), "core", None) or env
        if not isinstance(core, WarehouseCore):
            raise TypeError(f"expected a Warehouse environment or core, got {type(env).__name__}")
        cfg = core.config
        check_lost_sales_config(cfg)
        self.lead_time = int(core._L0[0, 0])
        self.solution = solution or solve_lost_sales(
            float(cfg.demand.mean),
            self.lead_time,
            float(cfg.holding_cost),
            float(cfg.shortage_penalty),  # type: ignore[arg-type]
            max_order=int(core.max_order[0, 0]),
        )
        self.layout = core.observation_layout
        self.ladder = torch.as_tensor(core.ladder_units[0, 0], dtype=torch.float32)
        self.kind = cfg.action.kind
        self._orders = torch.as_tensor(self.solution.orders, dtype=torch.float32)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        seg = self.layout.segments
        on_hand = obs[:, seg["on_hand"].start : seg["on_hand"].stop].sum(1)
        pipe = obs[:, seg["pipeline"].start : seg["pipeline"].stop]  # (B, L): index 0 arrives this period
        sol = self.solution
        stock = (on_hand + pipe[:, 0]).long().clamp(0, sol.max_stock)
        index = [stock] + [pipe[:, j].long().clamp(0, sol.max_order) for j in range(1, self.lead_time)]
        orders = self._orders.to(obs.device)[tuple(index)]
        ladder = self.ladder.to(obs.device)
        action = (ladder.unsqueeze(0) - orders.unsqueeze(1)).abs().argmin(1)
        return action if self.kind == "discrete" else action.unsqueeze(1)


def check_lost_sales_config(cfg: WarehouseConfig) -> None:
    """Refuse configs outside the model the dynamic program solves, saying which field differs."""
    problems = []
    if cfg.num_skus != 1 or cfg.num_warehouses != 1 or cfg.distribution_center:
        problems.append("one SKU at one location without a DC")
    if cfg.unmet_demand != "lost":
        problems.append("unmet_demand: lost")
    if (
        cfg.demand.source != "synthetic"
        or cfg.demand.distribution != "poisson"
        or not isinstance(cfg.demand.mean, (int, float))
    ):
        problems.append("synthetic Poisson demand with one mean")
    if cfg.demand.seasonality_amplitude or cfg.demand.trend or cfg.demand.promotion_probability:
        problems.append("stationary demand (no seasonality, trend or promotions)")
    if cfg.supplier_lead_time.jitter != 0 or cfg.disruptions.spike_probability or cfg.disruptions.outage_probability:
        problems.append("a fixed lead time without disruptions")
    if cfg.order_fixed_cost != 0 or cfg.unit_cost != 0 or cfg.shelf_life is not None or cfg.capacity is not None:
        problems.append("no ordering costs, perishability or capacity")
    if cfg.action.ladder_unit != "units":
        problems.append("a ladder in units")
    if problems:
        raise ValueError("the lost-sales dynamic program needs " + "; ".join(problems))
