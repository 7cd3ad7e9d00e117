"""The Pricing family: multi-channel pricing and promotion over shared inventory."""

from paretochain.envs.pricing.config import PricingConfig
from paretochain.envs.pricing.core import KPI_NAMES, PricingCore
from paretochain.envs.pricing.env import PricingEnv

__all__ = ["KPI_NAMES", "PricingConfig", "PricingCore", "PricingEnv"]
