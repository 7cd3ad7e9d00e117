"""Fuzzing the configs: every generated config is refused with the project's error or builds and steps finitely.

Values are drawn inside and outside the allowed ranges (negative, zero, NaN, infinite, wrong
types, lists of the wrong length). A config must either be refused with a
:class:`~paretochain.errors.ParetochainError` when the environment is built, or build, reset
and step with finite observations and rewards; any other exception is a bug.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import paretochain  # noqa: F401  (registers the environments)
from paretochain.errors import ParetochainError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e9, 1e-300])
MODEST = st.floats(min_value=0, max_value=60, allow_nan=False)
#: a number of any kind: mostly modest and positive, sometimes negative, huge, tiny, NaN or infinite
NUMBER = st.one_of(MODEST, MODEST, MODEST, st.integers(0, 20), st.floats(-1e12, 1e12), SPECIAL)
SMALL_INT = st.integers(-2, 4)
WRONG = st.sampled_from(["x", None, [], {"a": 1}])


def per_sku(values: st.SearchStrategy[Any] = NUMBER) -> st.SearchStrategy[Any]:
    """A per-SKU value: one number, a short list (maybe of the wrong length), or something else entirely."""
    return st.one_of(values, st.lists(values, min_size=0, max_size=4), WRONG)


def partial(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


def run_or_refuse(env_id: str, fields: dict[str, Any], steps: int = 3) -> None:
    """Build the env with ``fields``; a refusal must be a ParetochainError, a build must step finitely."""
    try:
        env = gym.make(env_id, **fields)
    except ParetochainError as exc:
        assert str(exc).strip(), "a refusal must say what is wrong"
        event("refused")
        return
    event("built")
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()
    space = env.action_space
    space.seed(0)
    for _ in range(steps):
        action = allowed_action(env)
        obs, reward, terminated, truncated, _ = env.step(action)
        assert np.isfinite(obs).all() and np.isfinite(reward).all(), (fields, obs, reward)
        if terminated or truncated:
            obs, _ = env.reset()


def allowed_action(env: gym.Env) -> Any:
    """An action the env's current mask allows (a seeded sample where there is no mask)."""
    space = env.action_space
    masks = getattr(env.unwrapped, "action_masks", None)
    mask = masks() if callable(masks) else None
    if mask is None or not isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        return space.sample()
    if isinstance(space, gym.spaces.Discrete):
        return int(np.flatnonzero(mask)[0])
    nvec = np.asarray(space.nvec)
    blocks = np.split(np.asarray(mask, dtype=bool), np.cumsum(nvec)[:-1])
    return np.array([int(np.flatnonzero(b)[0]) for b in blocks], dtype=np.int64).reshape(space.shape)


WAREHOUSE = partial(
    {
        "num_skus": SMALL_INT,
        "num_warehouses": SMALL_INT,
        "distribution_center": st.booleans(),
        "horizon": st.integers(-1, 6),
        "unmet_demand": st.sampled_from(["lost", "backorder", "neither"]),
        "demand_history_periods": SMALL_INT,
        "demand": partial(
            {
                "distribution": st.sampled_from(["poisson", "negative_binomial", "normal"]),
                "mean": st.one_of(per_sku(), st.fixed_dictionaries({"low": NUMBER, "high": NUMBER})),
                "dispersion": NUMBER,
                "location_weights": st.one_of(st.none(), st.lists(NUMBER, max_size=4)),
                "seasonality_amplitude": NUMBER,
                "trend": NUMBER,
                "promotion_probability": NUMBER,
                "promotion_uplift": NUMBER,
            }
        ),
        "action": partial(
            {
                "kind": st.sampled_from(["box", "ladder", "discrete", "other"]),
                "ladder": st.lists(NUMBER, max_size=5),
                "ladder_unit": st.sampled_from(["mean_demand", "units"]),
            }
        ),
        "supplier_lead_time": partial({"periods": per_sku(SMALL_INT), "jitter": SMALL_INT}),
        "unit_cost": per_sku(),
        "price": per_sku(),
        "holding_cost": per_sku(),
        "shortage_penalty": per_sku(),
        "unit_volume": per_sku(),
        "capacity": st.one_of(st.none(), NUMBER, st.lists(NUMBER, max_size=4)),
        "overflow": st.sampled_from(["cut", "charge"]),
        "shelf_life": st.one_of(st.none(), SMALL_INT),
        "disruptions": partial({"outage_probability": NUMBER, "spike_probability": NUMBER, "spike_periods": SMALL_INT}),
        "initial_inventory": NUMBER,
        "reference_point": st.dictionaries(st.sampled_from(["profit", "fill_rate", "nope"]), NUMBER, max_size=2),
    }
)


