"""Batched dynamics of the Warehouse family: one period of replenishment for B networks at once.

Order of events in a period ``t`` (every environment of the batch at once):

1. The policy's orders are decoded into units per stocking node and SKU.
2. Supplier outage: a new outage may start; while it lasts, orders to the supplier
   are refused (counted in ``refused_units``).
3. Two echelons: warehouse orders are shipped from the DC's stock on hand, rationed
   in proportion to the requests when short; the DC issues oldest stock first.
4. Every accepted order enters the pipeline with its lead time (fixed part, a
   uniform jitter and, with a disruption, a spike). Lead time 0 arrives at once.
5. Arrivals due this period are received; with a capacity and ``overflow: cut``,
   what does not fit is refused at the door (``overflow_units``).
6. Customer demand at the warehouses is served from stock, oldest first
   (backlog first in backorder mode); the rest is lost or backordered.
7. Holding cost is charged on stock left at the end of the period; with
   ``overflow: charge`` the volume above capacity is charged too.
8. Perishable stock ages; units at the end of their shelf life expire (waste).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore, KPIs, ObservationLayout
from paretochain.envs.data.demand_history import load_demand_history
from paretochain.envs.reward import reward_weights
from paretochain.envs.warehouse.config import WarehouseConfig, resolve_per_sku
from paretochain.envs.warehouse.demand import HistoryDemand, SyntheticDemand
from paretochain.envs.warehouse.reward import REWARDS, build_objectives, per_period_scale
from paretochain.envs.warehouse.types import WarehouseState
from paretochain.errors import ConfigError

KPI_NAMES = (
    "profit",
    "revenue",
    "purchase_cost",
    "order_fixed_cost",
    "holding_cost",
    "shortage_penalty",
    "waste_cost",
    "overflow_cost",
    "total_cost",
    "ordering_cost",
    "demand_units",
    "sales_units",
    "lost_units",
    "backordered_units",
    "shortage_units",
    "waste_units",
    "overflow_units",
    "refused_units",
    "ordered_units",
    "fill_rate",
    "on_hand_units",
    "pipeline_units",
    "supplier_down",
)

_SITE_OUTAGE, _SITE_JITTER, _SITE_SPIKE, _SITE_DEMAND = 1, 2, 3, 10


def make_demand_model(cfg: WarehouseConfig, device: torch.device) -> SyntheticDemand | HistoryDemand:
    """The demand generator a config asks for (history files are loaded and checked here)."""
    d = cfg.demand
    if d.source == "history":
        assert d.history is not None
        h = d.history
        history = load_demand_history(
            h.path,
            columns=h.columns,
            item_ids=h.item_ids,
            locations=h.locations,
            clip_outliers=h.clip_outliers,
            outlier_threshold=h.outlier_threshold,
            date_format=h.date_format,
            prices=False,
        )
        got = (len(history.locations), len(history.items))
        if got != (cfg.num_warehouses, cfg.num_skus):
            raise ConfigError(
                f"demand.history {h.path}: {got[0]} locations x {got[1]} items, but the config has "
                f"num_warehouses={cfg.num_warehouses} x num_skus={cfg.num_skus} (select with locations / item_ids)"
            )
        return HistoryDemand(history, h.mode, device, _SITE_DEMAND)
    rng = np.random.default_rng(cfg.instance_seed)
    mean_sku = resolve_per_sku(d.mean, cfg.num_skus, rng, "demand.mean")
    weights = np.asarray(d.location_weights if d.location_weights is not None else [1.0] * cfg.num_warehouses)
    return SyntheticDemand(d, weights[:, None] * mean_sku[None, :], cfg.horizon, device, _SITE_DEMAND)


class WarehouseCore(BatchedCore[WarehouseState]):
    """Batched replenishment dynamics; see the module docstring for the order of events.

    Args:
        config: the environment's config.
        num_envs: batch size.
        device: torch device for every state tensor.
        demand_model: a generator with ``init_state``/``reset``/``sample`` (default: from the config).
    """

    def __init__(
        self,
        config: WarehouseConfig,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        demand_model: SyntheticDemand | HistoryDemand | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        cfg = self.config = config
        dev = self.device
        f32: dict[str, Any] = dict(dtype=torch.float32, device=dev)
        W, S = cfg.num_warehouses, cfg.num_skus
        self.has_dc = cfg.distribution_center
        N = self.num_nodes = W + int(self.has_dc)
        self.num_warehouses, self.num_skus = W, S
        self.horizon = cfg.horizon
        self.lost_sales = cfg.unmet_demand == "lost"
        self.demand_model = demand_model if demand_model is not None else make_demand_model(cfg, dev)
        rng = np.random.default_rng(cfg.instance_seed + 1)

        def per_sku(name: str) -> np.ndarray:
            return resolve_per_sku(getattr(cfg, name), S, rng, name)

        mean_ws = self.demand_model.mean  # (W, S)
        node_mean = mean_ws if not self.has_dc else np.vstack([mean_ws, mean_ws.sum(axis=0, keepdims=True)])
        self.node_mean = node_mean
        unit_cost, transfer_cost = per_sku("unit_cost"), per_sku("transfer_cost")
        price, holding, penalty = per_sku("price"), per_sku("holding_cost"), per_sku("shortage_penalty")
        volume, fixed, waste_cost = per_sku("unit_volume"), per_sku("order_fixed_cost"), per_sku("waste_cost")
        self.from_supplier = np.array([not self.has_dc] * W + [True] * int(self.has_dc))
        order_cost = np.where(self.from_supplier[:, None], unit_cost[None, :], transfer_cost[None, :])
        hold = np.repeat(holding[None, :], N, axis=0)
        if self.has_dc:
            hold[W] *= cfg.dc_holding_factor
        self._order_cost = torch.as_tensor(order_cost, **f32)
        self._fixed_cost = torch.as_tensor(np.repeat(fixed[None, :], N, axis=0), **f32)
        self._holding = torch.as_tensor(hold, **f32)
        self._price = torch.as_tensor(price, **f32)
        self._penalty = torch.as_tensor(penalty, **f32)
        self._volume = torch.as_tensor(volume, **f32)
        self._waste_cost = torch.as_tensor(waste_cost, **f32)
        self._from_supplier = torch.as_tensor(self.from_supplier, device=dev)
        self.uses_fixed_cost = bool(fixed.any())

        # capacity per node
        caps = cfg.capacity if isinstance(cfg.capacity, list) else [cfg.capacity] * N
        self.has_capacity = any(c is not None for c in caps)
        self._capacity = torch.as_tensor([math.inf if c is None else c for c in caps], **f32)

        # lead times per node and SKU
        def lead(spec_periods: int | list[int], spec_jitter: int | list[int]) -> tuple[np.ndarray, np.ndarray]:
            p = np.broadcast_to(np.asarray(spec_periods), (S,)).astype(np.int64)
            j = np.broadcast_to(np.asarray(spec_jitter), (S,)).astype(np.int64)
            return p, j

        sup_p, sup_j = lead(cfg.supplier_lead_time.periods, cfg.supplier_lead_time.jitter)
        tr_p, tr_j = lead(cfg.transfer_lead_time.periods, cfg.transfer_lead_time.jitter)
        L0 = np.where(self.from_supplier[:, None], sup_p[None, :], tr_p[None, :])
        J = np.where(self.from_supplier[:, None], sup_j[None, :], tr_j[None, :])
        dis = cfg.disruptions
        self.has_outages = dis.outage_probability > 0
        self.has_spikes = dis.spike_probability > 0 and dis.spike_periods > 0
        self.has_jitter = bool(J.any())
        self.max_lead = int((L0 + J).max()) + (dis.spike_periods if self.has_spikes else 0)
        self._L0 = torch.as_tensor(L0, dtype=torch.int64, device=dev)
        self._J1 = torch.as_tensor(J + 1, dtype=torch.float32, device=dev)
        self.lead_time_mean = float((L0 + J / 2).mean())
        #: mean lead time per node and SKU ``(N, S)``, periods (the fixed part plus half the jitter)
        self.lead_time_periods = (L0 + J / 2).astype(np.float64)
        self._lead_onehot = torch.nn.functional.one_hot(self._L0, self.max_lead + 1).to(torch.float32)

        # perishability: buckets by remaining life, bucket 0 expires at the end of the period
        self.perishable = cfg.shelf_life is not None
        self.num_buckets = cfg.shelf_life if self.perishable else 1

        # actions
        ladder = np.asarray(cfg.action.ladder, dtype=np.float64)
        unit = node_mean if cfg.action.ladder_unit == "mean_demand" else np.ones((N, S))
        self.ladder_units = np.round(ladder[None, None, :] * unit[:, :, None])  # (N, S, K)
        self._ladder_flat = torch.as_tensor(self.ladder_units, **f32).reshape(-1)
        self._ladder_offsets = torch.arange(N * S, device=dev).reshape(N, S) * len(ladder)
        self.max_order = self.ladder_units[:, :, -1]
        kind = cfg.action.kind
        if kind == "box":
            self.single_action_space: spaces.Space[Any] = spaces.Box(
                0.0, self.max_order.reshape(-1).astype(np.float32), dtype=np.float32
            )
        elif kind == "ladder":
            self.single_action_space = spaces.MultiDiscrete(np.full(N * S, len(ladder)))
        else:
            self.single_action_space = spaces.Discrete(len(ladder))

        # draw sites
        self._site_outage = _rng.DrawSite(_SITE_OUTAGE, (1,), dev)
        self._site_jitter = _rng.DrawSite(_SITE_JITTER, (N, S), dev)
        self._site_spike = _rng.DrawSite(_SITE_SPIKE, (N, S), dev)
        if self.has_outages:
            self.register_draw_sites(self._site_outage)
        if self.has_jitter:
            self.register_draw_sites(self._site_jitter)
        if self.has_spikes:
            self.register_draw_sites(self._site_spike)
        self.register_draw_sites(*self.demand_model.draw_sites())

        # observation layout
        m = cfg.demand_history_periods
        lay = ObservationLayout()
        lay.add(
            "on_hand",
            (N, S, self.num_buckets),
            "units on hand per node (warehouses, then DC) and SKU, by periods of shelf life left (1 bucket when not perishable)",
        )
        lay.add(
            "pipeline",
            (N, S, self.max_lead),
            "units ordered and not yet received, by periods until arrival (index 0 arrives before this period's demand)",
        )
        if not self.lost_sales:
            lay.add("backlog", (W, S), "units owed to customers per warehouse and SKU")
        lay.add("demand_history", (W, S, m), "demand of the last periods per warehouse and SKU, most recent last")
        lay.add("calendar", (3,), "sin and cos of the seasonal phase, share of the horizon elapsed")
        self.has_promotions = isinstance(self.demand_model, SyntheticDemand) and self.demand_model.use_promotions
        # always present (zeros when the feature is off), so scenarios that switch them on keep the layout
        lay.add("promotion", (W, S), "1 where a promotion runs this period (0 without promotions)")
        lay.add(
            "supplier_down", (1,), "periods of supplier outage still to come, including this one (0 without outages)"
        )
        self.observation_layout = lay
        low = np.zeros(lay.size, dtype=np.float32)
        cal = lay.segments["calendar"]
        low[cal.start : cal.start + 2] = -1.0
        self.single_observation_space = spaces.Box(low, np.full(lay.size, np.inf, dtype=np.float32), dtype=np.float32)
        steps = torch.arange(cfg.horizon + 1, dtype=torch.float64, device=dev)
        phase = steps * (2 * math.pi / cfg.demand.seasonality_period)
        elapsed = steps / cfg.horizon if cfg.observe_horizon else torch.zeros_like(steps)
        self._calendar = torch.stack([phase.sin(), phase.cos(), elapsed], dim=1).to(torch.float32)

        # objectives
        scale = per_period_scale(mean_ws, price, unit_cost, holding, penalty, self.max_lead, self.lost_sales)
        if self.perishable:
            scale["waste"] = float((unit_cost * node_mean.sum(axis=0)).sum())
        self.objective_names = list(cfg.objectives)
        try:
            self.objectives = build_objectives(self.objective_names, scale, cfg.horizon, cfg.reference_point)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

        self._kpi_matrix, self._reward_matrix = self._kpi_maps()
        self._zero = torch.zeros(num_envs, **f32)
        # zeros standing in for the promotion / outage blocks when those features are off
        absent = 0 if self.has_promotions and self.has_outages else (W * S if not self.has_promotions else 1)
        if not self.has_promotions and not self.has_outages:
            absent = W * S + 1
        self._absent_blocks = torch.zeros(num_envs, absent, **f32)
        self._never = torch.zeros(num_envs, dtype=torch.bool, device=dev)
        self._always = torch.ones(num_envs, dtype=torch.bool, device=dev)
        self._truncated_after = torch.arange(1, cfg.horizon + 2, device=dev) >= cfg.horizon
        self._empty_slot = torch.zeros((1, 1, 1, 1), **f32).expand(num_envs, N, S, 1)  # the pipeline's new last period
        # per-cell factors of the quantities summed into the KPIs (1 for the unit counts), see the end of _step
        ones = torch.ones(W, S, **f32)
        customer = [self._price.expand(W, S), self._penalty.expand(W, S), ones, ones, ones, ones]
        node = [self._order_cost, self._holding, ones.new_ones(N, S), ones.new_ones(N, S)]
        node += [self._fixed_cost] if self.uses_fixed_cost else []
        if self.has_dc:
            self._customer_factors, self._node_factors = torch.stack(customer), torch.stack(node)
        else:
            self._cell_factors = torch.stack(customer + node)

        # state
        B = num_envs
        self._init_state(
            WarehouseState(
                **self.initial_keys(),
                inventory=torch.zeros((B, N, S, self.num_buckets), **f32),
                pipeline=torch.zeros((B, N, S, self.max_lead + 1), **f32),
                backlog=torch.zeros((B, W, S), **f32),
                demand_history=torch.zeros((B, W, S, m), **f32),
                last_demand=torch.zeros((B, W, S), **f32),
                last_orders=torch.zeros((B, N, S), **f32),
                outage_left=torch.zeros(B, dtype=torch.int64, device=dev),
                demand_state=self.demand_model.init_state(B),
            )
        )
        #: what the last step moved (units per node and SKU): a record for checks, not state
        self.flows: dict[str, torch.Tensor | None] = {}
        self._initial_stock = torch.as_tensor(np.round(cfg.initial_inventory * node_mean), **f32)
        self._initial_history = torch.as_tensor(np.round(mean_ws), **f32)

    # ------------------------------------------------------------------ reset / observe
    def _reset_envs(self, mask: torch.Tensor) -> None:
        m4 = mask.view(-1, 1, 1, 1)
        start = torch.zeros_like(self.state.inventory[:1])
        start[0, :, :, -1] = self._initial_stock
        self.state.inventory = torch.where(m4, start, self.state.inventory)
        self.state.pipeline = torch.where(m4, 0.0, self.state.pipeline)
        self.state.backlog = torch.where(mask.view(-1, 1, 1), 0.0, self.state.backlog)
        self.state.demand_history = torch.where(m4, self._initial_history.unsqueeze(-1), self.state.demand_history)
        self.state.last_demand = torch.where(mask.view(-1, 1, 1), 0.0, self.state.last_demand)
        self.state.last_orders = torch.where(mask.view(-1, 1, 1), 0.0, self.state.last_orders)
        self.state.outage_left = torch.where(mask, 0, self.state.outage_left)
        self.demand_model.reset(self.state.demand_state, mask, _rng.mix32(self.state.stream_key ^ 0x5BD1E995))

    def observe(self) -> torch.Tensor:
        st = self.state
        B = self.num_envs
        parts = [st.inventory.reshape(B, -1)]
        if self.max_lead:
            parts.append(st.pipeline[..., :-1].reshape(B, -1))
        if not self.lost_sales:
            parts.append(st.backlog.reshape(B, -1))
        if st.demand_history.shape[-1]:
            parts.append(st.demand_history.reshape(B, -1))
        parts.append(self.period_rows(self._calendar))
        if self.has_promotions:
            parts.append((st.demand_state["promo_left"] > 0).to(torch.float32).reshape(B, -1))
        elif self.has_outages:
            parts.append(self._absent_blocks)
        if self.has_outages:
            parts.append(st.outage_left.to(torch.float32).unsqueeze(1))
        elif self._absent_blocks.shape[1]:
            parts.append(self._absent_blocks if not self.has_promotions else self._absent_blocks[:, :1])
        return torch.cat(parts, dim=1)

    def observation_scale(self) -> np.ndarray:
        """Stock, pipeline, backlog and demand history in periods of the node's mean demand; the rest as is."""
        scale = np.ones(self.observation_layout.size, dtype=np.float32)
        W = self.num_warehouses
        per_node = np.maximum(self.node_mean, 1e-6).astype(np.float32)  # (N, S) units per period
        for name, mean in (("on_hand", per_node), ("pipeline", per_node), ("backlog", per_node[:W])):
            if name in self.observation_layout.segments:
                seg = self.observation_layout.segments[name]
                scale[seg.start : seg.stop] = np.broadcast_to(
                    mean.reshape(mean.shape + (1,) * (len(seg.shape) - 2)), seg.shape
                ).ravel()
        seg = self.observation_layout.segments["demand_history"]
        scale[seg.start : seg.stop] = np.broadcast_to(per_node[:W, :, None], seg.shape).ravel()
        return scale

    def inventory_position_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """Which observation entries sum to each node and SKU's inventory position, and with which sign.

        The inventory position (on hand + in transit - backlog, the quantity an order-up-to
        policy reads) of node ``n`` and SKU ``s`` is ``(obs[index[n, s]] * sign[n, s]).sum()``.

        Returns:
            ``index`` ``(N, S, P)`` int64 positions in the flat observation and ``sign`` ``(N, S, P)``
            float32: +1 for stock on hand (every shelf-life bucket) and in the pipeline, -1 for
            backlog, 0 for padding (upstream nodes have no backlog).
        """
        N, S, W = self.num_nodes, self.num_skus, self.num_warehouses
        seg = self.observation_layout.segments
        parts, signs = [], []
        for name in ("on_hand", "pipeline"):
            block = seg[name]
            per = block.shape[-1]
            if per:
                parts.append(block.start + np.arange(N * S * per).reshape(N, S, per))
                signs.append(np.ones((N, S, per)))
        if "backlog" in seg:
            block = seg["backlog"]
            owed = np.zeros((N, S, 1), dtype=np.int64)
            owed[:W, :, 0] = block.start + np.arange(W * S).reshape(W, S)
            sign = np.zeros((N, S, 1))
            sign[:W] = -1.0
            parts.append(owed)
            signs.append(sign)
        return np.concatenate(parts, axis=-1).astype(np.int64), np.concatenate(signs, axis=-1).astype(np.float32)

    # ------------------------------------------------------------------ dynamics
    def decode_action(self, action: torch.Tensor) -> torch.Tensor:
        """Order units ``(B, N, S)`` from a batch of actions in the action space's layout."""
        B, N, S = self.num_envs, self.num_nodes, self.num_skus
        kind = self.config.action.kind
        if kind == "box":
            return action.to(torch.float32).reshape(B, N, S).round()
        if kind == "discrete" and action.dtype == torch.int64:
            return self._ladder_flat.take(action.view(B, 1, 1))  # one node and SKU: no offsets to add
        index = action.reshape(B, N, S) + self._ladder_offsets
        return self._ladder_flat.take(index)

    @staticmethod
    def _issue_oldest_first(stock: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        """Remove ``amount`` (``(..., S)``) from stock by remaining life ``(..., S, A)``, oldest bucket first."""
        if stock.shape[-1] == 1:
            return stock - amount.unsqueeze(-1)
        before = stock.cumsum(-1) - stock
        take = (amount.unsqueeze(-1) - before).clamp(min=0).minimum(stock)
        return stock - take

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        st = self.state
        B, W, _N = self.num_envs, self.num_warehouses, self.num_nodes
        key = self.step_draw()
        zero = self._zero
        requested = self.decode_action(action)
        placed = requested
        refused = zero
        down = zero
        inv = st.inventory

        if self.has_outages:
            dis = self.config.disruptions
            start = (st.outage_left == 0) & (self._site_outage.uniform(key)[:, 0] < dis.outage_probability)
            st.outage_left = torch.where(start, dis.outage_duration, st.outage_left)
            is_down = st.outage_left > 0
            blocked = is_down.view(-1, 1, 1) & self._from_supplier.view(1, -1, 1)
            placed = torch.where(blocked, 0.0, requested)
            refused = (requested - placed).sum((1, 2))
            down = is_down.to(torch.float32)
            st.outage_left = (st.outage_left - 1).clamp(min=0)

        shipped_out = None
        if self.has_dc:
            wanted = placed[:, :W]
            dc_stock = inv[:, W].sum(-1)
            ratio = (dc_stock / wanted.sum(1).clamp(min=1e-9)).clamp(max=1.0)
            shipped = (wanted * ratio.unsqueeze(1)).floor()
            placed = torch.cat([shipped, placed[:, W:]], dim=1)
            shipped_out = shipped.sum(1)
            inv = torch.cat([inv[:, :W], self._issue_oldest_first(inv[:, W:], shipped_out.unsqueeze(1))], dim=1)

        if self.has_jitter or self.has_spikes:
            lead = self._L0.expand(B, -1, -1)
            if self.has_jitter:
                lead = lead + (self._site_jitter.uniform(key) * self._J1).long()
            if self.has_spikes:
                dis = self.config.disruptions
                lead = lead + (self._site_spike.uniform(key) < dis.spike_probability).long() * dis.spike_periods
            pipe = st.pipeline.scatter_add(3, lead.unsqueeze(-1), placed.unsqueeze(-1))
        else:
            # placed * 0 or * 1 is exact, so this is pipeline + placed * onehot in one operation
            pipe = torch.addcmul(st.pipeline, placed.unsqueeze(-1), self._lead_onehot)
        arrivals = pipe[..., 0]
        st.pipeline = torch.cat([pipe[..., 1:], self._empty_slot], dim=-1)

        overflow_units = zero
        if self.has_capacity and self.config.overflow == "cut":
            vol_now = (inv.sum(-1) * self._volume).sum(-1)
            vol_in = (arrivals * self._volume).sum(-1)
            room = (self._capacity - vol_now).clamp(min=0)
            keep = (room / vol_in.clamp(min=1e-9)).clamp(max=1.0)
            accepted = (arrivals * keep.unsqueeze(-1)).floor()
            overflow_units = (arrivals - accepted).sum((1, 2))
            arrivals = accepted
        # with one bucket (no shelf life) the stock of a cell is that bucket: sums over buckets are the identity
        one_bucket = self.num_buckets == 1
        fresh = inv[..., -1] + arrivals
        if one_bucket:
            on_hand = fresh[:, :W] if self.has_dc else fresh
        else:
            inv = torch.cat([inv[..., :-1], fresh.unsqueeze(-1)], dim=-1)
            on_hand = inv[:, :W].sum(-1) if self.has_dc else inv.sum(-1)

        demand = self.demand_model.sample(st.t, key, st.demand_state)
        if self.lost_sales:
            sales = torch.minimum(on_hand, demand)
            served_now = sales
            short_units = demand - sales
        else:
            owed = demand + st.backlog
            sales = torch.minimum(on_hand, owed)
            served_now = sales - torch.minimum(on_hand, st.backlog)
            st.backlog = owed - sales
            short_units = st.backlog
        if one_bucket:
            left = on_hand - sales
            end_stock = torch.cat([left, fresh[:, W:]], dim=1) if self.has_dc else left
            inv = end_stock.unsqueeze(-1)
        else:
            inv = (
                torch.cat([self._issue_oldest_first(inv[:, :W], sales), inv[:, W:]], dim=1)
                if self.has_dc
                else self._issue_oldest_first(inv, sales)
            )
            end_stock = inv.sum(-1)
        waste_units = waste_cost = overflow_cost = zero
        expired = None
        if self.has_capacity and self.config.overflow == "charge":
            excess = ((end_stock * self._volume).sum(-1) - self._capacity).clamp(min=0)
            overflow_cost = excess.sum(1) * self.config.overflow_cost
        if self.perishable:
            expired = inv[..., 0]
            waste_units = expired.sum((1, 2))
            waste_cost = (expired * self._waste_cost).sum((1, 2))
            inv = torch.nn.functional.pad(inv[..., 1:], (0, 1))
        st.inventory = inv
        self.flows = {
            "ordered": placed,
            "received": arrivals,
            "sold": sales,
            "expired": expired,
            "shipped_out": shipped_out,
        }
        st.last_demand = demand
        st.last_orders = requested
        if st.demand_history.shape[-1]:
            st.demand_history = torch.cat([st.demand_history[..., 1:], demand.unsqueeze(-1)], dim=-1)

        # KPI sums: the per-cell figures (quantities times their unit values) stacked and summed in one
        # reduction (one per side of the network with a DC, where warehouses and nodes differ), then one linear map
        customer = [sales, short_units, demand, sales, short_units, served_now]
        node = [placed, end_stock, requested, end_stock]
        if self.uses_fixed_cost:
            node.append((placed > 0).to(torch.float32))
        if self.has_dc:
            sums = torch.cat(
                [
                    (torch.stack(customer, dim=1) * self._customer_factors).sum((2, 3)),
                    (torch.stack(node, dim=1) * self._node_factors).sum((2, 3)),
                ],
                dim=1,
            )
        else:
            sums = (torch.stack(customer + node, dim=1) * self._cell_factors).sum((2, 3))
        extras = [st.pipeline.sum((1, 2, 3))]
        if self.perishable:
            extras += [waste_units, waste_cost]
        if self.has_capacity:
            extras.append(overflow_units if self.config.overflow == "cut" else overflow_cost)
        if self.has_outages:
            extras += [refused, down]
        # the fill rate: served / demand, and 1 without demand (0 / 0, the only NaN: served <= demand)
        extras.append((sums[:, 5] / sums[:, 2]).nan_to_num_(1.0))
        raw = torch.cat([sums, torch.stack(extras, dim=1)], dim=1)
        kpis = KPIs(KPI_NAMES, raw=raw, linear_map=self._kpi_matrix)
        reward = raw @ self._reward_matrix
        truncated = self.period_rows(self._truncated_after)
        return reward, self._never, truncated, kpis

    def _raw_columns(self) -> list[str]:
        """Names of the per-step sums the step computes, in order (see the end of :meth:`_step`)."""
        short = "lost_units" if self.lost_sales else "backordered_units"
        cols = ["revenue", "shortage_penalty", "demand_units", "sales_units", short, "served_units"]
        cols += ["purchase_cost", "holding_cost", "ordered_units", "on_hand_units"]
        cols += ["order_fixed_cost"] if self.uses_fixed_cost else []
        cols += ["pipeline_units"]
        cols += ["waste_units", "waste_cost"] if self.perishable else []
        if self.has_capacity:
            cols.append("overflow_units" if self.config.overflow == "cut" else "overflow_cost")
        cols += ["refused_units", "supplier_down"] if self.has_outages else []
        return [*cols, "fill_rate"]

    def _kpi_maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Matrices from the raw sums to every KPI, and to the reward vector."""
        raw = self._raw_columns()
        costs = ["purchase_cost", "order_fixed_cost", "holding_cost", "shortage_penalty", "waste_cost", "overflow_cost"]
        combos: dict[str, dict[str, float]] = {name: {name: 1.0} for name in KPI_NAMES}
        combos["total_cost"] = dict.fromkeys(costs, 1.0)
        combos["profit"] = {"revenue": 1.0, **dict.fromkeys(costs, -1.0)}
        combos["ordering_cost"] = {"purchase_cost": 1.0, "order_fixed_cost": 1.0}
        combos["shortage_units"] = {"lost_units": 1.0, "backordered_units": 1.0}
        kpi = torch.zeros(len(raw), len(KPI_NAMES), dtype=torch.float32)
        for j, name in enumerate(KPI_NAMES):
            for term, coef in combos[name].items():
                if term in raw:
                    kpi[raw.index(term), j] = coef
        weights, _ = reward_weights(REWARDS, self.objective_names, KPI_NAMES, self.horizon)
        rewards = kpi @ torch.as_tensor(weights, dtype=torch.float32)  # (raw, k): the rewards from the raw sums
        return kpi.to(self.device), rewards.to(self.device)

    def sku_profit(self) -> torch.Tensor:
        """The last step's profit per SKU ``(B, S)``: its ``profit`` KPI split by SKU (summed over nodes).

        Revenue, shortage penalty, ordering (purchase or transfer, and fixed), holding and waste
        costs of each SKU's cells; the SKUs' figures sum to the step's ``profit``. Read it right
        after :meth:`step`. A capacity with ``overflow: charge`` charges the volume of a node, not
        of a SKU, so it is not split: ValueError.
        """
        if self.has_capacity and self.config.overflow == "charge":
            raise ValueError("sku_profit: with overflow: charge the overflow cost belongs to a node, not to a SKU")
        st, flows = self.state, self.flows
        sold, placed = flows.get("sold"), flows.get("ordered")
        if sold is None or placed is None:
            raise ValueError("sku_profit: no step has been taken yet")
        short = st.last_demand - sold if self.lost_sales else st.backlog
        expired = flows.get("expired")
        # holding is charged on the period's end stock before the oldest units expire
        end_stock = st.inventory.sum(-1) if expired is None else st.inventory.sum(-1) + expired
        profit = (self._price * sold - self._penalty * short).sum(1)
        profit = profit - (self._order_cost * placed + self._holding * end_stock).sum(1)
        if self.uses_fixed_cost:
            profit = profit - (self._fixed_cost * (placed > 0).to(torch.float32)).sum(1)
        if expired is not None:
            profit = profit - (expired * self._waste_cost).sum(1)
        return profit

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        i = env_index
        return {
            "t": np.array(int(self.state.t[i])),
            "on_hand": self.state.inventory[i].sum(-1).cpu().numpy(),
            "pipeline": self.state.pipeline[i].sum(-1).cpu().numpy(),
            "backlog": self.state.backlog[i].cpu().numpy(),
            "demand": self.state.last_demand[i].cpu().numpy(),
            "orders": self.state.last_orders[i].cpu().numpy(),
        }
