"""The Warehouse family: replenishment of multi-SKU, multi-echelon networks."""

from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.envs.warehouse.core import KPI_NAMES, WarehouseCore
from paretochain.envs.warehouse.env import WarehouseEnv

__all__ = ["KPI_NAMES", "WarehouseConfig", "WarehouseCore", "WarehouseEnv"]
