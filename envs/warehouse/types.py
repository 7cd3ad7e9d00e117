"""Data types of the Warehouse family: the state of a batch of networks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from paretochain.envs.state import BatchState


@dataclass
class WarehouseState(BatchState):
    """Everything that changes within an episode of ``B`` networks, besides the keys and periods of
    :class:`~paretochain.envs.state.BatchState`.

    ``N`` stocking nodes (the ``W`` warehouses, then the distribution centre when there is one),
    ``S`` SKUs, ``A`` shelf-life buckets (1 when not perishable), ``L`` the longest lead time in
    periods, ``m`` the periods of demand history observed. Quantities are in units of stock.

    Attributes:
        inventory: units on hand per node and SKU by periods of shelf life left (bucket 0 expires at
            the end of the period), float32 ``(B, N, S, A)``.
        pipeline: units ordered and not yet received per node and SKU by periods until arrival
            (index 0 arrives this period), float32 ``(B, N, S, L + 1)``.
        backlog: units owed to customers per warehouse and SKU (backorder mode; 0 with lost sales),
            float32 ``(B, W, S)``.
        demand_history: customer demand of the last ``m`` periods per warehouse and SKU, most recent
            last, float32 ``(B, W, S, m)``.
        last_demand: customer demand of the period just played, float32 ``(B, W, S)``.
        last_orders: order units asked in the period just played per node and SKU, float32 ``(B, N, S)``.
        outage_left: periods of supplier outage still to come, int64 ``(B,)``.
        demand_state: the demand generator's state: ``promo_left``, periods of promotion left per
            warehouse and SKU, int64 ``(B, W, S)`` (synthetic demand), or ``history_offset``, the
            period of the history file that period 0 replays, int64 ``(B,)`` (history replay).
    """

    inventory: torch.Tensor
    pipeline: torch.Tensor
    backlog: torch.Tensor
    demand_history: torch.Tensor
    last_demand: torch.Tensor
    last_orders: torch.Tensor
    outage_left: torch.Tensor
    demand_state: dict[str, torch.Tensor]
