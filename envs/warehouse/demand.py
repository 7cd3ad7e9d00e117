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

from paretochain.envs._rng import DrawSite
from paretochain.envs.data.demand_history import DemandHistory
from paretochain.envs.warehouse.config import DemandConfig

#: Largest count grid before switching to a normal approximation.
MAX_GRID = 400


class SyntheticDemand:
    """Counts with seasonality, trend and promotions.

    Args:
        cfg: the demand section of the config.
        base_mean: mean units per period, ``(num_warehouses, num_skus)``.
        horizon: episode length (bounds the trend when sizing the count grid).
        device: torch device.
        site_id: first draw-site id this generator may use (it uses two).
    """

    def __init__(self, cfg: DemandConfig, base_mean: np.ndarray, horizon: int, device: torch.device, site_id: int) -> None:
        self.cfg = cfg
        self.shape = base_mean.shape
        self.base_mean = base_mean
        self.device = device
        self._base = torch.as_tensor(base_mean, dtype=torch.float32, device=device)
        self.use_promotions = cfg.promotion_probability > 0
        self.use_season = cfg.seasonality_amplitude > 0
        trend_peak = max(1.0, 1.0 + cfg.trend * horizon)
        uplift = cfg.promotion_uplift if self.use_promotions else 1.0
        self.peak_mean = base_mean * (1 + cfg.seasonality_amplitude) * trend_peak * uplift
        top = float(self.peak_mean.max()) if self.peak_mean.size else 0.0
        var = top + (top * top / cfg.dispersion if cfg.distribution == "negative_binomial" else 0.0)
        grid = int(math.ceil(top + 12 * math.sqrt(var) + 12))
        self.grid_size = grid if grid <= MAX_GRID else 0
        if self.grid_size:
            k = torch.arange(self.grid_size, dtype=torch.float32, device=device)
            self._k = k
            self._lgamma_k1 = torch.lgamma(k + 1)
        self._site_demand = DrawSite(site_id, self.shape, device)
        self._site_promo = DrawSite(site_id + 1, self.shape, device)

    @property
    def mean(self) -> np.ndarray:
        """Average units per period, ``(W, S)``, used to scale orders and references."""
        return self.base_mean * (1 + self.cfg.promotion_probability * self.cfg.promotion_duration * (self.cfg.promotion_uplift - 1))

    def init_state(self, num_envs: int) -> dict[str, torch.Tensor]:
        return {"promo_left": torch.zeros((num_envs, *self.shape), dtype=torch.int64, device=self.device)}

    def reset(self, state: dict[str, torch.Tensor], mask: torch.Tensor, key: torch.Tensor) -> None:
        state["promo_left"] = torch.where(mask.view(-1, 1, 1), 0, state["promo_left"])

    def mean_at(self, t: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Expected demand of period ``t`` given the promotion state, ``(B, W, S)``."""
        cfg = self.cfg
        mean = self._base.expand(t.shape[0], *self.shape)
        if self.use_season or cfg.trend != 0:
            tf = t.to(torch.float32).view(-1, 1, 1)
            factor = torch.ones_like(tf)
            if self.use_season:
                factor = factor + cfg.seasonality_amplitude * torch.sin(tf * (2 * math.pi / cfg.seasonality_period))
            if cfg.trend != 0:
                factor = factor * (1 + cfg.trend * tf).clamp(min=0)
            mean = mean * factor
        if self.use_promotions:
            mean = torch.where(state["promo_left"] > 0, mean * cfg.promotion_uplift, mean)
        return mean

    def sample(self, t: torch.Tensor, key: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Draw this period's demand, ``(B, W, S)``, and advance the promotion state."""
        if self.use_promotions:
            left = state["promo_left"]
            start = (left == 0) & (self._site_promo.uniform(key) < self.cfg.promotion_probability)
            state["promo_left"] = torch.where(start, self.cfg.promotion_duration, left)
        mean = self.mean_at(t, state)
        u = self._site_demand.uniform(key)
        demand = self._inverse_cdf(mean, u)
        if self.use_promotions:
            state["promo_left"] = (state["promo_left"] - 1).clamp(min=0)
        return demand

    def _inverse_cdf(self, mean: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if not self.grid_size:
            var = mean + (mean * mean / cfg.dispersion if cfg.distribution == "negative_binomial" else 0.0)
            return (mean + var.sqrt() * torch.special.ndtri(u.double()).float()).round().clamp(min=0)
        k = self._k
        m = mean.unsqueeze(-1).clamp(min=1e-12)
        if cfg.distribution == "poisson":
            logp = k * m.log() - m - self._lgamma_k1
        else:
            r = cfg.dispersion
            logp = torch.lgamma(k + r) - math.lgamma(r) - self._lgamma_k1 + r * torch.log(r / (r + m)) + k * torch.log(m / (r + m))
        cdf = logp.exp().cumsum(-1)
        return (cdf < u.unsqueeze(-1)).sum(-1).to(torch.float32)


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
        units = torch.as_tensor(history.units, dtype=torch.float32, device=device)
        self._units = units  # (W, S, T)
        self.num_periods = units.shape[2]
        self.shape = tuple(units.shape[:2])
        self.base_mean = history.units.mean(axis=2)
        self.peak_mean = history.units.max(axis=2)
        self._site = DrawSite(site_id, (1,), device)

    @property
    def mean(self) -> np.ndarray:
        return self.base_mean

    def init_state(self, num_envs: int) -> dict[str, torch.Tensor]:
        return {"history_offset": torch.zeros(num_envs, dtype=torch.int64, device=self.device)}

    def reset(self, state: dict[str, torch.Tensor], mask: torch.Tensor, key: torch.Tensor) -> None:
        offset = (self._site.uniform(key)[:, 0] * self.num_periods).long().clamp(max=self.num_periods - 1)
        state["history_offset"] = torch.where(mask, offset, state["history_offset"])

    def sample(self, t: torch.Tensor, key: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.mode == "replay":
            index = (state["history_offset"] + t) % self.num_periods
        else:
            index = (self._site.uniform(key)[:, 0] * self.num_periods).long().clamp(max=self.num_periods - 1)
        return self._units[:, :, index].permute(2, 0, 1)
