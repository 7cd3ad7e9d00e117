"""Price elasticities estimated from sales history, and Pricing configs built from them.

The model is the two-way fixed-effects regression::

    log(units[i, t]) = alpha_i + gamma_t - e_g * log(price[i, t]) + controls + noise

with one intercept per item ``i`` (store x product, say) and per period ``t``, and
one elasticity ``e_g`` per group of items (one for all by default). The fixed
effects are swept out by alternating demeaning (exact for unbalanced panels at
convergence), then the slopes come from least squares on the demeaned data.
Standard errors are reported both classically (degrees of freedom net of the
fixed effects) and clustered by item. Rows with zero units have no logarithm and
are left out (counted in the fit).

Data that cannot be trusted is refused with a :class:`~paretochain.errors.DataError`
naming the row and column: a blank item id or period, a unit count or price that is
missing, negative (units), not positive (price) or not finite, a control that is not
a finite number.

A **wrong-signed** fit (an elasticity <= 0: demand rising with price) is flagged:
:func:`estimate_elasticity` issues a :class:`CalibrationWarning` naming the groups
and records it in :attr:`ElasticityFit.notes`; :func:`config_from_fit` refuses to
build a config from it (:class:`~paretochain.errors.ConfigError`). An estimate
within two standard errors of zero is flagged as weak (a warning, kept in the
config's provenance). The config built by :func:`config_from_fit` carries the
estimate, its standard errors and these warnings in ``config.calibration``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paretochain.envs.pricing.config import CalibrationProvenance, ChannelConfig, PricingConfig
from paretochain.errors import ConfigError, DataError


class CalibrationWarning(UserWarning):
    """A fit that ran but should not be trusted as it is (a wrong sign, an estimate not distinguishable from 0)."""


@dataclass
class ElasticityFit:
    """Result of :func:`estimate_elasticity`.

    Attributes:
        estimates: one row per group: ``group, elasticity, std_error, cluster_std_error, n_obs``
            (``elasticity`` is minus the slope of log units on log price, so usually > 0).
        controls: slopes and standard errors of the control variables.
        n_obs: rows used; ``n_zero_units``: rows left out for zero units.
        n_items, n_periods: number of fixed effects of each kind.
        r2_within: share of the demeaned variance of log units explained by the slopes.
        mean_units: mean units per row used; ``mean_price``: mean price of those rows.
        source: where the data came from.
    """

    estimates: pd.DataFrame
    controls: pd.DataFrame
    n_obs: int
    n_zero_units: int
    n_items: int
    n_periods: int
    r2_within: float
    mean_units: float
    mean_price: float
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def elasticity(self) -> float:
        """The elasticity of the first (or only) group."""
        return float(self.estimates["elasticity"].iloc[0])

    @property
    def std_error(self) -> float:
        """Its classical standard error."""
        return float(self.estimates["std_error"].iloc[0])

    def summary(self) -> str:
        lines = [
            f"price elasticity fit {self.source}: {self.n_obs} rows ({self.n_zero_units} with zero units left out), "
            f"{self.n_items} item and {self.n_periods} period effects, within R^2 {self.r2_within:.3f}",
            f"{'group':<24}{'elasticity':>12}{'s.e.':>10}{'cluster s.e.':>14}{'rows':>9}",
        ]
        for row in self.estimates.itertuples(index=False):
            lines.append(
                f"{row.group!s:<24}{row.elasticity:12.3f}{row.std_error:10.3f}{row.cluster_std_error:14.3f}{row.n_obs:9d}"
            )
        for row in self.controls.itertuples(index=False):
            lines.append(
                f"control {row.name!s:<16}{row.coefficient:12.3f}{row.std_error:10.3f}{row.cluster_std_error:14.3f}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def load_price_table(
    source: str | Path | pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    required: Sequence[str] = ("item_id", "date", "units", "price"),
) -> pd.DataFrame:
    """Read a long table of sales with prices (CSV or Parquet) and check it.

    Args:
        source: a file path or a data frame.
        columns: rename map, file column -> standard name (``item_id``, ``date``, ``units``, ``price``).
        required: columns that must be present after renaming.

    Raises:
        DataError: naming the file and the first offending row, for a missing column,
            a non-numeric, negative or missing unit count, or a price that is not positive.
    """
    where = "data frame" if isinstance(source, pd.DataFrame) else str(source)
    if isinstance(source, pd.DataFrame):
        table = source.copy()
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"price table {path} does not exist")
        try:
            table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:  # pandas raises many kinds for unreadable files
            raise DataError(
                f"price table {path}: cannot be read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {exc}"
            ) from None
    if columns:
        table = table.rename(columns=dict(columns))
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(
            f"price table {where}: missing column(s) {missing}; it has {list(table.columns)} (rename with columns=...)"
        )
    keys = [c for c in ("item_id", "date") if c in table.columns]
    return check_price_rows(table, f"price table {where}", keys=keys)


def _refuse_row(table: pd.DataFrame, bad: pd.Series, where: str, name: str, rule: str) -> None:
    """Raise naming the first row where ``bad`` holds (no-op when none does)."""
    if not bad.any():
        return
    row = int(np.flatnonzero(bad.to_numpy())[0])
    value = table[name].iloc[row]
    shown = repr(value.item() if isinstance(value, np.generic) else value)
    raise DataError(f"{where}, data row {row} (line {row + 2} of a CSV with a header): {name} = {shown} is not {rule}")


def check_price_rows(
    table: pd.DataFrame,
    where: str,
    keys: Sequence[str] = ("item_id", "date"),
    units: str = "units",
    price: str = "price",
    numeric: Sequence[str] = (),
) -> pd.DataFrame:
    """A copy of ``table`` with ``units``, ``price`` and ``numeric`` as float columns, every row checked.

    Raises:
        DataError: naming the first bad row and column: a blank key (item id, period), a unit
            count that is missing, negative or not finite, a price that is not a finite number > 0,
            a ``numeric`` column that is not a finite number.
    """
    table = table.copy()
    for name in keys:
        column = table[name]
        blank = column.isna() | column.astype(str).str.strip().eq("")
        _refuse_row(table, blank, where, name, "given (blank)")
    finite = "a finite number"
    rules = [(units, f"{finite} >= 0", False), (price, f"{finite} > 0", True)] + [(c, finite, None) for c in numeric]
    for name, rule, positive in rules:
        values = pd.to_numeric(table[name], errors="coerce").astype(np.float64)
        bad = values.isna() | ~np.isfinite(values)
        if positive is not None:
            bad |= values <= 0 if positive else values < 0
        _refuse_row(table, bad, where, name, rule)
        table[name] = values
    return table


def _sweep(
    columns: np.ndarray, codes: Sequence[np.ndarray], sizes: Sequence[int], tol: float = 1e-11, max_iter: int = 10_000
) -> np.ndarray:
    """Remove the fixed effects ``codes`` from every column of ``columns`` ``(n, m)`` by alternating projections."""
    out = columns.copy()
    scale = np.maximum(np.abs(columns).max(axis=0), 1e-12)
    counts = [np.bincount(c, minlength=s).astype(np.float64) for c, s in zip(codes, sizes)]
    for _ in range(max_iter):
        biggest = 0.0
        for c, s, cnt in zip(codes, sizes, counts):
            for j in range(out.shape[1]):
                means = np.bincount(c, weights=out[:, j], minlength=s) / np.maximum(cnt, 1.0)
                out[:, j] -= means[c]
                biggest = max(biggest, float(np.abs(means).max() / scale[j]))
        if biggest < tol:
            break
    return out


def estimate_elasticity(
    table: pd.DataFrame,
    item: str = "item_id",
    period: str = "date",
    units: str = "units",
    price: str = "price",
    group: str | None = None,
    controls: Sequence[str] = (),
    log_controls: Sequence[str] = (),
    source: str = "",
) -> ElasticityFit:
    """Fit price elasticities by regression of log units on log price with item and period effects.

    Args:
        table: a long table, one row per item and period (see :func:`load_price_table`).
        item, period, units, price: column names.
        group: a column whose values get one elasticity each (e.g. brand); None for one overall.
        controls: other regressors entered as they are (promotion flags...).
        log_controls: regressors entered as logarithms (competitor prices...), must be > 0.
        source: a label for reports.
    """
    for name in (item, period, units, price, *controls, *log_controls, *([group] if group else [])):
        if name not in table.columns:
            raise DataError(f"{source or 'table'}: no column {name!r}; it has {list(table.columns)}")
    table = check_price_rows(
        table,
        source or "table",
        keys=[item, period, *([group] if group else [])],
        units=units,
        price=price,
        numeric=[*controls, *log_controls],
    )
    positive = table[units] > 0
    data = table[positive]
    n_zero = int((~positive).sum())
    for name in log_controls:
        if (data[name] <= 0).any() or data[name].isna().any():
            row = int(np.flatnonzero(((data[name] <= 0) | data[name].isna()).to_numpy())[0])
            raise DataError(
                f"{source or 'table'}: log control {name!r} must be > 0, got {data[name].iloc[row]!r} at data row {row}"
            )
    if len(data) < 3:
        raise DataError(f"{source or 'table'}: only {len(data)} rows with units > 0; an elasticity needs more")
    item_codes, item_labels = pd.factorize(data[item])
    period_codes, period_labels = pd.factorize(data[period])
    log_units = np.log(data[units].to_numpy(np.float64))
    log_price = np.log(data[price].to_numpy(np.float64))
    if group is None:
        groups = ["all"]
        price_cols = log_price[:, None]
        group_codes = np.zeros(len(data), dtype=np.int64)
    else:
        group_codes, labels = pd.factorize(data[group], sort=True)
        groups = list(labels)
        price_cols = np.zeros((len(data), len(groups)))
        price_cols[np.arange(len(data)), group_codes] = log_price
    extra = [data[c].to_numpy(np.float64) for c in controls] + [
        np.log(data[c].to_numpy(np.float64)) for c in log_controls
    ]
    X = np.column_stack([price_cols, *extra]) if extra else price_cols
    codes = [item_codes, period_codes]
    sizes = [len(item_labels), len(period_labels)]
    swept = _sweep(np.column_stack([log_units, X]), codes, sizes)
    y, Xd = swept[:, 0], swept[:, 1:]
    varying = np.abs(Xd).max(axis=0) > 1e-9
    if not varying[: len(groups)].all():
        flat = [str(groups[i]) for i in np.flatnonzero(~varying[: len(groups)])]
        raise DataError(
            f"{source or 'table'}: the price of group(s) {flat} does not vary beyond the item and period effects; no elasticity can be fitted"
        )
    xtx = Xd.T @ Xd
    beta = np.linalg.solve(xtx, Xd.T @ y)
    resid = y - Xd @ beta
    n, p = Xd.shape
    dof = n - p - sizes[0] - sizes[1] + 1
    if dof <= 0:
        raise DataError(
            f"{source or 'table'}: {n} rows are too few for {p} slopes and {sizes[0]} + {sizes[1]} fixed effects"
        )
    sigma2 = float(resid @ resid) / dof
    inv = np.linalg.inv(xtx)
    se = np.sqrt(np.diag(inv) * sigma2)
    scores = np.zeros((sizes[0], p))
    np.add.at(scores, item_codes, Xd * resid[:, None])
    G = sizes[0]
    meat = scores.T @ scores
    adjust = G / max(G - 1, 1) * (n - 1) / max(n - p - 1, 1)
    cluster_se = np.sqrt(np.maximum(np.diag(inv @ meat @ inv) * adjust, 0.0))
    ng = len(groups)
    estimates = pd.DataFrame(
        {
            "group": groups,
            "elasticity": -beta[:ng],
            "std_error": se[:ng],
            "cluster_std_error": cluster_se[:ng],
            "n_obs": np.bincount(group_codes, minlength=ng),
        }
    )
    control_names = list(controls) + [f"log_{c}" for c in log_controls]
    control_table = pd.DataFrame(
        {"name": control_names, "coefficient": beta[ng:], "std_error": se[ng:], "cluster_std_error": cluster_se[ng:]}
    )
    total = float(y @ y)
    notes = _flags(estimates)
    for note in notes:
        warnings.warn(f"{source or 'price elasticity fit'}: {note}", CalibrationWarning, stacklevel=2)
    return ElasticityFit(
        estimates=estimates,
        controls=control_table,
        n_obs=n,
        n_zero_units=n_zero,
        n_items=sizes[0],
        n_periods=sizes[1],
        r2_within=1.0 - float(resid @ resid) / total if total > 0 else 0.0,
        mean_units=float(data[units].mean()),
        mean_price=float(data[price].mean()),
        source=source,
        notes=notes,
    )


def _flags(estimates: pd.DataFrame) -> list[str]:
    """What a fit should say about its estimates: wrong signs, estimates within two standard errors of 0."""
    notes = []
    wrong = estimates[estimates["elasticity"] <= 0]
    if len(wrong):
        groups = ", ".join(f"{g} ({e:.3f})" for g, e in zip(wrong["group"], wrong["elasticity"]))
        notes.append(
            f"wrong sign: demand rises with price for group(s) {groups}; such an estimate cannot drive a config"
        )
    weak = estimates[
        (estimates["elasticity"] > 0)
        & (estimates["elasticity"] < 2 * estimates[["std_error", "cluster_std_error"]].max(axis=1))
    ]
    if len(weak):
        groups = ", ".join(str(g) for g in weak["group"])
        notes.append(f"weak estimate: the elasticity of group(s) {groups} is within two standard errors of 0")
    return notes


def config_from_fit(
    fit: ElasticityFit,
    model: str = "constant_elasticity",
    group: str | None = None,
    list_price: float | None = None,
    unit_cost: float | None = None,
    purchase_probability: float = 0.5,
    **fields: Any,
) -> PricingConfig:
    """A single-SKU, single-channel Pricing config whose demand has the fitted elasticity at list price.

    Args:
        fit: the fitted elasticities.
        model: ``"constant_elasticity"`` (demand ``rate * (p / list)^-e``) or ``"mnl"``
            (a logit whose own-price elasticity at list price equals ``e``: price
            sensitivity ``b = e / (1 - P)`` and intercept ``a = b + log(P / (1 - P))``
            with ``P`` the ``purchase_probability`` at list price).
        group: the group whose elasticity is used (default: the first).
        list_price: list price of the SKU (default: the mean price in the data).
        unit_cost: unit cost (default: half the list price).
        purchase_probability: share of arriving shoppers who buy at list price (MNL only).
        fields: further config fields (``horizon``, ``initial_inventory``, ...).

    Returns:
        The config, with the estimate, its standard errors and the fit's warnings in
        ``config.calibration`` (:class:`~paretochain.envs.pricing.config.CalibrationProvenance`).

    Raises:
        ConfigError: when the fitted elasticity has the wrong sign (<= 0: demand rises with
            price), is not above 1 in the constant-elasticity mode (no finite optimal price),
            or ``group`` is not a group of the fit.
    """
    table = fit.estimates
    if group is None:
        row = table.iloc[0]
    else:
        chosen = table[table["group"].astype(str) == str(group)]
        if chosen.empty:
            raise ConfigError(f"group {group!r} is not in the fit; its groups are {[str(g) for g in table['group']]}")
        row = chosen.iloc[0]
    e = float(row["elasticity"])
    if e <= 0:
        raise ConfigError(
            f"fitted elasticity {e:.3f} (group {row['group']}) has the wrong sign: demand rises with price in this fit, "
            "so it cannot drive a pricing config (check the data, add controls, or fit per group)"
        )
    price = fit.mean_price if list_price is None else float(list_price)
    cost = price / 2 if unit_cost is None else float(unit_cost)
    if model == "constant_elasticity":
        if e <= 1:
            raise ConfigError(
                f"fitted elasticity {e:.3f} is not above 1: a constant-elasticity demand has no finite optimal price (use model='mnl')"
            )
        channel = ChannelConfig(name="fitted", arrival_rate=fit.mean_units)
        demand: dict[str, Any] = {"model": "constant_elasticity", "elasticity": e}
    elif model == "mnl":
        if not 0 < purchase_probability < 1:
            raise ConfigError(f"purchase_probability must lie in (0, 1), got {purchase_probability}")
        b = e / (1 - purchase_probability)
        a = b + float(np.log(purchase_probability / (1 - purchase_probability)))
        channel = ChannelConfig(
            name="fitted",
            arrival_rate=fit.mean_units / purchase_probability,
            attractiveness=a,
            price_sensitivity=b,
            loyalty=0.0,
        )
        demand = {"model": "mnl"}
    else:
        raise ConfigError(f"model must be 'constant_elasticity' or 'mnl', got {model!r}")
    provenance = CalibrationProvenance(
        source=fit.source,
        model=model,
        group=str(row["group"]),
        elasticity=e,
        std_error=float(row["std_error"]),
        cluster_std_error=float(row["cluster_std_error"]),
        n_obs=int(row["n_obs"]),
        r2_within=fit.r2_within,
        warnings=list(fit.notes),
    )
    data = {
        "num_skus": 1,
        "list_price": price,
        "unit_cost": cost,
        "channels": [channel.model_dump()],
        "demand": demand,
        "calibration": provenance.model_dump(),
    }
    data.update(fields)
    return PricingConfig.load(data)
