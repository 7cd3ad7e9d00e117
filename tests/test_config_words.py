"""Config words agree across agents; the old words are refused with the new one named; one observation normaliser."""

from __future__ import annotations

import pytest

from paretochain.agents.config_words import RENAMED_FIELDS
from paretochain.agents.mo_dqn import MODQNAgent, MODQNConfig
from paretochain.agents.mo_ppo import MOPPO, MOPPOConfig
from paretochain.agents.normalization import ObservationNormalizer
from paretochain.agents.sb3.train import SB3AgentConfig
from paretochain.envs.config import packaged_configs_dir
from paretochain.envs.registration import make_vec
from paretochain.errors import ConfigError
from paretochain.train.config import load_run_config

ENV_ID = "paretochain/Warehouse-v0"


@pytest.mark.parametrize("config_cls", [MOPPOConfig, MODQNConfig, SB3AgentConfig])
def test_every_agent_names_shared_ideas_with_the_same_words(config_cls: type) -> None:
    fields = set(config_cls.model_fields)
    assert {"norm_obs", "hidden_sizes"} <= fields
    assert not fields & set(RENAMED_FIELDS)


@pytest.mark.parametrize(
    ("config_cls", "old"),
    [(MODQNConfig, "normalize_observations"), (MODQNConfig, "net_arch"), (SB3AgentConfig, "normalize_rewards")],
)
def test_an_old_word_is_refused_with_the_new_one_named(config_cls: type, old: str) -> None:
    value = [32] if old == "net_arch" else False
    with pytest.raises(ConfigError, match=f"{old} is now called {RENAMED_FIELDS[old]}"):
        config_cls.load({old: value})


def test_a_run_config_with_an_old_word_fails_before_training_naming_the_new_one() -> None:
    with pytest.raises(ConfigError, match="net_arch is now called hidden_sizes"):
        load_run_config("warehouse_mo_dqn", ["hyperparameters.net_arch=[32]"])


def test_no_packaged_config_uses_an_old_word() -> None:
    for path in packaged_configs_dir().rglob("*.yaml"):
        text = path.read_text()
        assert not any(f"{old}:" in text for old in RENAMED_FIELDS), path


def test_mo_ppo_and_mo_dqn_share_one_observation_normaliser_with_the_declared_scale() -> None:
    ppo = MOPPO(make_vec(ENV_ID, 4, config="lost_sales"), MOPPOConfig(num_steps=4))
    dqn = MODQNAgent(make_vec(ENV_ID, 4, config="lost_sales"), MODQNConfig(learning_starts=8, batch_size=8))
    assert type(ppo.obs_norm) is type(dqn.obs_norm) is ObservationNormalizer
    assert ppo.obs_norm.fixed and dqn.obs_norm.fixed  # obs_scale: env, the default of both
    assert all(a.equal(b) for a, b in zip(ppo.obs_norm.scale(), dqn.obs_norm.scale()))
