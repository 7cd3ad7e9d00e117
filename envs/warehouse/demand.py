"""Demand generation for the Warehouse family, batched in torch.

Two generators share one small interface (``reset``, ``sample``) so that the core
takes either:

- :class:`SyntheticDemand`: Poisson or negative binomial counts around a mean that
  moves with seasonality, a linear trend and promotion spikes;
- :class:`HistoryDemand`: a cleaned history replayed from a random start, or
  bootstrapped one period at a time (all SKUs and locations of a period together,
  so cross-correlations survive).

Counts are drawn by inverse transform from counter-based uniforms: on a grid of
0..K units for moderate means (exact up to a tail below 1e-9), with a
moment-matched normal for very large means.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from paretochain.envs._rng import DrawSite, StepDraw
from paretochain.envs.data.demand_history import DemandHistory
from paretochain.envs.warehouse.config import DemandConfig

#: Largest count grid before switching to a normal approximation.
MAX_GRID = 400
#: Largest tabulated CDF (entries) before evaluating the pmf per step instead.
MAX_TABLE = 4_000_000


class SyntheticDemand:
    """Counts with seasonality, trend and promotions.

    The mean of a period depends only on its seasonal phase (or its index, with a
    trend) and on whether a promotion runs, so the cumulative distribution of every
    (phase, promotion, warehouse, SKU) is tabulated once, and a draw is one
    ``searchsorted`` of the uniform in its row: exact inverse-transform sampling at a
    cost independent of the mean. Rows are laid end to end in one float64 array,
    row ``r`` shifted by ``r``, so a single sorted 1-D search serves the whole batch.
    When the table would exceed :data:`MAX_TABLE` entries the pmf is evaluated per
    step instead (same distribution, more work).

    Args:
        cfg: the demand section of the config.
        base_mean: mean units per period, ``(num_warehouses, num_skus)``.
        horizon: episode length (sizes the table with a trend).
        device: torch device.
        site_id: first draw-site id this generator may use (it uses two).
    """

    def __init__(
        self, cfg: DemandConfig, base_mean: np.ndarray, horizon: int, device: torch.device, site_id: int
    ) -> None:
        self.cfg = cfg
        self.report = None  # no data was cleaned (a history's generator keeps its cleaning report here)
        self.shape = base_mean.shape
        self.base_mean = base_mean
        self.device = device
        self.horizon = horizon
        self._base = torch.as_tensor(base_mean, dtype=torch.float32, device=device)
        self.use_promotions = cfg.promotion_probability > 0
        self.use_season = cfg.seasonality_amplitude > 0
        trend_peak = max(1.0, 1.0 + cfg.trend * horizon)
        uplift = cfg.promotion_uplift if self.use_promotions else 1.0
        self.peak_mean = base_mean * (1 + cfg.seasonality_amplitude) * trend_peak * uplift
        top = float(self.peak_mean.max()) if self.peak_mean.size else 0.0
        var = top + (top * top / cfg.dispersion if cfg.distribution == "negative_binomial" else 0.0)
        grid = math.ceil(top + 12 * math.sqrt(var) + 12)
        self.grid_size = grid if grid <= MAX_GRID else 0
        if self.grid_size:
            self._k = torch.arange(self.grid_size, dtype=torch.float64, device=device)
            self._lgamma_k1 = torch.lgamma(self._k + 1)
        # phases: the distinct per-period means before promotions
        if cfg.trend != 0:
            self.num_phases = horizon
        elif self.use_season:
            self.num_phases = cfg.seasonality_period
        else:
            self.num_phases = 1
        self.num_modes = self.num_phases * (2 if self.use_promotions else 1)
        cells = int(np.prod(self.shape))
        self._table: torch.Tensor | None = None
        if self.grid_size and self.num_modes * cells * self.grid_size <= MAX_TABLE:
            self._build_table(cells)
        self._site_demand = DrawSite(site_id, self.shape, device)
        self._site_promo = DrawSite(site_id + 1, self.shape, device)
        self._episode_counts = torch.zeros(0, device=device)  # counts of the cached episodes, see sample
        self._counts_source: torch.Tensor | None = None  # the cached uniforms they were drawn from

    def _phase_factor(self, t: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        tf = t.to(torch.float64)
        factor = torch.ones_like(tf)
        if self.use_season:
            factor = factor + cfg.seasonality_amplitude * torch.sin(tf * (2 * math.pi / cfg.seasonality_period))
        if cfg.trend != 0:
            factor = factor * (1 + cfg.trend * tf).clamp(min=0)
        return factor

    def _build_table(self, cells: int) -> None:
        phases = torch.arange(self.num_phases, device=self.device)
        factor = self._phase_factor(phases).view(-1, 1, 1)  # (P, 1, 1)
        mean = self._base.to(torch.float64).unsqueeze(0) * factor  # (P, W, S)
        if self.use_promotions:
            mean = torch.stack([mean, mean * self.cfg.promotion_uplift], dim=1).reshape(-1, *self.shape)
        cdf = self._cdf(mean.reshape(-1))  # (rows, K)
        cdf[:, -1] = 1.0
        rows = cdf.shape[0]
        shift = torch.arange(rows, dtype=torch.float64, device=self.device).unsqueeze(1)
        self._table = (cdf + shift).reshape(-1).contiguous()
        self._cell_index = torch.arange(cells, device=self.device).view(1, *self.shape)
        self._cells = cells
        self._row_f64 = self._cell_index.to(torch.float64)
        self._row_start = self._cell_index * self.grid_size

    def _cdf(self, mean: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        k = self._k
        m = mean.to(torch.float64).unsqueeze(-1).clamp(min=1e-12)
        if cfg.distribution == "poisson":
            logp = k * m.log() - m - self._lgamma_k1
        else:
            r = cfg.dispersion
            logp = (
                torch.lgamma(k + r)
                - math.lgamma(r)
                - self._lgamma_k1
                + r * torch.log(r / (r + m))
                + k * torch.log(m / (r + m))
            )
        return logp.exp().cumsum(-1)

    def draw_sites(self) -> list[DrawSite]:
        return [self._site_demand, self._site_promo] if self.use_promotions else [self._site_demand]

    @property
    def mean(self) -> np.ndarray:
        """Average units per period, ``(W, S)``, used to scale orders and references."""
        return self.base_mean * (
            1 + self.cfg.promotion_probability * self.cfg.promotion_duration * (self.cfg.promotion_uplift - 1)
        )

    def init_state(self, num_envs: int) -> dict[str, torch.Tensor]:
        return {"promo_left": torch.zeros((num_envs, *self.shape), dtype=torch.int64, device=self.device)}

    def reset(self, state: dict[str, torch.Tensor], mask: torch.Tensor, key: torch.Tensor) -> None:
        state["promo_left"] = torch.where(mask.view(-1, 1, 1), 0, state["promo_left"])

    def _phase(self, t: torch.Tensor) -> torch.Tensor:
        if self.cfg.trend != 0:
            return t.clamp(max=self.horizon - 1)
        if self.use_season:
            return t % self.cfg.seasonality_period
        return torch.zeros_like(t)

    def mean_at(self, t: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Expected demand of period ``t`` given the promotion state, ``(B, W, S)``."""
        mean = self._base.unsqueeze(0) * self._phase_factor(t).to(torch.float32).view(-1, 1, 1)
        if self.use_promotions:
            mean = torch.where(state["promo_left"] > 0, mean * self.cfg.promotion_uplift, mean)
        return mean

    def sample(self, t: torch.Tensor, key: StepDraw, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Draw this period's demand, ``(B, W, S)``, and advance the promotion state."""
        promo = None
        if self.use_promotions:
            left = state["promo_left"]
            start = (left == 0) & (self._site_promo.uniform(key) < self.cfg.promotion_probability)
            left = torch.where(start, self.cfg.promotion_duration, left)
            promo = left > 0
            state["promo_left"] = (left - 1).clamp(min=0)
        if self._table is not None and not self.use_promotions:
            # without promotions the counts ignore the policy: those of the whole cached episode are drawn at once
            uniforms = self._site_demand.episode(key)
            if uniforms is not None:
                if self._counts_source is not uniforms:
                    self._episode_counts = self._counts_on_table(uniforms)
                    self._counts_source = uniforms
                return key.at_period(self._episode_counts)
        u = self._site_demand.uniform(key)
        if self._table is None:
            mean = self._base.unsqueeze(0) * self._phase_factor(t).to(torch.float32).view(-1, 1, 1)
            if promo is not None:
                mean = torch.where(promo, mean * self.cfg.promotion_uplift, mean)
            return self._inverse_cdf(mean, u)
        if self.num_modes == 1:
            pos = torch.searchsorted(self._table, u.to(torch.float64) + self._row_f64)
            return (pos - self._row_start).to(torch.float32)
        mode = self._phase(t).view(-1, 1, 1)
        if promo is not None:
            mode = mode * 2 + promo.long()
        row = mode * self._cells + self._cell_index
        pos = torch.searchsorted(self._table, row.to(torch.float64) + u.to(torch.float64))
        return (pos - row * self.grid_size).to(torch.float32)

    def _counts_on_table(self, uniforms: torch.Tensor) -> torch.Tensor:
        """Counts of every period of the episodes from their uniforms, period-major ``(T + 1, B, W, S)``, without
        promotions.

        The same searches as :meth:`sample` makes period by period, so the same counts.
        """
        assert self._table is not None
        if self.num_modes == 1:
            pos = torch.searchsorted(self._table, uniforms.to(torch.float64) + self._row_f64)
            return (pos - self._row_start).to(torch.float32)
        mode = self._phase(torch.arange(uniforms.shape[0], device=self.device)).view(-1, 1, 1, 1)
        row = mode * self._cells + self._cell_index
        pos = torch.searchsorted(self._table, row.to(torch.float64) + uniforms.to(torch.float64))
        return (pos - row * self.grid_size).to(torch.float32)

    def _inverse_cdf(self, mean: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if not self.grid_size:
            var = mean + (mean * mean / cfg.dispersion if cfg.distribution == "negative_binomial" else 0.0)
            return (mean + var.sqrt() * torch.special.ndtri(u.double()).float()).round().clamp(min=0)
        cdf = self._cdf(mean)
        return (cdf < u.to(torch.float64).unsqueeze(-1)).sum(-1).clamp(max=self.grid_size - 1).to(torch.float32)


class HistoryDemand:
    """Demand taken from a history ``(W, S, T)``: replayed from a random start or bootstrapped per period.

    Args:
        history: a cleaned :class:`DemandHistory` whose locations and items are the
            warehouses and SKUs of the environment, in order.
        mode: ``"replay"`` walks the history from a random start (wrapping around);
            ``"bootstrap"`` draws a random historical period every period.
        device: torch device.
        site_id: first draw-site id this generator may use (it uses one).
    """

    def __init__(self, history: DemandHistory, mode: str, device: torch.device, site_id: int) -> None:
        self.mode = mode
        self.device = device
        self.history = history
        #: what cleaning changed in the history (duplicates summed, periods filled, outliers)
        self.report = history.report
        units = torch.as_tensor(history.units, dtype=torch.float32, device=device)
        self._units = units  # (W, S, T)
        self.num_periods = units.shape[2]
        self.shape = tuple(units.shape[:2])
        self.base_mean = history.units.mean(axis=2)
        self.peak_mean = history.units.max(axis=2)
        self._site = DrawSite(site_id, (1,), device)

    def draw_sites(self) -> list[DrawSite]:
        return [self._site] if self.mode == "bootstrap" else []

    @property
    def mean(self) -> np.ndarray:
        return self.base_mean

    def init_state(self, num_envs: int) -> dict[str, torch.Tensor]:
        return {"history_offset": torch.zeros(num_envs, dtype=torch.int64, device=self.device)}

    def reset(self, state: dict[str, torch.Tensor], mask: torch.Tensor, key: torch.Tensor) -> None:
        offset = (self._site.uniform(key)[:, 0] * self.num_periods).long().clamp(max=self.num_periods - 1)
        state["history_offset"] = torch.where(mask, offset, state["history_offset"])

    def sample(self, t: torch.Tensor, key: StepDraw, state: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.mode == "replay":
            index = (state["history_offset"] + t) % self.num_periods
        else:
            index = (self._site.uniform(key)[:, 0] * self.num_periods).long().clamp(max=self.num_periods - 1)
        return self._units[:, :, index].permute(2, 0, 1)
