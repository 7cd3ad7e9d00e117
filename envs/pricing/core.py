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
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore, KPIs, ObservationLayout
from paretochain.envs.pricing.config import PricingConfig, per_sku
from paretochain.envs.pricing.demand import PricingDemand
from paretochain.envs.pricing.objectives import build_objectives, reward_matrix
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


class PricingCore(BatchedCore):
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
        f32 = dict(dtype=torch.float32, device=dev)
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
        self._initial = torch.as_tensor(self.initial_inventory, **f32)
        self.uses_holding = bool(holding.any())

        # ---------------------------------------------------------------- actions
        act = cfg.action
        self.ladder_mode = act.kind == "ladder"
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
            self.single_action_space = spaces.MultiDiscrete(np.array(nvec, dtype=np.int64))
            self.min_price_ratio = float(self.price_ladder[self.ladder_floor_mask.any(0)].min())
            self._ladder = torch.as_tensor(self.price_ladder, **f32)
            self._promo_ladder = torch.as_tensor(np.array([np.pad(p, (0, max(map(len, self.promotion_levels)) - len(p))) for p in self.promotion_levels]), **f32)
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

        # ---------------------------------------------------------------- demand
        self.demand = PricingDemand(cfg, dev, self.min_price_ratio, _SITE_DEMAND)
        self.register_draw_sites(*self.demand.draw_sites())
        self._smoothing = cfg.demand.reference_price.smoothing
        sat = cfg.satisfaction
        self._sat_weights = (sat.jump_weight, sat.gap_weight, sat.stockout_weight)

        # ---------------------------------------------------------------- observation
        lay = ObservationLayout()
        lay.add("on_hand", (K,), "units on hand per SKU, shared by all channels")
        if self.has_replenishment and self.lead_time > 0:
            lay.add("pipeline", (K, self.lead_time), "units on order per SKU by periods until arrival (index 0 arrives next period)")
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
        self.single_observation_space = spaces.Box(obs_low, np.full(lay.size, np.inf, dtype=np.float32), dtype=np.float32)
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
        self._reward_matrix = reward_matrix(self.objective_names, KPI_NAMES, cfg.horizon, dev)
        self._zero = torch.zeros(num_envs, **f32)

        # ---------------------------------------------------------------- state
        B = num_envs
        self.on_hand = torch.zeros((B, K), **f32)
        self.pipeline = torch.zeros((B, K, self.lead_time), **f32)
        self.price = torch.ones((B, K, C), **f32)
        self.price_index = torch.zeros((B, K, C), dtype=torch.int64, device=dev)
        self.reference = torch.ones((B, K, C), **f32)
        self.competitor = torch.zeros((B, K), **f32)
        self.sales = torch.zeros((B, K, C), **f32)
        self.last_demand = torch.zeros((B, K, C), **f32)
        self.last_promotion = torch.zeros((B, C), **f32)
        self.list_index = int(np.argmin(np.abs(self.price_ladder - 1.0)))

    # ------------------------------------------------------------------ reset / observe
    def _reset_envs(self, mask: torch.Tensor) -> None:
        m2, m3 = mask.view(-1, 1), mask.view(-1, 1, 1)
        self.on_hand = torch.where(m2, self._initial, self.on_hand)
        self.pipeline = torch.where(m3, 0.0, self.pipeline)
        self.price = torch.where(m3, 1.0, self.price)
        self.price_index = torch.where(m3, self.list_index, self.price_index)
        self.reference = torch.where(m3, 1.0, self.reference)
        self.sales = torch.where(m3, 0.0, self.sales)
        self.last_demand = torch.where(m3, 0.0, self.last_demand)
        self.last_promotion = torch.where(m2, 0.0, self.last_promotion)
        if self.demand.competitor_moves:
            start = self.demand.competitor_start(_rng.mix32(self.stream_key ^ 0x5BD1E995))
            self.competitor = torch.where(m2, start, self.competitor)

    def change_allowed(self) -> torch.Tensor:
        """Bool ``(B, C)``: channels that may change their prices in the current period."""
        return (self.t.unsqueeze(1) % self._change_every) == 0

    def observe(self) -> torch.Tensor:
        B = self.num_envs
        tf = self.t.to(torch.float32)
        phase = tf * (2 * math.pi / self._season_period)
        parts = [self.on_hand]
        if self.has_replenishment and self.lead_time > 0:
            parts.append(self.pipeline.reshape(B, -1))
        parts.append(self.price.reshape(B, -1))
        if self.demand.use_reference:
            parts.append(self.reference.reshape(B, -1))
        if self.demand.use_competitor:
            parts.append(self.demand.competitor_ratio(self.competitor))
        parts += [self.sales.reshape(B, -1), torch.stack([phase.sin(), phase.cos(), tf / self.horizon], dim=1)]
        if self.has_hold:
            parts.append(self.change_allowed().to(torch.float32))
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ actions
    def action_masks(self) -> torch.Tensor | None:
        if not self.ladder_mode:
            return None
        if not self.has_hold:
            return self._static_mask.expand(self.num_envs, -1).clone()  # callers may keep it: no shared storage
        B, K, C = self.num_envs, self.num_skus, self.num_channels
        n = len(self.price_ladder)
        hold = ~self.change_allowed()  # (B, C)
        cols = self._n_price * n
        static = self._static_mask[:, :cols].view(1, K, C, n)
        current = torch.nn.functional.one_hot(self.price_index, n).bool()  # (B, K, C, n)
        price_mask = torch.where(hold.view(B, 1, C, 1), current, static).reshape(B, -1)
        return torch.cat([price_mask, self._static_mask[:, cols:].expand(B, -1)], dim=1)

    def decode_action(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Price ratios ``(B, K, C)``, ladder indices (or None), promotion spend ``(B, C)`` and orders ``(B, K)``."""
        B, K, C = self.num_envs, self.num_skus, self.num_channels
        n_price = self._n_price
        promo: torch.Tensor | None = None
        orders: torch.Tensor | None = None
        if self.ladder_mode:
            action = action.long()
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
    def allocate(stock: torch.Tensor, asked: torch.Tensor) -> torch.Tensor:
        """Units sold per channel ``(B, K, C)`` from stock ``(B, K)`` and units asked ``(B, K, C)``.

        Everything asked is served when the stock suffices; otherwise the stock is
        split in proportion to the units asked, rounded down, and the remaining units
        go one each to the channels with the largest fractional shares (lower channel
        index first on ties).
        """
        if asked.shape[-1] == 1:
            return torch.minimum(asked, stock.unsqueeze(-1))
        total = asked.sum(-1)
        short = total > stock
        share = asked * (stock / total.clamp(min=1.0)).unsqueeze(-1)
        floor = share.floor()
        left = (stock - floor.sum(-1)).unsqueeze(-1)
        frac = share - floor
        C = asked.shape[-1]
        earlier = torch.ones(C, C, dtype=torch.bool, device=asked.device).tril(-1)  # [j, i]: i < j
        fi, fj = frac.unsqueeze(-2), frac.unsqueeze(-1)  # (.., 1, C) over i, (.., C, 1) over j
        ahead = ((fi > fj) | ((fi == fj) & earlier)).sum(-1)  # channels served before j
        rationed = floor + (ahead < left).to(asked.dtype)
        return torch.where(short.unsqueeze(-1), rationed, asked)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, KPIs]:
        B, C = self.num_envs, self.num_channels
        key = self.step_draw()
        zero = self._zero
        price, index, promo, orders = self.decode_action(action)
        if self.has_hold:
            hold = (~self.change_allowed()).view(B, 1, C)
            price = torch.where(hold, self.price, price)
            if index is not None:
                index = torch.where(hold, self.price_index, index)

        # re-orders and arrivals
        on_hand = self.on_hand
        order_cost = zero
        ordered = zero
        if orders is not None:
            full = torch.cat([self.pipeline, orders.unsqueeze(-1)], dim=-1)
            on_hand = on_hand + full[..., 0]
            self.pipeline = full[..., 1:]
            ordered = orders.sum(1)
            if self._order_fixed > 0:
                order_cost = (orders > 0).to(torch.float32).sum(1) * self._order_fixed

        # demand and shared-stock sales
        comp_ratio = self.demand.competitor_ratio(self.competitor) if self.demand.use_competitor else None
        mean = self.demand.expected_demand(price, self.t, self.reference, comp_ratio, promo)
        asked = self.demand.sample(mean, key)
        sales = self.allocate(on_hand, asked)
        sold = sales.sum(-1)
        on_hand = on_hand - sold
        self.on_hand = on_hand

        # money
        unit_price = price * self._list_price  # (B, K, C)
        gross = unit_price * sales
        revenue = gross.sum((1, 2))
        net_revenue = (gross.sum(1) * self._keep_share).sum(1)
        cogs = (sold * self._unit_cost).sum(1)
        spend = promo.sum(1) if promo is not None else zero
        holding = (on_hand * self._holding).sum(1) if self.uses_holding else zero
        margin = net_revenue - cogs - spend - holding - order_cost

        # satisfaction
        wj, wg, ws = self._sat_weights
        jump = (price - self.price).abs().mean((1, 2))
        gap = (price.amax(-1) - price.amin(-1)).mean(1) if C > 1 else zero
        demand_units = asked.sum((1, 2))
        sales_units = sold.sum(1)
        lost = demand_units - sales_units
        stockout = lost / demand_units.clamp(min=1.0)
        satisfaction = 1.0 - wj * jump - wg * gap - ws * stockout

        # state updates
        if self.demand.use_reference:
            s = self._smoothing
            self.reference = s * self.reference + (1.0 - s) * price
        if self.demand.competitor_moves:
            self.competitor = self.demand.competitor_step(self.competitor, key)
        self.price = price
        if index is not None:
            self.price_index = index
        self.sales = sales
        self.last_demand = asked
        if promo is not None:
            self.last_promotion = promo

        last = (self.t + 1) >= self.horizon
        stock_left = on_hand + self.pipeline.sum(-1) if self.lead_time > 0 else on_hand
        leftover = torch.where(last, (stock_left * self._unit_cost).sum(1), 0.0)
        values = torch.stack(
            [
                margin,  # gross_margin
                revenue,  # revenue
                net_revenue,  # net_revenue
                revenue - net_revenue,  # commission
                cogs,  # cost_of_goods_sold
                spend,  # promotion_spend
                holding,  # holding_cost
                order_cost,  # order_cost
                demand_units,  # demand_units
                sales_units,  # sales_units
                lost,  # lost_units
                ordered,  # ordered_units
                torch.where(demand_units > 0, sales_units / demand_units.clamp(min=1.0), 1.0),  # fill_rate
                satisfaction,  # satisfaction
                jump,  # price_jump
                gap,  # price_gap
                stockout,  # stockout_share
                price.mean((1, 2)),  # mean_price_ratio
                comp_ratio.mean(1) if comp_ratio is not None else zero + self.config.demand.competitor.mean_ratio,  # competitor_price_ratio
                on_hand.sum(1),  # on_hand_units
                leftover,  # leftover_value
            ],
            dim=1,
        )
        kpis = KPIs(KPI_NAMES, values)
        reward = values @ self._reward_matrix
        terminated = torch.zeros_like(last)
        return reward, terminated, last, kpis

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        i = env_index
        return {
            "t": np.array(int(self.t[i])),
            "on_hand": self.on_hand[i].cpu().numpy(),
            "pipeline": self.pipeline[i].sum(-1).cpu().numpy(),
            "price": (self.price[i] * self._list_price).cpu().numpy(),
            "price_ratio": self.price[i].cpu().numpy(),
            "reference_ratio": self.reference[i].cpu().numpy(),
            "competitor_ratio": self.demand.competitor_ratio(self.competitor[i : i + 1])[0].cpu().numpy(),
            "sales": self.sales[i].cpu().numpy(),
            "demand": self.last_demand[i].cpu().numpy(),
            "promotion": self.last_promotion[i].cpu().numpy(),
        }
