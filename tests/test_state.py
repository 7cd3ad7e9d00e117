"""The state of a batch is one typed object: rows can be selected, written back, cloned, repeated and saved,
and a core given a state continues its episodes exactly, alone or branched into many copies."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from paretochain.envs import env_class
from paretochain.envs.core import BatchedCore, kpi_matrix
from paretochain.envs.dispatch.types import DispatchState
from paretochain.envs.pricing.types import PricingState
from paretochain.envs.state import BatchState
from paretochain.envs.warehouse.types import WarehouseState
from paretochain.errors import PolicyFileError

#: (env id, packaged config): the most random config of every family, and the defaults
CASES = [
    ("paretochain/Warehouse-v0", "perishable_disruptions"),
    ("paretochain/Warehouse-v0", "default"),
    ("paretochain/Pricing-v0", "default"),
    ("paretochain/Pricing-v0", "multichannel"),
    ("paretochain/Dispatch-v0", "default"),
]
STATE_TYPES = {
    "paretochain/Warehouse-v0": WarehouseState,
    "paretochain/Pricing-v0": PricingState,
    "paretochain/Dispatch-v0": DispatchState,
}


def make_core(env_id: str, config: str, num_envs: int) -> BatchedCore[Any]:
    cls = env_class(env_id)
    return cls.core_cls(cls.config_cls.load(config), num_envs=num_envs)  # type: ignore[call-arg]


def allowed_actions(core: BatchedCore[Any], rng: np.random.Generator) -> torch.Tensor:
    """Uniformly random actions inside the space and the current masks, one per env."""
    space = core.single_action_space
    masks = core.action_masks()
    b = core.num_envs
    if isinstance(space, spaces.Box):
        return torch.as_tensor(rng.uniform(space.low, space.high, size=(b, *space.shape)).astype(np.float32))
    if isinstance(space, spaces.Discrete):
        allowed = masks.numpy() if masks is not None else np.ones((b, int(space.n)), dtype=bool)
        return torch.as_tensor([rng.choice(np.flatnonzero(row)) for row in allowed], dtype=torch.int64)
    assert isinstance(space, spaces.MultiDiscrete)
    allowed = masks.numpy() if masks is not None else np.ones((b, int(space.nvec.sum())), dtype=bool)
    cols, start = [], 0
    for n in space.nvec:
        cols.append([rng.choice(np.flatnonzero(row)) for row in allowed[:, start : start + n]])
        start += n
    return torch.as_tensor(np.array(cols).T, dtype=torch.int64)


def play(core: BatchedCore[Any], actions: list[torch.Tensor]) -> list[torch.Tensor]:
    """Step ``actions`` and return each step's observation, reward and KPIs side by side ``(B, ...)``."""
    rows = []
    for action in actions:
        out = core.step(action)
        rows.append(torch.cat([out.obs, out.reward, kpi_matrix(out.kpis)], dim=1))
    return rows


def play_alongside(core: BatchedCore[Any], other: BatchedCore[Any], rng: np.random.Generator, steps: int) -> None:
    """Step both cores with the same random actions (allowed by ``core``'s masks); their outputs must agree."""
    for step in range(steps):
        action = allowed_actions(core, rng)
        a, b = play(core, [action])[0], play(other, [action])[0]
        assert torch.equal(a, b), f"the cores' episodes differ at step {step}"


def assert_fields_equal(a: BatchState, b: BatchState) -> None:
    for (name, x), (_, y) in zip(a.items(), b.items()):
        if isinstance(x, dict):
            assert x.keys() == y.keys(), name
            for key in x:
                assert torch.equal(x[key], y[key]), f"{name}.{key}"
        else:
            assert torch.equal(x, y), name


