"""Typed configuration of the Warehouse family (``paretochain/Warehouse-v0``)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from paretochain.envs.config import ConfigModel


class Range(ConfigModel):
    """Per-SKU values drawn once, log-uniformly in ``[low, high]``, from the config's ``instance_seed``."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


#: A per-SKU parameter: one value for all SKUs, one value per SKU, or a range to draw from.
PerSku = float | list[float] | Range


def resolve_per_sku(value: PerSku, num_skus: int, rng: np.random.Generator, name: str) -> np.ndarray:
    """Expand a per-SKU parameter to an array of length ``num_skus``."""
    if isinstance(value, Range):
        return np.exp(rng.uniform(np.log(value.low), np.log(value.high), size=num_skus))
    if isinstance(value, list):
        if len(value) != num_skus:
            raise ValueError(f"{name}: {len(value)} values given for {num_skus} SKUs")
        return np.asarray(value, dtype=np.float64)
    return np.full(num_skus, float(value))


class LeadTimeConfig(ConfigModel):
    """Lead time of one kind of link, in periods: ``periods`` plus a uniform draw in ``0..jitter`` per order."""

    periods: int | list[int] = Field(default=2, description="fixed part, per SKU or one for all")
    jitter: int | list[int] = Field(
        default=0, description="random extra periods, uniform 0..jitter, per SKU or one for all"
    )

    @field_validator("periods", "jitter")
    @classmethod
    def _non_negative(cls, v: int | list[int]) -> int | list[int]:
        values = v if isinstance(v, list) else [v]
        if any(x < 0 or x > 52 for x in values):
            raise ValueError(f"lead times must lie in 0..52 periods, got {v}")
        return v


class HistoryConfig(ConfigModel):
    """Demand replayed or bootstrapped from a long table (``date, item_id, location, units[, price]``).

    Dates must be ISO (``YYYY-MM-DD``), whole-number period indexes (week numbers), or
    written as ``date_format`` says (see :mod:`paretochain.envs.data.demand_history`).
    A ``price`` column is not loaded: the family's selling prices are the config's
    ``price``. What cleaning changed is issued as a ``DemandHistoryWarning`` when the
    environment is built and kept as ``env.core.demand_model.report``.
    """

    path: Path
    mode: Literal["replay", "bootstrap"] = "bootstrap"
    item_ids: list[str] | None = Field(default=None, description="items to keep, in SKU order; default all, sorted")
    locations: list[str] | None = Field(default=None, description="locations to keep, in warehouse order; default all")
    columns: dict[str, str] = Field(default_factory=dict, description="rename map, file column -> standard name")
    date_format: str | None = Field(
        default=None,
        min_length=1,
        description="how dates are written, e.g. '%d/%m/%Y' (strptime codes); None: ISO dates or integer periods only",
    )
    clip_outliers: bool = False
    outlier_threshold: float = Field(
        default=6.0, gt=0, description="robust z-score (MAD units) above which a value is an outlier"
    )


class DemandConfig(ConfigModel):
    """Customer demand per SKU and warehouse."""

    source: Literal["synthetic", "history"] = "synthetic"
    distribution: Literal["poisson", "negative_binomial"] = "poisson"
    mean: PerSku = Field(default=5.0, description="mean units per period at one warehouse, per SKU")
    dispersion: float = Field(default=5.0, gt=0, description="negative binomial size r (variance = mean + mean^2/r)")
    location_weights: list[float] | None = Field(default=None, description="demand multiplier per warehouse")
    seasonality_amplitude: float = Field(default=0.0, ge=0, lt=1, description="relative amplitude of the cycle")
    seasonality_period: int = Field(
        default=7, ge=2, le=366, description="periods per cycle (7 = weekly for daily periods)"
    )
    trend: float = Field(default=0.0, ge=-0.05, le=0.05, description="linear growth of the mean per period, relative")
    promotion_probability: float = Field(
        default=0.0, ge=0, le=1, description="chance a promotion starts in a period, per SKU and warehouse"
    )
    promotion_duration: int = Field(default=3, ge=1, le=52)
    promotion_uplift: float = Field(default=2.0, ge=1, le=20, description="demand multiplier during a promotion")
    history: HistoryConfig | None = None

    @field_validator("location_weights")
    @classmethod
    def _weights_non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(w < 0 for w in v):
            raise ValueError(f"location weights are demand multipliers and must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _history_needed(self) -> DemandConfig:
        if self.source == "history" and self.history is None:
            raise ValueError("source 'history' needs a 'history' section with at least 'path'")
        return self


class ActionConfig(ConfigModel):
    """How orders are expressed."""

    kind: Literal["box", "ladder", "discrete"] = "ladder"
    ladder: list[float] = Field(default=[0, 0.5, 1, 1.5, 2, 3, 4], description="order sizes, increasing, first 0")
    ladder_unit: Literal["mean_demand", "units"] = Field(
        default="mean_demand", description="ladder entries are multiples of the node's mean demand, or plain units"
    )

    @field_validator("ladder")
    @classmethod
    def _ladder(cls, v: list[float]) -> list[float]:
        if len(v) < 2 or v[0] != 0 or any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"ladder must start at 0 and increase strictly, with at least 2 entries, got {v}")
        return v


