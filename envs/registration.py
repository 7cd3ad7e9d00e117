"""Environment ids, Gymnasium registration and the batched constructor ``make_vec``."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import torch

from paretochain.envs.family import Family
from paretochain.envs.memory import check_memory
from paretochain.envs.views import BatchedVectorEnv, SingleEnv, check_invalid_action_mode

#: The record of every family, by registered id (one entry per family; see :class:`Family`).
FAMILIES: dict[str, Family] = {
    record.env_id: record
    for record in (
        Family(
            name="warehouse",
            env_id="paretochain/Warehouse-v0",
            env="paretochain.envs.warehouse.env:WarehouseEnv",
            configs="warehouse",
            baselines="paretochain.evaluate.baselines:WAREHOUSE_BASELINES",
            scenarios="paretochain.evaluate.scenarios:WAREHOUSE_SCENARIOS",
            fronts="paretochain.evaluate.baselines:warehouse_fronts",
        ),
        Family(
            name="dispatch",
            env_id="paretochain/Dispatch-v0",
            env="paretochain.envs.dispatch.env:DispatchEnv",
            configs="dispatch",
            baselines="paretochain.evaluate.baselines:DISPATCH_BASELINES",
            scenarios="paretochain.evaluate.scenarios:DISPATCH_SCENARIOS",
        ),
        Family(
            name="dispatch_epoch",
            env_id="paretochain/DispatchEpoch-v0",
            env="paretochain.envs.dispatch.epoch:EpochDispatchEnv",
            configs="dispatch",
            baselines="paretochain.evaluate.baselines:EPOCH_DISPATCH_BASELINES",
            scenarios="paretochain.evaluate.scenarios:DISPATCH_SCENARIOS",
        ),
        Family(
            name="pricing",
            env_id="paretochain/Pricing-v0",
            env="paretochain.envs.pricing.env:PricingEnv",
            configs="pricing",
            baselines="paretochain.evaluate.baselines:PRICING_BASELINES",
            scenarios="paretochain.evaluate.scenarios:PRICING_SCENARIOS",
            fronts="paretochain.evaluate.baselines:pricing_fronts",
        ),
    )
}


def get_family(key: str) -> Family:
    """The record of a family, by registered id (``"paretochain/Warehouse-v0"``) or name (``"warehouse"``).

    Raises:
        gymnasium.error.UnregisteredEnv: no family has that id or name.
    """
    if key in FAMILIES:
        return FAMILIES[key]
    for record in FAMILIES.values():
        if record.name == key:
            return record
    raise gym.error.UnregisteredEnv(
        f"unknown environment id {key!r}; paretochain registers {sorted(FAMILIES)} "
        f"(families {sorted(r.name for r in FAMILIES.values())})"
    )


def env_class(env_id: str) -> type[SingleEnv]:
    """The single-view class registered under ``env_id``."""
    if env_id not in FAMILIES:
        raise gym.error.UnregisteredEnv(f"unknown environment id {env_id!r}; paretochain registers {sorted(FAMILIES)}")
    return FAMILIES[env_id].env_class


def make_vec(
    env_id: str,
    num_envs: int,
    device: str | torch.device = "cpu",
    config: Any = None,
    tensors: bool = False,
    check_actions: bool = True,
    invalid_action: str = "raise",
    **overrides: Any,
) -> BatchedVectorEnv:
    """Build ``num_envs`` environments stepped together by one batched core.

    Args:
        env_id: a registered id such as ``"paretochain/Warehouse-v0"``.
        num_envs: batch size.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        config: a packaged config name, a YAML path, a mapping or a config instance.
        tensors: return torch tensors on ``device`` instead of numpy arrays.
        check_actions: validate each batch of actions (costs a device sync on a GPU).
        invalid_action: what a checked action outside the mask does: ``"raise"`` (the default here, strict:
            the project's own agents, baselines and evaluation) or ``"fallback"`` (replaced by the family's
            fallback and counted in ``infos["actions_replaced"]``; see :class:`BatchedVectorEnv`).
            ``gymnasium.make_vec`` defaults to ``"fallback"``, as ``gymnasium.make`` does.
        overrides: config fields replacing those of ``config``.
    """
    cls = env_class(env_id)
    check_invalid_action_mode(invalid_action)
    cfg = cls.config_cls.load(config, **overrides)
    resolved = resolve_device(device)
    check_memory(cfg, num_envs, resolved, env_id)  # before building: a batch that cannot fit is refused at once
    core = cls.core_cls(cfg, num_envs=num_envs, device=resolved)  # type: ignore[call-arg]
    env = BatchedVectorEnv(core, tensors=tensors, check_actions=check_actions, invalid_action=invalid_action)
    env.spec = None
    env.config = cfg  # type: ignore[attr-defined]
    return env


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` becomes CUDA when torch sees a GPU, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def register_envs() -> None:
    """Register every paretochain id with Gymnasium (idempotent)."""
    for env_id, record in FAMILIES.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=record.env,
            vector_entry_point=functools.partial(_vector_entry, env_id),
            disable_env_checker=True,
        )


def _vector_entry(env_id: str, num_envs: int, **kwargs: Any) -> BatchedVectorEnv:
    """``gymnasium.make_vec``'s constructor: mask-unaware clients get the lenient default, as with ``gymnasium.make``."""
    kwargs.setdefault("invalid_action", "fallback")
    return make_vec(env_id, num_envs, **kwargs)
