"""Shared stock of the Pricing family: how the units of a SKU are split across its channels.

Every channel sells from the one inventory of the SKU. When the units asked for
exceed the stock, the stock is split in proportion to what each channel was asked,
rounded down, and the units left by rounding go one each to the channels with the
largest fractional shares (ties: the lower channel index). Unserved shoppers are lost.
"""

from __future__ import annotations

import torch

from paretochain.envs.pricing.demand import channel_sum, sku_sum


def ration(stock: torch.Tensor, asked: torch.Tensor, total: torch.Tensor, earlier: torch.Tensor | None) -> torch.Tensor:
    """Units sold per channel ``(B, K, C)`` for two or more channels, given the units asked in total ``(B, K)``.

    ``earlier`` is the ``(C, C)`` bool matrix ``[j, i] = i < j`` (built when None).
    """
    # with enough stock the ratio is clamped to 1: shares are the units asked, nothing is left to hand out
    ratio = (stock / total.clamp(min=1.0)).clamp(max=1.0)
    share = asked * ratio.unsqueeze(-1)
    floor = share.floor()
    left = (torch.minimum(stock, total) - channel_sum(floor)).unsqueeze(-1)
    frac = share - floor
    if asked.shape[-1] == 2:
        second_first = frac[..., 1] > frac[..., 0]  # ties: the lower channel first
        ahead = torch.stack([second_first, ~second_first], dim=-1)  # channels served before j
    else:
        if earlier is None:
            index = torch.arange(asked.shape[-1], device=asked.device)
            order = index.view(1, -1) < index.view(-1, 1)  # [j, i]: i < j
        else:
            order = earlier
        fi, fj = frac.unsqueeze(-2), frac.unsqueeze(-1)  # (.., 1, C) over i, (.., C, 1) over j
        ahead = torch.where(order, fi >= fj, fi > fj).sum(-1)  # channels served before j
    return floor + (ahead < left)


def allocate(
    stock: torch.Tensor, asked: torch.Tensor, total: torch.Tensor, earlier: torch.Tensor | None
) -> torch.Tensor:
    """Units sold per channel ``(B, K, C)`` from stock ``(B, K)``, the units asked ``(B, K, C)`` and their total ``(B, K)``.

    One channel sells what it is asked, up to the stock; two or more share it (:func:`ration`).
    """
    if asked.shape[-1] == 1:
        return torch.minimum(asked, stock.unsqueeze(-1))
    return ration(stock, asked, total, earlier)


def sell(
    stock: torch.Tensor,
    asked: torch.Tensor,
    total: torch.Tensor,
    demand_units: torch.Tensor,
    earlier: torch.Tensor | None,
    constants: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sales from the shared stock and the stock-out figures of a period.

    Args:
        stock: units on hand ``(B, K)``.
        asked: units asked per channel ``(B, K, C)``.
        total: units asked per SKU ``(B, K)``.
        demand_units: units asked per env ``(B,)``.
        earlier: see :func:`ration`.
        constants: 0-dim ``0`` and ``1``, and ``(B,)`` zeros and ones (float32).

    Returns:
        Units sold per channel ``(B, K, C)`` and per SKU ``(B, K)``, units sold per env, the
        share of demand lost to stock-outs and the fill rate (``(B,)`` each).
    """
    zero, one, _, _ = constants
    sales = allocate(stock, asked, total, earlier)
    sold = sales[..., 0] if asked.shape[-1] == 1 else channel_sum(sales)
    sales_units = sku_sum(sold)
    some_demand = torch.maximum(demand_units, one)
    stockout = (demand_units - sales_units) / some_demand
    fill_rate = torch.where(demand_units > zero, sales_units / some_demand, one)
    return sales, sold, sales_units, stockout, fill_rate


def sell_checked(
    stock: torch.Tensor,
    asked: torch.Tensor,
    total: torch.Tensor,
    demand_units: torch.Tensor,
    earlier: torch.Tensor | None,
    constants: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`sell`, after checking on the host whether every SKU has the stock asked for.

    If so, the rationing is skipped: it would sell exactly what is asked, with a stock-out share
    of 0 and a fill rate of 1 (the values its formulas give). Worth it where reading a value on
    the host is cheap (the CPU) and the rationing is more than a minimum (two or more channels).
    """
    if bool((stock >= total).all()):
        _, _, zeros, ones = constants
        return asked, total, demand_units, zeros, ones
    return sell(stock, asked, total, demand_units, earlier, constants)
