"""Demand histories as long tables: ``date, item_id, location, units[, price]`` (CSV or Parquet).

The loader cleans what can be cleaned and says so in a :class:`CleaningReport`
(duplicate rows summed, missing periods filled with zero sales, outliers flagged
and optionally clipped, missing prices carried forward), and refuses what cannot
be trusted with a :class:`~paretochain.errors.DataError` naming the file and row.
When cleaning changed anything, a :class:`DemandHistoryWarning` says so with the counts.

**Dates** are read only where they cannot be misread:

- ISO dates, year first (``2024-03-01``, ``2024-03-01 00:00``, ``2024/03/01``), or a month
  ``2024-03``; a Parquet date column as it is;
- whole numbers, read as **period indexes** (the week numbers of scanner data such as
  bayesm's): consecutive integers are consecutive periods; eight-digit numbers, which look
  like ``YYYYMMDD`` dates, need an explicit format;
- anything else with an explicit ``date_format`` (``"%d/%m/%Y"``, as for
  :func:`datetime.datetime.strptime`).

A date such as ``03/04/2024`` without a format is refused: it reads as March or April.
Blank dates, item ids and locations are refused, naming the row.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from paretochain.errors import DataError

REQUIRED = ("date", "item_id", "units")

#: Year first, then month and day (``-`` or ``/``), optionally a time; or a month ``YYYY-MM``.
_ISO_DATE = re.compile(r"^\d{4}([-/])\d{1,2}(\1\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DAY_MONTH = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


class DemandHistoryWarning(UserWarning):
    """Cleaning changed a demand history (the message gives the counts; the report has the details)."""


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

    @property
    def changed(self) -> bool:
        """Whether cleaning changed the data (anything summed, filled, flagged or clipped)."""
        return bool(
            self.duplicate_rows_summed
            or self.missing_periods_filled
            or self.outliers_flagged
            or self.outliers_clipped
            or self.prices_filled
        )

    def summary(self) -> str:
        """One line with the counts of every change."""
        return (
            f"demand history {self.source} ({self.rows_read} rows, {self.frequency}): "
            f"{self.duplicate_rows_summed} duplicate rows summed, "
            f"{self.missing_periods_filled} missing periods filled with zero sales, "
            f"{self.outliers_flagged} outliers flagged ({self.outliers_clipped} clipped), "
            f"{self.prices_filled} missing prices carried"
        )

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
        prices: same shape, or None when the file has no price column (or prices were not asked for).
        items, locations: labels in array order.
        dates: the regular calendar, one entry per period: dates, or integers for period indexes.
        outliers: bool array of ``units``' shape marking flagged values.
        report: what cleaning changed.
    """

    units: np.ndarray
    prices: np.ndarray | None
    items: list[str]
    locations: list[str]
    dates: pd.Index
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


