"""The epoch decision mode of Dispatch (``paretochain/DispatchEpoch-v0``): masks, routing, accounting, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paretochain.envs import make_vec
from paretochain.envs.dispatch.epoch import EpochDispatchEnv
from paretochain.errors import ActionError, ConfigError, PolicyFileError

ENV_ID = "paretochain/DispatchEpoch-v0"
#: a small generated shift: 12 orders, 3 vehicles, epochs every hour
SMALL: dict[str, Any] = {
    "generator": {"num_customers": 12, "area_km": 10.0},
    "num_vehicles": 3,
    "epoch": {"routing_iterations": 100},
}


def two_order_file(tmp_path: Path) -> Path:
    """Depot at (0, 0); order 0 at (10, 0) due by t=30 (must go at epoch 0); order 1 at (0, 10) due by t=400."""
    vrp = tmp_path / "two.vrp"
    vrp.write_text(
        "NAME : two\nTYPE : CVRPTW\nDIMENSION : 3\nVEHICLES : 1\nCAPACITY : 10\nEDGE_WEIGHT_TYPE : EUC_2D\n"
        "NODE_COORD_SECTION\n1 0 0\n2 10 0\n3 0 10\nDEMAND_SECTION\n1 0\n2 1\n3 1\n"
        "TIME_WINDOW_SECTION\n1 0 480\n2 0 30\n3 0 400\nSERVICE_TIME_SECTION\n1 0\n2 0\n3 0\n"
        "DEPOT_SECTION\n1\n-1\nEOF\n"
    )
    return vrp


def two_order_env(tmp_path: Path, **kwargs: Any) -> EpochDispatchEnv:
    return EpochDispatchEnv(
        {
            "instance_source": "file",
            "instance": {"path": str(two_order_file(tmp_path))},
            "release": {"known_share": 1.0},
            "max_overtime_min": 0.0,
        },
        **kwargs,
    )


def run_episode(env: EpochDispatchEnv, choose: Any, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Play one episode; ``choose(mask (N, 2), rng)`` gives the decisions. Returns the return and the infos."""
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    total = np.zeros(env.reward_dim)
    infos = []
    done = False
    while not done:
        _, reward, done, truncated, info = env.step(choose(info["action_mask"].reshape(-1, 2), rng))
        assert not truncated
        total += reward
        infos.append(info)
    return total, infos


