"""Typed configuration of the Dispatch family (``paretochain/Dispatch-v0``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from paretochain.envs.config import ConfigModel


class GeneratorConfig(ConfigModel):
    """Synthetic instances, drawn afresh for every episode from the episode's seed.

    Coordinates are in km on a square of side ``area_km``; times are in minutes.
    """

    num_customers: int = Field(default=20, ge=1, le=2_000, description="orders per episode")
    placement: Literal["uniform", "clustered", "mixed"] = Field(
        default="uniform", description="customers uniform on the square, around cluster centres, or half of each"
    )
    area_km: float = Field(default=20.0, ge=0.01, le=10_000, description="side of the square service area")
    num_clusters: int = Field(default=3, ge=1, le=100, description="cluster centres (clustered and mixed placement)")
    cluster_std_km: float = Field(default=1.5, gt=0, description="spread of customers around their cluster centre")
    depot_placement: Literal["centre", "random"] = Field(
        default="centre", description="first depot at the centre of the square or anywhere; further depots are random"
    )
    demand_min: int = Field(default=1, ge=0, description="smallest order, in units")
    demand_max: int = Field(default=10, ge=0, description="largest order, in units (uniform integers in between)")
    service_min: float = Field(default=5.0, ge=0, description="shortest service time at a customer, minutes")
    service_max: float = Field(default=10.0, ge=0, description="longest service time at a customer, minutes")
    time_windows: bool = Field(
        default=True, description="customers have delivery windows; otherwise any time in the shift"
    )
    window_width_min: float = Field(default=60.0, gt=0, description="narrowest delivery window, minutes")
    window_width_max: float = Field(default=180.0, gt=0, description="widest delivery window, minutes")

    @model_validator(mode="after")
    def _ordered(self) -> GeneratorConfig:
        for low, high in (
            ("demand_min", "demand_max"),
            ("service_min", "service_max"),
            ("window_width_min", "window_width_max"),
        ):
            if getattr(self, high) < getattr(self, low):
                raise ValueError(f"{high} ({getattr(self, high)}) must be >= {low} ({getattr(self, low)})")
        return self


class InstanceFileConfig(ConfigModel):
    """A routing instance read from a VRPLIB (or classic Solomon text) file."""

    path: Path = Field(description="the .vrp (VRPLIB) or .txt (Solomon) file")
    format: Literal["auto", "vrplib", "solomon"] = Field(
        default="auto", description="auto: .txt is Solomon text, anything else VRPLIB"
    )
    distance: Literal["auto", "round", "trunc1", "exact"] = Field(
        default="auto",
        description="round: nearest integer (CVRPLIB); trunc1: truncated to one decimal (Solomon/DIMACS); "
        "exact: unrounded; auto: round for CVRP files, trunc1 for files with time windows, explicit matrices as given",
    )


class ReleaseConfig(ConfigModel):
    """When orders become known during the shift."""

    known_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="chance that an order is known at the start of the shift (1 = static instance)",
    )
    release_end_fraction: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="the other orders arrive uniformly (a Poisson process given their number) in [0, fraction * shift end]",
    )


class DispatchConfig(ConfigModel):
    """Everything that defines a Dispatch environment.

    Generated instances measure distance in km and time in minutes (``speed_km_per_min``);
    file instances use the file's units, with travel time equal to distance.
    """

    instance_source: Literal["generated", "file"] = Field(
        default="generated", description="synthetic instances, or one instance file"
    )
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    instance: InstanceFileConfig | None = Field(default=None, description="the instance file (instance_source: file)")
    max_orders: int | None = Field(
        default=None,
        ge=1,
        le=5_000,
        description="order slots of the observation and action; default the number of customers",
    )
    num_depots: int = Field(
        default=1, ge=1, le=20, description="depots of generated instances; vehicles are assigned to them in turn"
    )
    num_vehicles: int | None = Field(
        default=None,
        ge=1,
        le=1_000,
        description="fleet size; None: 3 for generated instances; for files VEHICLES, else the k of a CVRPLIB name, else 1 per 5 customers",
    )
    capacity_units: float | None = Field(
        default=None,
        gt=0,
        description="capacity of every vehicle; None: 50 for generated instances, the file's CAPACITY for files",
    )
    speed_km_per_min: float = Field(
        default=0.5, ge=0.001, le=100, description="travel speed of generated instances (0.5 = 30 km/h)"
    )
    shift_length_min: float | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="end of the shift (vehicles due back at the depot); None: 480 for generated instances; for files the depot's window, else a generous bound",
    )
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    max_lateness_min: float = Field(
        default=30.0,
        ge=0,
        le=1_000_000,
        description="service may start this much after a window closes (counted as lateness); 0 = hard windows",
    )
    max_overtime_min: float = Field(
        default=60.0,
        ge=0,
        le=1_000_000,
        description="vehicles may return this much after the shift end (counted as overtime)",
    )
    wait_min: float = Field(default=5.0, ge=0.01, le=1_440, description="duration of the wait move")
    unserved_penalty: float | None = Field(
        default=None,
        gt=0,
        le=1e9,
        description="cost of one order left unserved, in distance units (km for generated instances), charged in "
        "the service_cost objective; None: twice the longest depot -> customer -> depot round trip the instance "
        "can hold (see envs/dispatch/reward.py, unserved_penalty)",
    )
    objectives: list[str] = Field(default=["service_cost", "on_time_rate", "unserved_orders"], min_length=1)
    reference_point: dict[str, float] = Field(
        default_factory=dict, description="override of the declared hypervolume reference per objective"
    )

    @classmethod
    def family(cls) -> str:
        return "dispatch"

    def memory_estimate(self, num_envs: int) -> int:
        """Bytes that ``num_envs`` environments of this config need at least (see :mod:`paretochain.envs.memory`).

        Counted per environment: the order slots (positions, windows, demand, status), the
        vehicles, their observation and a step's working arrays. A file instance counts its
        order slots only when ``max_orders`` is given (its size is known once the file is read).
        """
        orders = self.max_orders or (self.generator.num_customers if self.instance_source == "generated" else 0)
        vehicles = self.num_vehicles or 3
        return num_envs * 4 * (100 * orders + 20 * vehicles + 10 * self.num_depots)

    @property
    def generated_vehicles(self) -> int:
        """Fleet size of generated instances."""
        return self.num_vehicles if self.num_vehicles is not None else 3

    @property
    def generated_capacity(self) -> float:
        """Vehicle capacity of generated instances."""
        return self.capacity_units if self.capacity_units is not None else 50.0

    @property
    def generated_shift(self) -> float:
        """Shift end of generated instances, minutes."""
        return self.shift_length_min if self.shift_length_min is not None else 480.0

    @model_validator(mode="after")
    def _consistent(self) -> DispatchConfig:
        if self.instance_source == "file" and self.instance is None:
            raise ValueError("instance_source 'file' needs an 'instance' section with at least 'path'")
        if self.instance_source == "generated":
            g = self.generator
            if self.max_orders is not None and self.max_orders < g.num_customers:
                raise ValueError(
                    f"max_orders ({self.max_orders}) must be >= generator.num_customers ({g.num_customers})"
                )
            if g.demand_max > self.generated_capacity:
                raise ValueError(
                    f"generator.demand_max ({g.demand_max}) exceeds capacity_units ({self.generated_capacity}): such orders could never be served"
                )
        return self
