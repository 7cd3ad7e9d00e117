"""Demand of the Pricing family, batched in torch: who arrives, where they buy, at which price.

**Arrivals.** Shoppers for SKU ``s`` arrive at channel ``c`` as a Poisson stream with
mean ``lambda[s, c] * season(t) * (1 - decay)^t * promo(c)`` per period, where
``season(t) = 1 + A sin(2 pi t / P)`` and ``promo(c) = 1 + lift_c (1 - exp(-spend_c / saturation_c))``
is a diminishing-returns response to the channel's promotion budget.

**Choice (``model: mnl``).** A shopper who arrived at channel ``c`` buys at channel
``j`` with multinomial-logit probability::

    P(c -> j) = exp(U_cj) / (1 + exp(v_comp) + sum_j' exp(U_cj'))
    U_cj = v_j + loyalty_j * [j == c]
    v_j  = a_j - b_j * x_j - loss * max(x_j - r_j, 0) + gain * max(r_j - x_j, 0)
    v_comp = a_comp - b_comp * x_comp

with ``x_j`` the channel's price and ``r_j`` the reference price (both multiples of
list price), ``x_comp`` the competitor's price ratio, and the no-purchase option at
utility 0. Because each arrival stream is Poisson and shoppers choose
independently, the units asked of channel ``j`` are Poisson with mean
``mu_j = sum_c lambda_c P(c -> j)`` (Poisson thinning): one draw per SKU and channel.

**Constant elasticity (``model: constant_elasticity``).** ``mu_j = lambda_j * x_j^(-e_s)``
per channel, independent of the others; with unit cost ``c`` and no commission the
margin-maximising price is ``c * e / (e - 1)``.

**Competitor.** ``z = log(x_comp / mean_ratio)`` follows ``z' = (1 - reversion) z +
volatility * N(0, 1)``, started from its stationary law; normals come from two
counter-based uniforms (Box-Muller).

**Counts.** Poisson counts are drawn by inverse transform on a grid ``0..G-1`` sized
from the largest possible mean of the instance (tail below 1e-10), from
counter-based uniforms, so an environment's draws never depend on its batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from paretochain.envs._rng import DrawSite, StepDraw
from paretochain.envs.pricing.config import PricingConfig, per_sku

#: Largest count grid; beyond it counts use a rounded normal approximation.
MAX_GRID = 1024
#: Tail probability left out of the count grid.
TAIL = 1e-10


def poisson_grid_size(max_mean: float) -> int:
    """Smallest ``G`` with ``P(Poisson(max_mean) >= G) < TAIL`` (capped above ``MAX_GRID``)."""
    if max_mean <= 0:
        return 1
    log_p = -max_mean
    cdf = math.exp(log_p)
    k = 0
    while 1.0 - cdf >= TAIL and k < MAX_GRID:
        k += 1
        log_p += math.log(max_mean) - math.log(k)
        cdf += math.exp(log_p)
    return k + 1


class PricingDemand:
    """Expected demand and Poisson draws for a batch of pricing environments.

    Args:
        cfg: the environment's config.
        device: torch device.
        min_price_ratio: the lowest price ratio any action can set (bounds the counts).
        site_id: first draw-site id this model may use (it uses three).
    """

    def __init__(self, cfg: PricingConfig, device: torch.device, min_price_ratio: float, site_id: int) -> None:
        self.cfg = cfg
        self.device = device
        d = cfg.demand
        K, C = cfg.num_skus, len(cfg.channels)
        self.num_skus, self.num_channels = K, C
        f32 = dict(dtype=torch.float32, device=device)
        rate = np.array([per_sku(ch.arrival_rate, K) for ch in cfg.channels]).T  # (K, C)
        self.arrival_rate = rate
        self._rate = torch.as_tensor(rate, **f32)
        self.mnl = d.model == "mnl"
        self.use_season = d.seasonality_amplitude > 0
        self.use_decay = d.decay > 0
        self.use_promotion = any(len(ch.promotion_levels) > 1 for ch in cfg.channels)
        self._lift = torch.as_tensor([ch.promotion_lift for ch in cfg.channels], **f32)
        self._saturation = torch.as_tensor([ch.promotion_saturation for ch in cfg.channels], **f32)
        self._a = torch.as_tensor([ch.attractiveness for ch in cfg.channels], **f32)
        self._b = torch.as_tensor([ch.price_sensitivity for ch in cfg.channels], **f32)
        self._loyal = torch.as_tensor([math.exp(ch.loyalty) - 1.0 for ch in cfg.channels], **f32)
        ref = d.reference_price
        self.use_reference = self.mnl and (ref.loss_weight > 0 or ref.gain_weight > 0)
        comp = d.competitor
        self.use_competitor = self.mnl and comp.attractiveness > -20
        self.competitor_moves = comp.volatility > 0
        self._neg_elasticity = torch.as_tensor(per_sku(d.elasticity, K), **f32).view(K, 1).neg()

        peak = rate * (1 + d.seasonality_amplitude) * (1 + max(ch.promotion_lift if len(ch.promotion_levels) > 1 else 0.0 for ch in cfg.channels))
        if self.mnl:
            max_mean = float(peak.sum(axis=1).max())
        else:
            elast = np.array(per_sku(d.elasticity, K))
            max_mean = float((peak * (min_price_ratio ** (-elast))[:, None]).max())
        self.max_mean = max_mean
        self.grid_size = poisson_grid_size(max_mean)
        self.normal_counts = self.grid_size > MAX_GRID
        self.shifted = max_mean <= 60.0  # exp(mean) stays far inside float32
        k = torch.arange(self.grid_size, **f32)
        self._k = k
        self._neg_lgamma = -torch.lgamma(k + 1)
        self._site_counts = DrawSite(site_id, (K, C), device)
        self._site_competitor = DrawSite(site_id + 1, (K, 2), device)
        self._site_competitor_start = DrawSite(site_id + 2, (K, 2), device)
        self._comp_log_mean = math.log(comp.mean_ratio)
        self._comp_keep = 1.0 - comp.reversion
        stationary = comp.volatility**2 / (1.0 - self._comp_keep**2) if self._comp_keep < 1.0 else 0.0
        self._comp_start_sd = math.sqrt(stationary)

    # ------------------------------------------------------------------ arrivals and choice
    def arrivals(self, t: torch.Tensor, promotion_spend: torch.Tensor | None) -> torch.Tensor:
        """Expected shoppers per SKU and channel of arrival in period ``t``, ``(B, K, C)``."""
        d = self.cfg.demand
        rate = self._rate.unsqueeze(0)
        if self.use_season or self.use_decay:
            tf = t.to(torch.float32)
            factor = torch.ones_like(tf)
            if self.use_season:
                factor = factor + d.seasonality_amplitude * torch.sin(tf * (2 * math.pi / d.seasonality_period))
            if self.use_decay:
                factor = factor * torch.pow(1.0 - d.decay, tf)
            rate = rate * factor.view(-1, 1, 1)
        if self.use_promotion and promotion_spend is not None:
            boost = 1.0 + self._lift * (1.0 - torch.exp(-promotion_spend / self._saturation))
            rate = rate * boost.unsqueeze(1)
        return rate

    def expected_demand(
        self,
        price_ratio: torch.Tensor,
        t: torch.Tensor,
        reference_ratio: torch.Tensor | None = None,
        competitor_ratio: torch.Tensor | None = None,
        promotion_spend: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean units asked of each channel, ``(B, K, C)``, for prices ``(B, K, C)`` (multiples of list price).

        ``t`` is ``(B,)``; ``reference_ratio`` ``(B, K, C)``, ``competitor_ratio`` ``(B, K)``
        and ``promotion_spend`` ``(B, C)`` may be ``None`` where the instance does not use them.
        Leading dimensions of ``price_ratio`` beyond the batch are allowed when the others broadcast.
        """
        lam = self.arrivals(t, promotion_spend)
        if not self.mnl:
            return lam * torch.pow(price_ratio, self._neg_elasticity)
        v = self._a - self._b * price_ratio
        if self.use_reference and reference_ratio is not None:
            ref = self.cfg.demand.reference_price
            gap = price_ratio - reference_ratio
            v = v - ref.loss_weight * gap.clamp(min=0) + ref.gain_weight * (-gap).clamp(min=0)
        e = torch.exp(v)
        base = 1.0 + e.sum(-1, keepdim=True)
        if self.use_competitor and competitor_ratio is not None:
            comp = self.cfg.demand.competitor
            base = base + torch.exp(comp.attractiveness - comp.price_sensitivity * competitor_ratio).unsqueeze(-1)
        loyal = e * self._loyal  # extra weight of the home channel
        denom = base + loyal  # (.., K, C): denominator for shoppers arriving at each channel
        through = (lam / denom).sum(-1, keepdim=True)  # sum_c lambda_c / D_c
        return e * through + lam * loyal / denom

    # ------------------------------------------------------------------ draws
    def draw_sites(self) -> list[DrawSite]:
        """The sites drawn from in every step (the core caches their episodes at reset)."""
        return [self._site_counts, self._site_competitor] if self.competitor_moves else [self._site_counts]

    def sample(self, mean: torch.Tensor, key: StepDraw | torch.Tensor) -> torch.Tensor:
        """Poisson counts ``(B, K, C)`` with the given means, from the step's randomness handle."""
        u = self._site_counts.uniform(key)
        if self.normal_counts:
            z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
            return (mean + mean.sqrt() * z).round().clamp(min=0)
        mean = mean.clamp(min=1e-12)
        if self.shifted:
            # compare cumulative unnormalised pmf with u * exp(mean): one exp of the grid instead of two
            weights = torch.addcmul(self._neg_lgamma, self._k, mean.log().unsqueeze(-1)).exp_()
            threshold = (u * mean.exp()).unsqueeze(-1)
        else:
            weights = (torch.addcmul(self._neg_lgamma, self._k, mean.log().unsqueeze(-1)) - mean.unsqueeze(-1)).exp_()
            threshold = u.unsqueeze(-1)
        cdf = weights.cumsum_(-1)
        return torch.searchsorted(cdf, threshold).squeeze(-1).to(torch.float32)

    # ------------------------------------------------------------------ competitor
    def competitor_start(self, key: torch.Tensor) -> torch.Tensor:
        """Initial log deviation of the competitor price from its mean, ``(B, K)``."""
        if not self.competitor_moves or self._comp_start_sd == 0.0:
            return torch.zeros(key.shape[0], self.num_skus, dtype=torch.float32, device=self.device)
        return self._comp_start_sd * _normal(self._site_competitor_start.uniform(key))

    def competitor_step(self, deviation: torch.Tensor, key: StepDraw | torch.Tensor) -> torch.Tensor:
        """Next period's log deviation, ``(B, K)``."""
        if not self.competitor_moves:
            return deviation
        return self._comp_keep * deviation + self.cfg.demand.competitor.volatility * _normal(self._site_competitor.uniform(key))

    def competitor_ratio(self, deviation: torch.Tensor) -> torch.Tensor:
        """Competitor price as a multiple of list price, ``(B, K)``."""
        return torch.exp(deviation + self._comp_log_mean)


def _normal(u: torch.Tensor) -> torch.Tensor:
    """Standard normals ``(..., )`` from pairs of uniforms ``(..., 2)`` (Box-Muller, first output)."""
    return torch.sqrt(-2.0 * torch.log(u[..., 0])) * torch.cos((2 * math.pi) * u[..., 1])