def greedy(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return mask[:, 1].astype(np.int64)


def lazy(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (~mask[:, 0]).astype(np.int64)


def random_choice(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pick = rng.integers(0, 2, size=len(mask)).astype(bool)
    return np.where(mask[:, 0] & mask[:, 1], pick, mask[:, 1]).astype(np.int64)


def test_gymnasium_checker_passes_on_the_registered_epoch_env() -> None:
    env = gym.make(ENV_ID, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_an_order_that_cannot_wait_is_forced_by_the_mask(tmp_path: Path) -> None:
    env = two_order_env(tmp_path, invalid_action="raise")
    _, info = env.reset(seed=0)
    mask = info["action_mask"].reshape(-1, 2)
    # order 0: due by 30, the next departure is at 60 -> must go; order 1 (due by 400) may wait
    assert mask.tolist() == [[False, True], [True, True]]
    with pytest.raises(ActionError, match="order slot 0 must go now"):
        env.step(np.array([0, 0]))


def test_the_lenient_fallback_dispatches_a_postponed_must_go_order_and_counts_it(tmp_path: Path) -> None:
    env = two_order_env(tmp_path)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 0]))
    assert info["actions_replaced"] == 1
    assert info["orders_routed"] == [0]
    assert info["travel_distance"] == pytest.approx(20.0)  # 10 out, 10 back


def test_lazy_and_greedy_cost_their_hand_computed_distances(tmp_path: Path) -> None:
    env = two_order_env(tmp_path)
    lazy_return, lazy_infos = run_episode(env, lazy, seed=0)
    # lazy: order 0 alone at epoch 0, order 1 alone at the last epoch: two round trips of 20
    assert [i["orders_routed"] for i in lazy_infos] == [[0], [], [], [], [], [1]]
    assert lazy_return[0] == pytest.approx(-40.0)
    greedy_return, greedy_infos = run_episode(env, greedy, seed=0)
    # greedy: one trip 0 -> (10, 0) -> (0, 10) -> 0 = 10 + 14.1 (Solomon distances truncated to 0.1) + 10
    assert sorted(greedy_infos[0]["orders_routed"]) == [0, 1]
    assert greedy_return[0] == pytest.approx(-34.1, abs=1e-4)
    for total in (lazy_return, greedy_return):
        assert total[1] == pytest.approx(1.0)  # every order on time
        assert total[2] == 0.0  # none unserved


def test_the_last_epoch_dispatches_everything_that_is_open() -> None:
    env = EpochDispatchEnv(SMALL)
    _, info = env.reset(seed=3)
    while not env.is_last_epoch:
        _, _, done, _, info = env.step(lazy(info["action_mask"].reshape(-1, 2), np.random.default_rng(0)))
        assert not done
    mask = info["action_mask"].reshape(-1, 2)
    open_now = env.open_orders()
    assert open_now.any()
    assert (mask[:, 1] == open_now).all() and (mask[:, 0] == ~open_now).all()
    _, _, done, _, info = env.step(np.zeros(env.max_orders, dtype=np.int64))  # postponing is replaced at the end
    assert done
    assert info["actions_replaced"] == open_now.sum()


@pytest.mark.parametrize("choose", [greedy, lazy, random_choice], ids=["greedy", "lazy", "random"])
def test_every_order_ends_served_or_counted_unserved_once(choose: Any) -> None:
    env = EpochDispatchEnv(SMALL, objectives=["travel_distance", "on_time_rate", "unserved_orders", "lateness_min"])
    for seed in (1, 2):
        total, infos = run_episode(env, choose, seed)
        n = int(env.instance.valid.sum())  # type: ignore[union-attr]
        served = sum(i["orders_served"] for i in infos)
        unserved = sum(i["orders_unserved"] for i in infos)
        assert served == env.served.sum()
        assert served + unserved == n
        assert -total[2] == unserved
        assert total[1] == pytest.approx(sum(i["orders_on_time"] for i in infos) / n)
        assert total[3] == 0.0  # windows are hard by default: no lateness
        assert not (env.served & env.lost).any()
        assert (env.served | env.lost)[env.instance.valid].all()  # type: ignore[union-attr]


def test_driven_trips_respect_capacity_and_their_distance_is_the_reward() -> None:
    env = EpochDispatchEnv(SMALL, capacity_units=20.0)
    total, infos = run_episode(env, greedy, seed=5)
    inst = env.instance
    assert inst is not None
    D = env.num_depots
    driven = 0.0
    for info in infos:
        for trip in info["trips"]:
            home, node, load = int(env.home[trip.vehicle]), int(env.home[trip.vehicle]), 0.0
            for s in trip.orders:
                target = home if s < 0 else D + s
                driven += inst.distance[node, target]
                load = 0.0 if s < 0 else load + inst.demand[s]
                assert load <= 20.0
                node = target
            driven += inst.distance[node, home]
    assert -total[0] == pytest.approx(driven, rel=1e-5)


def test_the_same_seed_gives_the_same_episode() -> None:
    env = EpochDispatchEnv(SMALL)
    first, first_infos = run_episode(env, random_choice, seed=11)
    second, second_infos = run_episode(env, random_choice, seed=11)
    assert np.array_equal(first, second)
    assert [i["orders_routed"] for i in first_infos] == [i["orders_routed"] for i in second_infos]
    other, _ = run_episode(env, random_choice, seed=12)
    assert not np.array_equal(first, other)


def test_an_epoch_episode_has_the_orders_of_the_per_stop_episode_of_the_same_seed() -> None:
    per_stop = gym.make("paretochain/Dispatch-v0", generator=SMALL["generator"], num_vehicles=3).unwrapped
    per_stop.reset(seed=7)
    core = per_stop.core
    env = EpochDispatchEnv(SMALL)
    env.reset(seed=7)
    inst = env.instance
    assert inst is not None
    assert np.allclose(inst.coords, core.state.coords[0].numpy())
    assert np.allclose(inst.release, core.state.release[0].numpy())
    assert np.allclose(inst.window_end, core.window_end[0].numpy())


def test_observation_marks_open_orders_and_must_go_orders(tmp_path: Path) -> None:
    env = two_order_env(tmp_path)
    obs, _ = env.reset(seed=0)
    blocks = env.observation_layout.unflatten(obs)
    assert blocks["order_valid"].tolist() == [1.0, 1.0]
    assert blocks["orders"][:, 7].tolist() == [1.0, 0.0]  # must-go
    obs, *_ = env.step(np.array([1, 0]))
    blocks = env.observation_layout.unflatten(obs)
    assert blocks["order_valid"].tolist() == [0.0, 1.0]
    assert not blocks["orders"][0].any()  # a served order's slot is zeros


def test_wait_slack_and_the_next_epochs_load_are_hand_computed(tmp_path: Path) -> None:
    env = two_order_env(tmp_path)
    obs, _ = env.reset(seed=0)
    blocks = env.observation_layout.unflatten(obs)
    slack = env.observation_layout.unflatten(obs)["orders"][:, 10]
    # order 1 at (0, 10), due by 400, back by 480: leave by min(400, 480 - 10) - 10 = 390, 330 after the next epoch
    assert slack.tolist() == pytest.approx([0.0, 330.0 / 480.0])
    assert blocks["globals"][5] == (1.0 / 2.0 if env.num_epochs <= 2 else 0.0)  # due next only when it is the last
    assert blocks["globals"][6] == 1.0  # the one vehicle is back by the next epoch


@given(seed=st.integers(0, 10_000))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_wait_slack_says_when_an_order_turns_must_go_and_due_next_counts_those_of_the_next_epoch(seed: int) -> None:
    env = EpochDispatchEnv(SMALL)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    while not env.is_last_epoch:
        blocks = env.observation_layout.unflatten(obs)
        waiting = env.open_orders() & ~env.must_go()
        leave_by = env.departure_time(env.epoch + 1) + blocks["orders"][:, 10].astype(np.float64) * env.shift_end
        assert env.servable_from(leave_by - 1e-2)[waiting].all()
        assert not env.servable_from(leave_by + 1e-2)[waiting].any()
        due = round(float(blocks["globals"][5]) * env.max_orders)
        back = round(float(blocks["globals"][6]) * env.num_vehicles)
        assert back == int((env.vehicle_free <= env.departure_time(env.epoch + 1) + 1e-6).sum())
        obs, _, _, _, info = env.step(lazy(info["action_mask"].reshape(-1, 2), rng))  # postpone all that may wait
        assert due == int((waiting & env.must_go()).sum())


@pytest.mark.parametrize(
    "action, problem",
    [(np.array([2, 0]), "must be 0"), (np.array([1, 0, 0]), "shape"), ("dispatch", "number"), (None, "number")],
)
def test_malformed_actions_are_refused_with_a_clear_error(tmp_path: Path, action: Any, problem: str) -> None:
    env = two_order_env(tmp_path)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=problem):
        env.step(action)


