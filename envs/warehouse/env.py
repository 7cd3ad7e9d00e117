"""``paretochain/Warehouse-v0``: multi-SKU, multi-echelon replenishment with a vector reward."""

from __future__ import annotations

import numpy as np

from paretochain.envs.views import SingleEnv
from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.envs.warehouse.core import WarehouseCore
from paretochain.envs.warehouse.render import ansi_table, episode_chart


class WarehouseEnv(SingleEnv):
    """Replenishment of a supplier -> (distribution centre ->) warehouses network.

    ## Description
    Each period the policy orders units of every SKU for every stocking node: the
    warehouses order from the supplier, or from a central distribution centre (DC)
    that orders from the supplier. Orders arrive after a lead time (fixed, jittered,
    spiking during disruptions); customers' demand at the warehouses is served from
    stock, and what is short is lost or backordered. Stock may perish, storage may be
    limited, and the supplier may fail. The order of events is listed in
    :mod:`paretochain.envs.warehouse.core`. The classic single-SKU lost-sales model
    (Poisson demand, lead time L, holding h, penalty p) is the packaged config
    ``lost_sales``.

    ## Action space
    Order quantities per stocking node and SKU, flattened node-major (warehouses,
    then the DC): ``MultiDiscrete`` over a ladder of order sizes (``action.kind:
    ladder``; the ladder is in units or in multiples of the node's mean demand),
    ``Box`` of units between 0 and the top of the ladder (``box``; rounded to whole
    units), or ``Discrete`` over the ladder for a single SKU at a single node
    (``discrete``). Warehouse has no action masks. A Box entry outside its bounds is
    governed by ``invalid_action``: ``"fallback"`` (the default of the single view) clips it
    to the bounds and counts the entries clipped in ``info["actions_replaced"]``;
    ``"raise"`` (the batched view's default, the project's agents and tests) raises
    :class:`~paretochain.errors.ActionError`. An index outside the ladder, a value that is
    not finite, a wrong shape, ``None`` or text raise ``ActionError`` in both modes.

    ## Observation space
    A flat float32 ``Box``; ``env.unwrapped.observation_layout`` gives each block's
    slice and shape. With N nodes, S SKUs, W warehouses, A shelf-life buckets,
    L the longest lead time and m history periods:

    | block | shape | content |
    | --- | --- | --- |
    | ``on_hand`` | N x S x A | units on hand by periods of shelf life left |
    | ``pipeline`` | N x S x L | units in transit by periods until arrival (0 = arrives before this period's demand) |
    | ``backlog`` | W x S | units owed to customers (backorder mode only) |
    | ``demand_history`` | W x S x m | last m periods of demand, most recent last |
    | ``calendar`` | 3 | sin, cos of the seasonal phase; share of the horizon elapsed (0 with ``observe_horizon: false``) |
    | ``promotion`` | W x S | 1 during a promotion (always 0 when promotions are off) |
    | ``supplier_down`` | 1 | periods of outage left (always 0 when outages are off) |

    ## Rewards
    A float32 vector, one entry per objective named in ``objectives`` (default
    ``[profit, fill_rate, holding_cost]``), every entry "higher is better":

    | objective | unit | per-step reward |
    | --- | --- | --- |
    | ``profit`` | currency | revenue - purchase - fixed order - holding - shortage penalty - waste - overflow costs |
    | ``fill_rate`` | share | share of the period's demand served from stock, divided by the horizon (the return is the mean) |
    | ``holding_cost`` | currency | minus holding cost of the stock at period end |
    | ``ordering_cost`` | currency | minus purchase, transfer and fixed order costs |
    | ``shortage_units`` | units | minus units lost, or backordered at period end |
    | ``waste_units`` | units | minus units expired |
    | ``total_cost`` | currency | minus every cost |

    ``env.unwrapped.objectives`` declares each with unit, description and reference
    point (for hypervolume); ``info`` carries every KPI of the period and ``actions_replaced``.

    ## Starting state
    ``initial_inventory`` periods of mean demand on hand at every node, nothing in
    transit, no backlog, demand history at its mean.

    ## Episode end
    Truncation after ``horizon`` periods; there is no terminal state. Replenishment is an
    endless process: the horizon only cuts it for training and evaluation, so the episode ends
    ``truncated`` and agents bootstrap the value of the last state.

    ## Arguments
    ``gymnasium.make("paretochain/Warehouse-v0", config=None, render_mode=None,
    device="cpu", invalid_action="fallback", **overrides)``: ``invalid_action`` is
    ``"fallback"`` or ``"raise"`` (see Action space); ``config`` is a packaged config name
    (``lost_sales``, ``network_50sku``, ``perishable_disruptions``, ...), a YAML path,
    a mapping or a :class:`WarehouseConfig`; ``overrides`` replace its top-level
    fields. ``render_mode`` is ``"ansi"`` (a table of the state) or ``"rgb_array"``
    (stock, pipeline, orders and demand over the episode).
    """

    config_cls = WarehouseConfig
    core_cls = WarehouseCore

    def render_ansi(self) -> str:
        return ansi_table(self.core.snapshot(0))

    def render_rgb(self, history: list[dict[str, np.ndarray]]) -> np.ndarray:
        return episode_chart(history or [self.core.snapshot(0)])
