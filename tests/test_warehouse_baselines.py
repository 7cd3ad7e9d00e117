"""Warehouse baselines: known answers, the policy contract, tuning on training seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paretochain.agents.baselines.lost_sales_dp import LostSalesDPPolicy, solve_lost_sales
from paretochain.agents.baselines.warehouse import (
    ARForecaster,
    BaseStockPolicy,
    SSPolicy,
    tune_base_stock,
    tune_forecast_order_up_to,
    tune_s_s,
)
from paretochain.agents.policy import Policy
from paretochain.envs import make_vec
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.rollout import rollout

ENV_ID = "paretochain/Warehouse-v0"


def _poisson_cdf(k: int, mean: float) -> float:
    return sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k + 1))


def test_tuned_base_stock_lands_on_the_newsvendor_critical_fractile() -> None:
    # zero lead time, one period, nothing on hand: the order is the newsvendor quantity
    h, p, mean = 1.0, 9.0, 5.0
    cfg = WarehouseConfig.load("lost_sales", horizon=1, initial_inventory=0.0, supplier_lead_time={"periods": 0})
    fractile = p / (p + h)
    expected = next(q for q in range(100) if _poisson_cdf(q, mean) >= fractile)
    result = tune_base_stock(cfg, seeds=range(4000))
    assert expected == 8
    assert result.best == expected


def test_lost_sales_dp_matches_the_optimal_costs_of_the_classic_model() -> None:
    # Poisson mean 5, h = 1, p = 9: optimal average costs 5.44 (L = 1), 6.09 (L = 2), 6.53 (L = 3)
    # as tabulated by Zipkin (2008), "Old and new methods for lost-sales inventory systems".
    costs = [solve_lost_sales(5.0, lead, 1.0, 9.0).average_cost for lead in (1, 2, 3)]
    np.testing.assert_allclose(costs, [5.44, 6.09, 6.53], atol=0.006)


def test_dp_policy_simulated_in_the_env_reaches_its_computed_cost_and_beats_base_stock() -> None:
    env = make_vec(ENV_ID, 200, config="lost_sales", horizon=300)
    seeds = list(range(5000, 5200))
    dp = LostSalesDPPolicy(env)
    dp_cost = -rollout(env, dp, seeds).returns[:, 0].mean() / 300
    assert dp_cost == pytest.approx(dp.solution.average_cost, abs=0.1)
    best = tune_base_stock("lost_sales", seeds=range(32))
    bs_cost = -rollout(env, best.policy(env), seeds).returns[:, 0].mean() / 300
    assert dp_cost < bs_cost  # common random numbers: the optimum is strictly better than base-stock


def test_dp_refuses_configs_outside_its_model() -> None:
    env = make_vec(ENV_ID, 1, config="default")
    with pytest.raises((ValueError, TypeError)):
        LostSalesDPPolicy(env)


def test_base_stock_orders_the_gap_to_the_level_from_the_inventory_position() -> None:
    env = make_vec(ENV_ID, 1, config="lost_sales", tensors=True)
    obs, _ = env.reset(seed=0)
    position = float(obs[0, :3].sum())  # on hand + two pipeline slots
    policy = BaseStockPolicy(env, [[15]])
    action = policy.act(obs)
    assert int(action[0]) == max(0, 15 - int(position))


def test_s_s_orders_only_at_or_below_the_reorder_point() -> None:
    env = make_vec(ENV_ID, 1, config="lost_sales", tensors=True)
    obs, _ = env.reset(seed=0)
    position = float(obs[0, :3].sum())
    above = SSPolicy(env, [[position - 1]], [[position + 5]])
    at = SSPolicy(env, [[position]], [[position + 5]])
    assert int(above.act(obs)[0]) == 0
    assert int(at.act(obs)[0]) == 5


@pytest.mark.parametrize("name", ["lost_sales", "default", "backorder_box", "network_50sku", "perishable_disruptions"])
def test_baselines_follow_the_policy_contract_on_whole_batches(name: str) -> None:
    env = make_vec(ENV_ID, 16, config=name, tensors=True)
    obs, _ = env.reset(seed=0)
    policy = BaseStockPolicy(env, np.round(env.core.node_mean * 3))
    assert isinstance(policy, Policy)
    action = policy.act(obs)
    assert action.shape[0] == 16
    env.core.check_action(action)  # raises if outside the space
    env.step(action)


def test_tuning_scores_improve_on_a_naive_level_and_generalise_to_other_seeds() -> None:
    result = tune_base_stock("default", seeds=range(16))
    assert result.scores.max() > result.scores[0]
    env = make_vec(ENV_ID, 32, config="default")
    tuned = rollout(env, result.policy(env), range(900, 932)).returns[:, 0].mean()
    naive = rollout(env, BaseStockPolicy(env, np.round(env.core.node_mean * 0.5)), range(900, 932)).returns[:, 0].mean()
    assert tuned > naive


def test_s_s_tuner_returns_a_pair_and_a_working_policy() -> None:
    result = tune_s_s("lost_sales", seeds=range(16), covers=[2.0, 3.0], gaps=[0.5, 1.0])
    assert result.candidates.shape == (4, 2)
    env = make_vec(ENV_ID, 4, config="lost_sales")
    assert rollout(env, result.policy(env), range(4)).returns.shape == (4, 2)


def test_autoregression_recovers_known_coefficients_and_reports_errors() -> None:
    rng = np.random.default_rng(0)
    t = 4000
    series = np.zeros(t)
    for i in range(2, t):
        series[i] = 3.0 + 0.5 * series[i - 1] + 0.2 * series[i - 2] + rng.normal(0, 1.0)
    demand = series.reshape(1, 1, 1, t)
    forecaster = ARForecaster(2).fit(demand)
    assert forecaster.coefficients is not None
    np.testing.assert_allclose(forecaster.coefficients[0], [0.2, 0.5, 3.0], atol=0.08)
    mae, rmse = forecaster.score(demand)
    assert rmse == pytest.approx(1.0, abs=0.08)
    assert mae < rmse
    history = torch.tensor([[[[10.0, 20.0]]]])
    assert float(forecaster.predict(history)[0, 0, 0]) == pytest.approx(3 + 0.2 * 10 + 0.5 * 20, abs=0.5)


def test_forecast_order_up_to_is_tuned_and_reports_forecast_accuracy() -> None:
    result = tune_forecast_order_up_to("default", seeds=range(16))
    env = make_vec(ENV_ID, 8, config="default")
    policy = result.policy(env)
    assert np.isfinite(policy.forecaster.mae) and np.isfinite(policy.forecaster.rmse)
    assert policy.forecaster.rmse >= policy.forecaster.mae > 0
    returns = rollout(env, policy, range(100, 108)).returns
    assert np.isfinite(returns).all()