@pytest.mark.parametrize(
    "epoch, field", [({"epoch_min": 0}, "epoch_min"), ({"routing_time_limit_s": float("nan")}, "routing_time_limit_s")]
)
def test_out_of_range_epoch_settings_are_refused(epoch: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        EpochDispatchEnv(SMALL | {"epoch": epoch})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    num_vehicles=st.integers(1, 4),
    known_share=st.floats(0.0, 1.0),
    share=st.floats(0.0, 1.0),
)
def test_orders_are_lost_only_when_dispatched_but_not_routed_or_at_the_end(
    seed: int, num_vehicles: int, known_share: float, share: float
) -> None:
    """Postponing an order the mask lets wait never loses it; each order is served at most once, on time."""
    env = EpochDispatchEnv(
        SMALL | {"num_vehicles": num_vehicles, "release": {"known_share": known_share}}, invalid_action="raise"
    )
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    inst = env.instance
    assert inst is not None
    served_count = np.zeros(env.max_orders, dtype=int)
    done = False
    while not done:
        mask = info["action_mask"].reshape(-1, 2)
        action = np.where(mask[:, 0] & mask[:, 1], rng.random(len(mask)) < share, mask[:, 1]).astype(np.int64)
        lost_before, open_before = env.lost.copy(), env.open_orders()
        _, _, done, _, info = env.step(action)
        for trip in info["trips"]:
            served_count[[s for s in trip.orders if s >= 0]] += 1
        newly_lost = env.lost & ~lost_before
        if not done:
            postponed = open_before & ~action.astype(bool)
            assert not (newly_lost & postponed).any(), "a postponed order the mask let wait was lost"
        assert info["orders_unserved"] == newly_lost.sum()
    assert served_count.max(initial=0) <= 1
    assert (served_count.astype(bool) == env.served).all()
    assert not env.late.any()  # hard windows by default


def test_gymnasium_vectorises_the_epoch_env_through_the_batched_view() -> None:
    envs = gym.make_vec(ENV_ID, num_envs=2, **SMALL)
    obs, infos = envs.reset(seed=[1, 2])
    assert obs.shape == (2, envs.single_observation_space.shape[0])
    assert infos["action_mask"].shape == (2, 2 * 12)
    envs.close()


