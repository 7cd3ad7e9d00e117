"""Rewards are named expressions of the KPIs, one reward module per family, one table shape for all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from paretochain.envs import env_class
from paretochain.envs.core import kpi_matrix
from paretochain.envs.dispatch import reward as dispatch_reward
from paretochain.envs.dispatch.core import KPI_NAMES as DISPATCH_KPIS
from paretochain.envs.pricing import reward as pricing_reward
from paretochain.envs.pricing.core import KPI_NAMES as PRICING_KPIS
from paretochain.envs.reward import HORIZON, ORDERS, RewardExpression, kpi, reward_weights
from paretochain.envs.warehouse import reward as warehouse_reward
from paretochain.envs.warehouse.core import KPI_NAMES as WAREHOUSE_KPIS

FAMILIES = [
    ("paretochain/Warehouse-v0", "perishable_disruptions", warehouse_reward.REWARDS, WAREHOUSE_KPIS),
    ("paretochain/Pricing-v0", "default", pricing_reward.REWARDS, PRICING_KPIS),
    ("paretochain/Dispatch-v0", "default", dispatch_reward.REWARDS, DISPATCH_KPIS),
]


def test_expressions_read_as_a_planner_writes_them() -> None:
    assert str(-kpi("holding_cost")) == "-holding_cost"
    assert str(kpi("fill_rate") / HORIZON) == "fill_rate / horizon"
    assert str(kpi("revenue") - 2.0 * kpi("waste_cost")) == "revenue - 2 * waste_cost"
    assert str((kpi("a") + kpi("b")) / ORDERS) == "(a + b) / orders"


def test_the_weights_of_an_expression_hold_its_coefficients_divided_as_it_says() -> None:
    rewards = {"margin": kpi("revenue") - kpi("cost"), "mean_fill": kpi("fill") / HORIZON, "late": -kpi("late")}
    weights, per_order = reward_weights(rewards, ["mean_fill", "margin"], ("revenue", "cost", "fill"), horizon=4)
    np.testing.assert_array_equal(weights, [[0.0, 1.0], [0.0, -1.0], [0.25, 0.0]])
    assert not per_order.any()
    _, per_order = reward_weights({"share": kpi("on_time") / ORDERS}, ["share"], ("late", "on_time"))
    assert per_order.tolist() == [False, True]


@pytest.mark.parametrize(
    ("rewards", "objectives", "message"),
    [
        ({"x": kpi("nope")}, ["x"], "reads KPI 'nope', which the step does not report"),
        ({"x": kpi("a")}, ["y"], "objective 'y' has no reward expression"),
        ({"x": kpi("a") / HORIZON}, ["x"], "per horizon, but the family has none"),
        ({"x": kpi("a") / ORDERS, "y": kpi("a")}, ["x", "y"], "'a' is read both per order and not"),
    ],
)
def test_an_expression_that_cannot_be_computed_is_refused_by_name(
    rewards: dict[str, RewardExpression], objectives: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        reward_weights(rewards, objectives, ("a", "b"))


def test_only_expressions_of_one_divisor_add_up() -> None:
    with pytest.raises(ValueError, match="same divisor"):
        _ = kpi("a") / HORIZON + kpi("b")


@pytest.mark.parametrize(("env_id", "config", "rewards", "kpi_names"), FAMILIES)
def test_every_objective_of_the_catalogue_has_a_declaration_and_an_expression_over_reported_kpis(
    env_id: str, config: str, rewards: dict[str, RewardExpression], kpi_names: tuple[str, ...]
) -> None:
    cls = env_class(env_id)
    core = cls.core_cls(cls.config_cls.load(config, objectives=list(rewards)), num_envs=1)  # type: ignore[call-arg]
    assert core.objectives.names == list(rewards)
    weights, _ = reward_weights(rewards, list(rewards), kpi_names, getattr(core, "horizon", None))
    assert (weights != 0).any(axis=0).all()


@pytest.mark.parametrize(("env_id", "config", "rewards", "kpi_names"), FAMILIES)
def test_the_reward_vector_of_a_step_is_its_kpis_through_the_expressions(
    env_id: str, config: str, rewards: dict[str, RewardExpression], kpi_names: tuple[str, ...]
) -> None:
    cls = env_class(env_id)
    cfg = cls.config_cls.load(config, objectives=list(rewards))
    core: Any = cls.core_cls(cfg, num_envs=3)  # type: ignore[call-arg]
    core.reset(seeds=[1, 2, 3])
    weights, per_order = reward_weights(rewards, list(rewards), kpi_names, core.horizon)
    rng = np.random.default_rng(0)
    for _ in range(4):
        masks = core.action_masks()
        space = core.single_action_space
        if masks is not None and hasattr(space, "n"):
            action = torch.as_tensor([rng.choice(np.flatnonzero(row)) for row in masks.numpy()])
        else:
            action = torch.as_tensor(np.stack([space.sample() for _ in range(3)]))
            if masks is not None:
                action, _ = core.replace_disallowed(action)
        orders = core.state.num_orders.clone() if per_order.any() else None
        out = core.step(action)
        values = kpi_matrix(out.kpis).to(torch.float64).numpy()
        if orders is not None:
            values = values / np.where(per_order, orders.numpy()[:, None], 1.0)
        np.testing.assert_allclose(out.reward.numpy(), values @ weights, rtol=1e-5, atol=1e-4)


def test_a_changed_expression_changes_the_reward_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = env_class("paretochain/Warehouse-v0")
    cfg = cls.config_cls.load("default", objectives=["total_cost"])
    monkeypatch.setitem(warehouse_reward.REWARDS, "total_cost", -kpi("holding_cost"))
    core: Any = cls.core_cls(cfg, num_envs=2)  # type: ignore[call-arg]
    core.reset(seeds=[4, 5])
    out = core.step(torch.zeros((2, *core.single_action_space.shape), dtype=torch.int64))
    torch.testing.assert_close(out.reward[:, 0], -out.kpis["holding_cost"])
    assert bool((out.kpis["total_cost"] > out.kpis["holding_cost"]).any())
