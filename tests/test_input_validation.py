"""Bad input gets one clear error naming the field: NaN and inf anywhere in a config, env values out of range."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch

from paretochain.cli import main
from paretochain.envs import make_vec, memory
from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.pricing.config import PricingConfig
from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.errors import ConfigError, ParetochainError
from paretochain.train.config import load_run_config

NAN, INF = math.nan, math.inf

NON_FINITE_ENV_VALUES: list[tuple[type, dict[str, Any], str]] = [
    (WarehouseConfig, {"unit_cost": NAN}, "unit_cost"),
    (WarehouseConfig, {"price": INF}, "price"),
    (WarehouseConfig, {"holding_cost": [INF]}, "holding_cost[0]"),
    (WarehouseConfig, {"demand": {"mean": NAN}}, "demand.mean"),
    (WarehouseConfig, {"demand": {"mean": {"low": 1.0, "high": INF}}}, "demand.mean.high"),
    (WarehouseConfig, {"demand": {"location_weights": [NAN]}}, "demand.location_weights[0]"),
    (WarehouseConfig, {"action": {"ladder": [0, 1, INF]}}, "action.ladder[2]"),
    (WarehouseConfig, {"dc_holding_factor": NAN}, "dc_holding_factor"),
    (WarehouseConfig, {"reference_point": {"profit": NAN}}, "reference_point.profit"),
    (PricingConfig, {"list_price": NAN}, "list_price"),
    (PricingConfig, {"initial_inventory": INF}, "initial_inventory"),
    (PricingConfig, {"channels": [{"arrival_rate": NAN}]}, "channels[0].arrival_rate"),
    (PricingConfig, {"action": {"price_ladder": [0.5, NAN]}}, "action.price_ladder[1]"),
    (PricingConfig, {"demand": {"competitor": {"volatility": INF}}}, "demand.competitor.volatility"),
    (PricingConfig, {"replenishment": {"order_fixed_cost": -INF}}, "replenishment.order_fixed_cost"),
    (DispatchConfig, {"shift_length_min": INF}, "shift_length_min"),
    (DispatchConfig, {"generator": {"service_max": INF}}, "generator.service_max"),
    (DispatchConfig, {"release": {"known_share": NAN}}, "release.known_share"),
    (DispatchConfig, {"reference_point": {"travel_distance": -INF}}, "reference_point.travel_distance"),
]


@pytest.mark.parametrize(("config_cls", "fields", "field"), NON_FINITE_ENV_VALUES)
def test_every_float_field_of_every_env_config_refuses_nan_and_inf_naming_the_field(
    config_cls: type, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_cls.load(None, **fields)
    message = str(caught.value)
    assert message.startswith(f"invalid {config_cls.__name__} ({config_cls.__name__} defaults): {field}: ")
    assert f" {field}: must be a finite number" in message
    assert len(message.splitlines()) == 1  # one bad field: one line


def test_pricing_arrival_rate_nan_is_refused_when_the_env_is_built() -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\]\.arrival_rate: must be a finite number"):
        make_vec("paretochain/Pricing-v0", 1, channels=[{"name": "web", "arrival_rate": NAN}])


def test_assigning_nan_to_a_config_field_is_refused() -> None:
    cfg = WarehouseConfig()
    with pytest.raises(ValueError, match="finite"):
        cfg.dc_holding_factor = NAN
    assert cfg.dc_holding_factor == 0.5


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("env.overrides.unit_cost=.nan", "env.overrides.unit_cost"),
        ("hyperparameters.learning_rate=.inf", "hyperparameters.learning_rate"),
        ("preference=[.nan, 1, 1]", "preference[0]"),
        ("env.overrides.reference_point={profit: .nan}", "env.overrides.reference_point.profit"),
    ],
)
def test_run_configs_refuse_nan_and_inf_anywhere_including_free_form_sections(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f": {field}: must be a finite number")):
        load_run_config("warehouse_mo_ppo", [override])


def test_the_cli_answers_a_nan_override_with_exit_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    code = main(["train", "warehouse_mo_ppo", "env.overrides.unit_cost=.nan", f"runs_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "env.overrides.unit_cost: must be a finite number" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_finite_configs_still_load() -> None:
    for cls in (WarehouseConfig, PricingConfig, DispatchConfig):
        assert isinstance(cls.load("default"), cls)


GIB = 1024**3


@pytest.fixture
def sixteen_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device reports 16 GiB free, whatever this machine has."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 16 * GIB)


def test_a_warehouse_batch_that_cannot_fit_is_refused_up_front_with_the_estimate(sixteen_gib: None) -> None:
    with pytest.raises(ConfigError) as caught:
        make_vec("paretochain/Warehouse-v0", 64, num_skus=10_000, num_warehouses=1_000)
    message = str(caught.value)
    assert "paretochain/Warehouse-v0 with num_envs=64 needs at least" in message
    assert "but only 16.0 GiB is available on cpu" in message
    need = WarehouseConfig(num_skus=10_000, num_warehouses=1_000).memory_estimate(64)
    assert need > 64 * 10_000 * 1_000 * 4  # at least one float per cell and environment
    assert memory.format_bytes(need) in message


@pytest.mark.parametrize(
    ("env_id", "fields"),
    [
        ("paretochain/Pricing-v0", {"num_skus": 10_000, "channels": [{"name": f"c{i}"} for i in range(16)]}),
        ("paretochain/Dispatch-v0", {"generator": {"num_customers": 2_000}}),
    ],
)
def test_pricing_and_dispatch_batches_that_cannot_fit_are_refused(
    sixteen_gib: None, env_id: str, fields: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match=r"with num_envs=100000 needs at least .* but only 16\.0 GiB"):
        make_vec(env_id, 100_000, **fields)


def test_batches_that_fit_are_built_and_the_check_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_vec("paretochain/Warehouse-v0", 4, config="default")
    assert env.num_envs == 4
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1024)
    with pytest.raises(ConfigError, match=r"but only 1\.0 KiB is available"):
        make_vec("paretochain/Warehouse-v0", 4, config="default")
    monkeypatch.setenv("PARETOCHAIN_MEMORY_CHECK", "0")
    assert make_vec("paretochain/Warehouse-v0", 4, config="default").num_envs == 4


def test_the_cli_refuses_a_run_that_cannot_fit_in_one_line_before_writing(
    sixteen_gib: None, tmp_path: Path, capsys
) -> None:
    code = main(
        [
            "train",
            "warehouse_mo_ppo",
            "env.config=null",
            "env.overrides.num_skus=10000",
            "env.overrides.num_warehouses=1000",
            f"runs_dir={tmp_path}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "needs at least" in err and "available on cpu" in err
    assert len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_memory_estimates_grow_with_the_batch_and_the_instance() -> None:
    small, big = WarehouseConfig(num_skus=10), WarehouseConfig(num_skus=1_000)
    assert small.memory_estimate(8) == 8 * small.memory_estimate(1)
    assert big.memory_estimate(1) > 50 * small.memory_estimate(1)
    assert PricingConfig(num_skus=100).memory_estimate(1) > PricingConfig(num_skus=1).memory_estimate(1)
    assert DispatchConfig(generator={"num_customers": 200}).memory_estimate(1) > DispatchConfig().memory_estimate(1)


@pytest.mark.parametrize(
    ("env_id", "fields", "field"),
    [
        ("paretochain/Warehouse-v0", {"demand": {"mean": NAN}}, "demand.mean: must be a finite number"),
        ("paretochain/Warehouse-v0", {"demand": {"location_weights": [-1.0]}}, "demand.location_weights"),
        ("paretochain/Dispatch-v0", {"shift_length_min": INF}, "shift_length_min: must be a finite number"),
        ("paretochain/Pricing-v0", {"initial_inventory": INF}, "initial_inventory: must be a finite number"),
    ],
)
def test_bad_env_values_from_the_audit_are_one_project_error_through_the_public_constructors(
    env_id: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ParetochainError, match=re.escape(field)):
        gym.make(env_id, **fields)
    with pytest.raises(ParetochainError, match=re.escape(field)):
        make_vec(env_id, 2, **fields)


@pytest.mark.parametrize(
    "override",
    [
        "env.overrides.demand={mean: .nan}",
        "env.overrides.demand={location_weights: [-1.0]}",
    ],
)
def test_bad_warehouse_demand_values_end_the_cli_with_exit_2_and_no_traceback(
    override: str, tmp_path: Path, capsys
) -> None:
    code = main(["train", "warehouse_mo_ppo", "env.config=null", override, f"runs_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "demand." in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_batch_is_checked_against_the_gpu_s_free_memory() -> None:
    free = memory.available_bytes(torch.device("cuda"))
    assert free is not None and 0 < free <= torch.cuda.get_device_properties(0).total_memory
    with pytest.raises(ConfigError, match=r"is available on cuda"):
        make_vec("paretochain/Warehouse-v0", 1_000_000, device="cuda", num_skus=10_000, num_warehouses=1_000)