def _greedy_rows(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(mask.shape[0], -1, 2)[..., 1].astype(np.int64)


def _lazy_rows(mask: np.ndarray) -> np.ndarray:
    return (~mask.reshape(mask.shape[0], -1, 2)[..., 0]).astype(np.int64)


def test_the_batched_view_plays_the_single_envs_episodes_for_the_same_seeds() -> None:
    seeds = [3, 4, 5]
    vec = make_vec(ENV_ID, len(seeds), config="default", **SMALL)
    obs, infos = vec.reset(seed=seeds)
    singles = [EpochDispatchEnv("default", invalid_action="raise", **SMALL) for _ in seeds]
    single_obs = np.stack([env.reset(seed=s)[0] for env, s in zip(singles, seeds)])
    np.testing.assert_array_equal(obs, single_obs)
    done = np.zeros(len(seeds), dtype=bool)
    policies = [_greedy_rows, _lazy_rows, _greedy_rows]
    while not done.all():
        mask = infos["action_mask"]
        action = np.stack([policies[i](mask[i : i + 1])[0] for i in range(len(seeds))])
        obs, reward, terminated, _, infos = vec.step(action)
        for i, env in enumerate(singles):
            if done[i]:
                continue
            s_obs, s_reward, s_done, _, s_info = env.step(action[i])
            np.testing.assert_allclose(reward[i], s_reward, rtol=1e-6)
            assert infos["travel_distance"][i] == pytest.approx(s_info["travel_distance"], rel=1e-6)
            assert bool(terminated[i]) == s_done
            if not s_done:
                np.testing.assert_array_equal(obs[i], s_obs)
            done[i] = s_done


def test_the_batched_view_refuses_a_decision_its_mask_forbids_naming_the_slot() -> None:
    vec = make_vec(ENV_ID, 2, config="default", **SMALL)
    _, infos = vec.reset(seed=[0, 1])
    action = _lazy_rows(infos["action_mask"])
    empty = np.flatnonzero(~infos["action_mask"][1].reshape(-1, 2)[:, 1])  # slots without an open order
    assert empty.size, "half the orders are released later: some slots are empty at the first epoch"
    action[1, empty[0]] = 1
    with pytest.raises(ActionError, match=f"order slot {empty[0]} of env 1 holds no open order"):
        vec.step(action)


def test_routing_in_a_worker_pool_gives_the_episodes_of_routing_in_process() -> None:
    from paretochain.envs.dispatch.epoch import EpochDispatchConfig
    from paretochain.envs.dispatch.epoch_core import EpochDispatchCore

    cfg = EpochDispatchConfig.load("default", **SMALL)
    results = []
    for workers in (0, 2):
        core = EpochDispatchCore(cfg, num_envs=3, routing_workers=workers)
        core.reset(seeds=[7, 8, 9])
        total = np.zeros((3, len(core.objectives)))
        distance = np.zeros(3)
        for _ in range(core.horizon):
            out = core.step(torch.as_tensor(_greedy_rows(core.action_masks().numpy())))
            total += out.reward.numpy()
            distance += out.kpis["travel_distance"].numpy()
        core.close()
        assert all(env.done for env in core.envs)
        results.append((total, distance))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


def test_the_batched_view_cannot_take_a_state() -> None:
    vec = make_vec(ENV_ID, 2, config="default", **SMALL)
    vec.reset(seed=[0, 1])
    with pytest.raises(ConfigError, match="cannot take a state"):
        vec.core.state = vec.core.state.clone()


def test_a_checkpoint_of_the_batched_view_restores_its_keys_and_replays_the_episodes_it_was_in() -> None:
    vec = make_vec(ENV_ID, 2, config="default", **SMALL)
    core = vec.core
    first_obs = core.reset(seeds=[3, 4]).clone()
    masks = core.action_masks().reshape(2, -1, 2)
    core.step(masks[..., 1].to(torch.int64) * (~masks[..., 0]).to(torch.int64))  # lazy: must-go orders only
    saved = core.state_dict()
    assert int(core.state.t.max()) == 1

    other = make_vec(ENV_ID, 2, config="default", **SMALL).core
    other.load_state_dict(saved)
    assert torch.equal(other.state.stream_key, core.state.stream_key)
    assert int(other.state.t.max()) == 0, "each environment starts the episode it was in again"
    torch.testing.assert_close(other.observe(), first_obs)
    with pytest.raises(PolicyFileError, match="holds 2 environments, this env has 3"):
        make_vec(ENV_ID, 3, config="default", **SMALL).core.load_state_dict(saved)
