"""Environments: warehouses, dispatch and pricing, each one batched core with two views."""

from paretochain.envs._allocator import tune_allocator
from paretochain.envs.core import BatchedCore, StepOutput
from paretochain.envs.family import Baseline, BaselineFront, Family, Tuning
from paretochain.envs.objectives import Objective, ObjectiveSet
from paretochain.envs.registration import FAMILIES, env_class, get_family, make_vec, register_envs
from paretochain.envs.views import BatchedVectorEnv, SingleEnv

register_envs()

__all__ = [
    "FAMILIES",
    "Baseline",
    "BaselineFront",
    "BatchedCore",
    "BatchedVectorEnv",
    "Family",
    "Objective",
    "ObjectiveSet",
    "SingleEnv",
    "StepOutput",
    "Tuning",
    "env_class",
    "get_family",
    "make_vec",
    "register_envs",
    "tune_allocator",
]