@FUZZ
@given(fields=WAREHOUSE)
def test_any_warehouse_config_is_refused_clearly_or_steps_with_finite_rewards(fields: dict[str, Any]) -> None:
    run_or_refuse("paretochain/Warehouse-v0", fields)


CHANNEL = partial(
    {
        "name": st.sampled_from(["web", "shop", ""]),
        "arrival_rate": per_sku(),
        "attractiveness": NUMBER,
        "price_sensitivity": NUMBER,
        "commission": NUMBER,
        "price_floor": st.one_of(st.none(), NUMBER),
        "change_every": SMALL_INT,
        "promotion_levels": st.lists(NUMBER, max_size=3),
    }
)

PRICING = partial(
    {
        "num_skus": SMALL_INT,
        "horizon": st.integers(-1, 6),
        "channels": st.lists(CHANNEL, max_size=3),
        "list_price": per_sku(),
        "unit_cost": per_sku(),
        "initial_inventory": per_sku(),
        "holding_cost": per_sku(),
        "replenishment": st.one_of(
            st.none(),
            partial(
                {"order_quantities": st.lists(NUMBER, max_size=4), "lead_time": SMALL_INT, "order_fixed_cost": NUMBER}
            ),
        ),
        "demand": partial(
            {
                "model": st.sampled_from(["mnl", "constant_elasticity", "linear"]),
                "elasticity": per_sku(),
                "seasonality_amplitude": NUMBER,
                "decay": NUMBER,
                "reference_price": partial({"smoothing": NUMBER, "loss_weight": NUMBER, "gain_weight": NUMBER}),
                "competitor": partial({"mean_ratio": NUMBER, "volatility": NUMBER, "attractiveness": NUMBER}),
            }
        ),
        "action": partial(
            {
                "kind": st.sampled_from(["ladder", "box", "dial"]),
                "price_ladder": st.lists(NUMBER, max_size=4),
                "box_low": NUMBER,
                "box_high": NUMBER,
            }
        ),
        "reference_point": st.dictionaries(st.sampled_from(["gross_margin", "nope"]), NUMBER, max_size=2),
    }
)


@FUZZ
@given(fields=PRICING)
def test_any_pricing_config_is_refused_clearly_or_steps_with_finite_rewards(fields: dict[str, Any]) -> None:
    run_or_refuse("paretochain/Pricing-v0", fields)


DISPATCH = partial(
    {
        "generator": partial(
            {
                "num_customers": SMALL_INT,
                "placement": st.sampled_from(["uniform", "clustered", "mixed", "ring"]),
                "area_km": NUMBER,
                "num_clusters": SMALL_INT,
                "cluster_std_km": NUMBER,
                "demand_min": SMALL_INT,
                "demand_max": st.integers(-1, 12),
                "service_min": NUMBER,
                "service_max": NUMBER,
                "time_windows": st.booleans(),
                "window_width_min": NUMBER,
                "window_width_max": NUMBER,
            }
        ),
        "max_orders": st.one_of(st.none(), SMALL_INT),
        "num_depots": SMALL_INT,
        "num_vehicles": st.one_of(st.none(), SMALL_INT),
        "capacity_units": st.one_of(st.none(), NUMBER),
        "speed_km_per_min": NUMBER,
        "shift_length_min": st.one_of(st.none(), NUMBER),
        "release": partial({"known_share": NUMBER, "release_end_fraction": NUMBER}),
        "max_lateness_min": NUMBER,
        "max_overtime_min": NUMBER,
        "wait_min": NUMBER,
        "reference_point": st.dictionaries(st.sampled_from(["travel_distance", "nope"]), NUMBER, max_size=2),
    }
)


@FUZZ
@given(fields=DISPATCH)
def test_any_dispatch_config_is_refused_clearly_or_steps_with_finite_rewards(fields: dict[str, Any]) -> None:
    run_or_refuse("paretochain/Dispatch-v0", fields, steps=5)
