"""Baselines traced as fronts (their parameter swept), and baselines tuned for a preference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretochain.agents.baselines import pricing as pr
from paretochain.agents.baselines.warehouse import BaseStockPolicy
from paretochain.envs import make_vec
from paretochain.envs.warehouse.core import WarehouseCore
from paretochain.evaluate.baselines import family_baseline_fronts, family_baselines
from paretochain.evaluate.rollout import rollout


def test_each_point_of_a_swept_front_is_its_own_policy_played_alone() -> None:
    env_id, seeds = "paretochain/Warehouse-v0", [5, 6, 7]
    front = family_baseline_fronts(env_id, "default")["base_stock"]
    n = len(seeds)
    env = make_vec(env_id, len(front.values) * n, config="default", tensors=True)
    swept = rollout(env, front.policy(env, n), seeds * len(front.values)).returns.reshape(len(front.values), n, -1)
    i = front.values.index(4.0)
    mean = WarehouseCore(env.core.config, 1, "cpu").node_mean
    alone_env = make_vec(env_id, n, config="default", tensors=True)
    alone = rollout(alone_env, BaseStockPolicy(alone_env, np.round(4.0 * mean)), seeds).returns
    assert np.allclose(swept[i], alone, rtol=1e-5, atol=1e-3)
    # a front is a trade-off: more cover, more fill rate
    fill = swept[:, :, 1].mean(axis=1)
    assert fill[-1] > fill[0]


def test_pricing_fronts_sweep_the_fixed_price_the_stock_cover_and_the_markdown_depth() -> None:
    fronts = family_baseline_fronts("paretochain/Pricing-v0", "default")
    assert set(fronts) == {"fixed_price", "stock_cover", "markdown"}
    env = make_vec("paretochain/Pricing-v0", 2 * len(fronts["fixed_price"].values), config="default", tensors=True)
    obs = env.core.reset(seeds=list(range(env.core.num_envs)))
    action = fronts["fixed_price"].policy(env, 2).act(obs, None, env.core.action_masks())
    assert torch.equal(action[0], action[1]) and not torch.equal(action[0], action[-1])  # pairs share a price
    # the opening stock of SKU 0 (60 units) covers 1.04 of the season's expected asks at list price:
    # the rules whose cover threshold is above that raise its price at once, the others hold list price
    covers = fronts["stock_cover"].values
    env = make_vec("paretochain/Pricing-v0", len(covers), config="default", tensors=True)
    obs = env.core.reset(seeds=[0] * len(covers))
    env.core.step(fronts["stock_cover"].policy(env, 1).act(obs, None, env.core.action_masks()))
    cover = float(obs[0, 0]) / float(pr.sales_to_go(env.core)[0, 0])
    played = env.core.state.price[:, 0, 0].tolist()
    assert played == pytest.approx([1.1 if c > cover else 1.0 for c in covers])
    assert 1.0 in played and 1.1 in [round(p, 4) for p in played]
    assert family_baseline_fronts("paretochain/Dispatch-v0", "default") == {}


def test_the_fixed_price_tuned_for_a_preference_follows_it() -> None:
    seeds = list(range(16))
    env = make_vec("paretochain/Pricing-v0", 1, config="default")
    k = len(env.core.objectives)
    margin_only = np.eye(k)[0]
    leftover_only = np.eye(k)[list(env.core.objectives.names).index("leftover_inventory")]
    high, table = pr.tune_fixed_price("default", seeds, weights=margin_only)
    low, _ = pr.tune_fixed_price("default", seeds, weights=leftover_only)
    assert float(high.price_ratio) == max(table, key=table.get)
    # clearing the stock (leftover) asks for a lower price than the margin does
    assert float(low.price_ratio) < float(high.price_ratio)
    assert "best_fixed_price" in family_baselines(
        "paretochain/Pricing-v0", "default", names=["best_fixed_price"], train_seeds=seeds, weights=margin_only
    )
