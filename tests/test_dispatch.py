"""Tests of the Dispatch family (``paretochain/Dispatch-v0``): dynamics, masks, instances, views."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paretochain.envs  # noqa: F401  (registers the ids)
from paretochain.agents.baselines.dispatch import NearestNeighbourPolicy, ReplayPolicy
from paretochain.envs import make_vec
from paretochain.envs.dispatch import DispatchConfig, DispatchEnv, load_instance, load_solution
from paretochain.errors import ActionError, ConfigError, DataError
from paretochain.evaluate.rollout import rollout

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
A_SET = sorted((DATA / "cvrplib" / "A").glob("*.vrp")) if (DATA / "cvrplib" / "A").exists() else []
needs_data = pytest.mark.skipif(
    not A_SET, reason=f"shared routing data not found at {DATA} (see shared/data/README.md)"
)


def static_file_config(path: Path, **extra: object) -> dict[str, object]:
    return {"instance_source": "file", "instance": {"path": str(path)}, "release": {"known_share": 1.0}, **extra}


def masked_random_episode(
    env: DispatchEnv, seed: int, rng: np.random.Generator, check: object = None
) -> list[dict[str, float]]:
    """Play one episode with uniformly random allowed moves; return the per-step infos."""
    obs, info = env.reset(seed=seed)
    infos = []
    for _ in range(env.unwrapped.core.horizon + 1):
        mask = info["action_mask"]
        if check is not None:
            check(env.unwrapped.core, mask)
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, _reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs), "observation outside its declared space"
        infos.append(info)
        if terminated or truncated:
            break
    return infos


# ---------------------------------------------------------------------------------------------- exact replays
@needs_data
@pytest.mark.parametrize("vrp", A_SET, ids=[p.stem for p in A_SET])
def test_replaying_a_set_best_known_solution_gives_exactly_its_published_cost(vrp: Path) -> None:
    routes, cost = load_solution(vrp.with_suffix(".sol"))
    env = make_vec("paretochain/Dispatch-v0", 1, config=static_file_config(vrp, num_vehicles=len(routes)))
    result = rollout(env, ReplayPolicy(env, routes), [0])
    assert result.kpis["travel_distance"][0] == cost
    assert result.returns[0, 0] == -cost
    assert result.kpis["orders_served"][0] == env.core.max_orders
    assert result.kpis["orders_unserved"][0] == 0


@needs_data
@pytest.mark.parametrize("name", ["C101", "R101", "RC201"])
def test_replaying_solomon_best_known_solution_meets_every_window_at_its_published_cost(name: str) -> None:
    vrp = DATA / "solomon" / f"{name}.vrp"
    routes, cost = load_solution(vrp.with_suffix(".sol"))
    env = make_vec(
        "paretochain/Dispatch-v0", 1, config="solomon", instance={"path": str(vrp)}, num_vehicles=len(routes)
    )
    result = rollout(env, ReplayPolicy(env, routes), [0])
    assert round(float(result.kpis["travel_distance"][0]), 1) == pytest.approx(cost, abs=1e-9)
    assert result.kpis["orders_on_time"][0] == 100
    assert result.kpis["lateness_min"][0] == 0
    assert result.kpis["orders_unserved"][0] == 0


def test_tiny_line_instance_costs_its_hand_computed_distance(tmp_path: Path) -> None:
    vrp = tmp_path / "line.vrp"
    vrp.write_text(
        "NAME : line\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\n"
        "NODE_COORD_SECTION\n1 0 0\n2 3 4\n3 6 8\nDEMAND_SECTION\n1 0\n2 5\n3 5\nDEPOT_SECTION\n1\n-1\nEOF\n"
    )
    env = DispatchEnv(static_file_config(vrp, num_vehicles=1))
    env.reset(seed=0)
    total = 0.0
    for action in (0, 1, 2):  # customer 1, customer 2, back to the depot (all served: the vehicle parks)
        _, _reward, terminated, _, info = env.step(action)
        total += info["travel_distance"]
    assert total == 20.0  # 5 + 5 + 10
    assert terminated and info["orders_unserved"] == 0


# ---------------------------------------------------------------------------------------------- masks and invariants
def independent_feasibility(core, mask: np.ndarray) -> None:
    """Recompute, in numpy, which orders the current vehicle may serve, and compare with the mask."""
    assert mask.any(), "no move allowed"
    s = core.snapshot(0)
    D, N = int(s["num_depots"]), core.max_orders
    if bool(s["done"]):
        assert mask[N + 1] and not mask[: N + 1].any()
        return
    v = int(s["current"])
    xy = s["coords"]
    here, home = xy[s["vehicle_node"][v]], xy[int(core.home[v])]
    speed, now = core.speed, float(s["clock"])
    release = core.state.release[0].numpy()
    for i in range(N):
        dist = float(np.hypot(*(xy[D + i] - here)))
        start = max(now + dist / speed, s["window"][i, 0])
        back = start + core.service[0, i].item() + float(np.hypot(*(home - xy[D + i]))) / speed
        feasible = (
            s["valid"][i]
            and not s["served"][i]
            and release[i] <= now + 1e-6
            and s["vehicle_load"][v] + s["demand"][i] <= core.capacity + 1e-6
            and start <= s["window"][i, 1] + core.max_lateness + 1e-6
            and back <= core.deadline
        )
        assert bool(mask[i]) == feasible, f"order {i}: mask {mask[i]} but feasibility {feasible}"
    assert mask[N], "the depot move must always be allowed"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_customers=st.integers(1, 12),
    num_vehicles=st.integers(1, 4),
    num_depots=st.integers(1, 2),
    placement=st.sampled_from(["uniform", "clustered", "mixed"]),
    known_share=st.sampled_from([0.0, 0.5, 1.0]),
    max_lateness=st.sampled_from([0.0, 20.0]),
    time_windows=st.booleans(),
    capacity=st.integers(10, 40),
    seed=st.integers(0, 2**31),
)
def test_masks_allow_exactly_the_feasible_moves_and_always_at_least_one(
    num_customers: int,
    num_vehicles: int,
    num_depots: int,
    placement: str,
    known_share: float,
    max_lateness: float,
    time_windows: bool,
    capacity: int,
    seed: int,
) -> None:
    env = DispatchEnv(
        generator={"num_customers": num_customers, "placement": placement, "time_windows": time_windows},
        num_vehicles=num_vehicles,
        num_depots=num_depots,
        capacity_units=capacity,
        release={"known_share": known_share},
        max_lateness_min=max_lateness,
    )
    infos = masked_random_episode(env, seed, np.random.default_rng(seed), check=independent_feasibility)
    assert infos, "the episode made no decision"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_customers=st.integers(1, 15),
    num_vehicles=st.integers(1, 3),
    capacity=st.integers(10, 30),
    seed=st.integers(0, 2**31),
)
def test_masked_random_policies_never_break_capacity_windows_or_the_shift(
    num_customers: int, num_vehicles: int, capacity: int, seed: int
) -> None:
    env = DispatchEnv(
        generator={"num_customers": num_customers},
        num_vehicles=num_vehicles,
        capacity_units=capacity,
        max_lateness_min=0.0,
        max_overtime_min=15.0,
    )
    core = env.unwrapped.core
    infos = masked_random_episode(env, seed, np.random.default_rng(seed + 1))
    assert all(i["lateness_min"] == 0 for i in infos)
    assert sum(i["orders_on_time"] for i in infos) == sum(i["orders_served"] for i in infos)
    assert (core.vehicle_load <= core.capacity + 1e-9).all()
    assert (core.vehicle_overtime <= 15.0 + 1e-6).all()
    served = sum(i["orders_served"] for i in infos)
    assert served + sum(i["orders_unserved"] for i in infos) == num_customers, (
        "every order is served or counted lost, once"
    )
    assert core.state.done.all(), "a masked episode must end by termination, not truncation"


# ---------------------------------------------------------------------------------------------- views, seeds
def test_batched_view_matches_single_envs_seed_by_seed() -> None:
    seeds = [3, 11, 42]
    vec = make_vec("paretochain/Dispatch-v0", len(seeds), tensors=True)
    policy = NearestNeighbourPolicy(vec)
    obs, info = vec.reset(seed=seeds)
    batched: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in seeds]
    finished = [False] * len(seeds)
    for _ in range(vec.core.horizon):
        action = policy.act(obs, None, info["action_mask"])
        obs, reward, terminated, truncated, info = vec.step(action)
        for i in range(len(seeds)):
            if not finished[i]:
                batched[i].append((reward[i].numpy().copy(), action[i].item()))
                finished[i] = bool(terminated[i] or truncated[i])
        if all(finished):
            break
    for i, seed in enumerate(seeds):
        env = DispatchEnv()
        single_policy = NearestNeighbourPolicy(env)
        o, inf = env.reset(seed=seed)
        for reward_b, action_b in batched[i]:
            a = int(
                single_policy.act(
                    torch.as_tensor(o).unsqueeze(0), None, torch.as_tensor(inf["action_mask"]).unsqueeze(0)
                )[0]
            )
            assert a == action_b
            o, r, term, _trunc, inf = env.step(a)
            np.testing.assert_array_equal(r, reward_b)
        assert term


def test_same_seed_gives_the_same_episode_and_another_seed_another_instance() -> None:
    def trajectory(seed: int) -> list[np.ndarray]:
        env = DispatchEnv(generator={"placement": "mixed"})
        rng = np.random.default_rng(0)
        obs, info = env.reset(seed=seed)
        out = [obs]
        for _ in range(30):
            obs, reward, term, _trunc, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            out += [obs, reward]
            if term:
                break
        return out

    first, again, other = trajectory(7), trajectory(7), trajectory(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


class MaskedSampling(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Samples actions from the current mask, as a masked agent would (the checker samples blindly otherwise).

    The checker may sample before a reset; a stale sample that the new state does not allow
    becomes the depot move, which every running episode allows. ``LinearReward`` puts the same
    ``reward_weights`` array in every info, which the checker's aliasing test refuses, so infos
    are copied here.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        inner = env

        class MaskedDiscrete(gym.spaces.Discrete):
            def sample(self, mask=None, probability=None):  # type: ignore[override]
                return super().sample(mask=inner.unwrapped.action_masks().astype(np.int8))

        self.action_space = MaskedDiscrete(env.action_space.n)

    def step(self, action):  # type: ignore[override]
        mask = self.env.unwrapped.action_masks()
        obs, reward, terminated, truncated, info = self.env.step(action if mask[action] else len(mask) - 2)
        return obs, reward, terminated, truncated, {k: np.copy(v) for k, v in info.items()}


def test_gymnasium_env_checker_passes_on_the_linearly_scalarised_env() -> None:
    from gymnasium.utils.env_checker import check_env
    from mo_gymnasium.wrappers import LinearReward

    env = gym.make("paretochain/Dispatch-v0", generator={"num_customers": 8})
    scalar = LinearReward(env, weight=np.array([0.01, 1.0, 1.0], dtype=np.float32))
    check_env(MaskedSampling(scalar), skip_render_check=True)
    _, info = scalar.reset(seed=0)
    _, reward, *_ = scalar.step(int(np.flatnonzero(info["action_mask"])[0]))
    assert np.isscalar(reward) or np.ndim(reward) == 0


def test_vector_reward_space_and_objectives_are_declared() -> None:
    env = gym.make(
        "paretochain/Dispatch-v0",
        objectives=[
            "travel_distance",
            "on_time_rate",
            "unserved_orders",
            "lateness_min",
            "vehicles_used",
            "overtime_min",
        ],
    )
    u = env.unwrapped
    assert u.reward_dim == 6 and u.reward_space.shape == (6,)
    assert u.objectives.names[0] == "travel_distance"
    assert (u.objectives.reference_point < 0).sum() == 5  # every objective but on_time_rate has a negative worst value
    _, info = env.reset(seed=1)
    _, reward, *_, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
    assert reward.dtype == np.float32 and reward.shape == (6,)
    assert {"travel_distance", "orders_on_time", "lateness_min", "orders_unserved", "action_mask"} <= set(info)


def test_masked_out_action_raises_an_action_error_in_strict_mode() -> None:
    env = DispatchEnv(release={"known_share": 0.0}, invalid_action="raise")
    _, info = env.reset(seed=0)
    forbidden = np.flatnonzero(~info["action_mask"])
    assert forbidden.size > 0
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        env.step(int(forbidden[0]))
    with pytest.raises(ActionError):
        env.step(env.action_space.n)


def test_unreleased_orders_are_hidden_from_the_observation() -> None:
    env = DispatchEnv(release={"known_share": 0.0, "release_end_fraction": 0.9})
    obs, info = env.reset(seed=4)
    blocks = env.unwrapped.observation_layout.unflatten(obs)
    core = env.unwrapped.core
    hidden = (core.state.release[0] > 0).numpy()
    assert hidden.any()
    assert np.all(blocks["orders"][hidden] == 0) and np.all(blocks["order_valid"][hidden] == 0)
    assert not info["action_mask"][: core.max_orders][hidden].any()


def test_an_order_is_counted_unserved_when_its_window_lapses_not_only_at_the_end() -> None:
    env = DispatchEnv(
        generator={"num_customers": 10, "time_windows": True, "window_width_min": 30.0, "window_width_max": 60.0},
        num_vehicles=1,
        max_lateness_min=0.0,
        release={"known_share": 1.0},
    )
    core = env.unwrapped.core
    _, info = env.reset(seed=5)
    wait, depot = core.max_orders + 1, core.max_orders
    counts, clocks = [], []
    while True:  # a dispatcher that never sends the van out: it waits while it may, then ends the shift
        action = wait if info["action_mask"][wait] else depot
        _, _, terminated, truncated, info = env.step(action)
        counts.append(info["orders_unserved"])
        clocks.append(float(core.state.clock[0]))
        if terminated or truncated:
            break
    assert sum(counts) == 10, "every order is counted once"
    assert sum(counts[:-1]) > 0, "orders whose windows closed were counted before the last step"
    lapsed = core.state.latest_start[0, :10].numpy()
    for step, count in enumerate(counts[:-1]):
        # the orders counted by a step are those whose latest start fell behind the clock during it
        before = clocks[step - 1] if step else 0.0
        assert count == int(((lapsed >= before) & (lapsed < clocks[step])).sum())


def test_order_travel_time_feature_is_the_drive_from_the_current_vehicle() -> None:
    env = DispatchEnv(generator={"num_customers": 10}, num_vehicles=2, release={"known_share": 1.0})
    obs, info = env.reset(seed=3)
    core = env.unwrapped.core
    column = 9  # "travel_time", the tenth order feature
    for _ in range(3):  # at the depot, then after two services (the current vehicle changes)
        orders = env.unwrapped.observation_layout.unflatten(obs)["orders"]
        v = int(core.state.current[0])
        here = core.state.coords[0, int(core.state.vehicle_node[0, v])].numpy()
        drive = np.hypot(*(core.state.coords[0, core.num_depots :].numpy() - here).T) / (core.speed * core.shift_end)
        np.testing.assert_allclose(orders[:10, column], drive[:10], rtol=1e-5, atol=1e-7)
        first_order = int(np.flatnonzero(info["action_mask"][: core.max_orders])[0])
        obs, _, _, _, info = env.step(first_order)


def test_static_file_instance_shows_every_order_at_the_start() -> None:
    env = DispatchEnv(generator={"num_customers": 10}, release={"known_share": 1.0})
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.observation_layout.unflatten(obs)["order_valid"].sum() == 10


def test_vector_view_resets_finished_envs_and_keeps_running() -> None:
    vec = make_vec("paretochain/Dispatch-v0", 4, generator={"num_customers": 5})
    policy = NearestNeighbourPolicy(vec)
    obs, info = vec.reset(seed=0)
    ends = 0
    for _ in range(200):
        action = policy.act(torch.as_tensor(obs), None, torch.as_tensor(info["action_mask"]))
        obs, _reward, terminated, _truncated, info = vec.step(action.numpy())
        ends += int(terminated.sum())
        assert info["action_mask"].any(axis=1).all()
    assert ends >= 4
    assert "final_obs" in info or ends > 0


# ---------------------------------------------------------------------------------------------- rendering
def test_rgb_render_draws_a_map_and_ansi_render_lists_the_vehicles() -> None:
    env = DispatchEnv(render_mode="rgb_array", generator={"num_customers": 6})
    _, info = env.reset(seed=0)
    for _ in range(5):
        _, _, term, _, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        if term:
            break
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 0
    ansi_env = DispatchEnv(render_mode="ansi")
    ansi_env.reset(seed=0)
    table = ansi_env.render()
    assert "vehicle" in table and table.count("\n") >= 2 + ansi_env.unwrapped.core.num_vehicles


# ---------------------------------------------------------------------------------------------- configs and files
def test_packaged_configs_load_and_file_configs_name_the_missing_file() -> None:
    assert DispatchConfig.load("default").generator.num_customers == 20
    assert DispatchConfig.load("generated_50").generator.num_customers == 50
    env = DispatchEnv("generated_50")
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape
    with pytest.raises(DataError, match=r"instance\.path"):
        DispatchEnv("cvrplib", instance={"path": "/nonexistent/A-n32-k5.vrp"})


@needs_data
def test_cvrplib_and_solomon_example_configs_run_with_a_user_path() -> None:
    env = DispatchEnv("cvrplib", instance={"path": str(DATA / "cvrplib" / "A" / "A-n32-k5.vrp")})
    assert env.unwrapped.core.num_vehicles == 5
    _obs, info = env.reset(seed=0)
    assert 0 < info["action_mask"][:31].sum() < 31  # half the orders arrive later
    env = DispatchEnv("solomon", instance={"path": str(DATA / "solomon" / "solomon_txt_format" / "C101.txt")})
    assert env.unwrapped.core.num_vehicles == 25 and env.unwrapped.core.shift_end == 1236


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"generator": {"num_customers": 0}}, "generator.num_customers"),
        ({"generator": {"demand_max": 80}, "capacity_units": 50}, "demand_max"),
        ({"instance_source": "file"}, "instance"),
        ({"max_orders": 5}, "max_orders"),
        ({"objectives": ["profit"]}, "profit"),
        ({"generator": {"window_width_min": 90, "window_width_max": 30}}, "window_width_max"),
    ],
)
def test_bad_configs_give_a_config_error_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.split(".")[-1]):
        DispatchEnv(**overrides)


GOOD_HEAD = "NAME : bad\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 6 8\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD_HEAD + "DEMAND_SECTION\n1 0\n2 5\n3 50\nDEPOT_SECTION\n1\n-1\nEOF\n", "more than the vehicle capacity"),
        (GOOD_HEAD + "DEPOT_SECTION\n1\n-1\nEOF\n", "DEMAND_SECTION"),
        (GOOD_HEAD + "DEMAND_SECTION\n1 0\n2 5\nDEPOT_SECTION\n1\n-1\nEOF\n", "DIMENSION"),
        ("this is not a routing instance at all\n", "not a readable"),
        (
            "NAME : tw\nTYPE : CVRPTW\nDIMENSION : 2\nCAPACITY : 10\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n"
            "DEMAND_SECTION\n1 0\n2 1\nTIME_WINDOW_SECTION\n1 0 100\n2 50 10\nDEPOT_SECTION\n1\n-1\nEOF\n",
            "closes before it opens",
        ),
    ],
)
def test_bad_instance_files_give_a_data_error_naming_the_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "broken.vrp"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_instance(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    with pytest.raises(DataError):
        DispatchEnv(static_file_config(path))


@needs_data
def test_loaded_instances_use_each_family_distance_convention() -> None:
    cvrp = load_instance(DATA / "cvrplib" / "A" / "A-n32-k5.vrp")
    assert cvrp.convention == "round" and np.all(cvrp.distance == np.round(cvrp.distance))
    vrptw = load_instance(DATA / "solomon" / "C101.vrp")
    assert vrptw.convention == "trunc1"
    d = vrptw.distance[0, 1]
    exact = math.dist(vrptw.coords[0], vrptw.coords[1])
    assert d == math.floor(10 * exact) / 10


def test_observation_after_a_partial_reset_equals_a_full_recomputation() -> None:
    vec = make_vec("paretochain/Dispatch-v0", 6, tensors=True, generator={"num_customers": 4})
    policy = NearestNeighbourPolicy(vec)
    obs, info = vec.reset(seed=0)
    partial_resets = 0
    for _ in range(120):
        obs, _, terminated, truncated, info = vec.step(policy.act(obs, None, info["action_mask"]))
        done = terminated | truncated
        if done.any() and not done.all():
            partial_resets += 1
            torch.testing.assert_close(obs, vec.core._observe(None), rtol=0, atol=0)
    assert partial_resets > 0


def test_episode_returns_equal_the_signed_kpi_totals_of_every_catalogue_objective() -> None:
    names = ["travel_distance", "on_time_rate", "unserved_orders", "lateness_min", "vehicles_used", "overtime_min"]
    env = make_vec(
        "paretochain/Dispatch-v0", 3, objectives=names, generator={"num_customers": 12}, max_overtime_min=30.0
    )
    result = rollout(env, NearestNeighbourPolicy(env), [0, 1, 2])
    k = result.kpis
    expected = np.stack(
        [
            -k["travel_distance"],
            k["orders_on_time"] / 12,
            -k["orders_unserved"],
            -k["lateness_min"],
            -k["vehicles_used"],
            -k["overtime_min"],
        ],
        axis=1,
    )
    np.testing.assert_allclose(result.returns, expected, rtol=1e-5, atol=1e-4)
    assert np.all(k["orders_served"] + k["orders_unserved"] == 12)
    assert np.all(k["vehicles_used"] <= 3)


def test_a_masked_reset_that_restarts_no_environment_returns_the_observations_unchanged() -> None:
    # agents on a GPU reset with the done mask every step, without reading it back: often all False
    from paretochain.envs import make_vec

    env = make_vec("paretochain/Dispatch-v0", 4, config="default", tensors=True, check_actions=False)
    before = env.core.reset(seeds=[1, 2, 3, 4]).clone()
    after = env.core.reset(mask=torch.zeros(4, dtype=torch.bool))
    assert torch.equal(before, after)


def test_single_env_integer_actions_step_as_their_arrays_and_the_mask_still_decides() -> None:
    # integer actions the mask allows take a batch made once per choice: the same step as the array form
    by_int, by_array = gym.make("paretochain/Dispatch-v0"), gym.make("paretochain/Dispatch-v0")
    _, info = by_int.reset(seed=5)
    by_array.reset(seed=5)
    for i in range(12):
        allowed = np.flatnonzero(info["action_mask"])
        choice = int(allowed[i % len(allowed)])
        action = choice if i % 2 else np.int64(choice)
        obs, reward, term, trunc, info = by_int.step(action)
        expected = by_array.step(np.array(choice))
        np.testing.assert_array_equal(obs, expected[0])
        np.testing.assert_array_equal(reward, expected[1])
        assert info["actions_replaced"] == 0.0
        if term or trunc:
            break
    # a choice the current mask forbids is refused (strict) or replaced (lenient), not stepped
    strict = gym.make("paretochain/Dispatch-v0", invalid_action="raise")
    _, info = strict.reset(seed=5)
    forbidden = np.flatnonzero(~info["action_mask"])
    assert forbidden.size
    with pytest.raises(ActionError, match="mask"):
        strict.step(int(forbidden[0]))
    lenient = gym.make("paretochain/Dispatch-v0")
    lenient.reset(seed=5)
    *_, info = lenient.step(int(forbidden[0]))
    assert info["actions_replaced"] == 1.0
