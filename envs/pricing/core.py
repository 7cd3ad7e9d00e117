"""Batched dynamics of the Pricing family: one period of multi-channel pricing for B seasons at once.

Order of events in a period ``t`` (every environment of the batch at once):

1. The action is decoded into a price per SKU and channel (a multiple of list
   price), a promotion budget per channel and a re-order quantity per SKU. A
   channel that may change prices only every ``change_every`` periods keeps its
   previous price in the other periods (its mask allows only that price; a Box
   action is overridden).
2. Re-orders enter the pipeline; what is due (after ``lead_time`` periods) is received.
3. Expected demand per SKU and channel follows from the prices, the reference
   prices, the competitor's price, the season and the promotions
   (:mod:`paretochain.envs.pricing.demand`); Poisson counts are drawn.
4. **Shared stock.** Every channel sells from the one inventory of the SKU. When the
   units asked for exceed the stock, the stock is split across channels in
   proportion to what each was asked, rounded down, and the units left by rounding
   go one each to the channels with the largest fractional shares (ties: the lower
   channel index). Unserved shoppers are lost.
5. Money: revenue, channel commissions, cost of goods sold, promotion spend,
   holding cost of the stock at period end, order-line costs.
6. Satisfaction (:mod:`paretochain.envs.pricing.objectives`), then reference prices
   are smoothed towards this period's prices and the competitor price moves.
7. In the last period, the cost value of the units left on hand or on order is
   charged to the ``leftover_inventory`` objective.

**Speed.** Whatever depends only on the instance is built once: per-period tables
(arrivals with season and decay, calendar, which channels hold their prices, the
season's end) and, with ladder actions, per-level tables of the price and of the
demand term it alone decides (``a - b x``, its exponential, or ``x^-e``). The
competitor ignores the policy, so its whole season is drawn at reset. Count
uniforms are cached per episode, masks are computed once per period and KPIs are
one raw matrix with a lazy linear map. Every shortcut gives the float32 values of
the direct computation, so an environment's episode depends only on its seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore, KPIs, ObservationLayout, nearest_allowed
from paretochain.envs.pricing.allocation import allocate, sell, sell_checked
from paretochain.envs.pricing.config import PricingConfig, per_sku
from paretochain.envs.pricing.demand import SMALL_TENSOR, PricingDemand, channel_sum, sku_sum
from paretochain.envs.pricing.reward import REWARDS, build_objectives
from paretochain.envs.pricing.types import PricingState
from paretochain.envs.reward import reward_weights
from paretochain.errors import ConfigError

KPI_NAMES = (
    "gross_margin",
    "revenue",
    "net_revenue",
    "commission",
    "cost_of_goods_sold",
    "promotion_spend",
    "holding_cost",
    "order_cost",
    "demand_units",
    "sales_units",
    "lost_units",
    "ordered_units",
    "fill_rate",
    "satisfaction",
    "price_jump",
    "price_gap",
    "stockout_share",
    "mean_price_ratio",
    "competitor_price_ratio",
    "on_hand_units",
    "leftover_value",
)

_SITE_DEMAND = 20
#: Largest per-season competitor table (entries over the batch) drawn at reset; above it the price moves step by step.
PATH_LIMIT = 8_000_000
#: Most actions of ``action.kind: discrete`` (the product of the ladder sizes of every choice).
JOINT_LIMIT = 65_536


def _batch(x: torch.Tensor, num_envs: int) -> torch.Tensor:
    """``x`` with its leading dimension expanded to the batch (``x`` itself when it already has it)."""
    return x if x.shape[0] == num_envs else x.expand(num_envs, *x.shape[1:])


class PricingCore(BatchedCore[PricingState]):
    """Batched pricing dynamics; see the module docstring for the order of events.

    Args:
        config: the environment's config.
        num_envs: batch size.
        device: torch device for every state tensor.
    """

    def __init__(self, config: PricingConfig, num_envs: int = 1, device: str | torch.device = "cpu") -> None:
        super().__init__(num_envs, device)
        cfg = self.config = config
        dev = self.device
        f32: dict[str, Any] = dict(dtype=torch.float32, device=dev)
        K, C = cfg.num_skus, len(cfg.channels)
        self.num_skus, self.num_channels = K, C
        self.horizon = cfg.horizon
        self.channel_names = [ch.name for ch in cfg.channels]
        self.list_price = np.array(per_sku(cfg.list_price, K))
        self.unit_cost = np.array(per_sku(cfg.unit_cost, K))
        self.initial_inventory = np.array(per_sku(cfg.initial_inventory, K))
        holding = np.array(per_sku(cfg.holding_cost, K))
        self.commission = np.array([ch.commission for ch in cfg.channels])
        self._list_price = torch.as_tensor(self.list_price, **f32).view(K, 1)
        self._unit_cost = torch.as_tensor(self.unit_cost, **f32)
        self._holding = torch.as_tensor(holding, **f32)
        self._keep_share = torch.as_tensor(1.0 - self.commission, **f32)
        self._commission = bool(self.commission.any())
        self._initial = torch.as_tensor(self.initial_inventory, **f32)
        self.uses_holding = bool(holding.any())

        # ---------------------------------------------------------------- actions
        act = cfg.action
        self.ladder_mode = act.kind in ("ladder", "discrete")  # choices from the ladders
        self.joint_actions = act.kind == "discrete"  # one Discrete index over every ladder choice
        self.price_ladder = np.array(act.price_ladder)
        floors = np.array([ch.price_floor if ch.price_floor is not None else 0.0 for ch in cfg.channels])
        self.change_every = np.array([ch.change_every for ch in cfg.channels])
        self.has_hold = bool((self.change_every > 1).any())
        self._change_every = torch.as_tensor(self.change_every, dtype=torch.int64, device=dev)
        self.promotion_levels = [np.array(ch.promotion_levels) for ch in cfg.channels]
        self.has_promotion = any(len(p) > 1 for p in self.promotion_levels)
        rep = cfg.replenishment
        self.has_replenishment = rep is not None
        self.lead_time = rep.lead_time if rep is not None else 0
        self.order_quantities = np.array(rep.order_quantities if rep is not None else [0.0])
        self._order_fixed = float(rep.order_fixed_cost) if rep is not None else 0.0
        n_price = K * C
        if self.ladder_mode:
            n = len(self.price_ladder)
            self.ladder_floor_mask = self.price_ladder[None, :] >= floors[:, None] - 1e-9  # (C, n)
            nvec = [n] * n_price
            if self.has_promotion:
                nvec += [len(p) for p in self.promotion_levels]
            if self.has_replenishment:
                nvec += [len(self.order_quantities)] * K
            self.ladder_nvec = np.array(nvec, dtype=np.int64)
            self.single_action_space: spaces.Space[Any] = spaces.MultiDiscrete(self.ladder_nvec)
            if self.joint_actions:
                self.single_action_space = spaces.Discrete(self._joint_size(nvec))
                # the ladder choices of every joint index, (n, D), and where each sits in the ladders' masks
                table = np.stack(np.unravel_index(np.arange(self.single_action_space.n), nvec), axis=1)
                self._joint_table = torch.as_tensor(table, dtype=torch.int64, device=dev)
                offsets = torch.as_tensor(np.cumsum(nvec) - np.asarray(nvec), device=dev)
                self._joint_columns = self._joint_table + offsets
            self.min_price_ratio = float(self.price_ladder[self.ladder_floor_mask.any(0)].min())
            self._ladder = torch.as_tensor(self.price_ladder, **f32)
            self._promo_ladder = torch.as_tensor(
                np.array(
                    [np.pad(p, (0, max(map(len, self.promotion_levels)) - len(p))) for p in self.promotion_levels]
                ),
                **f32,
            )
            self._order_ladder = torch.as_tensor(self.order_quantities, **f32)
            static = [np.broadcast_to(self.ladder_floor_mask[None], (K, C, n)).reshape(-1)]
            static += [np.ones(int(sum(nvec[n_price:])), dtype=bool)]
            self._static_mask = torch.as_tensor(np.concatenate(static), device=dev).unsqueeze(0)
            self._price_offsets = torch.arange(n_price, device=dev).view(1, K, C) * n
        else:
            low_p = np.maximum(act.box_low, floors)
            low = [np.broadcast_to(low_p[None, :], (K, C)).reshape(-1)]
            high = [np.full(n_price, act.box_high)]
            if self.has_promotion:
                low.append(np.zeros(C))
                high.append(np.array([p[-1] for p in self.promotion_levels]))
            if self.has_replenishment:
                low.append(np.zeros(K))
                high.append(np.full(K, self.order_quantities[-1]))
            self.single_action_space = spaces.Box(
                np.concatenate(low).astype(np.float32), np.concatenate(high).astype(np.float32), dtype=np.float32
            )
            self.min_price_ratio = float(low_p.min())
        self._n_price = n_price
        # entries of a ladder action (MultiDiscrete, or the choices behind a joint index), or of a Box action
        self._action_width = len(nvec) if self.ladder_mode else int(self.single_action_space.shape[0])  # type: ignore[index]
        channel = torch.arange(C, device=dev)
        self._earlier = channel.view(1, -1) < channel.view(-1, 1)

        # ---------------------------------------------------------------- demand
        self.demand = PricingDemand(cfg, dev, self.min_price_ratio, _SITE_DEMAND)
        self.use_competitor_path = self.demand.competitor_moves and num_envs * (cfg.horizon + 1) * K <= PATH_LIMIT
        self.register_draw_sites(*self.demand.draw_sites(self.use_competitor_path))
        self._smoothing = cfg.demand.reference_price.smoothing
        sat = cfg.satisfaction
        self._sat_weights = (sat.jump_weight, sat.gap_weight, sat.stockout_weight)

        # ---------------------------------------------------------------- observation
        lay = ObservationLayout()
        lay.add("on_hand", (K,), "units on hand per SKU, shared by all channels")
        if self.has_replenishment and self.lead_time > 0:
            lay.add(
                "pipeline",
                (K, self.lead_time),
                "units on order per SKU by periods until arrival (index 0 arrives next period)",
            )
        lay.add("price", (K, C), "last period's price per SKU and channel, multiple of list price")
        if self.demand.use_reference:
            lay.add("reference_price", (K, C), "customers' reference price per SKU and channel, multiple of list price")
        if self.demand.use_competitor:
            lay.add("competitor_price", (K,), "competitor's price this period per SKU, multiple of list price")
        lay.add("sales", (K, C), "units sold last period per SKU and channel")
        lay.add("calendar", (3,), "sin and cos of the seasonal phase, share of the season elapsed")
        if self.has_hold:
            lay.add("price_change_allowed", (C,), "1 where the channel may change its prices this period")
        self.observation_layout = lay
        obs_low = np.zeros(lay.size, dtype=np.float32)
        cal = lay.segments["calendar"]
        obs_low[cal.start : cal.start + 2] = -1.0
        self.single_observation_space = spaces.Box(
            obs_low, np.full(lay.size, np.inf, dtype=np.float32), dtype=np.float32
        )
        self._season_period = cfg.demand.seasonality_period

        # ---------------------------------------------------------------- objectives
        span = (self.price_ladder[-1] - self.price_ladder[0]) if self.ladder_mode else (act.box_high - act.box_low)
        max_stock = self.initial_inventory + cfg.horizon * self.order_quantities[-1]
        scale = {
            "stock_value": float((self.unit_cost * max_stock).sum()),
            "promotion": float(sum(p[-1] for p in self.promotion_levels)),
            "fixed": self._order_fixed * K if self.has_replenishment else 0.0,
            "holding": float((holding * max_stock).sum()),
            "worst_satisfaction": 1.0 - sat.jump_weight * span - sat.gap_weight * span * (C > 1) - sat.stockout_weight,
        }
        self.objective_names = list(cfg.objectives)
        try:
            self.objectives = build_objectives(self.objective_names, scale, cfg.horizon, cfg.reference_point)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._raw_names = self._raw_columns()
        kpi_map = self._kpi_map(self._raw_names)
        self._kpi_matrix = kpi_map.to(dev)
        weights, _ = reward_weights(REWARDS, self.objective_names, KPI_NAMES, cfg.horizon)
        rewards = kpi_map @ torch.as_tensor(weights, dtype=torch.float32)  # (raw, k)
        assert bool(((rewards != 0).sum(0) <= 1).all()), "every objective is one raw figure times a constant"
        self._reward_columns = rewards.abs().argmax(0).to(dev)
        self._reward_scale = rewards.sum(0).to(dev)
        self._zero, self._ones = torch.zeros(num_envs, **f32), torch.ones(num_envs, **f32)
        # constants as 0-dim tensors: the float32 values Python numbers would give, as cheaper operands
        self._zero_scalar, self._one = torch.zeros((), **f32), torch.ones((), **f32)
        s = self._smoothing
        self._smoothing_factors = (torch.tensor(s, **f32), torch.tensor(1.0 - s, **f32))
        # on the CPU a check of the stock is read at once, so a step can skip the rationing it makes moot
        # (with one channel the rationing is a minimum: nothing to skip)
        self._host_checks = self.device.type == "cpu" and self.num_channels > 1
        self._sell_constants = (self._zero_scalar, self._one, self._zero, self._ones)
        self._never = torch.zeros(num_envs, dtype=torch.bool, device=dev)
        self._mean_competitor = torch.full((num_envs,), cfg.demand.competitor.mean_ratio, **f32)

        # ---------------------------------------------------------------- per-period and per-level tables
        T = cfg.horizon
        steps = torch.arange(T + 1, device=dev)
        tf = steps.to(torch.float32)
        phase = tf * (2 * math.pi / self._season_period)
        self._calendar = torch.stack([phase.sin(), phase.cos(), tf / self.horizon], dim=1)  # (T + 1, 3)
        self._arrivals = self.demand.arrival_table(T)  # (T + 1, K, C): arrivals before promotion
        self._steady_arrivals = None if (self.demand.use_season or self.demand.use_decay) else self._arrivals[0]
        # large batches get batch-shaped copies of the small operands (cheaper than broadcasting them every step)
        self._large = num_envs * K * C > SMALL_TENSOR
        self._cell_sums, self._sku_sums = self._summed_figures()
        self._num_skus = torch.tensor(float(K), **f32)
        if self._large and self._steady_arrivals is not None:
            self._steady_arrivals = self._steady_arrivals.expand(num_envs, K, C).contiguous()
        self._allowed = (steps.unsqueeze(1) % self._change_every) == 0  # (T + 1, C)
        self._hold = (~self._allowed).view(T + 1, 1, C)
        self._allowed_f32 = self._allowed.to(torch.float32)  # (T + 1, C)
        self._last = (steps + 1) >= T  # (T + 1,): the period ends the season
        if self.demand.use_competitor and not self.demand.competitor_moves:
            still = self.demand.competitor_ratio(torch.zeros(1, K, **f32))
            self._still_competitor = (still, self.demand.outside_weight(still), still.mean(1).expand(num_envs))
        if self.ladder_mode:
            # per SKU, channel and ladder level: the price and the demand term that depends only on it
            levels = self._ladder.view(-1, 1, 1).expand(-1, K, C)  # (n, K, C)
            if not self.demand.mnl:
                term = torch.pow(levels, self.demand._neg_elasticity)
            else:
                term = self.demand.base_utility(levels)
                if not self.demand.use_reference:
                    term = torch.exp(term)
            self._level_price = levels.permute(1, 2, 0).reshape(-1).contiguous()  # (K*C*n,)
            self._level_term = term.permute(1, 2, 0).reshape(-1).contiguous()
            if self.has_promotion:
                self._promo_boost = self.demand.promotion_boost(self._promo_ladder.t()).t().contiguous()  # (C, levels)
            self._padded_width = max(nvec) + 2
            widths = np.asarray(nvec)
            self._nvec_padded_offsets = torch.as_tensor(
                np.arange(len(nvec)) * self._padded_width + 1, device=dev
            ).unsqueeze(0)
            dest = np.concatenate([d * self._padded_width + 1 + np.arange(w) for d, w in enumerate(widths)])
            self._mask_columns = torch.as_tensor(dest, device=dev)  # where each mask entry sits in the padded layout
            self._batch_mask = self._static_mask.expand(num_envs, -1).contiguous()
            if self.joint_actions:  # the joint indices the price floors allow
                joint = self._static_mask[:, self._joint_columns].all(2)
                self._batch_joint_mask = joint.expand(num_envs, -1).contiguous()
        else:
            space = self.single_action_space
            assert isinstance(space, spaces.Box)
            self._box_low = torch.as_tensor(space.low, device=dev).unsqueeze(0)
            self._box_high = torch.as_tensor(space.high, device=dev).unsqueeze(0)
        self._masks: torch.Tensor | None = None
        self.masks_fixed = self.ladder_mode and not self.has_hold  # only the price floors mask the ladder
        self._padded_masks: tuple[torch.Tensor | None, torch.Tensor] | None = None  # (masks, masks with refusing slots)

        # ---------------------------------------------------------------- state
        B = num_envs
        self._init_state(
            PricingState(
                **self.initial_keys(),
                on_hand=torch.zeros((B, K), **f32),
                pipeline=torch.zeros((B, K, self.lead_time), **f32),
                price=torch.ones((B, K, C), **f32),
                price_index=torch.zeros((B, K, C), dtype=torch.int64, device=dev),
                reference=torch.ones((B, K, C), **f32),
                competitor_deviation=torch.zeros((B, K), **f32),
                sales=torch.zeros((B, K, C), **f32),
                last_demand=torch.zeros((B, K, C), **f32),
                last_promotion=torch.zeros((B, C), **f32),
            )
        )
        # the competitor's season drawn at reset (a cache of the stream keys), period-major (T + 1, B, ...): log deviation,
        # price ratio, outside weight (1 + competitor's MNL weight), mean ratio
        self._competitor_paths: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.list_index = int(np.argmin(np.abs(self.price_ladder - 1.0)))

    # ------------------------------------------------------------------ reset / observe
    def _reset_envs(self, mask: torch.Tensor) -> None:
        m2, m3 = mask.view(-1, 1), mask.view(-1, 1, 1)
        self.state.on_hand = torch.where(m2, self._initial, self.state.on_hand)
        self.state.pipeline = torch.where(m3, 0.0, self.state.pipeline)
        self.state.price = torch.where(m3, 1.0, self.state.price)
        self.state.price_index = torch.where(m3, self.list_index, self.state.price_index)
        self.state.reference = torch.where(m3, 1.0, self.state.reference)
        self.state.sales = torch.where(m3, 0.0, self.state.sales)
        self.state.last_demand = torch.where(m3, 0.0, self.state.last_demand)
        self.state.last_promotion = torch.where(m2, 0.0, self.state.last_promotion)
        if self.demand.competitor_moves:
            start = self._competitor_start()
            if self.use_competitor_path:
                self._reset_competitor_paths(start, mask)
            self.state.competitor_deviation = torch.where(m2, start, self.state.competitor_deviation)

    def _competitor_start(self) -> torch.Tensor:
        """The competitor's log deviation at the start of every env's episode, ``(B, K)``."""
        return self.demand.competitor_start(_rng.mix32(self.state.stream_key ^ 0x5BD1E995))

    def _reset_competitor_paths(self, start: torch.Tensor, mask: torch.Tensor) -> None:
        """Draw the competitor's whole season for the environments that start over (it ignores the policy)."""
        assert self._episode_keys is not None
        deviation = self.demand.competitor_path(start, self._episode_keys[: self.horizon])  # (T + 1, B, K)
        ratio = self.demand.competitor_ratio(deviation)
        fresh = (deviation, ratio, self.demand.outside_weight(ratio), self._sku_mean(ratio))
        if self._competitor_paths is not None and mask is not self._all_envs and not bool(mask.all()):
            fresh = tuple(  # type: ignore[assignment]
                torch.where(mask.view(1, -1, *[1] * (new.dim() - 2)), new, old)
                for new, old in zip(fresh, self._competitor_paths)
            )
        self._competitor_paths = fresh

    def _stepped(self) -> None:
        self._masks = None  # the next period's masks

    def _state_replaced(self) -> None:
        super()._state_replaced()
        self._masks = None
        self._padded_masks = None
        if self.demand.competitor_moves and self.use_competitor_path:
            self._reset_competitor_paths(self._competitor_start(), self._all_envs)

    def reset(self, seeds: Sequence[int] | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        obs = super().reset(seeds, mask)
        self._masks = None  # the new period's masks
        return obs

    def _now(self, *tables: torch.Tensor, ahead: int = 0) -> list[torch.Tensor]:
        """Row ``t`` (``t + ahead``) of period-major, per-env tables ``(T + 1, B, ...)`` for every env."""
        draw = self.step_draw()  # it looks the rows up, and finds them once for all the tables
        return [draw.at_period(table[ahead:] if ahead else table) for table in tables]

    @property
    def competitor(self) -> torch.Tensor:
        """Log deviation of the competitor's price from its long-run mean this period, ``(B, K)``."""
        return self.state.competitor_deviation

    def _competitor_ratio_now(self) -> torch.Tensor:
        """The competitor's price ratio ``(B or 1, K)`` this period."""
        if self._competitor_paths is not None:
            return self._now(self._competitor_paths[1])[0]
        if not self.demand.competitor_moves:
            return self._still_competitor[0]
        return self.demand.competitor_ratio(self.state.competitor_deviation)

    def _competitor_now(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The outside weight ``(B or 1, K, 1)`` and the competitor's mean price ratio ``(B,)`` this period."""
        if self._competitor_paths is not None:
            _, _, outside, mean = self._competitor_paths
            outside, mean = self._now(outside, mean)
            return outside, mean
        if not self.demand.competitor_moves:
            return self._still_competitor[1:]
        ratio = self.demand.competitor_ratio(self.state.competitor_deviation)
        return self.demand.outside_weight(ratio), self._sku_mean(ratio)

    def _sku_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over the last (SKU) dimension, as the sum over the count: what ``mean`` computes on the CPU,
        at a fraction of its cost for a few SKUs."""
        return x.sum(-1) / self._num_skus

    def change_allowed(self) -> torch.Tensor:
        """Bool ``(B, C)``: channels that may change their prices in the current period."""
        return self.period_rows(self._allowed)

    def observe(self) -> torch.Tensor:
        st = self.state
        B = self.num_envs
        parts = [st.on_hand]
        if self.has_replenishment and self.lead_time > 0:
            parts.append(st.pipeline.reshape(B, -1))
        parts.append(st.price.reshape(B, -1))
        if self.demand.use_reference:
            parts.append(st.reference.reshape(B, -1))
        if self.demand.use_competitor:
            parts.append(_batch(self._competitor_ratio_now(), B))
        parts += [st.sales.reshape(B, -1), self.period_rows(self._calendar)]
        if self.has_hold:
            parts.append(self.period_rows(self._allowed_f32))
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ actions
    def action_masks(self) -> torch.Tensor | None:
        """Bool ``(B, sum(nvec))`` masks of the ladder actions, ``(B, n)`` of joint indices (None for Box actions).

        Computed once per period and shared by the calls of that period; a new tensor
        after every step or reset, never written in place.
        """
        if not self.ladder_mode:
            return None
        if self._masks is None:
            if not self.joint_actions:
                self._masks = self._ladder_masks()
            elif self.has_hold:
                # a joint index is allowed when every choice behind it is
                self._masks = self._ladder_masks()[:, self._joint_columns].all(2)
            else:
                self._masks = self._batch_joint_mask.clone()
        return self._masks

    def _ladder_masks(self) -> torch.Tensor:
        """Bool ``(B, sum(nvec))``: the allowed choices of every ladder (a new tensor)."""
        if not self.has_hold:
            return self._batch_mask.clone()  # a fresh tensor per period, as callers may keep it
        B, K, C = self.num_envs, self.num_skus, self.num_channels
        n = len(self.price_ladder)
        cols = self._n_price * n
        static = self._static_mask[:, :cols].view(1, K, C, n)
        current = torch.nn.functional.one_hot(self.state.price_index, n).bool()  # (B, K, C, n)
        hold = self.period_rows(self._hold).view(-1, 1, C, 1)
        price_mask = torch.where(hold, current, static).reshape(B, -1)
        return torch.cat([price_mask, self._static_mask[:, cols:].expand(B, -1)], dim=1)

    def fallback_actions(self, action: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Lenient mode's replacement of a forbidden choice: per ladder, the allowed level nearest to the one asked
        for (ties: the higher). That is the current price of a channel that holds its prices, the lowest level at
        or above a channel's price floor for a level below it; a joint index keeps its allowed choices."""
        if not self.joint_actions:
            return super().fallback_actions(action, masks)
        chosen = self._joint_table[action]
        ladders = self._ladder_masks()
        offsets = torch.as_tensor(np.cumsum(self.ladder_nvec) - self.ladder_nvec, device=self.device)
        allowed = ladders.gather(1, chosen + offsets)
        nearest = torch.where(allowed, chosen, nearest_allowed(chosen, ladders, self.ladder_nvec))
        return self.joint_index(nearest)

    def joint_index(self, choices: torch.Tensor) -> torch.Tensor:
        """The ``action.kind: discrete`` index ``(B,)`` of ladder choices ``(B, D)`` in the MultiDiscrete layout
        (the first choice varies slowest: ``np.ravel_multi_index`` order)."""
        strides = np.cumprod(np.concatenate([self.ladder_nvec[1:], [1]])[::-1])[::-1].copy()
        return (choices.long() * torch.as_tensor(strides, device=choices.device)).sum(-1)

    def ladder_masks_of(self, joint_masks: torch.Tensor) -> torch.Tensor:
        """The per-ladder masks ``(B, sum(nvec))`` behind joint-index masks ``(B, n)``: a level is allowed when some
        allowed joint index chooses it (exact for these masks, which are products of per-ladder masks)."""
        n, width = int(self._joint_table.shape[0]), int(self.ladder_nvec.sum())
        chooses = torch.zeros(n, width, dtype=torch.float32, device=joint_masks.device)
        chooses.scatter_(1, self._joint_columns.to(joint_masks.device), 1.0)
        return (joint_masks.to(torch.float32) @ chooses) > 0

    @staticmethod
    def _joint_size(nvec: Sequence[int]) -> int:
        """The number of joint indices over ladders of sizes ``nvec``; ConfigError above :data:`JOINT_LIMIT`."""
        size = math.prod(int(n) for n in nvec)
        if size > JOINT_LIMIT:
            sizes = " x ".join(str(int(n)) for n in nvec)
            raise ConfigError(
                f"action.kind 'discrete' joins {len(nvec)} choices ({sizes}) into {size} actions, more than "
                f"{JOINT_LIMIT}; use action.kind 'ladder' (MultiDiscrete) for this config"
            )
        return size

    def check_action(self, action: torch.Tensor) -> None:
        """Raise :class:`ActionError` naming the first offending environment and entry.

        Valid actions pass with a few tensor operations (one lookup in the masks laid out
        with a refusing slot on either side of every dimension); anything else goes through
        the base class's check, which names the problem.
        """
        shape = (self.num_envs, *(self.single_action_space.shape or ()))
        if tuple(action.shape) == shape and not self.joint_actions:
            if self.ladder_mode:
                if not action.is_floating_point() and action.dtype != torch.bool:
                    key = self.action_masks() if self.has_hold else None  # without holds the masks never change
                    if self._padded_masks is None or self._padded_masks[0] is not key:
                        padded = torch.zeros(
                            shape[0], shape[1] * self._padded_width, dtype=torch.bool, device=self.device
                        )
                        padded[:, self._mask_columns] = self._batch_mask if key is None else key
                        self._padded_masks = (key, padded)
                    index = action.clamp(-1, self._padded_width - 2) + self._nvec_padded_offsets
                    if bool(self._padded_masks[1].gather(1, index).all()):
                        return
            elif bool(((action >= self._box_low) & (action <= self._box_high)).all()):
                return
        super().check_action(action)

    def decode_action(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Price ratios ``(B, K, C)``, ladder indices (or None), promotion spend ``(B, C)`` and orders ``(B, K)``."""
        B, K, C = self.num_envs, self.num_skus, self.num_channels
        n_price = self._n_price
        promo: torch.Tensor | None = None
        orders: torch.Tensor | None = None
        if self.ladder_mode:
            action = self._joint_table[action.long()] if self.joint_actions else action.long()
            index = action[:, :n_price].reshape(B, K, C)
            price = self._ladder[index]
            pos = n_price
            if self.has_promotion:
                promo = self._promo_ladder.gather(1, action[:, pos : pos + C].t()).t()
                pos += C
            if self.has_replenishment:
                orders = self._order_ladder[action[:, pos : pos + K]]
            return price, index, promo, orders
        action = action.to(torch.float32)
        price = action[:, :n_price].reshape(B, K, C)
        pos = n_price
        if self.has_promotion:
            promo = action[:, pos : pos + C]
            pos += C
        if self.has_replenishment:
            orders = action[:, pos : pos + K].round()
        return price, None, promo, orders

    # ------------------------------------------------------------------ dynamics
    @staticmethod
    def allocate(stock: torch.Tensor, asked: torch.Tensor, earlier: torch.Tensor | None = None) -> torch.Tensor:
        """Units sold per channel ``(B, K, C)`` from stock ``(B, K)`` and units asked ``(B, K, C)``.

        Everything asked is served when the stock suffices; otherwise the stock is
        split in proportion to the units asked, rounded down, and the remaining units
        go one each to the channels with the largest fractional shares (lower channel
        index first on ties). ``earlier`` is the ``(C, C)`` bool matrix ``[j, i] = i < j``
        (built when not given).
        """
        return allocate(stock, asked, channel_sum(asked), earlier)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, KPIs]:
        st = self.state
        B, K, C = self.num_envs, self.num_skus, self.num_channels
        demand = self.demand
        n_price = self._n_price
        hold = self.period_rows(self._hold) if self.has_hold else None  # (B, 1, C)

        # decode the action; a held channel keeps its price
        promo: torch.Tensor | None = None
        boost: torch.Tensor | None = None
        orders: torch.Tensor | None = None
        index: torch.Tensor | None = None
        level_term: torch.Tensor | None = None
        if self.ladder_mode:
            if action.dtype != torch.int64:
                action = action.long()
            if self.joint_actions:  # the ladder choices behind the joint index
                action = self._joint_table.index_select(0, action.view(-1))
            index = (action[:, :n_price] if self._action_width > n_price else action).reshape(B, K, C)
            if hold is not None:
                index = torch.where(hold, st.price_index, index)
            cell = index + self._price_offsets
            price = self._level_price.take(cell)
            level_term = self._level_term.take(cell)
            pos = n_price
            if self.has_promotion:
                levels = action[:, pos : pos + C].t()
                promo = self._promo_ladder.gather(1, levels).t()
                boost = self._promo_boost.gather(1, levels).t()
                pos += C
            if self.has_replenishment:
                orders = self._order_ladder[action[:, pos : pos + K]]
        else:
            price, _, promo, orders = self.decode_action(action)
            if hold is not None:
                price = torch.where(hold, st.price, price)
            if promo is not None and demand.use_promotion:
                boost = demand.promotion_boost(promo)

        # re-orders and arrivals
        on_hand = st.on_hand
        order_cost: torch.Tensor | None = None
        ordered: torch.Tensor | None = None
        if orders is not None:
            full = torch.cat([st.pipeline, orders.unsqueeze(-1)], dim=-1)
            on_hand = on_hand + full[..., 0]
            st.pipeline = full[..., 1:]
            ordered = orders.sum(1)
            if self._order_fixed > 0:
                order_cost = (orders > 0).to(torch.float32).sum(1) * self._order_fixed

        # expected demand, counts and shared-stock sales
        if self._steady_arrivals is not None:
            lam = self._steady_arrivals
        else:
            lam = self.period_rows(self._arrivals)  # (B, K, C)
        if boost is not None:
            lam = lam * boost.unsqueeze(1)
        comp_mean: torch.Tensor = self._mean_competitor
        if not demand.mnl:
            mean = lam * (level_term if level_term is not None else torch.pow(price, demand._neg_elasticity))
        else:
            if level_term is not None and not demand.use_reference:
                weight = level_term  # exp(a - b x) of the ladder level
            else:
                v = level_term if level_term is not None else demand.base_utility(price)
                if demand.use_reference:
                    v = demand.reference_utility(v, price, st.reference)
                weight = torch.exp(v)
            outside = self._one
            if demand.use_competitor:
                outside, comp_mean = self._competitor_now()
            mean = demand.choice_mean(weight, lam, outside)
        asked = demand.sample(mean, self.step_draw())
        total = asked[..., 0] if C == 1 else channel_sum(asked)
        demand_units = sku_sum(total)  # whole units: exact in any order
        # the stock is checked on the host on the CPU, not on a GPU (it would wait for the device)
        seller = sell_checked if self._host_checks else sell
        sales, sold, sales_units, stockout, fill_rate = seller(
            on_hand, asked, total, demand_units, self._earlier, self._sell_constants
        )
        on_hand = on_hand - sold
        st.on_hand = on_hand

        # money and prices, summed per env: the figures over cells (SKU x channel) in one reduction, those over
        # SKUs in another (each row of weights turns a quantity into its figure; means weigh by 1 / count)
        sold_at = price * sales  # revenue per cell in list prices
        per_cell = {"revenue": sold_at, "net_revenue": sold_at, "mean_price_ratio": price}
        per_cell["price_jump"] = (price - st.price).abs()
        stock_left = on_hand + st.pipeline.sum(-1) if self.lead_time > 0 else on_hand
        per_sku = {"cost_of_goods_sold": sold, "leftover_value": stock_left, "on_hand_units": on_hand}
        per_sku["holding_cost"] = on_hand
        if C == 2:
            per_sku["price_gap"] = (price[..., 1] - price[..., 0]).abs()  # |x_1 - x_2|: the value of max - min
        elif C > 2:
            # (aminmax and max(dim) enter a thread pool even for tiny tensors)
            per_sku["price_gap"] = price.amax(-1) - price.amin(-1)
        sums: dict[str, torch.Tensor] = {}
        for quantities, (names, weights) in ((per_cell, self._cell_sums), (per_sku, self._sku_sums)):
            stacked = torch.stack([quantities[name] for name in names], dim=1) * weights
            # one cell (one SKU): the figures are the entries themselves, read as a view instead of summed
            summed = (
                stacked.view(B, -1) if stacked.shape[2:].numel() == 1 else stacked.sum(tuple(range(2, stacked.dim())))
            )
            sums.update(zip(names, summed.unbind(1)))
        revenue, cogs, jump = sums["revenue"], sums["cost_of_goods_sold"], sums["price_jump"]
        net_revenue = sums.get("net_revenue", revenue)
        spend = promo.sum(1) if promo is not None else None
        holding = sums.get("holding_cost")
        margin = net_revenue - cogs
        for cost in (spend, holding, order_cost):
            if cost is not None:
                margin = margin - cost

        # satisfaction (terms with weight 0 are left out, weights of 1 not multiplied: the same float32 values)
        gap = sums.get("price_gap")
        satisfaction: torch.Tensor | None = None
        for weight_of, term in zip(self._sat_weights, (jump, gap, stockout)):
            if weight_of == 0 or term is None or (term is self._zero and satisfaction is not None):
                continue
            term = term if weight_of == 1.0 else weight_of * term
            satisfaction = self._one - term if satisfaction is None else satisfaction - term

        # state updates
        if demand.use_reference:
            keep, pull = self._smoothing_factors
            st.reference = torch.addcmul(pull * price, keep, st.reference)  # keep r + pull x
        if self._competitor_paths is not None:  # the season drawn at reset: the deviation of the next period
            st.competitor_deviation = self._now(self._competitor_paths[0], ahead=1)[0]
        elif demand.competitor_moves:
            st.competitor_deviation = demand.competitor_step(st.competitor_deviation, self.step_draw())
        st.price = price
        if index is not None:
            st.price_index = index
        st.sales = sales
        st.last_demand = asked
        if promo is not None:
            st.last_promotion = promo

        # the season's end: truncation, and the cost value of the stock left
        truncated = self.period_rows(self._last)
        leftover = torch.where(truncated, sums["leftover_value"], self._zero)

        columns = {
            "gross_margin": margin,
            "revenue": revenue,
            "net_revenue": net_revenue,
            "cost_of_goods_sold": cogs,
            "promotion_spend": spend,
            "holding_cost": holding,
            "order_cost": order_cost,
            "demand_units": demand_units,
            "sales_units": sales_units,
            "ordered_units": ordered,
            "fill_rate": fill_rate,
            "satisfaction": satisfaction if satisfaction is not None else self._ones,
            "price_jump": jump,
            "price_gap": gap,
            "stockout_share": stockout,
            "mean_price_ratio": sums["mean_price_ratio"],
            "competitor_price_ratio": comp_mean,
            "on_hand_units": sums["on_hand_units"],
            "leftover_value": leftover,
        }
        raw = torch.stack([columns[name] for name in self._raw_names], dim=1)
        kpis = KPIs(KPI_NAMES, raw=raw, linear_map=self._kpi_matrix)
        reward = raw.index_select(1, self._reward_columns) * self._reward_scale
        # the season is finite: its last period ends the episode (terminated; no value after it)
        return reward, truncated, self._never, kpis

    def _summed_figures(self) -> tuple[tuple[list[str], torch.Tensor], tuple[list[str], torch.Tensor]]:
        """The figures :meth:`_step` sums over cells ``(K, C)`` and over SKUs ``(K,)``: their names and the
        weights that turn the quantity behind each into it, ``(n, K, C)`` and ``(n, K)`` (batch-shaped copies
        for large batches)."""
        K, C = self.num_skus, self.num_channels
        f32: dict[str, Any] = dict(dtype=torch.float32, device=self.device)
        ones = torch.ones(K, C, **f32)
        cells: dict[str, torch.Tensor] = {"revenue": self._list_price * ones}
        if self._commission:
            cells["net_revenue"] = self._list_price * self._keep_share
        cells["mean_price_ratio"] = cells["price_jump"] = ones / (K * C)
        skus: dict[str, torch.Tensor] = {"cost_of_goods_sold": self._unit_cost, "leftover_value": self._unit_cost}
        skus["on_hand_units"] = torch.ones(K, **f32)
        if self.uses_holding:
            skus["holding_cost"] = self._holding
        if C > 1:
            skus["price_gap"] = torch.full((K,), 1.0 / K, **f32)
        figures = []
        for weights in (cells, skus):
            stacked = torch.stack(list(weights.values()))
            if self._large:
                stacked = stacked.expand(self.num_envs, *stacked.shape).contiguous()
            figures.append((list(weights), stacked))
        return figures[0], figures[1]

    def _raw_columns(self) -> list[str]:
        """The per-step figures :meth:`_step` computes (the others are sums of two of them, or zero), in order."""
        absent = set()
        if not self.has_promotion:
            absent.add("promotion_spend")
        if not self.uses_holding:
            absent.add("holding_cost")
        if not (self.has_replenishment and self._order_fixed > 0):
            absent.add("order_cost")
        if not self.has_replenishment:
            absent.add("ordered_units")
        if self.num_channels == 1:
            absent.add("price_gap")
        derived = {"commission", "lost_units"}
        return [name for name in KPI_NAMES if name not in absent and name not in derived]

    @staticmethod
    def _kpi_map(raw: list[str]) -> torch.Tensor:
        """``(len(raw), len(KPI_NAMES))`` float32 matrix with ``kpis = raw @ matrix``.

        Every KPI is a raw figure, zero, or the difference of two raw figures, so the
        product reproduces the directly computed float32 values exactly.
        """
        combos: dict[str, dict[str, float]] = {name: {name: 1.0} for name in KPI_NAMES}
        combos["commission"] = {"revenue": 1.0, "net_revenue": -1.0}
        combos["lost_units"] = {"demand_units": 1.0, "sales_units": -1.0}
        matrix = torch.zeros(len(raw), len(KPI_NAMES), dtype=torch.float32)
        for j, name in enumerate(KPI_NAMES):
            for term, coef in combos[name].items():
                if term in raw:
                    matrix[raw.index(term), j] = coef
        return matrix

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        i = env_index
        return {
            "t": np.array(int(self.state.t[i])),
            "on_hand": self.state.on_hand[i].cpu().numpy(),
            "pipeline": self.state.pipeline[i].sum(-1).cpu().numpy(),
            "price": (self.state.price[i] * self._list_price).cpu().numpy(),
            "price_ratio": self.state.price[i].cpu().numpy(),
            "reference_ratio": self.state.reference[i].cpu().numpy(),
            "competitor_ratio": self.demand.competitor_ratio(self.competitor[i : i + 1])[0].cpu().numpy(),
            "sales": self.state.sales[i].cpu().numpy(),
            "demand": self.state.last_demand[i].cpu().numpy(),
            "promotion": self.state.last_promotion[i].cpu().numpy(),
        }