@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_k_copies_of_a_mid_episode_state_follow_k_action_sequences_into_the_futures_each_would_have_alone(
    env_id: str, config: str
) -> None:
    k, prefix, ahead, seed = 4, 3, 5, 11
    rng = np.random.default_rng(0)
    trunk = make_core(env_id, config, 1)
    trunk.reset(seeds=[seed])
    played = []
    for _ in range(prefix):
        action = allowed_actions(trunk, rng)
        trunk.step(action)
        played.append(action)
    branched = make_core(env_id, config, k)
    branched.state = trunk.state.repeat(k)
    # every copy chooses its own actions from its own masks
    sequences: list[torch.Tensor] = []
    futures: list[torch.Tensor] = []
    for _ in range(ahead):
        action = allowed_actions(branched, rng)
        sequences.append(action)
        out = branched.step(action)
        futures.append(torch.cat([out.obs, out.reward, kpi_matrix(out.kpis)], dim=1))
    # copy 0 repeats what the unbranched env does next: the same future as the trunk
    trunk_future = play(trunk, [a[:1] for a in sequences])
    for step, (branch, alone) in enumerate(zip(futures, trunk_future)):
        assert torch.equal(branch[:1], alone), f"copy 0 left the unbranched episode at step {step}"
    # every copy's future is the one a lone env of the same seed and the same actions plays
    for j in range(1, k):
        lone = make_core(env_id, config, 1)
        lone.reset(seeds=[seed])
        play(lone, played)
        lone_future = play(lone, [a[j : j + 1] for a in sequences])
        for step, (branch, alone) in enumerate(zip(futures, lone_future)):
            assert torch.equal(branch[j : j + 1], alone), f"copy {j} depends on the other copies at step {step}"
    # the actions made the copies' futures differ (so the checks above compared different episodes)
    last = futures[-1]
    assert any(not torch.equal(last[0], last[j]) for j in range(1, k))
    # the same state and the same actions give the same futures again
    again = make_core(env_id, config, k)
    again.state = trunk_state_after(env_id, config, seed, played).repeat(k)
    for step, (first, second) in enumerate(zip(futures, play(again, sequences))):
        assert torch.equal(first, second), f"a replay of the branches differs at step {step}"


def trunk_state_after(env_id: str, config: str, seed: int, actions: list[torch.Tensor]) -> BatchState:
    core = make_core(env_id, config, 1)
    core.reset(seeds=[seed])
    play(core, actions)
    return core.state


@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_a_fresh_core_given_a_state_continues_every_episode_exactly(env_id: str, config: str) -> None:
    rng = np.random.default_rng(1)
    core = make_core(env_id, config, 3)
    core.reset(seeds=[5, 6, 7])
    for _ in range(2):
        core.step(allowed_actions(core, rng))
    assert type(core.state) is STATE_TYPES[env_id]
    fresh = make_core(env_id, config, 3)
    fresh.state = core.state
    assert_fields_equal(fresh.state, core.state)
    assert torch.equal(fresh.observe(), core.observe())
    play_alongside(core, fresh, rng, 4)


@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_rows_written_into_a_state_move_those_envs_and_leave_the_others(env_id: str, config: str) -> None:
    rng = np.random.default_rng(2)
    source = make_core(env_id, config, 2)
    source.reset(seeds=[21, 22])
    source.step(allowed_actions(source, rng))
    target = make_core(env_id, config, 3)
    target.reset(seeds=[31, 32, 33])
    untouched = target.state.clone()
    mixed = target.state.clone()
    mixed[[2, 0]] = source.state  # rows 2 and 0 take the two envs of the source, in that order
    assert_fields_equal(mixed[[2, 0]], source.state)
    assert_fields_equal(mixed[1], untouched[1])
    assert_fields_equal(target.state, untouched)  # the state written from was a copy
    target.state = mixed
    actions = allowed_actions(source, rng)
    alone = play(source, [actions])[0]
    moved = play(target, [torch.stack([actions[1], actions[0], actions[0]])])[0]
    assert torch.equal(moved[2], alone[0]) and torch.equal(moved[0], alone[1])


def test_repeat_tiles_the_batch_and_clone_shares_no_tensor() -> None:
    core = make_core("paretochain/Warehouse-v0", "perishable_disruptions", 2)
    core.reset(seeds=[1, 2])
    state = core.state
    tiled = state.repeat(3)
    assert tiled.batch_size == 6
    assert_fields_equal(tiled[[0, 2, 4]], state[[0, 0, 0]])
    assert_fields_equal(tiled[[1, 3, 5]], state[[1, 1, 1]])
    copy = state.clone()
    copy.inventory.add_(1.0)
    copy.demand_state["promo_left"].add_(1)
    assert not torch.equal(copy.inventory, state.inventory)
    assert not torch.equal(copy.demand_state["promo_left"], state.demand_state["promo_left"])
    mask = torch.tensor([False, True])
    assert_fields_equal(state[mask], state[1])


