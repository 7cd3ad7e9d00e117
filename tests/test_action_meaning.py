"""Exported metadata labels every action index with its decision and unit, and states the mask rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from paretochain.agents.action_meaning import describe_action
from paretochain.agents.export import export_policy, load_policy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec

WAREHOUSE, DISPATCH, PRICING = "paretochain/Warehouse-v0", "paretochain/Dispatch-v0", "paretochain/Pricing-v0"


def core_of(env_id: str, config: str | None) -> Any:
    return make_vec(env_id, 1, config=config, tensors=True, check_actions=False).core


def allowed_choices(core: Any, seed: int) -> list[int]:
    """A random allowed index per action dimension."""
    nvec = [int(n) for n in np.asarray(core.single_action_space.nvec).reshape(-1)]
    mask = core.action_masks()
    row = mask[0] if mask is not None else torch.ones(sum(nvec), dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    choice, start = [], 0
    for n in nvec:
        allowed = row[start : start + n].nonzero().flatten()
        choice.append(int(allowed[torch.randint(len(allowed), (1,), generator=g)]))
        start += n
    return choice


def test_warehouse_ladder_labels_give_the_units_each_index_orders() -> None:
    core = core_of(WAREHOUSE, "default")
    meaning = describe_action(core, WAREHOUSE)
    dims = meaning["dimensions"]
    assert [d["name"] for d in dims] == [f"order of SKU {s} at warehouse 0" for s in range(core.config.num_skus)]
    assert all(d["choices"][0] == "order 0 units" and "units" in d["unit"] for d in dims)
    assert "node-major" in meaning["rule"] and "no action mask" in meaning["mask_rule"]
    with torch.inference_mode():
        core.reset(seeds=[0])
        choice = allowed_choices(core, seed=1)
        core.step(torch.tensor([choice]), check=True)
        ordered = core.state.last_orders.reshape(-1).tolist()
    assert ordered == [d["values"][k] for d, k in zip(dims, choice)]


def test_warehouse_box_labels_give_the_bounds_in_units() -> None:
    core = core_of(WAREHOUSE, "backorder_box")
    dims = describe_action(core, WAREHOUSE)["dimensions"]
    space = core.single_action_space
    assert [d["high"] for d in dims] == [float(h) for h in space.high]
    assert all(d["low"] == 0.0 and "values" not in d and "rounded" in d["unit"] for d in dims)


def test_pricing_labels_follow_the_sku_by_channel_order_and_the_price_they_set() -> None:
    core = core_of(PRICING, "multichannel")
    meaning = describe_action(core, PRICING)
    dims = meaning["dimensions"]
    channels = [c.name for c in core.config.channels]
    skus = core.config.num_skus
    price_names = [d["name"] for d in dims[: skus * len(channels)]]
    assert price_names == [f"price of SKU {k} in channel {c}" for k in range(skus) for c in channels]
    assert [d["name"] for d in dims[skus * len(channels) :]] == (
        [f"promotion budget of channel {c}" for c in channels] + [f"re-order of SKU {k}" for k in range(skus)]
    )
    assert "price_floor" in meaning["mask_rule"] and "change_every" in meaning["mask_rule"]
    segment = core.observation_layout.segments["price"]
    with torch.inference_mode():
        core.reset(seeds=[0])
        choice = allowed_choices(core, seed=2)
        core.step(torch.tensor([choice]), check=True)
        prices = core.observe()[0, segment.start : segment.stop].tolist()
    expected = [d["values"][k] for d, k in zip(dims, choice[: skus * len(channels)])]
    assert prices == pytest.approx(expected)
    assert len(set(expected)) > 1, "the test needs different prices per dimension"


def test_dispatch_labels_name_the_slots_the_depot_and_waiting() -> None:
    core = core_of(DISPATCH, None)
    meaning = describe_action(core, DISPATCH)
    (dim,) = meaning["dimensions"]
    n = int(core.max_orders)
    assert dim["choices"][:n] == [f"serve order slot {a}" for a in range(n)]
    assert "depot" in dim["choices"][n] and dim["choices"][n + 1] == f"wait {core.config.wait_min:g} min"
    assert "feasible moves" in meaning["mask_rule"] and "always allowed" in meaning["mask_rule"]


def test_the_labels_travel_inside_both_policy_files(tmp_path) -> None:
    env = make_vec(DISPATCH, 2, tensors=True, check_actions=False)
    path = export_policy(MOPPO(env, {"num_steps": 4}), tmp_path)
    for file in (path, path.with_suffix(".pt2")):
        action = load_policy(file).metadata["action"]
        assert action["dimensions"][0]["choices"][0] == "serve order slot 0"
        assert action["rule"] and action["mask_rule"]


def test_an_unknown_layout_points_to_the_documentation_instead_of_guessing() -> None:
    core = core_of(WAREHOUSE, "default")
    meaning = describe_action(core, "paretochain/Unknown-v0")
    assert "dimensions" not in meaning and "documentation" in meaning["rule"]
