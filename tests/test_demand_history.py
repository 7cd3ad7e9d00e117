"""The long-table demand loader: cleaning, reporting, refusing; replay and bootstrap in the env."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from paretochain.envs import make_vec
from paretochain.envs.data.demand_history import DemandHistoryWarning, load_demand_history
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
            demand.append(env.core.state.last_demand.numpy())
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


DAILY = [("2024-01-30", 3), ("2024-01-31", 4), ("2024-02-01", 5), ("2024-02-03", 2)]


def _daily(tmp_path, dates: list[str], units: list[int], name: str = "h.csv"):
    rows = ["date,item_id,location,units"] + [f"{d},a,s,{u}" for d, u in zip(dates, units)]
    return _write(tmp_path, "\n".join(rows) + "\n", name)


def test_day_month_dates_without_a_format_are_refused_as_ambiguous(tmp_path) -> None:
    path = _daily(tmp_path, ["03/01/2024", "04/01/2024", "05/01/2024"], [1, 2, 3])
    with pytest.raises(DataError, match=r"line 2: date '03/01/2024' is ambiguous \(day/month or month/day\)"):
        load_demand_history(path)


def test_an_explicit_date_format_reads_day_month_dates_as_their_iso_twins(tmp_path) -> None:
    iso = load_demand_history(_daily(tmp_path, [d for d, _ in DAILY], [u for _, u in DAILY]), warn=False)
    dmy = [pd.Timestamp(d).strftime("%d/%m/%Y") for d, _ in DAILY]
    written = load_demand_history(
        _daily(tmp_path, dmy, [u for _, u in DAILY], "dmy.csv"), date_format="%d/%m/%Y", warn=False
    )
    assert written.report.frequency == iso.report.frequency == "daily"
    assert list(written.dates) == list(iso.dates) and len(iso.dates) == 5
    np.testing.assert_array_equal(written.units, iso.units)
    with pytest.raises(DataError, match=r"line 3: date '2024-01-31' does not match date_format '%d/%m/%Y'"):
        load_demand_history(_daily(tmp_path, ["30/01/2024", "2024-01-31"], [1, 2], "mixed.csv"), date_format="%d/%m/%Y")


def test_integer_week_numbers_are_period_indexes_with_gaps_filled(tmp_path) -> None:
    path = _daily(tmp_path, ["40", "41", "43", "44"], [5, 6, 7, 8])
    with pytest.warns(DemandHistoryWarning, match="1 missing periods filled with zero sales"):
        h = load_demand_history(path)
    assert h.report.frequency == "integer periods"
    assert list(h.dates) == [40, 41, 42, 43, 44]
    np.testing.assert_array_equal(h.units[0, 0], [5, 6, 0, 7, 8])


def test_eight_digit_numbers_are_refused_as_dates_in_disguise(tmp_path) -> None:
    path = _daily(tmp_path, ["20240101", "20240102"], [1, 2])
    with pytest.raises(DataError, match="looks like a YYYYMMDD date"):
        load_demand_history(path)
    h = load_demand_history(path, date_format="%Y%m%d")
    assert h.report.frequency == "daily" and h.units.shape == (1, 1, 2)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2024-01-03,,s,3", "line 4: item_id is blank"),
        ("2024-01-03,  ,s,3", "line 4: item_id is blank"),
        (",a,s,3", "line 4: the date is blank"),
        ("2024-01-03,a,,3", "line 4: location is blank"),
        ("2024-01-03,a,s,inf", "line 4: units 'inf' is not a number"),
    ],
)
def test_blank_ids_dates_and_locations_are_refused_naming_the_row(tmp_path, row: str, problem: str) -> None:
    path = _write(tmp_path, f"date,item_id,location,units\n2024-01-01,a,s,3\n2024-01-02,a,s,4\n{row}\n")
    with pytest.raises(DataError, match=problem):
        load_demand_history(path)


def test_the_cleaning_report_is_a_warning_with_the_counts_and_an_attribute_of_the_env(tmp_path) -> None:
    path = _write(
        tmp_path,
        "date,item_id,location,units,price\n2024-01-01,a,s,3,2\n2024-01-01,a,s,1,2\n2024-01-02,a,s,4,2\n2024-01-04,a,s,5,2\n",
    )
    with pytest.warns(DemandHistoryWarning) as caught:
        env = make_vec(
            "paretochain/Warehouse-v0",
            2,
            demand={"source": "history", "history": {"path": str(path)}},
        )
    message = str(caught[0].message)
    assert "2 duplicate rows summed" in message and "1 missing periods filled with zero sales" in message
    report = env.core.demand_model.report
    assert report.duplicate_rows_summed == 2 and report.missing_periods_filled == 1
    assert "price column not loaded" in report.notes  # Warehouse prices come from the config
    assert env.core.demand_model.history.prices is None
    assert make_vec("paretochain/Warehouse-v0", 1).core.demand_model.report is None


def test_the_tuna_week_numbers_drive_the_env_without_any_warning_from_torch(shared_data, tmp_path) -> None:
    source = shared_data / "retail" / "bayesm_scanner" / "tuna_weekly_long.csv"
    h = load_demand_history(source, columns={"week": "date", "brand": "item_id"}, warn=False)
    assert h.report.frequency == "integer periods" and h.units.shape == (1, 7, 398)
    assert h.report.missing_periods_filled == 7 * (398 - 338)  # 338 weeks numbered 1..398
    assert h.units.flags.writeable and h.prices is not None and h.prices.flags.writeable
    script = (
        "import warnings; warnings.simplefilter('always'); import numpy as np\n"
        "from paretochain.envs import make_vec\n"
        "env = make_vec('paretochain/Warehouse-v0', 2, num_skus=7, demand={'source': 'history',"
        f" 'history': {{'path': {str(source)!r}, 'columns': {{'week': 'date', 'brand': 'item_id'}}}}}})\n"
        "env.reset(seed=0); env.step(np.zeros((2, 7), dtype=np.int64)); print('stepped')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "stepped" in done.stdout, done.stderr
    assert "not writable" not in done.stderr
    assert "DemandHistoryWarning" in done.stderr  # the cleaning report does reach the user
