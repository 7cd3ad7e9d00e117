"""What each action index of an exported policy means, in a planner's words (written into ``metadata.json``).

:func:`describe_action` returns, for the environment a policy was trained on,

- ``dimensions``: one entry per action dimension, in action order: its ``name`` (which
  node and SKU, which SKU and channel, which vehicle move), its ``unit``, and for
  ``Discrete``/``MultiDiscrete`` actions the ``values`` and readable ``choices`` of every
  index (for ``Box`` actions ``low`` and ``high``);
- ``rule``: how an index (or value) becomes a decision, with units;
- ``mask_rule``: which choices the environment's mask allows, in words, and its layout.

The description is computed from the environment core that the policy acted on, so
that ladders given in multiples of mean demand are written out in units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

FLAT_MASK_LAYOUT = (
    "the mask is one flat bool row of length sum(nvec): dimension j's choices start at offset "
    "nvec[0] + ... + nvec[j-1], in index order"
)
NO_MASK = "this environment has no action mask: every index is allowed; pass an all-True mask of length mask_dim"


def describe_action(core: Any, env_id: str | None) -> dict[str, Any]:
    """The meaning of every action index (or value) of ``core``'s action space, and the mask rule.

    Falls back to a pointer to the environment's documentation where the layout is not
    one this module knows (``dimensions`` is then absent).
    """
    family = (env_id or "").split("/")[-1].split("-")[0]
    describe = {"Warehouse": _warehouse, "Dispatch": _dispatch, "Pricing": _pricing}.get(family)
    space = core.single_action_space
    if describe is not None:
        description = describe(core)
        if _matches(description["dimensions"], space):
            return description
    return {
        "rule": f"see the documentation of {env_id or 'the environment'} (its class docstring, 'Action space')",
        "mask_rule": NO_MASK if core.action_masks() is None else FLAT_MASK_LAYOUT,
    }


def _matches(dimensions: list[dict[str, Any]], space: spaces.Space) -> bool:
    """The description has one entry per dimension of ``space``, with as many choices as the space."""
    if isinstance(space, spaces.Discrete):
        return len(dimensions) == 1 and len(dimensions[0].get("values", [])) == int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        sizes = [len(d.get("values", [])) for d in dimensions]
        return sizes == [int(n) for n in np.asarray(space.nvec).reshape(-1)]
    if isinstance(space, spaces.Box):
        return len(dimensions) == int(np.prod(space.shape)) and all("values" not in d for d in dimensions)
    return False


def _number(x: float) -> str:
    return f"{float(x):g}"


# ---------------------------------------------------------------------------------------------- Warehouse
def _warehouse(core: Any) -> dict[str, Any]:
    cfg = core.config
    nodes = [f"warehouse {w}" for w in range(cfg.num_warehouses)]
    if cfg.distribution_center:
        nodes.append("distribution centre")
    ladder_units = np.asarray(core.ladder_units)  # (nodes, SKUs, ladder) in units
    kind = cfg.action.kind
    unit = "units ordered this period (to arrive after the node's lead time)"
    dims: list[dict[str, Any]] = []
    for n, node in enumerate(nodes):
        for s in range(cfg.num_skus):
            name = f"order of SKU {s} at {node}"
            if kind == "box":
                dims.append(
                    {
                        "name": name,
                        "unit": unit + ", rounded to whole units",
                        "low": 0.0,
                        "high": float(ladder_units[n, s, -1]),
                    }
                )
            else:
                values = [float(v) for v in ladder_units[n, s]]
                dims.append(
                    {
                        "name": name,
                        "unit": unit,
                        "values": values,
                        "choices": [f"order {_number(v)} units" for v in values],
                    }
                )
    basis = (
        "multiples of the node's mean demand per period, rounded to units"
        if cfg.action.ladder_unit == "mean_demand"
        else "units"
    )
    if kind == "box":
        rule = "action[i] is the order quantity in units of dimension i (node-major: node * num_skus + sku)"
    else:
        rule = (
            f"index k of dimension i orders ladder[k] ({basis}; 'values' gives the units) of dimension i's SKU at "
            "its node; dimensions are node-major (node * num_skus + sku), warehouses first, then the distribution centre"
        )
    return {"dimensions": dims, "rule": rule, "mask_rule": NO_MASK}


# ---------------------------------------------------------------------------------------------- Dispatch
def _dispatch(core: Any) -> dict[str, Any]:
    n = int(core.max_orders)
    wait = _number(core.wait)
    values = list(range(n + 2))
    choices = [f"serve order slot {a}" for a in range(n)]
    choices += ["return to the depot (ends the vehicle's shift when it is already there)", f"wait {wait} min"]
    dims = [{"name": "next move of the current vehicle", "unit": "move", "values": values, "choices": choices}]
    rule = (
        f"for the current vehicle (the one free earliest, ties to the lowest index): a < {n} drives to and serves the "
        f"order in slot a of the 'orders' observation block; {n} returns to the depot (or ends the shift when already "
        f"there); {n + 1} waits {wait} minutes where it is"
    )
    mask_rule = (
        "True exactly for the feasible moves of the current vehicle: an open released order whose demand fits the "
        "remaining capacity, reachable within its time window plus the allowed lateness, and with a return to the "
        "depot by the shift end plus the allowed overtime; the depot and waiting when they keep to the shift. At least "
        f"one move is always allowed. Mask length {n + 2}, in index order"
    )
    return {"dimensions": dims, "rule": rule, "mask_rule": mask_rule}


# ---------------------------------------------------------------------------------------------- Pricing
def _pricing(core: Any) -> dict[str, Any]:
    cfg = core.config
    channels = [ch.name for ch in cfg.channels]
    list_price = np.asarray(core.list_price, dtype=float).reshape(-1)
    ladder_mode = bool(core.ladder_mode)
    space = core.single_action_space
    low = np.asarray(getattr(space, "low", []), dtype=float).reshape(-1)
    high = np.asarray(getattr(space, "high", []), dtype=float).reshape(-1)
    dims: list[dict[str, Any]] = []

    def add(name: str, unit: str, values: list[float], labels: list[str]) -> None:
        i = len(dims)
        if ladder_mode:
            dims.append({"name": name, "unit": unit, "values": values, "choices": labels})
        else:
            dims.append({"name": name, "unit": unit, "low": float(low[i]), "high": float(high[i])})

    ladder = [float(p) for p in core.price_ladder]
    for k in range(cfg.num_skus):
        for channel in channels:
            labels = [f"{_number(p)} x list price ({_number(p * list_price[k])})" for p in ladder]
            add(f"price of SKU {k} in channel {channel}", "multiple of the SKU's list price", ladder, labels)
    if core.has_promotion:
        for channel, levels in zip(channels, core.promotion_levels):
            values = [float(v) for v in levels]
            add(
                f"promotion budget of channel {channel}",
                "currency per period",
                values,
                [f"spend {_number(v)} on promotion" for v in values],
            )
    if core.has_replenishment:
        quantities = [float(q) for q in core.order_quantities]
        for k in range(cfg.num_skus):
            add(f"re-order of SKU {k}", "units", quantities, [f"order {_number(q)} units" for q in quantities])
    order = "SKU-major: SKU 0 channel 0, SKU 0 channel 1, ..., then one promotion level per channel, then one re-order per SKU"
    if ladder_mode:
        rule = f"index k of a price dimension sets price_ladder[k] x the SKU's list price; dimensions are {order}"
        mask_rule = (
            "True for every choice except: a channel's price_floor masks the ladder entries below it; a channel with "
            "change_every k allows only its current price in periods t with t % k != 0. Promotion and re-order choices "
            "are always allowed. " + FLAT_MASK_LAYOUT
        )
    else:
        rule = (
            "price dimensions are multiples of the SKU's list price (a held channel keeps its price whatever the action "
            f"says), promotion budgets are in currency per period, re-orders in units (rounded); dimensions are {order}"
        )
        mask_rule = NO_MASK
    return {"dimensions": dims, "rule": rule, "mask_rule": mask_rule}
