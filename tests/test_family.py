"""One record per family: registration, ``make_vec``, baselines and scenarios read it, and a fourth family is
its folder plus one record."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import paretochain
from paretochain.envs import FAMILIES, Baseline, Family, env_class, get_family, make_vec
from paretochain.envs.registration import register_envs
from paretochain.envs.warehouse.env import WarehouseEnv
from paretochain.evaluate.baselines import family_baseline_fronts, family_baselines
from paretochain.evaluate.scenarios import family_scenarios

CONFIGS = Path(paretochain.__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("env_id", sorted(FAMILIES))
def test_every_registered_id_has_one_record_naming_its_env_config_core_and_configs_folder(env_id: str) -> None:
    record = FAMILIES[env_id]
    assert record.env_id == env_id and get_family(record.name) is record and get_family(env_id) is record
    assert gym.spec(env_id).entry_point == record.env
    assert env_class(env_id) is record.env_class
    assert record.config_class is record.env_class.config_cls
    assert record.core_class is record.env_class.core_cls
    assert record.config_class.family() == record.configs
    assert (CONFIGS / record.configs / "default.yaml").is_file()
    assert next(iter(record.scenario_map())) == "baseline"
    names = [b.name for b in record.baseline_list()]
    assert len(names) == len(set(names)), "baseline names are unique within a family"


def test_an_unknown_family_is_refused_naming_the_registered_ids() -> None:
    with pytest.raises(gym.error.UnregisteredEnv, match=r"'retail'.*paretochain/Warehouse-v0.*families"):
        get_family("retail")


#: the Pricing baselines every config has (the DP needs a small instance)
PRICING_RULES = [
    "fixed_list_price",
    "best_fixed_price",
    "best_fixed_price_per_preference",
    "stock_cover",
    "best_price_rule_per_preference",
    "myopic",
    "markdown",
]


@pytest.mark.parametrize(
    ("env_id", "config", "expected"),
    [
        ("paretochain/Warehouse-v0", "default", ["base_stock", "s_S", "forecast_order_up_to"]),
        (
            "paretochain/Warehouse-v0",
            "lost_sales",
            [
                "constant_order",
                "capped_base_stock",
                "vector_base_stock",
                "projected_inventory_level",
                "myopic",
                "myopic_2",
                "best_lost_sales_heuristic",
                "base_stock",
                "s_S",
                "optimal_dp",
            ],
        ),
        ("paretochain/Dispatch-v0", "default", ["nearest_neighbour", "pyvrp_rolling", "pyvrp_hindsight"]),
        ("paretochain/Pricing-v0", "dp_single_sku", [*PRICING_RULES, "optimal_dp"]),
        ("paretochain/Pricing-v0", "default", PRICING_RULES),
    ],
)
def test_the_baselines_that_apply_to_a_config_are_read_from_the_record(
    env_id: str, config: str, expected: list[str]
) -> None:
    record = get_family(env_id)
    cfg = record.config_class.load(config)
    assert [b.name for b in record.baseline_list() if b.applies(cfg)] == expected


def _toy_module() -> types.ModuleType:
    """A fourth family's code: its env (here a renamed Warehouse view), one baseline and its scenarios."""
    module = types.ModuleType("toy_family")

    class ToyEnv(WarehouseEnv):
        """A fourth family for the test (the Warehouse dynamics under another id)."""

    class OrderNothing:
        def __init__(self, env: Any) -> None:
            self.env = env

        def act(self, obs: Any, preference: Any = None, action_mask: Any = None) -> Any:
            import torch

            return torch.zeros(self.env.action_space.shape, dtype=torch.int64)

    module.ToyEnv = ToyEnv  # type: ignore[attr-defined]
    module.BASELINES = (Baseline("order_nothing", lambda cfg, tuning: OrderNothing),)  # type: ignore[attr-defined]
    module.SCENARIOS = {"baseline": lambda c: c, "longer": lambda c: c.model_copy(update={"horizon": 2 * c.horizon})}  # type: ignore[attr-defined]
    return module


def test_a_fourth_family_is_one_record_and_every_entry_point_serves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "toy_family", _toy_module())
    record = Family(
        name="toy",
        env_id="paretochain/Toy-v0",
        env="toy_family:ToyEnv",
        configs="warehouse",
        baselines="toy_family:BASELINES",
        scenarios="toy_family:SCENARIOS",
    )
    monkeypatch.setitem(FAMILIES, record.env_id, record)
    try:
        register_envs()
        env = gym.make("paretochain/Toy-v0")
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape
        vec = make_vec("paretochain/Toy-v0", 3)
        batch, _ = vec.reset(seed=1)
        assert batch.shape == (3, *env.observation_space.shape)
        assert get_family("toy") is record and env_class("paretochain/Toy-v0").__name__ == "ToyEnv"
        factories = family_baselines("paretochain/Toy-v0", "default")
        assert list(factories) == ["order_nothing"]
        policy = factories["order_nothing"](vec)
        vec.step(policy.act(batch).numpy())
        assert list(family_scenarios("toy")) == ["baseline", "longer"]
        assert family_baseline_fronts("paretochain/Toy-v0", "default") == {}
    finally:
        gym.registry.pop("paretochain/Toy-v0", None)
    assert np.isfinite(obs).all()
