"""Data types of the Pricing family: the state of a batch of selling seasons."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from paretochain.envs.state import BatchState


@dataclass
class PricingState(BatchState):
    """Everything that changes within a season of ``B`` environments, besides the keys and periods of
    :class:`~paretochain.envs.state.BatchState`.

    ``K`` SKUs, ``C`` channels, ``L`` the re-order lead time in periods (0 without replenishment).
    Prices are ratios to the SKU's list price; quantities are units.

    Attributes:
        on_hand: units in stock per SKU, shared by its channels, float32 ``(B, K)``.
        pipeline: units re-ordered and not yet received per SKU by periods until arrival,
            float32 ``(B, K, L)``.
        price: current price per SKU and channel as a ratio to list price, float32 ``(B, K, C)``.
        price_index: ladder level of the current price (ladder actions; the list-price level before
            the first step), int64 ``(B, K, C)``.
        reference: shoppers' reference price per SKU and channel, as a ratio to list price,
            float32 ``(B, K, C)``.
        competitor_deviation: log deviation of the competitor's price from its long-run mean per
            SKU this period, float32 ``(B, K)`` (0 when the competitor's price does not move).
        sales: units sold in the period just played per SKU and channel, float32 ``(B, K, C)``.
        last_demand: units asked in the period just played per SKU and channel, float32 ``(B, K, C)``.
        last_promotion: promotion spend of the period just played per channel, in currency,
            float32 ``(B, C)``.
    """

    on_hand: torch.Tensor
    pipeline: torch.Tensor
    price: torch.Tensor
    price_index: torch.Tensor
    reference: torch.Tensor
    competitor_deviation: torch.Tensor
    sales: torch.Tensor
    last_demand: torch.Tensor
    last_promotion: torch.Tensor
