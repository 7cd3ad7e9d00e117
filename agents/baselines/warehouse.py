"""Replenishment heuristics planners use today, acting on whole batches.

- :class:`BaseStockPolicy`: order up to a level per node and SKU (installation
  inventory position: on hand + in transit - backlog).
- :class:`SSPolicy`: (s, S): when the position falls to s or below, order up to S.
- :class:`ForecastOrderUpToPolicy`: order up to the demand forecast over the lead
  time plus safety stock, the forecast being a least-squares autoregression on the
  last m periods of demand (:class:`ARForecaster`, with its MAE and RMSE).

Each comes with a tuner that searches its parameters by simulation on training
seeds, every candidate in one batched run under common random numbers, and is
then evaluated on other seeds. Orders are mapped to the environment's action
space: the nearest ladder entry, or clipped units for a ``Box``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from paretochain.envs.registration import make_vec
from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.envs.warehouse.core import WarehouseCore
from paretochain.evaluate.rollout import rollout
from paretochain.seeds import TUNING_SEEDS


def _core(env: object) -> WarehouseCore:
    core = getattr(env, "core", None) or getattr(getattr(env, "unwrapped", None), "core", None) or env
    if not isinstance(core, WarehouseCore):
        raise TypeError(f"expected a Warehouse environment or core, got {type(env).__name__}")
    return core


class _OrderPolicy:
    """Shared plumbing: read positions from observations, map unit orders to actions."""

    def __init__(self, env: object) -> None:
        core = _core(env)
        self.layout = core.observation_layout
        self.num_nodes, self.num_skus, self.num_warehouses = core.num_nodes, core.num_skus, core.num_warehouses
        self.kind = core.config.action.kind
        self.ladder = torch.as_tensor(core.ladder_units, dtype=torch.float32)  # (N, S, K)
        self.max_order = torch.as_tensor(core.max_order, dtype=torch.float32)
        self.node_mean = core.node_mean
        self.lead_time = core._L0.cpu().numpy() + core._J1.cpu().numpy() / 2 - 0.5

    def inventory_position(self, obs: torch.Tensor) -> torch.Tensor:
        """On hand + in transit - backlog, per node and SKU: ``(B, N, S)``."""
        seg = self.layout.segments
        b = obs.shape[0]
        on_hand = (
            obs[:, seg["on_hand"].start : seg["on_hand"].stop].reshape(b, self.num_nodes, self.num_skus, -1).sum(-1)
        )
        pipe = (
            obs[:, seg["pipeline"].start : seg["pipeline"].stop].reshape(b, self.num_nodes, self.num_skus, -1).sum(-1)
        )
        position = on_hand + pipe
        if "backlog" in seg:
            backlog = obs[:, seg["backlog"].start : seg["backlog"].stop].reshape(b, self.num_warehouses, self.num_skus)
            position = torch.cat(
                [position[:, : self.num_warehouses] - backlog, position[:, self.num_warehouses :]], dim=1
            )
        return position

    def to_action(self, units: torch.Tensor) -> torch.Tensor:
        """Map order units ``(B, N, S)`` to the action space (nearest ladder entry, or clipped units)."""
        units = units.clamp(min=0)
        b = units.shape[0]
        if self.kind == "box":
            return torch.minimum(units, self.max_order.to(units.device)).reshape(b, -1)
        ladder = self.ladder.to(units.device)
        index = (ladder.unsqueeze(0) - units.unsqueeze(-1)).abs().argmin(-1)
        return index[:, 0, 0] if self.kind == "discrete" else index.reshape(b, -1)


class BaseStockPolicy(_OrderPolicy):
    """Order up to ``levels`` (units per node and SKU, ``(N, S)`` or per env ``(B, N, S)``).

    Args:
        env: the environment (single, vector or core) the policy will act in.
        levels: order-up-to levels in units.
    """

    def __init__(self, env: object, levels: np.ndarray | torch.Tensor) -> None:
        super().__init__(env)
        self.levels = torch.as_tensor(np.asarray(levels, dtype=np.float32))

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        levels = self.levels.to(obs.device)
        return self.to_action(levels - self.inventory_position(obs))


class SSPolicy(_OrderPolicy):
    """(s, S): when the inventory position is at or below ``reorder_points``, order up to ``levels``."""

    def __init__(
        self, env: object, reorder_points: np.ndarray | torch.Tensor, levels: np.ndarray | torch.Tensor
    ) -> None:
        super().__init__(env)
        self.reorder_points = torch.as_tensor(np.asarray(reorder_points, dtype=np.float32))
        self.levels = torch.as_tensor(np.asarray(levels, dtype=np.float32))

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        position = self.inventory_position(obs)
        s, big_s = self.reorder_points.to(obs.device), self.levels.to(obs.device)
        return self.to_action(torch.where(position <= s, big_s - position, torch.zeros_like(position)))


class ARForecaster:
    """Least-squares autoregression of next-period demand on the last ``m`` periods (and a constant), pooled per SKU.

    Attributes:
        coefficients: ``(S, m + 1)`` weights (last column: intercept).
        mae, rmse: one-step errors measured on the data given to :meth:`score`.
    """

    def __init__(self, order: int) -> None:
        if order < 1:
            raise ValueError(f"the autoregression needs at least one lag, got {order}")
        self.order = order
        self.coefficients: np.ndarray | None = None
        self.mae = float("nan")
        self.rmse = float("nan")

    @staticmethod
    def _lagged(series: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
        """Design matrix and targets from series ``(..., T)``: rows over all windows."""
        windows = np.lib.stride_tricks.sliding_window_view(series, order + 1, axis=-1)
        flat = windows.reshape(-1, order + 1)
        design = np.hstack([flat[:, :order], np.ones((flat.shape[0], 1))])
        return design, flat[:, order]

    def fit(self, demand: np.ndarray) -> ARForecaster:
        """Fit on demand ``(episodes, W, S, T)``; one model per SKU, pooled over warehouses and episodes."""
        num_skus = demand.shape[2]
        coefs = []
        for s in range(num_skus):
            x, y = self._lagged(demand[:, :, s, :], self.order)
            beta, *_ = np.linalg.lstsq(x, y, rcond=None)
            coefs.append(beta)
        self.coefficients = np.asarray(coefs)
        return self

    def predict(self, history: torch.Tensor) -> torch.Tensor:
        """Next-period forecast from the last ``m`` periods, ``history``: ``(B, W, S, m)`` -> ``(B, W, S)``."""
        if self.coefficients is None:
            raise RuntimeError("fit the forecaster before predicting")
        coef = torch.as_tensor(self.coefficients, dtype=torch.float32, device=history.device)
        return ((history[..., -self.order :] * coef[:, : self.order]).sum(-1) + coef[:, self.order]).clamp(min=0)

    def score(self, demand: np.ndarray) -> tuple[float, float]:
        """One-step MAE and RMSE on demand ``(episodes, W, S, T)``; also stored on the forecaster."""
        errors = []
        for s in range(demand.shape[2]):
            x, y = self._lagged(demand[:, :, s, :], self.order)
            assert self.coefficients is not None
            pred = np.clip(x @ self.coefficients[s], 0, None)
            errors.append(pred - y)
        err = np.concatenate(errors)
        self.mae, self.rmse = float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))
        return self.mae, self.rmse


class ForecastOrderUpToPolicy(_OrderPolicy):
    """Order up to (forecast x (lead time + 1) + safety x forecast error x sqrt(lead time + 1)).

    The forecast is per warehouse and SKU; the DC (if any) orders up to the sum of its
    warehouses' targets. ``safety`` may be a scalar or per env ``(B,)``.
    """

    def __init__(self, env: object, forecaster: ARForecaster, safety: float | np.ndarray | torch.Tensor = 1.0) -> None:
        super().__init__(env)
        seg = self.layout.segments["demand_history"]
        if seg.shape[-1] < forecaster.order:
            raise ValueError(
                f"the forecaster needs {forecaster.order} periods of history, the observation has {seg.shape[-1]}"
            )
        self.forecaster = forecaster
        self.safety = torch.as_tensor(np.asarray(safety, dtype=np.float32))
        self.error = max(forecaster.rmse, 1e-6) if np.isfinite(forecaster.rmse) else 1.0

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        seg = self.layout.segments["demand_history"]
        b = obs.shape[0]
        history = obs[:, seg.start : seg.stop].reshape(b, *seg.shape)
        forecast = self.forecaster.predict(history)  # (B, W, S)
        cover = torch.as_tensor(self.lead_time + 1, dtype=torch.float32, device=obs.device)  # (N, S)
        safety = self.safety.to(obs.device).reshape(-1, 1, 1)
        wh_target = forecast * cover[: self.num_warehouses] + safety * self.error * cover[: self.num_warehouses].sqrt()
        if self.num_nodes > self.num_warehouses:
            dc = (
                forecast.sum(1, keepdim=True) * cover[self.num_warehouses :]
                + safety * self.error * cover[self.num_warehouses :].sqrt()
            )
            wh_target = torch.cat([wh_target, dc], dim=1)
        return self.to_action(wh_target - self.inventory_position(obs))


# ---------------------------------------------------------------------------------------- tuning


@dataclass
class TuningResult:
    """Outcome of a tuner.

    Attributes:
        best: the chosen parameter (the candidate's value).
        candidates: every value tried.
        scores: mean scalarised training return of each candidate.
        policy: the tuned policy, ready to act.
    """

    best: float
    candidates: np.ndarray
    scores: np.ndarray
    policy: object


def _scores(
    config: WarehouseConfig,
    make_policy,
    candidates: np.ndarray,
    seeds: Sequence[int],
    weights: np.ndarray | None,
    device: str,
) -> np.ndarray:
    """Mean scalarised return of each candidate; all candidates x seeds in one batch (common random numbers)."""
    n_c, n_s = len(candidates), len(seeds)
    env = make_vec("paretochain/Warehouse-v0", n_c * n_s, device=device, config=config)
    policy = make_policy(env, np.repeat(candidates, n_s, axis=0))
    result = rollout(env, policy, [int(s) for s in seeds] * n_c)
    k = result.returns.shape[1]
    w = np.eye(k)[0] if weights is None else np.asarray(weights, dtype=np.float64)
    return (result.returns @ w).reshape(n_c, n_s).mean(axis=1)


def tune_base_stock(
    config: WarehouseConfig | str,
    seeds: Sequence[int] = TUNING_SEEDS,
    covers: Sequence[float] | None = None,
    weights: np.ndarray | None = None,
    device: str = "cpu",
) -> TuningResult:
    """Search the base-stock level as periods of mean demand covered (same cover for every node and SKU).

    For a single SKU at a single node the candidates are every whole-unit level from 0 to
    the ladder's reach (an exact search over levels); otherwise ``covers`` (default 0.5 to
    12 periods) scale each node's mean demand.

    Args:
        config: the environment config (name, path or instance).
        seeds: training seeds; evaluate the result on other seeds.
        covers: candidate covers in periods of mean demand.
        weights: scalarisation of the objectives (default: the first objective alone).
        device: where to simulate.
    """
    cfg = WarehouseConfig.load(config)
    probe = WarehouseCore(cfg, 1, "cpu")
    mean = probe.node_mean
    single = probe.num_nodes * probe.num_skus == 1
    if single and covers is None:
        top = int(probe.max_order.max() * (probe.max_lead + 1) + 1)
        levels = np.arange(0, max(top, 2), dtype=np.float64)
        cand = levels.reshape(-1, 1, 1)
        values = levels
    else:
        grid = np.asarray(covers if covers is not None else np.arange(0.5, 12.01, 0.5))
        cand = np.round(grid.reshape(-1, 1, 1) * mean[None])
        values = grid
    scores = _scores(cfg, lambda env, lv: BaseStockPolicy(env, lv), cand, seeds, weights, device)
    best = int(np.argmax(scores))
    return TuningResult(float(values[best]), values, scores, lambda env: BaseStockPolicy(env, cand[best]))


def tune_s_s(
    config: WarehouseConfig | str,
    seeds: Sequence[int] = TUNING_SEEDS,
    covers: Sequence[float] | None = None,
    gaps: Sequence[float] | None = None,
    weights: np.ndarray | None = None,
    device: str = "cpu",
) -> TuningResult:
    """Search (s, S) as covers of mean demand: s = cover x mean, S = (cover + gap) x mean.

    ``best`` is the index of the chosen (cover, gap) pair in ``candidates`` (rows of the pair).
    """
    cfg = WarehouseConfig.load(config)
    mean = WarehouseCore(cfg, 1, "cpu").node_mean
    cover_grid = np.asarray(covers if covers is not None else np.arange(0.5, 10.01, 0.5))
    gap_grid = np.asarray(gaps if gaps is not None else [0.5, 1.0, 2.0, 3.0, 5.0])
    pairs = np.array([(c, g) for c in cover_grid for g in gap_grid])
    small = np.round(pairs[:, 0].reshape(-1, 1, 1) * mean[None])
    large = np.maximum(np.round((pairs[:, 0] + pairs[:, 1]).reshape(-1, 1, 1) * mean[None]), small + 1)
    stacked = np.stack([small, large], axis=1)  # (C, 2, N, S)

    def make(env, cand):
        return SSPolicy(env, cand[:, 0], cand[:, 1])

    scores = _scores(cfg, make, stacked, seeds, weights, device)
    best = int(np.argmax(scores))
    return TuningResult(float(best), pairs, scores, lambda env: SSPolicy(env, small[best], large[best]))


def collect_demand(config: WarehouseConfig | str, seeds: Sequence[int], device: str = "cpu") -> np.ndarray:
    """Demand paths ``(episodes, W, S, T)`` of the config under a base-stock policy (demand does not depend on it)."""
    cfg = WarehouseConfig.load(config)
    env = make_vec("paretochain/Warehouse-v0", len(seeds), device=device, config=cfg)
    core = env.core
    policy = BaseStockPolicy(env, np.round(core.node_mean * 3))
    obs = core.reset(seeds=list(seeds))
    paths = []
    for _ in range(core.horizon):
        out = core.step(policy.act(obs), check=False)
        paths.append(core.state.last_demand.cpu().numpy())
        obs = out.obs
    return np.stack(paths, axis=-1)


def tune_forecast_order_up_to(
    config: WarehouseConfig | str,
    seeds: Sequence[int] = TUNING_SEEDS,
    safeties: Sequence[float] | None = None,
    order: int | None = None,
    weights: np.ndarray | None = None,
    device: str = "cpu",
) -> TuningResult:
    """Fit the autoregression on the training seeds' demand, then search the safety factor by simulation.

    The fitted forecaster (with MAE and RMSE on the training demand) is on the policy:
    ``result.policy(env).forecaster``.
    """
    cfg = WarehouseConfig.load(config)
    m = cfg.demand_history_periods
    if m < 1:
        raise ValueError("the forecast-driven policy needs demand_history_periods >= 1 in the config")
    forecaster = ARForecaster(order or m)
    demand = collect_demand(cfg, seeds, device)
    forecaster.fit(demand)
    forecaster.score(demand)
    grid = np.asarray(safeties if safeties is not None else np.arange(-1.0, 4.01, 0.25))

    def make(env, cand):
        return ForecastOrderUpToPolicy(env, forecaster, cand)

    scores = _scores(cfg, make, grid, seeds, weights, device)
    best = int(np.argmax(scores))
    return TuningResult(
        float(grid[best]), grid, scores, lambda env: ForecastOrderUpToPolicy(env, forecaster, grid[best])
    )
