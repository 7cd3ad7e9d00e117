"""TensorBoard: episode lengths for every agent, MO-PPO's critic and KL figures, SB3's own tags, the run config."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from paretochain.agents.logging import MemoryLogger, TensorBoardLogger, flatten_config
from paretochain.agents.mo_dqn import MODQNAgent
from paretochain.agents.mo_ppo import MOPPO
from paretochain.agents.sb3 import SB3Agent
from paretochain.envs import make_vec
from paretochain.train.config import load_run_config
from paretochain.train.run import train

WAREHOUSE = "paretochain/Warehouse-v0"
HORIZON = 8


def events(log_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalar_values(acc: EventAccumulator, tag: str) -> list[float]:
    return [event.value for event in acc.Scalars(tag)]


def short_episodes(num_envs: int = 4, config: str = "lost_sales"):
    return make_vec(WAREHOUSE, num_envs, config=config, tensors=True, check_actions=False, horizon=HORIZON)


def test_mo_ppo_logs_episode_length_explained_variance_and_both_kl_estimates(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    MOPPO(short_episodes(), {"num_steps": 16, "seed": 0}).learn(256, logger=logger)
    logger.close()
    acc = events(tmp_path / "tb")
    tags = set(acc.Tags()["scalars"])
    assert {"losses/approx_kl", "losses/old_approx_kl", "losses/explained_variance"} <= tags
    assert any(t.startswith("losses/explained_variance/") for t in tags)
    assert scalar_values(acc, "charts/episode_length") and set(scalar_values(acc, "charts/episode_length")) == {
        float(HORIZON)
    }
    assert all(v <= 1.0 for v in scalar_values(acc, "losses/explained_variance"))


def test_mo_dqn_logs_the_episode_length(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    agent = MODQNAgent(
        short_episodes(), {"learning_starts": 16, "batch_size": 16, "log_interval_steps": 64}, device="cpu"
    )
    agent.learn(256, logger=logger)
    logger.close()
    lengths = scalar_values(events(tmp_path / "tb"), "charts/episode_length")
    assert lengths and set(lengths) == {float(HORIZON)}


def test_sb3_keeps_its_own_tag_names_and_logs_the_episode_length(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    hyper = {"algo": "ppo", "n_steps": 16, "batch_size": 32, "n_epochs": 1, "log_interval_steps": 64}
    SB3Agent(short_episodes(), hyper, device="cpu").learn(256, logger=logger)
    logger.close()
    acc = events(tmp_path / "tb")
    tags = set(acc.Tags()["scalars"])
    sb3_tags = {"train/approx_kl", "train/explained_variance", "train/value_loss", "rollout/ep_rew_mean", "time/fps"}
    assert sb3_tags <= tags
    assert not any(t.startswith("losses/") for t in tags), "SB3's train/* figures are not renamed"
    assert set(scalar_values(acc, "rollout/ep_len_mean")) == {float(HORIZON)}
    assert set(scalar_values(acc, "charts/episode_length")) == {float(HORIZON)}


def test_a_training_run_records_its_resolved_config_as_text_and_hyperparameters(tmp_path) -> None:
    run = load_run_config(
        "warehouse_mo_ppo",
        [
            "budget_env_steps=128",
            "checkpoint_interval_steps=128",
            "eval_interval_steps=128",
            "eval_episodes=1",
            "eval_preferences=1",
            "device=cpu",
            "num_envs=4",
            "hyperparameters.num_steps=8",
            f"runs_dir={tmp_path}",
        ],
    )
    result = train(run, progress=False)
    acc = events(result.run_dir / "tb")
    tensors = set(acc.Tags()["tensors"])
    assert "config/text_summary" in tensors
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "budget_env_steps: 128" in text and "id: paretochain/Warehouse-v0" in text
    assert "_hparams_/experiment" in tensors or "_hparams_/experiment" in acc.summary_metadata
    experiment = acc.summary_metadata["_hparams_/experiment"].plugin_data.content
    assert b"hyperparameters.num_steps" in experiment and b"eval/hypervolume" in experiment
    session = acc.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert b"budget_env_steps" in session


def test_flattened_configs_use_dotted_names_and_tensorboard_value_types() -> None:
    flat = flatten_config({"a": {"b": 1, "c": [1, 2], "d": None}, "e": True, "f": "x"})
    assert flat == {"a.b": 1, "a.c": "[1, 2]", "a.d": "None", "e": True, "f": "x"}
    logger = MemoryLogger()
    logger.record_config({"a": {"b": 2.5}}, "a:\n  b: 2.5\n")
    assert logger.config == {"a.b": 2.5}


@pytest.mark.parametrize("agent", ["mo_ppo", "mo_dqn"])
def test_episode_lengths_survive_a_resume(agent: str) -> None:
    env = short_episodes(2)
    if agent == "mo_ppo":
        a = MOPPO(env, {"num_steps": 4, "seed": 0})
        a.learn(8)
        state = a.state_dict()
        assert state["episode_length"].tolist() == [4.0, 4.0]
        b = MOPPO(short_episodes(2), {"num_steps": 4, "seed": 0})
        b.load_state_dict(state)
        assert b.episodes.episode_length.tolist() == [4.0, 4.0]
    else:
        a = MODQNAgent(env, {"learning_starts": 4, "batch_size": 4}, device="cpu")
        a.learn(6)
        state = a.state_dict()
        assert state["rollout"]["episode_length"].tolist() == [3.0, 3.0]
        b = MODQNAgent(short_episodes(2), {"learning_starts": 4, "batch_size": 4}, device="cpu")
        b.load_state_dict(state)
        assert b.episodes.episode_length.tolist() == [3.0, 3.0]
