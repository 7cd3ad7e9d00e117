"""The long-table demand loader: cleaning, reporting, refusing; replay and bootstrap in the env."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paretochain.envs import make_vec
from paretochain.envs.data.demand_history import load_demand_history
from paretochain.errors import ConfigError, DataError


def _write(tmp_path, text: str, name: str = "h.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_days_become_zero_sales_and_are_reported(tmp_path) -> None:
    path = _write(
        tmp_path,
        "date,item_id,location,units\n2024-01-01,a,s1,3\n2024-01-02,a,s1,4\n2024-01-04,a,s1,5\n2024-01-01,b,s1,1\n",
    )
    h = load_demand_history(path)
    assert h.report.frequency == "daily"
    assert h.units.shape == (1, 2, 4)
    np.testing.assert_array_equal(h.units[0, 0], [3, 4, 0, 5])
    np.testing.assert_array_equal(h.units[0, 1], [1, 0, 0, 0])
    assert h.report.missing_periods_filled == 4
    assert "missing periods filled" in str(h.report)


def test_duplicates_are_summed_and_outliers_flagged_then_clipped(tmp_path) -> None:
    rows = ["date,item_id,location,units"] + [f"2024-01-{d:02d},a,s,{5 + d % 2}" for d in range(1, 29)]
    rows.append("2024-01-05,a,s,2")  # duplicate of the 5th
    rows[10] = "2024-01-10,a,s,500"  # an outlier
    path = _write(tmp_path, "\n".join(rows) + "\n")
    flagged = load_demand_history(path)
    assert flagged.report.duplicate_rows_summed == 2
    assert flagged.units[0, 0, 4] == 6 + 2
    assert flagged.report.outliers_flagged >= 1 and flagged.outliers[0, 0, 9]
    assert flagged.units[0, 0, 9] == 500
    clipped = load_demand_history(path, clip_outliers=True)
    assert clipped.units[0, 0, 9] < 50 and clipped.report.outliers_clipped >= 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("date,item_id,location,units\n2024-01-01,a,s,3\n2024-01-02,a,s,-1\n", "line 3: units -1 is negative"),
        (
            "date,item_id,location,units\n2024-01-01,a,s,3\n2024-01-02,a,s,lots\n",
            "line 3: units 'lots' is not a number",
        ),
        ("date,item_id,location,units\n2024-01-01,a,s,3\nyesterday,a,s,2\n", "line 3: date 'yesterday' is not a date"),
        ("date,item,location,units\n2024-01-01,a,s,3\n", "missing column"),
        ("date,item_id,location,units\n2024-01-01,a,s,3\n2024-01-03,a,s,3\n2024-01-04,a,s,3\n", None),
    ],
)
def test_dirty_files_are_refused_with_an_error_naming_the_row(tmp_path, text: str, match: str | None) -> None:
    path = _write(tmp_path, text)
    if match is None:  # a gap of two days then one: still a daily calendar, filled
        assert load_demand_history(path).report.missing_periods_filled == 1
        return
    with pytest.raises(DataError, match=match):
        load_demand_history(path)


def test_unsupported_and_missing_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_demand_history(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        load_demand_history(_write(tmp_path, "x", "h.txt"))


def test_parquet_files_load_like_csv(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=10, freq="7D"),
            "item_id": "x",
            "location": "L",
            "units": range(10),
            "price": 2.5,
        }
    )
    path = tmp_path / "h.parquet"
    frame.to_parquet(path)
    h = load_demand_history(path)
    assert h.report.frequency == "weekly" and h.prices is not None
    np.testing.assert_array_equal(h.units[0, 0], np.arange(10))


def _oj_long(shared_data, tmp_path, stores: list[int], brands: list[int]):
    oj = pd.read_csv(shared_data / "retail" / "bayesm_scanner" / "oj_weekly_long.csv")
    oj = oj[oj["store"].isin(stores) & oj["brand"].isin(brands)]
    table = pd.DataFrame(
        {
            "date": pd.Timestamp("1989-09-14") + pd.to_timedelta(oj["week"] * 7, unit="D"),
            "item_id": oj["brand"].astype(str),
            "location": oj["store"].astype(str),
            "units": oj["units"],
            "price": oj["price_per_pack"],
        }
    )
    path = tmp_path / "oj.csv"
    table.to_csv(path, index=False)
    return path


def test_real_scanner_data_loads_with_gaps_filled_and_drives_the_env(shared_data, tmp_path) -> None:
    path = _oj_long(shared_data, tmp_path, stores=[2, 5], brands=[1, 2, 5])
    h = load_demand_history(path)
    assert h.report.frequency == "weekly"
    assert h.units.shape[:2] == (2, 3)
    assert h.report.missing_periods_filled > 0  # Dominick's weeks have gaps
    assert (h.units >= 0).all() and h.prices is not None
    for mode in ("replay", "bootstrap"):
        env = make_vec(
            "paretochain/Warehouse-v0",
            4,
            config="default",
            num_warehouses=2,
            num_skus=3,
            demand={"source": "history", "mean": 1.0, "history": {"path": str(path), "mode": mode}},
        )
        env.reset(seed=0)
        demand = []
        for _ in range(10):
            env.step(np.zeros((4, 6), dtype=np.int64))
            demand.append(env.core.last_demand.numpy())
        values = np.unique(np.stack(demand))
        assert set(values) <= set(np.unique(h.units))  # every draw is a historical value


def test_history_shape_must_match_the_network(shared_data, tmp_path) -> None:
    path = _oj_long(shared_data, tmp_path, stores=[2], brands=[1, 2])
    with pytest.raises(ConfigError, match="num_skus"):
        make_vec(
            "paretochain/Warehouse-v0",
            1,
            config="default",
            demand={"source": "history", "history": {"path": str(path)}},
        )


def test_real_monthly_online_data_loads_through_a_column_map(shared_data) -> None:
    path = shared_data / "retail" / "olist_retail_price" / "retail_price_long.csv"
    h = load_demand_history(path, columns={"channel": "location"})
    assert h.report.frequency == "monthly"
    assert h.units.shape[0] == 1 and h.units.shape[1] == 52
    assert h.prices is not None and np.isfinite(h.prices).all()
