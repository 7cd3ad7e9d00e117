"""The Dispatch family: dynamic vehicle dispatch with time windows and a vector reward."""

from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.dispatch.core import KPI_NAMES, DispatchCore
from paretochain.envs.dispatch.env import DispatchEnv
from paretochain.envs.dispatch.instances import load_instance, load_solution

__all__ = ["KPI_NAMES", "DispatchConfig", "DispatchCore", "DispatchEnv", "load_instance", "load_solution"]
