"""Elasticity calibration: recovery on synthetic data, clear errors on bad files, runs on the real retail data."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import paretochain  # noqa: F401
from paretochain.envs import make_vec
from paretochain.envs.pricing import PricingCore
from paretochain.envs.pricing.calibration import (
    CalibrationWarning,
    config_from_fit,
    estimate_elasticity,
    load_price_table,
)
from paretochain.errors import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "retail"


def synthetic_panel(elasticities: dict[str, float], seed: int = 0, items: int = 20, periods: int = 30) -> pd.DataFrame:
    """Poisson sales with item and period effects and known elasticities per group; means high enough for no zeros."""
    rng = np.random.default_rng(seed)
    rows = []
    period_effect = rng.normal(0, 0.3, periods)
    for group, e in elasticities.items():
        for i in range(items):
            item_effect = rng.normal(0, 0.5)
            base_price = 10 * np.exp(rng.normal(0, 0.3))
            for t in range(periods):
                price = base_price * np.exp(rng.normal(0, 0.15))
                mean = 200 * np.exp(item_effect + period_effect[t]) * (price / base_price) ** -e
                rows.append((f"{group}{i}", t, group, rng.poisson(mean), price))
    return pd.DataFrame(rows, columns=["item_id", "date", "group", "units", "price"])


def test_calibration_recovers_known_elasticities_within_their_standard_errors() -> None:
    table = synthetic_panel({"a": 1.8, "b": 3.0})
    fit = estimate_elasticity(table, group="group")
    est = fit.estimates.set_index("group")
    for group, truth in (("a", 1.8), ("b", 3.0)):
        assert abs(est.loc[group, "elasticity"] - truth) < 4 * est.loc[group, "std_error"]
        assert 0 < est.loc[group, "std_error"] < 0.1
    pooled = estimate_elasticity(synthetic_panel({"a": 2.2}, seed=3))
    assert pooled.elasticity == pytest.approx(2.2, abs=4 * pooled.std_error)
    assert pooled.n_items == 20 and pooled.n_periods == 30
    assert "elasticity" in pooled.summary()


def test_a_config_built_from_a_fit_has_the_fitted_elasticity_at_list_price() -> None:
    fit = estimate_elasticity(synthetic_panel({"a": 2.5}, seed=1))
    for model in ("constant_elasticity", "mnl"):
        cfg = config_from_fit(fit, model=model, list_price=10.0, unit_cost=4.0, horizon=10, initial_inventory=500)
        core = PricingCore(cfg, num_envs=1)
        ratio = torch.tensor([[[0.999]], [[1.001]]], dtype=torch.float64)
        mean = core.demand.expected_demand(ratio.float(), torch.zeros(2, dtype=torch.int64)).double().flatten()
        slope = -(mean[1].log() - mean[0].log()) / (ratio[1, 0, 0].log() - ratio[0, 0, 0].log())
        assert float(slope) == pytest.approx(fit.elasticity, rel=2e-3)
        make_vec("paretochain/Pricing-v0", 2, config=cfg).reset(seed=0)


def test_an_inelastic_fit_cannot_build_a_constant_elasticity_config() -> None:
    fit = estimate_elasticity(synthetic_panel({"a": 0.6}, seed=2))
    with pytest.raises(ConfigError, match="not above 1"):
        config_from_fit(fit)


def test_bad_price_tables_raise_data_errors_naming_the_file_and_row(tmp_path: Path) -> None:
    good = synthetic_panel({"a": 2.0}, items=2, periods=3)
    path = tmp_path / "sales.csv"
    good.drop(columns=["price"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['price'\]"):
        load_price_table(path)
    bad = good.copy()
    bad.loc[3, "price"] = 0.0
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 5 .*price = 0.0 is not"):
        load_price_table(path)
    bad = good.copy().astype({"units": object})
    bad.loc[1, "units"] = "many"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 3 .*units = 'many' is not"):
        load_price_table(path)
    with pytest.raises(DataError, match="does not exist"):
        load_price_table(tmp_path / "absent.csv")
    flat = good.assign(price=5.0)
    with pytest.raises(DataError, match="does not vary"):
        estimate_elasticity(flat)


@pytest.mark.skipif(not DATA.exists(), reason="the shared retail data (../shared/data/retail) is not present")
def test_calibration_runs_on_the_orange_juice_scanner_data_with_brand_elasticities() -> None:
    table = load_price_table(
        DATA / "bayesm_scanner" / "oj_weekly_long.csv",
        columns={"week": "date", "price_per_oz": "price"},
        required=("date", "units", "price"),
    )
    table["item_id"] = table["store"].astype(str) + "/" + table["brand"].astype(str)
    fit = estimate_elasticity(table, group="brand", controls=["deal", "feat"], source="orange juice")
    assert len(fit.estimates) == 11 and fit.n_obs == 106_139
    assert (fit.estimates["elasticity"] > 1).all() and (fit.estimates["elasticity"] < 6).all()
    assert (fit.estimates["std_error"] > 0).all() and (fit.estimates["cluster_std_error"] > 0).all()
    config_from_fit(fit, horizon=8)


@pytest.mark.skipif(not DATA.exists(), reason="the shared retail data (../shared/data/retail) is not present")
def test_calibration_runs_on_the_online_data_with_a_competitor_price_control() -> None:
    table = load_price_table(DATA / "olist_retail_price" / "retail_price_long.csv")
    fit = estimate_elasticity(table, log_controls=["comp_1_price"], source="online")
    assert fit.n_items == 52 and np.isfinite(fit.elasticity) and fit.std_error > 0
    assert list(fit.controls["name"]) == ["log_comp_1_price"]
    cfg = config_from_fit(fit, model="mnl", horizon=12)
    assert cfg.channels[0].price_sensitivity > fit.elasticity


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("units", "inf", "units = inf is not a finite number >= 0"),
        ("price", "-inf", "price = -inf is not a finite number > 0"),
        ("price", "nan", "price = nan is not a finite number > 0"),
        ("item_id", "", "item_id = nan is not given (blank)"),
        ("date", " ", "date = ' ' is not given (blank)"),
    ],
)
def test_non_finite_numbers_and_blank_ids_or_dates_are_refused_naming_row_and_column(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    table = synthetic_panel({"a": 2.0}, items=3, periods=4).astype({column: object})
    table.loc[5, column] = value
    path = tmp_path / "sales.csv"
    table.to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_price_table(path)
    assert f"data row 5 (line 7 of a CSV with a header): {problem}" in str(caught.value)


def test_a_data_frame_with_inf_units_is_refused_by_the_fit_itself() -> None:
    table = synthetic_panel({"a": 2.0}, items=3, periods=4).astype({"units": np.float64})
    table.loc[2, "units"] = np.inf
    with pytest.raises(DataError, match=r"data row 2 .*units = inf is not a finite number"):
        estimate_elasticity(table, source="frame")


def test_the_fitted_config_carries_the_estimate_and_its_standard_errors_in_its_provenance() -> None:
    fit = estimate_elasticity(synthetic_panel({"a": 2.5}, seed=1), source="synthetic panel")
    cfg = config_from_fit(fit, horizon=10)
    assert cfg.calibration is not None
    assert cfg.calibration.elasticity == pytest.approx(fit.elasticity)
    assert cfg.calibration.std_error == pytest.approx(fit.std_error) and cfg.calibration.std_error > 0
    assert cfg.calibration.cluster_std_error == pytest.approx(float(fit.estimates["cluster_std_error"].iloc[0]))
    assert cfg.calibration.source == "synthetic panel" and cfg.calibration.n_obs == fit.n_obs
    assert cfg.calibration.warnings == []
    again = type(cfg).load(yaml.safe_load(cfg.to_yaml()))  # the provenance survives a round trip through YAML
    assert again.calibration == cfg.calibration


def test_a_wrong_signed_fit_warns_and_cannot_build_a_config() -> None:
    with pytest.warns(CalibrationWarning, match=r"wrong sign: demand rises with price for group\(s\) all"):
        fit = estimate_elasticity(synthetic_panel({"a": -1.5}, seed=4))
    assert fit.elasticity < 0 and any("wrong sign" in n for n in fit.notes)
    for model in ("constant_elasticity", "mnl"):
        with pytest.raises(ConfigError, match="has the wrong sign"):
            config_from_fit(fit, model=model)


def test_a_config_can_be_built_from_a_chosen_group_and_an_unknown_group_is_refused() -> None:
    fit = estimate_elasticity(synthetic_panel({"a": 1.8, "b": 3.0}), group="group")
    cfg = config_from_fit(fit, group="b")
    assert cfg.calibration is not None and cfg.calibration.group == "b"
    assert cfg.demand.elasticity == pytest.approx(float(fit.estimates.set_index("group").loc["b", "elasticity"]))
    with pytest.raises(ConfigError, match="group 'c' is not in the fit"):
        config_from_fit(fit, group="c")


def test_a_clean_fit_gives_no_calibration_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        fit = estimate_elasticity(synthetic_panel({"a": 2.2}, seed=3))
    assert fit.notes == []
