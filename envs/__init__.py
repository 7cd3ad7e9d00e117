"""Environments: warehouses, dispatch and pricing, each one batched core with two views."""

from paretochain.envs._allocator import tune_allocator
from paretochain.envs.core import BatchedCore, StepOutput
from paretochain.envs.objectives import Objective, ObjectiveSet
from paretochain.envs.registration import ENTRY_POINTS, env_class, make_vec, register_envs
from paretochain.envs.views import BatchedVectorEnv, SingleEnv

register_envs()

__all__ = [
    "ENTRY_POINTS",
    "BatchedCore",
    "BatchedVectorEnv",
    "Objective",
    "ObjectiveSet",
    "SingleEnv",
    "StepOutput",
    "env_class",
    "make_vec",
    "register_envs",
    "tune_allocator",
]