def test_a_state_of_another_size_or_family_is_refused() -> None:
    warehouse = make_core("paretochain/Warehouse-v0", "default", 2)
    pricing = make_core("paretochain/Pricing-v0", "default", 2)
    with pytest.raises(ValueError, match="holds 4 environments, this core steps 2"):
        warehouse.state = warehouse.state.repeat(2)
    with pytest.raises(TypeError, match="WarehouseCore takes a WarehouseState, got PricingState"):
        warehouse.state = pricing.state  # type: ignore[assignment]
    with pytest.raises(ValueError, match="3 rows given for 2 rows selected"):
        warehouse.state.clone()[[0, 1]] = warehouse.state.repeat(2)[[0, 1, 2]]


@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_a_checkpoint_holds_the_state_fields_as_tensors_and_resumes_through_a_weights_only_load(
    env_id: str, config: str
) -> None:
    rng = np.random.default_rng(3)
    core = make_core(env_id, config, 2)
    core.reset(seeds=[8, 9])
    core.step(allowed_actions(core, rng))
    saved = core.state_dict()
    assert set(saved["fields"]) == set(STATE_TYPES[env_id].field_names())
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # tensors and plain data only: no object is unpickled
    resumed = make_core(env_id, config, 2)
    resumed.load_state_dict(loaded)
    assert resumed.host_t == core.host_t and resumed.seeded
    play_alongside(core, resumed, rng, 3)


