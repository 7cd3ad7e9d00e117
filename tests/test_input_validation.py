"""Bad input gets one clear error naming the field: NaN and inf anywhere in a config, env values out of range."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from paretochain.cli import main
from paretochain.envs import make_vec
from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.pricing.config import PricingConfig
from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.errors import ConfigError
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
    assert f"- {field}: must be a finite number" in message
    assert len(message.splitlines()) == 2  # the header and one line for the one bad field


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
    with pytest.raises(ConfigError, match=re.escape(f"- {field}: must be a finite number")):
        load_run_config("warehouse_mo_ppo", [override])


def test_the_cli_answers_a_nan_override_with_exit_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    code = main(["train", "warehouse_mo_ppo", "env.overrides.unit_cost=.nan", f"runs_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "env.overrides.unit_cost: must be a finite number" in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_finite_configs_still_load() -> None:
    for cls in (WarehouseConfig, PricingConfig, DispatchConfig):
        assert isinstance(cls.load("default"), cls)
