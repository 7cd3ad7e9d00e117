"""paretochain: multi-objective reinforcement learning for e-commerce operations.

Importing the package registers its Gymnasium environments
(``paretochain/Warehouse-v0``, ``paretochain/Dispatch-v0``, ``paretochain/Pricing-v0``).
"""

from paretochain._version import __version__
from paretochain.envs import make_vec

__all__ = ["__version__", "make_vec"]