class DisruptionConfig(ConfigModel):
    """Supplier outages and lead-time spikes."""

    outage_probability: float = Field(default=0.0, ge=0, le=1, description="chance per period that an outage starts")
    outage_duration: int = Field(
        default=3, ge=1, le=52, description="periods an outage lasts; orders to the supplier are refused meanwhile"
    )
    spike_probability: float = Field(default=0.0, ge=0, le=1, description="chance per order that its lead time spikes")
    spike_periods: int = Field(default=2, ge=0, le=52, description="extra periods added by a spike")


class WarehouseConfig(ConfigModel):
    """Everything that defines a Warehouse environment. Costs are per unit unless named otherwise."""

    num_skus: int = Field(default=1, ge=1, le=10_000)
    num_warehouses: int = Field(default=1, ge=1, le=1_000)
    distribution_center: bool = Field(default=False, description="a central DC between the supplier and the warehouses")
    horizon: int = Field(default=52, ge=1, le=100_000, description="periods per episode")
    observe_horizon: bool = Field(
        default=True,
        description=(
            "the observation's calendar shows the share of the horizon elapsed; false for an endless process "
            "cut by the horizon (the feature reads 0), so the policy does not depend on where the cut falls"
        ),
    )
    unmet_demand: Literal["lost", "backorder"] = "lost"
    demand_history_periods: int = Field(
        default=4, ge=0, le=365, description="periods of past demand in the observation"
    )
    demand: DemandConfig = Field(default_factory=DemandConfig)
    action: ActionConfig = Field(default_factory=ActionConfig)
    supplier_lead_time: LeadTimeConfig = Field(default_factory=LeadTimeConfig)
    transfer_lead_time: LeadTimeConfig = Field(default_factory=lambda: LeadTimeConfig(periods=1))
    unit_cost: PerSku = Field(default=5.0, description="purchase cost per unit from the supplier")
    transfer_cost: PerSku = Field(default=0.2, description="cost per unit shipped from the DC to a warehouse")
    order_fixed_cost: PerSku = Field(default=0.0, description="fixed cost of each order line (SKU and link) placed")
    price: PerSku = Field(default=10.0, description="selling price per unit")
    holding_cost: PerSku = Field(default=0.1, description="per unit on hand at the end of a period")
    dc_holding_factor: float = Field(
        default=0.5, ge=0, le=10, description="DC holding cost as a multiple of the warehouses'"
    )
    shortage_penalty: PerSku = Field(
        default=2.0, description="per unit lost (lost sales) or per unit backordered per period"
    )
    unit_volume: PerSku = Field(default=1.0, description="storage volume of one unit")
    capacity: float | list[float] | None = Field(
        default=None, description="storage volume per warehouse (then the DC, if any); None = unlimited"
    )
    overflow: Literal["cut", "charge"] = Field(
        default="cut", description="arrivals that do not fit are refused (cut) or kept at overflow_cost"
    )
    overflow_cost: float = Field(
        default=1.0, ge=0, description="per volume unit above capacity per period (overflow: charge)"
    )
    shelf_life: int | None = Field(
        default=None, ge=1, le=365, description="periods a unit keeps after receipt at a node; None = no perishability"
    )
    waste_cost: PerSku = Field(default=0.0, description="disposal cost per expired unit")
    disruptions: DisruptionConfig = Field(default_factory=DisruptionConfig)
    initial_inventory: float = Field(
        default=2.0, ge=0, le=100, description="starting stock at each node, in periods of its mean demand"
    )
    objectives: list[str] = Field(default=["profit", "fill_rate", "holding_cost"], min_length=1)
    reference_point: dict[str, float] = Field(
        default_factory=dict, description="override of the declared hypervolume reference per objective"
    )
    instance_seed: int = Field(default=0, ge=0, description="seed for per-SKU values given as ranges")

    @classmethod
    def family(cls) -> str:
        return "warehouse"

    def memory_estimate(self, num_envs: int) -> int:
        """Bytes that ``num_envs`` environments of this config need at least (see :mod:`paretochain.envs.memory`).

        Counted per environment: the stock by age and the pipeline by period, the demand
        history, the observation made from them, a step's working arrays, and the demand
        distribution evaluated per cell when it is too large to tabulate.
        """
        W, S = self.num_warehouses, self.num_skus
        N = W + int(self.distribution_center)
        cells = N * S

        def largest(value: int | list[int]) -> int:
            return max(value) if isinstance(value, list) else value

        lead = max(
            largest(link.periods) + largest(link.jitter) for link in (self.supplier_lead_time, self.transfer_lead_time)
        )
        if self.disruptions.spike_probability > 0:
            lead += self.disruptions.spike_periods
        buckets = self.shelf_life or 1
        state = cells * (buckets + lead + 2) + W * S * (self.demand_history_periods + 2)
        per_env_floats = 2 * state + 10 * cells  # the state, its observation, a step's temporaries
        d = self.demand
        per_env_demand = 8 * W * S  # float64 draws
        if d.source == "synthetic":
            mean = d.mean.high if isinstance(d.mean, Range) else max(d.mean) if isinstance(d.mean, list) else d.mean
            weight = max(d.location_weights) if d.location_weights else 1.0
            uplift = d.promotion_uplift if d.promotion_probability > 0 else 1.0
            top = mean * weight * (1 + d.seasonality_amplitude) * max(1.0, 1.0 + d.trend * self.horizon) * uplift
            var = top + (top * top / d.dispersion if d.distribution == "negative_binomial" else 0.0)
            grid = math.ceil(top + 12 * math.sqrt(var) + 12)
            phases = self.horizon if d.trend != 0 else d.seasonality_period if d.seasonality_amplitude > 0 else 1
            modes = phases * (2 if d.promotion_probability > 0 else 1)
            if grid <= 400 and modes * W * S * grid > 4_000_000:  # no table: the pmf over the grid, every step
                per_env_demand = 2 * 8 * W * S * grid
        return num_envs * (4 * per_env_floats + per_env_demand)

    @model_validator(mode="after")
    def _consistent(self) -> WarehouseConfig:
        num_nodes = self.num_warehouses + int(self.distribution_center)
        if isinstance(self.capacity, list) and len(self.capacity) != num_nodes:
            raise ValueError(
                f"capacity: {len(self.capacity)} values given for {num_nodes} stocking nodes (warehouses, then the DC)"
            )
        caps = self.capacity if isinstance(self.capacity, list) else [self.capacity]
        if any(c is not None and c <= 0 for c in caps):
            raise ValueError(f"capacity must be positive, got {self.capacity}")
        if self.demand.location_weights is not None and len(self.demand.location_weights) != self.num_warehouses:
            raise ValueError(
                f"demand.location_weights: {len(self.demand.location_weights)} values for {self.num_warehouses} warehouses"
            )
        for link in ("supplier_lead_time", "transfer_lead_time"):
            for part in ("periods", "jitter"):
                value = getattr(getattr(self, link), part)
                if isinstance(value, list) and len(value) != self.num_skus:
                    raise ValueError(f"{link}.{part}: {len(value)} values given for {self.num_skus} SKUs")
        if self.action.kind == "discrete" and self.num_skus * num_nodes != 1:
            raise ValueError(
                f"action.kind 'discrete' needs one SKU at one node; this config orders {self.num_skus * num_nodes} quantities (use 'ladder')"
            )
        for name in (
            "unit_cost",
            "transfer_cost",
            "order_fixed_cost",
            "price",
            "holding_cost",
            "shortage_penalty",
            "unit_volume",
            "waste_cost",
            "mean",
        ):
            value = self.demand.mean if name == "mean" else getattr(self, name)
            values = value if isinstance(value, list) else [] if isinstance(value, Range) else [value]
            if isinstance(value, list) and len(value) != self.num_skus:
                raise ValueError(f"{name}: {len(value)} values given for {self.num_skus} SKUs")
            if any(v < 0 for v in values):
                raise ValueError(f"{name} must be >= 0, got {value}")
        if isinstance(self.unit_volume, (int, float)) and self.unit_volume <= 0:
            raise ValueError("unit_volume must be > 0")
        return self
