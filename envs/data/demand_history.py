"""Demand histories as long tables: ``date, item_id, location, units[, price]`` (CSV or Parquet).

The loader cleans what can be cleaned and says so in a :class:`CleaningReport`
(duplicate rows summed, missing periods filled with zero sales, outliers flagged
and optionally clipped, missing prices carried forward), and refuses what cannot
be trusted with a :class:`~paretochain.errors.DataError` naming the file and row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from paretochain.errors import DataError

REQUIRED = ("date", "item_id", "units")


@dataclass
class CleaningReport:
    """What the loader changed, counted, with one line per kind of change."""

    source: str
    rows_read: int = 0
    frequency: str = ""
    duplicate_rows_summed: int = 0
    missing_periods_filled: int = 0
    outliers_flagged: int = 0
    outliers_clipped: int = 0
    prices_filled: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"demand history {self.source}: {self.rows_read} rows, frequency {self.frequency}",
            f"  duplicate rows summed:       {self.duplicate_rows_summed}",
            f"  missing periods filled (0):  {self.missing_periods_filled}",
            f"  outliers flagged / clipped:  {self.outliers_flagged} / {self.outliers_clipped}",
            f"  missing prices carried:      {self.prices_filled}",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class DemandHistory:
    """A cleaned history on a regular calendar.

    Attributes:
        units: float array ``(num_locations, num_items, num_periods)``.
        prices: same shape, or None when the file has no price column.
        items, locations: labels in array order.
        dates: the regular calendar, one entry per period.
        outliers: bool array of ``units``' shape marking flagged values.
        report: what cleaning changed.
    """

    units: np.ndarray
    prices: np.ndarray | None
    items: list[str]
    locations: list[str]
    dates: pd.DatetimeIndex
    outliers: np.ndarray
    report: CleaningReport

    def to_frame(self) -> pd.DataFrame:
        """The cleaned history back as a long table."""
        loc, item, per = np.meshgrid(
            np.arange(len(self.locations)), np.arange(len(self.items)), np.arange(len(self.dates)), indexing="ij"
        )
        frame = pd.DataFrame(
            {
                "date": self.dates[per.ravel()],
                "item_id": np.asarray(self.items, dtype=object)[item.ravel()],
                "location": np.asarray(self.locations, dtype=object)[loc.ravel()],
                "units": self.units.ravel(),
            }
        )
        if self.prices is not None:
            frame["price"] = self.prices.ravel()
        return frame


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"demand history file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def _row_label(frame: pd.DataFrame, index: object, is_csv: bool) -> str:
    pos = frame.index.get_loc(index)
    return f"line {pos + 2}" if is_csv else f"row {pos}"


def _infer_frequency(dates: pd.DatetimeIndex, source: str) -> tuple[str, pd.DatetimeIndex]:
    unique = dates.unique().sort_values()
    if len(unique) < 2:
        raise DataError(f"{source}: needs at least two distinct dates to infer the period, found {len(unique)}")
    gaps = np.diff(unique.values).astype("timedelta64[D]").astype(int)
    step = int(np.min(gaps))
    if 28 <= int(np.median(gaps)) <= 31 and all(d.day == 1 for d in unique):
        calendar = pd.date_range(unique[0], unique[-1], freq="MS")
        label = "monthly"
    elif step >= 1:
        calendar = pd.date_range(unique[0], unique[-1], freq=f"{step}D")
        label = "daily" if step == 1 else ("weekly" if step == 7 else f"every {step} days")
    else:
        raise DataError(f"{source}: dates are not distinct days")
    off_grid = unique.difference(calendar)
    if len(off_grid):
        raise DataError(f"{source}: date {off_grid[0].date()} is off the {label} calendar starting {unique[0].date()}")
    return label, calendar


def load_demand_history(
    source: str | Path | pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    item_ids: Sequence[str] | None = None,
    locations: Sequence[str] | None = None,
    clip_outliers: bool = False,
    outlier_threshold: float = 6.0,
) -> DemandHistory:
    """Load, check and clean a demand history.

    Args:
        source: a CSV or Parquet path, or a DataFrame.
        columns: rename map from the file's column names to ``date``, ``item_id``,
            ``location``, ``units``, ``price``. Without a location column every row is
            taken to be at one location, ``"all"``.
        item_ids, locations: keep only these, in this order (default: all, sorted).
        clip_outliers: clip flagged outliers to the threshold (else only flag them).
        outlier_threshold: robust z-score, in units of 1.4826 * MAD of the item's series,
            above which a value is flagged.

    Raises:
        DataError: a required column is missing, a date or quantity is unreadable,
            a quantity is negative, or the dates do not lie on a regular calendar.
    """
    is_csv = not isinstance(source, pd.DataFrame) and Path(source).suffix.lower() == ".csv"
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "DataFrame"
    else:
        frame, name = _read(Path(source)), str(source)
    report = CleaningReport(source=name, rows_read=len(frame))
    if columns:
        frame = frame.rename(columns=dict(columns))
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; found {list(frame.columns)} (map names with 'columns')")
    if "location" not in frame.columns:
        frame["location"] = "all"
        report.notes.append("no location column: all rows taken as location 'all'")

    dates = pd.to_datetime(frame["date"], errors="coerce")
    bad = dates.isna()
    if bad.any():
        i = frame.index[bad.to_numpy()][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: date {frame.at[i, 'date']!r} is not a date")
    units = pd.to_numeric(frame["units"], errors="coerce")
    bad = units.isna() | ~np.isfinite(units.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = frame.index[bad.to_numpy()][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: units {frame.at[i, 'units']!r} is not a number")
    bad = units < 0
    if bad.any():
        i = frame.index[bad.to_numpy()][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: units {units[i]} is negative")
    has_price = "price" in frame.columns
    clean = pd.DataFrame(
        {
            "date": dates,
            "item_id": frame["item_id"].astype(str),
            "location": frame["location"].astype(str),
            "units": units.astype(float),
        }
    )
    if has_price:
        price = pd.to_numeric(frame["price"].replace("", np.nan), errors="coerce")
        given = frame["price"].astype(str).str.strip().ne("") & frame["price"].notna()
        bad = given & (price.isna() | (price < 0))
        if bad.any():
            i = frame.index[bad.to_numpy()][0]
            raise DataError(
                f"{name}, {_row_label(frame, i, is_csv)}: price {frame.at[i, 'price']!r} is not a non-negative number"
            )
        clean["price"] = price

    if item_ids is not None:
        unknown = sorted(set(map(str, item_ids)) - set(clean["item_id"]))
        if unknown:
            raise DataError(f"{name}: item_ids {unknown} do not occur in the file")
        clean = clean[clean["item_id"].isin(list(map(str, item_ids)))]
    if locations is not None:
        unknown = sorted(set(map(str, locations)) - set(clean["location"]))
        if unknown:
            raise DataError(f"{name}: locations {unknown} do not occur in the file")
        clean = clean[clean["location"].isin(list(map(str, locations)))]

    keys = ["location", "item_id", "date"]
    dup = clean.duplicated(keys, keep=False)
    if dup.any():
        report.duplicate_rows_summed = int(dup.sum())
        agg = {"units": "sum", **({"price": "mean"} if has_price else {})}
        clean = clean.groupby(keys, as_index=False).agg(agg)

    report.frequency, calendar = _infer_frequency(pd.DatetimeIndex(clean["date"]), name)
    item_list = [str(i) for i in item_ids] if item_ids is not None else sorted(clean["item_id"].unique())
    loc_list = [str(loc) for loc in locations] if locations is not None else sorted(clean["location"].unique())
    full = pd.MultiIndex.from_product([loc_list, item_list, calendar], names=keys)
    table = clean.set_index(keys).reindex(full)
    report.missing_periods_filled = int(table["units"].isna().sum())
    shape = (len(loc_list), len(item_list), len(calendar))
    units_arr = table["units"].fillna(0.0).to_numpy(dtype=np.float64).reshape(shape)

    median = np.median(units_arr, axis=2, keepdims=True)
    mad = 1.4826 * np.median(np.abs(units_arr - median), axis=2, keepdims=True)
    scale = np.where(mad > 0, mad, np.maximum(units_arr.std(axis=2, keepdims=True), 1.0))
    ceiling = median + outlier_threshold * scale
    outliers = units_arr > ceiling
    report.outliers_flagged = int(outliers.sum())
    if clip_outliers and outliers.any():
        units_arr = np.where(outliers, np.floor(ceiling), units_arr)
        report.outliers_clipped = report.outliers_flagged

    prices = None
    if has_price:
        price_tab = table["price"].to_numpy(dtype=np.float64).reshape(shape)
        report.prices_filled = int(np.isnan(price_tab).sum())
        frame_p = pd.DataFrame(price_tab.reshape(-1, shape[2]).T).ffill().bfill()
        prices = frame_p.to_numpy().T.reshape(shape)
    return DemandHistory(units_arr, prices, item_list, loc_list, calendar, outliers, report)
