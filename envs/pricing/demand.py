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
Large CPU batches search a short head of the grid first and the full grid only
for the draws beyond it; the counts are the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from paretochain.envs._rng import DrawSite, StepDraw
from paretochain.envs.pricing.config import PricingConfig, per_sku

#: Largest count grid; beyond it counts use a rounded normal approximation.
MAX_GRID = 1024
#: Tail probability left out of the count grid.
TAIL = 1e-10
#: Elements below which a tensor is cheaper to reduce with one ``sum`` than with slices.
SMALL_TENSOR = 4096
#: Grid entries (draws times grid length) above which a CPU batch searches a short head of the grid first.
HEAD_SEARCH_ABOVE = 16_384
#: Probability, at the instance's demand at list price, that a draw lies beyond the head of the grid.
HEAD_TAIL = 0.01


def channel_sum(x: torch.Tensor, keepdim: bool = False, small: int = SMALL_TENSOR) -> torch.Tensor:
    """Sum of a float tensor over its last (channel) dimension.

    Tensors of more than ``small`` elements with two channels add the two slices, and one
    channel is returned as it is: the same float32 values as ``sum``, without the cost of a
    reduction kernel over a short trailing dimension. The result may be a view of ``x``:
    callers do not write into it. (TorchScript compiles this function; it reads no module constant.)
    """
    if x.shape[-1] == 1:  # one channel: the sum is the entry itself (a view, not a reduction kernel)
        return x if keepdim else x[..., 0]
    if x.shape[-1] == 2 and x.numel() > small:
        first, second = x.unbind(-1)
        total = first + second
        return total.unsqueeze(-1) if keepdim else total
    return x.sum(-1, keepdim=keepdim)