def test_a_checkpoint_state_of_the_wrong_shape_or_batch_is_refused_naming_the_field() -> None:
    core = make_core("paretochain/Pricing-v0", "default", 2)
    core.reset(seeds=[1, 2])
    saved = core.state_dict()
    bad = {**saved, "fields": {**saved["fields"], "on_hand": torch.zeros(2, 99)}}
    with pytest.raises(PolicyFileError, match=r"'on_hand' is \(2, 99\) torch.float32; this environment needs \(2, 2\)"):
        core.load_state_dict(bad)
    missing = {**saved, "fields": {k: v for k, v in saved["fields"].items() if k != "price"}}
    with pytest.raises(PolicyFileError, match="no field 'price'"):
        core.load_state_dict(missing)
    with pytest.raises(PolicyFileError, match="holds 4 environments, this env has 2"):
        core.load_state_dict({**saved, "num_envs": 4})
    with pytest.raises(PolicyFileError, match="not a state_dict"):
        core.load_state_dict({"on_hand": torch.zeros(2, 2)})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_a_state_moved_between_devices_continues_the_same_episodes(env_id: str, config: str) -> None:
    rng = np.random.default_rng(4)
    cpu = make_core(env_id, config, 2)
    cpu.reset(seeds=[3, 4])
    cpu.step(allowed_actions(cpu, rng))
    cls = env_class(env_id)
    gpu = cls.core_cls(cls.config_cls.load(config), num_envs=4, device="cuda")  # type: ignore[call-arg]
    gpu.state = cpu.state.repeat(2)
    assert gpu.state.device.type == "cuda"
    for _ in range(3):
        action = allowed_actions(cpu, rng)
        a = play(cpu, [action])[0]
        b = play(gpu, [action.repeat(2, *([1] * (action.dim() - 1))).cuda()])[0].cpu()
        torch.testing.assert_close(b[:2], a, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(b[2:], a, rtol=1e-5, atol=1e-4)


def mid_episode_core(env_id: str, config: str, seed: int = 5, prefix: int = 3) -> BatchedCore[Any]:
    """A one-env core seeded ``seed`` after ``prefix`` random allowed actions."""
    rng = np.random.default_rng(1)
    core = make_core(env_id, config, 1)
    core.reset(seeds=[seed])
    for _ in range(prefix):
        core.step(allowed_actions(core, rng))
    return core


def futures(core: BatchedCore[Any], actions: list[torch.Tensor]) -> torch.Tensor:
    """Every step's observation, reward and KPIs for ``actions``, ``(B, steps * width)``."""
    return torch.cat(play(core, actions), dim=1)


#: the cases whose dynamics draw every period (Dispatch draws its whole instance when an episode starts)
PER_PERIOD_DRAWS = [case for case in CASES if case[0] != "paretochain/Dispatch-v0"]


@pytest.mark.parametrize(("env_id", "config"), PER_PERIOD_DRAWS)
def test_rekeyed_copies_stepped_with_the_same_actions_play_different_futures_and_the_same_salts_replay_them(
    env_id: str, config: str
) -> None:
    k, ahead = 4, 6
    trunk = mid_episode_core(env_id, config)
    branched = make_core(env_id, config, k)

    def play_rekeyed(salts: list[int]) -> torch.Tensor:
        branched.state = trunk.state.repeat(k).rekeyed(salts)
        rng = np.random.default_rng(3)
        out = []
        for _ in range(ahead):
            action = allowed_actions(branched, rng)
            if branched.action_masks() is None:  # the same action for every copy
                action = action[:1].expand(k, *action.shape[1:]).clone()
            out.append(futures(branched, [action]))
        return torch.cat(out, dim=1)

    salts = [0, 1, 2, 3]
    played = play_rekeyed(salts)
    for i in range(k):
        for j in range(i + 1, k):
            assert not torch.equal(played[i], played[j]), f"copies {i} and {j} played the same future"
    assert torch.equal(play_rekeyed(salts), played), "the same salts did not replay the same futures"
    assert not torch.equal(play_rekeyed([4, 5, 6, 7]), played)


def test_rekeyed_copies_with_the_same_salt_share_their_demand_whatever_they_order() -> None:
    trunk = mid_episode_core("paretochain/Warehouse-v0", "lost_sales")
    k = 6
    branched = make_core("paretochain/Warehouse-v0", "lost_sales", k)
    branched.state = trunk.state.repeat(k).rekeyed([7, 7, 7, 8, 8, 8])
    orders = torch.tensor([0, 5, 20, 0, 5, 20])  # ladder indices: different orders within each salt
    demands = []
    for _ in range(8):
        branched.step(orders)
        demands.append(branched.state.last_demand.reshape(k))
    demand = torch.stack(demands, dim=1)  # (k, periods)
    assert torch.equal(demand[0], demand[1]) and torch.equal(demand[0], demand[2])
    assert torch.equal(demand[3], demand[4]) and torch.equal(demand[3], demand[5])
    assert not torch.equal(demand[0], demand[3])
    stock = branched.state.inventory.reshape(k, -1).sum(1)
    assert stock[2] > stock[0], "the orders made no difference: the test would not see a shared draw"


def test_rekeyed_keeps_every_field_but_the_keys_and_refuses_a_wrong_number_of_salts() -> None:
    state = mid_episode_core("paretochain/Warehouse-v0", "lost_sales").state.repeat(3)
    fresh = state.rekeyed(torch.tensor([0, 1, 2]))
    for name, value in state.items():
        if name in ("key_lo", "key_hi", "stream_key"):
            assert not torch.equal(value, getattr(fresh, name)), name
        elif isinstance(value, dict):
            assert all(torch.equal(v, getattr(fresh, name)[key]) for key, v in value.items()), name
        else:
            assert torch.equal(value, getattr(fresh, name)), name
    assert len(set(fresh.stream_key.tolist())) == 3
    with pytest.raises(ValueError, match="2 salts given for 3 rows"):
        state.rekeyed([0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        state.rekeyed([0, -1, 2])


@pytest.mark.parametrize(("env_id", "config"), CASES)
def test_one_env_on_the_cpu_set_back_to_an_earlier_state_replays_the_periods_from_there(
    env_id: str, config: str
) -> None:
    # a batch of one on the CPU reads its period once per period: a state assigned back to an earlier period
    # must be read again, so the replay's observations, rewards and KPIs are the first pass's
    rng = np.random.default_rng(2)
    core = make_core(env_id, config, 1)
    core.reset(seeds=[9])
    core.step(allowed_actions(core, rng))
    earlier = core.state.clone()
    actions = []
    for _ in range(4):
        actions.append(allowed_actions(core, rng))
        core.step(actions[-1])
    core.state = earlier
    first = play(core, actions)
    core.state = earlier
    assert all(torch.equal(a, b) for a, b in zip(first, play(core, actions), strict=True))
    fresh = make_core(env_id, config, 1)  # and a core that never ran ahead plays the same
    fresh.state = earlier
    assert all(torch.equal(a, b) for a, b in zip(first, play(fresh, actions), strict=True))
