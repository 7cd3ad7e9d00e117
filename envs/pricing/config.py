"""Typed configuration of the Pricing family (``paretochain/Pricing-v0``).

Prices are expressed as multiples of each SKU's list price throughout (a price
ladder entry of ``0.8`` is 20 % below list), so one ladder serves SKUs of any
price level. Money is in the currency of ``list_price`` and ``unit_cost``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator, model_validator

from paretochain.envs.config import ConfigModel

#: A per-SKU parameter: one value for all SKUs or one value per SKU.
PerSku = float | list[float]


def per_sku(value: PerSku, num_skus: int) -> list[float]:
    """Expand a per-SKU parameter to a list of length ``num_skus``."""
    if isinstance(value, list):
        return [float(v) for v in value]
    return [float(value)] * num_skus


class ChannelConfig(ConfigModel):
    """One sales channel (web shop, marketplace, stores) and its rules."""

    name: str = Field(default="web", min_length=1, description="label used in renders and reports")
    arrival_rate: PerSku = Field(default=10.0, description="mean shoppers per period arriving at this channel, per SKU")
    attractiveness: float = Field(
        default=2.0, ge=-20, le=20, description="MNL intercept a_j of buying here (utility units)"
    )
    price_sensitivity: float = Field(
        default=4.0, ge=0, le=100, description="MNL coefficient b_j on the price as a multiple of list price"
    )
    loyalty: float = Field(
        default=1.0, ge=0, le=20, description="extra utility of buying in the channel where the shopper arrived"
    )
    commission: float = Field(
        default=0.0, ge=0, lt=1, description="share of the selling price the channel keeps (marketplace fee)"
    )
    price_floor: float | None = Field(
        default=None, gt=0, description="lowest allowed price, multiple of list price (masks the ladder below it)"
    )
    change_every: int = Field(
        default=1, ge=1, le=365, description="price may change only in periods t with t % change_every == 0 (stores)"
    )
    promotion_levels: list[float] = Field(
        default=[0.0], description="promotion budgets per period (currency), increasing, first 0"
    )
    promotion_lift: float = Field(
        default=0.5, ge=0, le=20, description="largest relative increase of arrivals from promotion"
    )
    promotion_saturation: float = Field(
        default=50.0, gt=0, description="budget at which 63 % of the largest lift is reached"
    )

    @field_validator("promotion_levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if not v or v[0] != 0 or any(b <= a for a, b in pairwise(v)):
            raise ValueError(f"promotion_levels must start at 0 and increase strictly, got {v}")
        return v


class ReferencePriceConfig(ConfigModel):
    """Customers remember past prices; a price above their memory hurts more than a discount helps."""

    smoothing: float = Field(
        default=0.7, ge=0, lt=1, description="r <- smoothing * r + (1 - smoothing) * price, per SKU and channel"
    )
    loss_weight: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="utility lost per unit of (price - reference) / list price above the reference",
    )
    gain_weight: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="utility gained per unit of (reference - price) / list price below the reference",
    )


class CompetitorConfig(ConfigModel):
    """An exogenous competitor price per SKU: a mean-reverting process on the log of its ratio to list price."""

    mean_ratio: float = Field(default=1.0, gt=0, le=10, description="long-run competitor price, multiple of list price")
    reversion: float = Field(default=0.3, ge=0, le=1, description="share of the gap to the mean closed each period")
    volatility: float = Field(
        default=0.0, ge=0, le=2, description="standard deviation of the log-price shock per period"
    )
    attractiveness: float = Field(
        default=-20.0, ge=-20, le=20, description="MNL intercept of buying from the competitor (-20 = ignored)"
    )
    price_sensitivity: float = Field(
        default=4.0, ge=0, le=100, description="MNL coefficient on the competitor's price ratio"
    )


class DemandConfig(ConfigModel):
    """How shoppers arrive and choose."""

    model: Literal["mnl", "constant_elasticity"] = Field(
        default="mnl",
        description="multinomial-logit channel choice, or demand = rate * (price/list)^-elasticity per channel",
    )
    elasticity: PerSku = Field(
        default=2.0, description="price elasticity e > 1 of the constant-elasticity mode, per SKU"
    )
    seasonality_amplitude: float = Field(
        default=0.0, ge=0, lt=1, description="relative amplitude of a sine cycle of arrivals"
    )
    seasonality_period: int = Field(default=52, ge=2, le=366, description="periods per cycle")
    decay: float = Field(
        default=0.0, ge=0, lt=1, description="relative fall of arrivals per period over the season (fashion goods)"
    )
    reference_price: ReferencePriceConfig = Field(default_factory=ReferencePriceConfig)
    competitor: CompetitorConfig = Field(default_factory=CompetitorConfig)

    @field_validator("elasticity")
    @classmethod
    def _elastic(cls, v: PerSku) -> PerSku:
        values = v if isinstance(v, list) else [v]
        if any(e <= 1 or e > 20 for e in values):
            raise ValueError(f"elasticity must lie in (1, 20] (an optimal price exists only above 1), got {v}")
        return v


class ReplenishmentConfig(ConfigModel):
    """Optional re-orders during the season, one order quantity per SKU and period."""

    order_quantities: list[float] = Field(
        default=[0, 10, 20, 40], description="order sizes in units, increasing, first 0"
    )
    lead_time: int = Field(
        default=2, ge=0, le=52, description="periods between ordering and receiving (0 = before this period's sales)"
    )
    order_fixed_cost: float = Field(default=0.0, ge=0, description="cost of each order line placed")

    @field_validator("order_quantities")
    @classmethod
    def _quantities(cls, v: list[float]) -> list[float]:
        if len(v) < 2 or v[0] != 0 or any(b <= a for a, b in pairwise(v)) or any(q != int(q) for q in v):
            raise ValueError(f"order_quantities must be whole units starting at 0 and increasing strictly, got {v}")
        return v


class ActionConfig(ConfigModel):
    """How prices are set."""

    kind: Literal["ladder", "discrete", "box"] = Field(
        default="ladder",
        description="MultiDiscrete indices into price_ladder, one Discrete joint index over those choices, "
        "or Box multipliers",
    )
    price_ladder: list[float] = Field(
        default=[0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2], description="allowed prices as multiples of list price, increasing"
    )
    box_low: float = Field(default=0.5, gt=0, le=10, description="lowest multiplier of a Box action")
    box_high: float = Field(default=1.5, gt=0, le=10, description="highest multiplier of a Box action")

    @field_validator("price_ladder")
    @classmethod
    def _ladder(cls, v: list[float]) -> list[float]:
        if len(v) < 1 or v[0] <= 0 or any(b <= a for a, b in pairwise(v)):
            raise ValueError(f"price_ladder must be positive multipliers increasing strictly, got {v}")
        return v

    @model_validator(mode="after")
    def _box(self) -> ActionConfig:
        if self.box_high <= self.box_low:
            raise ValueError(f"box_high ({self.box_high}) must be > box_low ({self.box_low})")
        return self


class SatisfactionConfig(ConfigModel):
    """Weights of the customer-satisfaction score (see :mod:`paretochain.envs.pricing.objectives`)."""

    jump_weight: float = Field(
        default=1.0, ge=0, le=100, description="penalty per unit of mean |price change| / list price"
    )
    gap_weight: float = Field(
        default=1.0, ge=0, le=100, description="penalty per unit of mean (max - min channel price) / list price"
    )
    stockout_weight: float = Field(
        default=1.0, ge=0, le=100, description="penalty per unit of the share of demand not served"
    )


class CalibrationProvenance(ConfigModel):
    """Where a config's demand came from when it was fitted to data (:func:`~paretochain.envs.pricing.calibration.config_from_fit`).

    Descriptive only: the dynamics never read it. It travels with the config (run
    directories, exported policy metadata) so that a reader can judge the fit.
    """

    source: str = Field(default="", description="the data the fit used")
    model: str = Field(description="the demand model the fit was turned into (constant_elasticity or mnl)")
    group: str = Field(default="all", description="the group whose elasticity was used")
    elasticity: float = Field(description="the fitted price elasticity (minus the slope of log units on log price)")
    std_error: float = Field(ge=0, description="its classical standard error")
    cluster_std_error: float = Field(ge=0, description="its standard error clustered by item")
    n_obs: int = Field(ge=0, description="rows the fit used")
    r2_within: float = Field(description="share of the demeaned variance of log units the fit explains")
    warnings: list[str] = Field(default_factory=list, description="what the fit flagged (wrong signs, weak estimates)")


class PricingConfig(ConfigModel):
    """Everything that defines a Pricing environment."""

    num_skus: int = Field(default=1, ge=1, le=10_000)
    horizon: int = Field(default=26, ge=1, le=10_000, description="periods in the season")
    channels: list[ChannelConfig] = Field(default_factory=lambda: [ChannelConfig()], min_length=1, max_length=16)
    list_price: PerSku = Field(default=10.0, description="reference selling price per unit, per SKU")
    unit_cost: PerSku = Field(default=5.0, description="cost of goods per unit, per SKU")
    initial_inventory: PerSku = Field(
        default=100.0, description="units on hand at the start of the season, per SKU (shared by all channels)"
    )
    holding_cost: PerSku = Field(default=0.0, description="per unit on hand at the end of a period")
    replenishment: ReplenishmentConfig | None = Field(
        default=None, description="None: the season's stock is all there is"
    )
    demand: DemandConfig = Field(default_factory=DemandConfig)
    action: ActionConfig = Field(default_factory=ActionConfig)
    satisfaction: SatisfactionConfig = Field(default_factory=SatisfactionConfig)
    objectives: list[str] = Field(default=["gross_margin", "customer_satisfaction", "leftover_inventory"], min_length=1)
    reference_point: dict[str, float] = Field(
        default_factory=dict, description="override of the declared hypervolume reference per objective"
    )
    calibration: CalibrationProvenance | None = Field(
        default=None, description="provenance of a config fitted to data (estimate, standard errors); not simulated"
    )

    @classmethod
    def family(cls) -> str:
        return "pricing"

    def memory_estimate(self, num_envs: int) -> int:
        """Bytes that ``num_envs`` environments of this config need at least (see :mod:`paretochain.envs.memory`).

        Counted per environment and SKU x channel cell: prices, reference prices, masks over
        the ladder, the channel-choice utilities, the observation and a step's working arrays.
        """
        channels = len(self.channels)
        cells = self.num_skus * channels
        ladder = len(self.action.price_ladder) if self.action.kind == "ladder" else 1
        lead = self.replenishment.lead_time if self.replenishment is not None else 0
        per_env_floats = 2 * cells * (ladder + channels + 10) + self.num_skus * (lead + 4)
        return num_envs * 4 * per_env_floats

    @model_validator(mode="after")
    def _consistent(self) -> PricingConfig:
        k = self.num_skus
        checks: list[tuple[str, PerSku, bool]] = [
            ("list_price", self.list_price, True),
            ("unit_cost", self.unit_cost, False),
            ("initial_inventory", self.initial_inventory, False),
            ("holding_cost", self.holding_cost, False),
            ("demand.elasticity", self.demand.elasticity, True),
        ]
        checks += [(f"channels[{i}].arrival_rate", c.arrival_rate, False) for i, c in enumerate(self.channels)]
        for name, value, positive in checks:
            if isinstance(value, list) and len(value) != k:
                raise ValueError(f"{name}: {len(value)} values given for num_skus={k}")
            values = value if isinstance(value, list) else [value]
            if any(v < 0 or (positive and v == 0) for v in values):
                raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
        if any(v != int(v) for v in per_sku(self.initial_inventory, k)):
            raise ValueError(f"initial_inventory must be whole units, got {self.initial_inventory}")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        highest = self.action.price_ladder[-1] if self.action.kind == "ladder" else self.action.box_high
        for i, c in enumerate(self.channels):
            if c.price_floor is not None and c.price_floor > highest:
                raise ValueError(
                    f"channels[{i}].price_floor ({c.price_floor}) is above every allowed price (highest {highest})"
                )
        return self
