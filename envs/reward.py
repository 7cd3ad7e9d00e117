"""Rewards as named expressions of the KPIs: the one table shape every family uses.

A family's reward module (``envs/<family>/reward.py``) maps each objective of its
catalogue to a :class:`RewardExpression`, a linear expression of the KPIs a step
reports, written as a planner would read it::

    REWARDS = {
        "profit": kpi("profit"),
        "holding_cost": -kpi("holding_cost"),
        "fill_rate": kpi("fill_rate") / HORIZON,  # an episode's return is the mean fill rate
        "on_time_rate": kpi("orders_on_time") / ORDERS,  # the share of the episode's orders
    }

Every reward is linear in the KPIs, so a core forms the reward vector with one product of
its KPI matrix and :func:`reward_weights`. A new objective over existing KPIs is one entry
there (with its declaration beside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Divisor:
    """What a per-step reward is divided by, so that an episode's return is a mean or a share.

    Attributes:
        name: ``"horizon"`` (the periods of an episode, a constant of the config) or ``"orders"``
            (the orders of the episode's instance, known per env at reset).
    """

    name: str


#: Divide by the periods of an episode: the return is the mean over periods.
HORIZON = Divisor("horizon")
#: Divide by the orders of the episode's instance: the return is a share of the orders.
ORDERS = Divisor("orders")


@dataclass(frozen=True)
class RewardExpression:
    """A per-step reward: ``sum(coefficient * KPI)``, divided by ``per`` when given.

    Build it with :func:`kpi` and the operators ``-x``, ``x + y``, ``x - y``, ``c * x`` and ``x / HORIZON``.

    Attributes:
        terms: ``(KPI name, coefficient)`` pairs.
        per: the divisor of the sum (None: none).
    """

    terms: tuple[tuple[str, float], ...]
    per: Divisor | None = None

    def __neg__(self) -> RewardExpression:
        return RewardExpression(tuple((name, -c) for name, c in self.terms), self.per)

    def __add__(self, other: RewardExpression) -> RewardExpression:
        if self.per != other.per:
            raise ValueError("only expressions with the same divisor can be added")
        return RewardExpression(self.terms + other.terms, self.per)

    def __sub__(self, other: RewardExpression) -> RewardExpression:
        return self + (-other)

    def __rmul__(self, factor: float) -> RewardExpression:
        return RewardExpression(tuple((name, factor * c) for name, c in self.terms), self.per)

    def __truediv__(self, divisor: Divisor) -> RewardExpression:
        if self.per is not None:
            raise ValueError("an expression is divided by one divisor at most")
        return RewardExpression(self.terms, divisor)

    def __str__(self) -> str:
        text = ""
        for name, c in self.terms:
            size = "" if abs(c) == 1.0 else f"{abs(c):g} * "
            text += ("-" if c < 0 else "") if not text else (" - " if c < 0 else " + ")
            text += size + name
        if self.per is None:
            return text
        return f"({text}) / {self.per.name}" if len(self.terms) > 1 else f"{text} / {self.per.name}"


def kpi(name: str) -> RewardExpression:
    """The KPI ``name`` of a step, as a reward expression."""
    return RewardExpression(((name, 1.0),))


def reward_weights(
    rewards: Mapping[str, RewardExpression],
    objectives: Sequence[str],
    kpi_names: Sequence[str],
    horizon: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The linear map from a step's KPIs to its reward vector, for the chosen objectives in reward order.

    Returns:
        ``weights`` float64 ``(len(kpi_names), len(objectives))`` with ``reward = kpis @ weights``
        (coefficients divided by the horizon where the expression says so), and ``per_order`` bool
        ``(len(kpi_names),)``: the KPI columns a core divides by the episode's orders first.

    Raises:
        ValueError: an objective without an expression, a KPI the step does not report, a divisor
            by the horizon without one, or a KPI used both per order and not.
    """
    weights = np.zeros((len(kpi_names), len(objectives)), dtype=np.float64)
    per_order = np.zeros(len(kpi_names), dtype=bool)
    per_order_set = np.zeros(len(kpi_names), dtype=bool)  # columns whose divisor was decided by some term
    for j, objective in enumerate(objectives):
        if objective not in rewards:
            raise ValueError(f"objective {objective!r} has no reward expression; the catalogue has {sorted(rewards)}")
        expression = rewards[objective]
        for name, coefficient in expression.terms:
            if name not in kpi_names:
                raise ValueError(f"the reward of {objective!r} reads KPI {name!r}, which the step does not report")
            i = list(kpi_names).index(name)
            if expression.per == HORIZON:
                if horizon is None:
                    raise ValueError(f"the reward of {objective!r} is per horizon, but the family has none")
                coefficient = coefficient / horizon
            by_order = expression.per == ORDERS
            if per_order_set[i] and per_order[i] != by_order:
                raise ValueError(f"KPI {name!r} is read both per order and not")
            per_order[i], per_order_set[i] = by_order, True
            weights[i, j] += coefficient
    return weights, per_order