def _parse_dates(
    column: pd.Series, frame: pd.DataFrame, date_format: str | None, name: str, is_csv: bool
) -> tuple[pd.Series, bool]:
    """The dates of ``column`` (see the module docstring) and whether they are integer period indexes."""

    def refuse(bad: np.ndarray, problem: str) -> DataError:
        i = frame.index[bad][0]
        return DataError(f"{name}, {_row_label(frame, i, is_csv)}: date {column[i]!r} {problem}")

    blank = (column.isna() | column.astype(str).str.strip().eq("")).to_numpy()
    if blank.any():
        i = frame.index[blank][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: the date is blank")
    if date_format is not None:
        dates = pd.to_datetime(column.astype(str).str.strip(), format=date_format, errors="coerce")
        bad = dates.isna().to_numpy()
        if bad.any():
            raise refuse(bad, f"does not match date_format {date_format!r}")
        return dates, False
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column), False
    if pd.api.types.is_float_dtype(column) and np.equal(np.mod(column.to_numpy(), 1), 0).all():
        text = column.astype(np.int64).astype(str)  # whole numbers stored as floats (Parquet, DataFrames)
    elif pd.api.types.is_integer_dtype(column):
        text = column.astype(str)
    else:
        text = column.astype(str).str.strip()
    if text.str.match(_INTEGER).all():
        periods = text.astype(np.int64)
        looks_like_dates = periods.abs() >= 10_000_000
        if looks_like_dates.any():
            raise refuse(
                looks_like_dates.to_numpy(),
                "looks like a YYYYMMDD date, not a period index: give date_format='%Y%m%d' (or number the periods)",
            )
        return periods, True
    iso = text.str.match(_ISO_DATE).to_numpy()
    if not iso.all():
        bad = ~iso
        i = frame.index[bad][0]
        if _DAY_MONTH.match(str(text[i])):
            raise refuse(
                bad,
                "is ambiguous (day/month or month/day): give the format, e.g. date_format='%d/%m/%Y', "
                "or write dates as YYYY-MM-DD",
            )
        raise refuse(
            bad, "is not a date in ISO form (YYYY-MM-DD), a whole-number period, or a form named by date_format"
        )
    dates = pd.to_datetime(text.str.replace("/", "-", regex=False), format="ISO8601", errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        raise refuse(bad, "is not a date (no such day)")
    return dates, False


def _integer_calendar(periods: pd.Index, source: str) -> tuple[str, pd.Index]:
    """The regular calendar of integer period indexes: every integer step between the first and the last."""
    unique = periods.unique().sort_values()
    if len(unique) < 2:
        raise DataError(f"{source}: needs at least two distinct periods, found {len(unique)}")
    step = int(np.gcd.reduce(np.diff(unique.to_numpy())))
    calendar = pd.Index(np.arange(int(unique[0]), int(unique[-1]) + 1, step), name="period")
    label = "integer periods" if step == 1 else f"integer periods every {step}"
    return label, calendar


def _infer_frequency(dates: pd.DatetimeIndex, source: str) -> tuple[str, pd.Index]:
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
    date_format: str | None = None,
    prices: bool = True,
    warn: bool = True,
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
        date_format: how the dates are written (``"%d/%m/%Y"``, as for ``strptime``); None
            accepts ISO dates and whole-number period indexes only (see the module docstring).
        prices: load the ``price`` column when there is one (False: ignore it, noted in the report).
        warn: issue a :class:`DemandHistoryWarning` with the counts when cleaning changed anything.

    Raises:
        DataError: a required column is missing, a date, item id or location is blank, a date
            is ambiguous or unreadable, a quantity is unreadable, negative or not finite, or the
            dates do not lie on a regular calendar.
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

    for key in ("item_id", "location"):
        blank = (frame[key].isna() | frame[key].astype(str).str.strip().eq("")).to_numpy()
        if blank.any():
            i = frame.index[blank][0]
            raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: {key} is blank")
    dates, integer_periods = _parse_dates(frame["date"], frame, date_format, name, is_csv)
    units = pd.to_numeric(frame["units"], errors="coerce")
    bad = units.isna() | ~np.isfinite(units.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = frame.index[bad.to_numpy()][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: units {frame.at[i, 'units']!r} is not a number")
    bad = units < 0
    if bad.any():
        i = frame.index[bad.to_numpy()][0]
        raise DataError(f"{name}, {_row_label(frame, i, is_csv)}: units {units[i]} is negative")
    has_price = "price" in frame.columns and prices
    if "price" in frame.columns and not prices:
        report.notes.append("price column not loaded")
    clean = pd.DataFrame(
        {
            "date": dates,
            "item_id": frame["item_id"].astype(str).str.strip(),
            "location": frame["location"].astype(str).str.strip(),
            "units": units.astype(float),
        }
    )
    if has_price:
        price = pd.to_numeric(frame["price"].replace("", np.nan), errors="coerce")
        given = frame["price"].astype(str).str.strip().ne("") & frame["price"].notna()
        bad = given & (price.isna() | (price < 0) | ~np.isfinite(price.fillna(0.0)))
        if bad.any():
            i = frame.index[bad.to_numpy()][0]
            raise DataError(
                f"{name}, {_row_label(frame, i, is_csv)}: price {frame.at[i, 'price']!r} is not a finite non-negative number"
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

    if integer_periods:
        report.frequency, calendar = _integer_calendar(pd.Index(clean["date"]), name)
    else:
        report.frequency, calendar = _infer_frequency(pd.DatetimeIndex(clean["date"]), name)
    item_list = [str(i) for i in item_ids] if item_ids is not None else sorted(clean["item_id"].unique())
    loc_list = [str(loc) for loc in locations] if locations is not None else sorted(clean["location"].unique())
    full = pd.MultiIndex.from_product([loc_list, item_list, calendar], names=keys)
    table = clean.set_index(keys).reindex(full)
    report.missing_periods_filled = int(table["units"].isna().sum())
    shape = (len(loc_list), len(item_list), len(calendar))
    # copies: arrays pandas hands out may be read-only, and torch warns on those
    units_arr = np.array(table["units"].fillna(0.0).to_numpy(dtype=np.float64), copy=True).reshape(shape)

    median = np.median(units_arr, axis=2, keepdims=True)
    mad = 1.4826 * np.median(np.abs(units_arr - median), axis=2, keepdims=True)
    scale = np.where(mad > 0, mad, np.maximum(units_arr.std(axis=2, keepdims=True), 1.0))
    ceiling = median + outlier_threshold * scale
    outliers = units_arr > ceiling
    report.outliers_flagged = int(outliers.sum())
    if clip_outliers and outliers.any():
        units_arr = np.where(outliers, np.floor(ceiling), units_arr)
        report.outliers_clipped = report.outliers_flagged

    price_arr = None
    if has_price:
        price_tab = table["price"].to_numpy(dtype=np.float64).reshape(shape)
        report.prices_filled = int(np.isnan(price_tab).sum())
        frame_p = pd.DataFrame(price_tab.reshape(-1, shape[2]).T).ffill().bfill()
        price_arr = np.array(frame_p.to_numpy(dtype=np.float64).T, copy=True).reshape(shape)
    if warn and report.changed:
        warnings.warn(report.summary(), DemandHistoryWarning, stacklevel=2)
    return DemandHistory(units_arr, price_arr, item_list, loc_list, calendar, outliers, report)