def sku_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of a ``(B, K)`` tensor over its SKUs: ``(B,)``; for one SKU the entries themselves, as a view
    (callers do not write into it)."""
    return x[:, 0] if x.shape[1] == 1 else x.sum(1)


def poisson_grid_size(max_mean: float) -> int:
    """Smallest ``G`` with ``P(Poisson(max_mean) >= G) < TAIL`` (capped above ``MAX_GRID``)."""
    return poisson_quantile(max_mean, TAIL)


def poisson_quantile(mean: float, tail: float) -> int:
    """Smallest ``g`` with ``P(Poisson(mean) >= g) < tail``."""
    if mean <= 0:
        return 1
    log_p, k = -mean, 0
    cdf = math.exp(log_p)
    while 1.0 - cdf >= tail and k < MAX_GRID:
        k += 1
        log_p += math.log(mean) - math.log(k)
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
        f32: dict[str, Any] = dict(dtype=torch.float32, device=device)
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
        self._loss_weight = torch.tensor(ref.loss_weight, **f32)
        self._gain_weight = torch.tensor(ref.gain_weight, **f32)
        comp = d.competitor
        self.use_competitor = self.mnl and comp.attractiveness > -20
        self.competitor_moves = comp.volatility > 0
        self._neg_elasticity = torch.as_tensor(per_sku(d.elasticity, K), **f32).view(K, 1).neg()

        peak = (
            rate
            * (1 + d.seasonality_amplitude)
            * (1 + max(ch.promotion_lift if len(ch.promotion_levels) > 1 else 0.0 for ch in cfg.channels))
        )
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
        # 0, 1 and the smallest mean as 0-dim tensors: the float32 values Python numbers would give, cheaper operands
        self._zero, self._one = torch.zeros((), **f32), torch.ones((), **f32)
        self._tiny_mean = torch.tensor(1e-12, **f32)
        self._k = k
        self._neg_lgamma = -torch.lgamma(k + 1)
        self._site_counts = DrawSite(site_id, (K, C), device)
        self._site_competitor = DrawSite(site_id + 1, (K, 2), device)
        self._site_competitor_start = DrawSite(site_id + 2, (K, 2), device)
        self._comp_log_mean = math.log(comp.mean_ratio)
        self._comp_keep = 1.0 - comp.reversion
        stationary = comp.volatility**2 / (1.0 - self._comp_keep**2) if self._comp_keep < 1.0 else 0.0
        self._comp_start_sd = math.sqrt(stationary)
        # the head of the grid searched first in large batches: covers the demand at list price but for HEAD_TAIL
        with torch.inference_mode():
            ones = torch.ones(1, K, C, **f32)
            at_list = self.expected_demand(
                ones, torch.zeros(1, dtype=torch.int64, device=device), ones, ones[..., 0] * comp.mean_ratio
            )
        self.head_size = min(self.grid_size, max(4, poisson_quantile(float(at_list.max()), HEAD_TAIL)))

    # ------------------------------------------------------------------ arrivals and choice
    def period_factor(self, t: torch.Tensor) -> torch.Tensor:
        """Season and decay factor of the arrivals in periods ``t`` (float32, the shape of ``t``)."""
        d = self.cfg.demand
        tf = t.to(torch.float32)
        factor = torch.ones_like(tf)
        if self.use_season:
            factor = factor + d.seasonality_amplitude * torch.sin(tf * (2 * math.pi / d.seasonality_period))
        if self.use_decay:
            factor = factor * torch.pow(1.0 - d.decay, tf)
        return factor

    def arrival_table(self, horizon: int) -> torch.Tensor:
        """Expected arrivals before promotions of every period ``0..horizon``, ``(horizon + 1, K, C)``.

        Row ``t`` holds :meth:`arrivals` of period ``t``, computed once for the instance, so
        every environment of any batch sees the same float32 factors (``torch.pow`` can round
        the last bit differently depending on where an element sits in a tensor).
        """
        rate = self._rate.unsqueeze(0)
        if not (self.use_season or self.use_decay):
            return rate.expand(horizon + 1, -1, -1).contiguous()
        t = torch.arange(horizon + 1, device=self.device)
        return rate * self.period_factor(t).view(-1, 1, 1)

    def promotion_boost(self, promotion_spend: torch.Tensor) -> torch.Tensor:
        """Relative arrivals ``1 + lift (1 - exp(-spend / saturation))`` per channel, the shape of ``promotion_spend``."""
        return 1.0 + self._lift * (1.0 - torch.exp(-promotion_spend / self._saturation))

    def arrivals(self, t: torch.Tensor, promotion_spend: torch.Tensor | None) -> torch.Tensor:
        """Expected shoppers per SKU and channel of arrival in period ``t``, ``(B, K, C)``."""
        rate = self._rate.unsqueeze(0)
        if self.use_season or self.use_decay:
            rate = rate * self.period_factor(t).view(-1, 1, 1)
        if self.use_promotion and promotion_spend is not None:
            rate = rate * self.promotion_boost(promotion_spend).unsqueeze(1)
        return rate

    def base_utility(self, price_ratio: torch.Tensor) -> torch.Tensor:
        """MNL utility ``a_j - b_j x_j`` of each channel before the reference effect (same shape as ``price_ratio``)."""
        return self._a - self._b * price_ratio

    def reference_utility(
        self, utility: torch.Tensor, price_ratio: torch.Tensor, reference_ratio: torch.Tensor
    ) -> torch.Tensor:
        """Add the reference-price effect: ``- loss max(x - r, 0) + gain max(r - x, 0)``.

        Written as ``utility - slope * (x - r)`` with the slope ``loss`` above the reference and
        ``gain`` below it: the same float32 values as the two clamped terms, in fewer operations.
        """
        gap = price_ratio - reference_ratio
        slope = torch.where(gap > self._zero, self._loss_weight, self._gain_weight)
        return torch.addcmul(utility, slope, gap, value=-1)

    def competitor_weight(self, competitor_ratio: torch.Tensor) -> torch.Tensor:
        """MNL weight ``exp(a_comp - b_comp x_comp)`` of buying from the competitor, the shape of ``competitor_ratio``."""
        comp = self.cfg.demand.competitor
        return torch.exp(comp.attractiveness - comp.price_sensitivity * competitor_ratio)

    def outside_weight(self, competitor_ratio: torch.Tensor | None) -> torch.Tensor:
        """MNL weight of the options outside the channels, ``1 + exp(v_comp)``, ``(.., K, 1)`` (0-dim 1 without a competitor)."""
        if competitor_ratio is None:
            return self._one
        return (self._one + self.competitor_weight(competitor_ratio)).unsqueeze(-1)

    def choice_mean(self, weight: torch.Tensor, arrivals: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
        """Units asked per channel ``sum_c lambda_c P(c -> j)`` from the channel weights ``exp(v_j)`` ``(.., K, C)``.

        ``outside`` is :meth:`outside_weight`: not buying, plus the competitor where there is one.
        """
        base = outside + channel_sum(weight, keepdim=True)
        loyal = weight * self._loyal  # extra weight of the home channel
        denom = base + loyal  # (.., K, C): denominator for shoppers arriving at each channel
        through = channel_sum(arrivals / denom, keepdim=True)  # sum_c lambda_c / D_c
        return torch.addcdiv(weight * through, arrivals * loyal, denom)

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
        v = self.base_utility(price_ratio)
        if self.use_reference and reference_ratio is not None:
            v = self.reference_utility(v, price_ratio, reference_ratio)
        outside = self.outside_weight(competitor_ratio if self.use_competitor else None)
        return self.choice_mean(torch.exp(v), lam, outside)

    # ------------------------------------------------------------------ draws
    def draw_sites(self, competitor_path: bool) -> list[DrawSite]:
        """The sites drawn from in every step (the core caches their episodes at reset).

        With ``competitor_path`` the competitor's shocks are drawn for the whole season
        at reset (:meth:`competitor_path`), so only the counts are drawn per step.
        """
        stepped = self.competitor_moves and not competitor_path
        return [self._site_counts, self._site_competitor] if stepped else [self._site_counts]

    def sample(self, mean: torch.Tensor, key: StepDraw | torch.Tensor) -> torch.Tensor:
        """Poisson counts ``(B, K, C)`` with the given means, from the step's randomness handle.

        The count is the number of grid points ``k`` whose cumulative (unnormalised)
        probability lies below the uniform. On the CPU, large batches first search a
        short head of the grid and redo the full grid only for the few draws beyond it:
        the head's cumulative sums are the first entries of the full grid's, so the
        counts are identical to the full search (:meth:`count_on_grid`).
        """
        u = self._site_counts.uniform(key)
        if self.normal_counts:
            z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
            return (mean + mean.sqrt() * z).round().clamp(min=0)
        mean = torch.maximum(mean, self._tiny_mean)
        threshold = u * mean.exp() if self.shifted else u
        if (
            mean.numel() * self.grid_size <= HEAD_SEARCH_ABOVE
            or self.head_size >= self.grid_size
            or mean.device.type != "cpu"
        ):
            # the number of cumulative weights below the uniform, as float32 counts: a binary search on the
            # CPU (the cheaper kernel there), a comparison with the whole grid on other devices
            if mean.device.type == "cpu":
                counts = self.count_on_grid(mean.log(), mean, threshold, self.grid_size)
                return counts.to(torch.float32)
            cdf = self.cdf_on_grid(mean.log(), mean, self.grid_size)
            return (cdf < threshold.unsqueeze(-1)).sum(-1, dtype=torch.float32)
        shape = mean.shape
        mean, threshold = mean.reshape(-1), threshold.reshape(-1)
        log_mean = mean.log()
        head = self.head_size
        counts = self.count_on_grid(log_mean, mean, threshold, head)
        beyond = torch.nonzero(counts == head).squeeze(1)
        if beyond.numel():
            counts[beyond] = self.count_on_grid(log_mean[beyond], mean[beyond], threshold[beyond], self.grid_size)
        return counts.to(torch.float32).view(shape)

    def count_on_grid(
        self, log_mean: torch.Tensor, mean: torch.Tensor, threshold: torch.Tensor, size: int
    ) -> torch.Tensor:
        """Inverse-transform counts (int64) on the grid ``0..size-1``: how many cumulative weights lie below ``threshold``."""
        cdf = self.cdf_on_grid(log_mean, mean, size)
        # (searchsorted copies, with a warning, what is not contiguous)
        return torch.searchsorted(cdf.contiguous(), threshold.unsqueeze(-1).contiguous()).squeeze(-1)

    def cdf_on_grid(self, log_mean: torch.Tensor, mean: torch.Tensor, size: int) -> torch.Tensor:
        """Cumulative weights ``(..., size)`` of the counts ``0..size-1`` at the given means.

        Weights are ``exp(k log m - log k!)`` compared with ``u exp(m)`` when shifted, else
        ``exp(k log m - m - log k!)`` compared with ``u``; float32 weights, cumulated by
        ``cumsum`` (which accumulates in float64 on the CPU), so the first ``size`` cumulative
        sums do not depend on the grid's length.
        """
        full = size == self.grid_size
        k, neg_lgamma = (self._k, self._neg_lgamma) if full else (self._k[:size], self._neg_lgamma[:size])
        weights = torch.addcmul(neg_lgamma, k, log_mean.unsqueeze(-1))
        if not self.shifted:
            weights = weights - mean.unsqueeze(-1)
        return weights.exp_().cumsum_(-1)

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
        return self._comp_keep * deviation + self.cfg.demand.competitor.volatility * _normal(
            self._site_competitor.uniform(key)
        )

    def competitor_path(self, start: torch.Tensor, step_keys: torch.Tensor) -> torch.Tensor:
        """Log deviations of a whole season, period-major ``(T + 1, B, K)``, from the start ``(B, K)`` and the
        step keys, period-major ``(T, B)``.

        The competitor ignores the policy, so its season is drawn at reset: entry ``t + 1``
        equals :meth:`competitor_step` of entry ``t`` with the keys of step ``t``.
        """
        shocks = self.cfg.demand.competitor.volatility * _normal(self._site_competitor.uniform(step_keys))  # (T, B, K)
        keep = torch.tensor(self._comp_keep, dtype=torch.float32, device=start.device)  # a cheaper operand, same value
        path = [start]
        for shock in shocks.unbind(0):  # the recursion itself: two operations per period
            path.append(keep * path[-1] + shock)
        return torch.stack(path, dim=0)

    def competitor_ratio(self, deviation: torch.Tensor) -> torch.Tensor:
        """Competitor price as a multiple of list price, ``(B, K)``."""
        return torch.exp(deviation + self._comp_log_mean)


def _normal(u: torch.Tensor) -> torch.Tensor:
    """Standard normals ``(..., )`` from pairs of uniforms ``(..., 2)`` (Box-Muller, first output)."""
    return torch.sqrt(-2.0 * torch.log(u[..., 0])) * torch.cos((2 * math.pi) * u[..., 1])
