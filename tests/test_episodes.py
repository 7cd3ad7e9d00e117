"""One episode loop: the autoreset and bookkeeping helper every stepping loop uses."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch

from paretochain.agents import mo_dqn, mo_ppo
from paretochain.agents.sb3 import vec_env
from paretochain.envs import episodes, views
from paretochain.envs.episodes import EpisodeTracker, all_episodes_ended, autoreset
from paretochain.envs.registration import make_vec
from paretochain.evaluate import rollout


@pytest.mark.parametrize(
    "module", [views, vec_env, mo_ppo, mo_dqn, rollout], ids=lambda m: m.__name__.rsplit(".", 1)[-1]
)
def test_every_stepping_loop_ends_episodes_through_the_one_helper(module: object) -> None:
    source = Path(inspect.getfile(module)).read_text()  # type: ignore[arg-type]
    reads = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute) and node.attr == "host_t"]
    assert not reads, "the helper alone reads the core's host-side period counter"
    used = {name for name in ("autoreset", "all_episodes_ended") if f"{name}(" in source}
    assert used, f"{module} does not use paretochain.envs.episodes"


def test_autoreset_of_a_fixed_horizon_core_starts_every_episode_at_the_horizon() -> None:
    env = make_vec("paretochain/Warehouse-v0", 3, config="lost_sales", horizon=2, tensors=True)
    core = env.core
    core.reset(seeds=[1, 2, 3])
    action = torch.zeros(3, dtype=torch.long)
    out = core.step(action)
    first = autoreset(core, out.obs, out.terminated, out.truncated)
    assert not first.reset and first.obs is out.obs and not bool(first.done.any())
    out = core.step(action)
    second = autoreset(core, out.obs, out.terminated, out.truncated)
    assert second.reset and bool(second.done.all())
    assert torch.equal(second.final_obs, out.obs) and int(core.state.t.max()) == 0  # new episodes started
    assert all_episodes_ended(core, torch.zeros(3, dtype=torch.bool)) is False


def test_autoreset_of_a_variable_length_core_resets_only_the_ended_rows() -> None:
    env = make_vec("paretochain/Dispatch-v0", 2, tensors=True)
    core = env.core
    obs = core.reset(seeds=[5, 6])
    done_rows = torch.tensor([True, False])
    never = torch.zeros(2, dtype=torch.bool)
    step_end = autoreset(core, obs, done_rows, never)
    assert step_end.reset and torch.equal(step_end.obs[1], obs[1])
    assert not autoreset(core, obs, never, never).reset
    assert autoreset(core, obs, never, never, sync=False).reset  # a GPU caller skips the host read
    assert episodes.episodes_may_have_ended(core, never) is False


def test_episode_tracker_sums_finished_episodes_and_restarts_their_rows() -> None:
    tracker = EpisodeTracker(2, 2, "cpu")
    pref = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    tracker.record(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([False, True]), pref)
    tracker.record(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([True, False]), pref)
    assert tracker.finished_count.item() == 2
    assert tracker.finished_return.tolist() == [5.0, 7.0]  # (1+1, 2+1) + (3, 4)
    assert tracker.finished_length.item() == 3  # 2 steps + 1 step
    assert tracker.finished_scalarised.item() == pytest.approx(2.0 + 3.5)
    assert tracker.episode_return.tolist() == [[0.0, 0.0], [1.0, 1.0]] and tracker.episode_length.tolist() == [0, 1]
    tracker.clear_finished()
    assert tracker.finished_count.item() == 0
