"""``paretochain/Dispatch-v0``: dynamic vehicle dispatch with time windows and a vector reward."""

from __future__ import annotations

import numpy as np

from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.dispatch.core import DispatchCore
from paretochain.envs.dispatch.render import ansi_table, route_map, timeline
from paretochain.envs.views import SingleEnv


class DispatchEnv(SingleEnv):
    """A shift of deliveries from one or more depots by a fleet of vehicles.

    ## Description
    Customers have a position, a demand in units, a service time and a delivery window.
    Orders are released during the shift: a share (``release.known_share``) is known at the
    start, the others arrive at random times that stay hidden until they come. Whenever a
    vehicle is idle (at a depot or after a service) the policy chooses its next move: serve
    one of the released orders it can still serve, return to its depot (where it unloads),
    or wait. Time is event-driven: the clock jumps to the next vehicle-free time. The rules
    of a decision are listed in :mod:`paretochain.envs.dispatch.core`. Instances are
    generated (uniform, clustered or mixed placement) or read from VRPLIB files (CVRPLIB,
    Solomon); with every order known at the start, a file instance is the static CVRP or
    VRPTW, and a published solution replayed through the env costs its published value.

    ## Action space
    ``Discrete(max_orders + 2)`` for the current vehicle (the one free earliest, ties to the
    lowest index): ``a < max_orders`` serves order slot ``a``; ``max_orders`` returns to the
    depot, or ends the vehicle's shift when it is already there; ``max_orders + 1`` waits
    ``wait_min``. The action mask (``info["action_mask"]``, ``env.action_masks()``, a bool
    tensor in the batched view) allows exactly the feasible moves (capacity, window plus the
    allowed lateness, return by the shift end plus the allowed overtime). At least one move is
    always allowed. What a masked-out move does is the ``invalid_action`` option:

    - ``"fallback"`` (the default of the single view, for clients that read no masks): the
      vehicle waits where waiting is allowed, else takes the depot move (always allowed while
      the episode runs); ``info["actions_replaced"]`` is 1 in that step (0 otherwise).
    - ``"raise"`` (the default of ``make_vec``; the project's agents and tests): the move raises
      :class:`~paretochain.errors.ActionError`.

    An index outside ``0..max_orders + 1``, ``None`` or text raise ``ActionError`` in both modes.

    ## Observation space
    A flat float32 ``Box``; ``env.unwrapped.observation_layout`` gives each block's slice and
    shape. N order slots, V vehicles, D depots. Coordinates are shifted and divided by the
    instance's extent; times are divided by the shift end.

    | block | shape | content |
    | --- | --- | --- |
    | ``orders`` | N x 10 | x, y, demand / capacity, window start, window end, service time, release time, open (1/0), served (1/0), travel time from the current vehicle; all zero until the order is released |
    | ``order_valid`` | N | 1 where the slot holds a released order: the padding mask for an attention encoder |
    | ``vehicles`` | V x 7 | x, y of where the vehicle is (or will be when free), time until free, load / capacity, at its depot, parked, is the current vehicle |
    | ``depots`` | D x 2 | depot coordinates |
    | ``globals`` | 4 | clock, open orders / N, served orders / N, parked vehicles / V |

    ## Rewards
    A float32 vector, one entry per objective named in ``objectives`` (default
    ``[service_cost, on_time_rate, unserved_orders]``), every entry "higher is better":

    | objective | unit | per-step reward |
    | --- | --- | --- |
    | ``service_cost`` | km (file units for files) | minus the distance driven by the move, minus ``unserved_penalty`` for each order lost at the step |
    | ``travel_distance`` | km (file units for files) | minus the distance driven by the move |
    | ``on_time_rate`` | share of orders | 1 / (orders of the instance) when the move serves an order within its window (the return is the on-time share of all orders) |
    | ``unserved_orders`` | orders | minus the orders left unserved, each counted at the step it is lost (its latest start passed, or the episode ended) |
    | ``lateness_min`` | minutes | minus the lateness of the service |
    | ``vehicles_used`` | vehicles | -1 when a vehicle serves its first order |
    | ``overtime_min`` | minutes | minus the added time by which the vehicle came back after the shift end |

    ``env.unwrapped.objectives`` declares each with unit, description and reference point;
    ``info`` carries the KPIs of the step (``travel_distance``, ``orders_served``,
    ``orders_on_time``, ``lateness_min``, ``vehicles_used``, ``overtime_min``,
    ``orders_unserved``, ``wait_min``, ``unserved_penalty``, ``actions_replaced``) and the next
    ``action_mask`` (a new array every step).

    The penalty of an unserved order (``unserved_penalty``; ``env.unwrapped.core.unserved_penalty``)
    is by default twice the longest depot -> customer -> depot round trip the instance can hold
    (generated: from a centre depot to a corner of the square and back, ``sqrt(2) * area_km``;
    files: the largest such round trip of the file). Serving any order, even on a trip of its
    own, therefore costs less than leaving it, so in ``service_cost`` (and under any weights of
    the default objectives) parking the fleet is never the best policy. With ``travel_distance``
    in its place, a policy that serves nothing drives 0 km, which weights favouring distance
    reward.

    ## Starting state
    A new instance per episode (generated instances are drawn from the episode's seed; file
    instances draw only the release times). Every vehicle empty at its depot at time 0;
    vehicles are assigned to depots in turn.

    ## Episode end
    Termination when every vehicle has parked: a vehicle parks by choosing the depot move
    while at its depot, and automatically once every order is served and it is back.
    Truncation at ``env.unwrapped.core.horizon`` decisions, a bound masked policies never reach.
    The shift is finite, so its normal end is a terminal state (no value after it); truncation
    only guards against a policy that would never park.

    ## Arguments
    ``gymnasium.make("paretochain/Dispatch-v0", config=None, render_mode=None,
    device="cpu", invalid_action="fallback", **overrides)``: ``invalid_action`` is
    ``"fallback"`` or ``"raise"`` (see Action space); ``config`` is a packaged config name
    (``default``, ``generated_50``, ``solomon``, ``cvrplib``; the last two read the
    instances shipped in ``configs/dispatch/instances/``), a YAML path, a mapping or a
    :class:`DispatchConfig`; ``overrides`` replace its top-level fields. ``render_mode`` is
    ``"ansi"`` (a status table) or ``"rgb_array"`` (a map of the routes so far).
    """

    config_cls = DispatchConfig
    core_cls = DispatchCore

    def render_ansi(self) -> str:
        return ansi_table(self.core.snapshot(0))

    def render_rgb(self, history: list[dict[str, np.ndarray]]) -> np.ndarray:
        return route_map(history or [self.core.snapshot(0)])

    def report_figures(self, history: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {"route_map": route_map(history), "timeline": timeline(history)}
