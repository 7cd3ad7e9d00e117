"""One record per environment family: everything the rest of the suite needs to know about it.

A :class:`Family` names the registered id, the single-view env (and through it the config
and the batched core), the baselines by name, the robustness scenarios, the baselines that
sweep a parameter (fronts) and the folder of packaged configs. Registration,
``make_vec``, evaluation and reports read the records and nothing else, so adding a family
is its folder under ``envs/`` plus one record in :data:`paretochain.envs.registration.FAMILIES`
(see ``docs/architecture.md``).

Records refer to code as ``"module:attribute"`` strings, imported on first use: registering
the ids imports no family, and the baselines (which import the agents) load only when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from paretochain.envs.config import ConfigModel
    from paretochain.envs.core import BatchedCore
    from paretochain.envs.views import SingleEnv

#: Builds a policy (the policy contract) for the batched environment an evaluation runs in.
Factory = Callable[[Any], Any]
#: Maps an environment config to a changed copy of the same observation layout.
Scenario = Callable[[Any], Any]


def load_reference(reference: str) -> Any:
    """The object a ``"package.module:attribute"`` string names (imported on first use)."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass
class Tuning:
    """What baselines are built for: the training seeds they are tuned on, the device and the preference.

    Attributes:
        seeds: training seeds of the tuning episodes.
        device: device of the tuning batches.
        weights: per-objective weights of the episode return the tuners maximise (the preference a
            learned policy is compared at, divided by each objective's scale); None: each tuner's own.
        shared: results several baselines share (for example heuristics tuned in one pass), by key.
    """

    seeds: tuple[int, ...]
    device: str = "cpu"
    weights: np.ndarray | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per key for all the baselines built with this tuning."""
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]


def _always(config: Any) -> bool:
    return True


@dataclass(frozen=True)
class Baseline:
    """A baseline by name: when it applies to a config and how it is built (tuned first if it has parameters).

    Attributes:
        name: stable name, used in reports and ``metrics.json``.
        build: ``(config, tuning) -> factory``; the factory takes the batched env and returns the policy.
        applies: whether the baseline exists for a config (an exact method may need a small instance).
    """

    name: str
    build: Callable[[Any, Tuning], Factory]
    applies: Callable[[Any], bool] = _always


@dataclass
class BaselineFront:
    """One baseline with its parameter swept: the points trace the trade-off it can offer.

    Attributes:
        parameter: what is swept, in words (with its unit).
        values: the swept values.
        policy: builds the policy for a batch of ``len(values) * n`` environments, the value
            ``values[i]`` acting in environments ``i * n .. (i + 1) * n - 1``.
    """

    parameter: str
    values: list[float]
    policy: Callable[[Any, int], Any]


@dataclass(frozen=True)
class Family:
    """The record of one environment family.

    Attributes:
        name: short name (``"warehouse"``), also the folder under ``envs/``.
        env_id: the Gymnasium id (``"paretochain/Warehouse-v0"``).
        env: ``"module:Class"`` of the single-view env; its ``config_cls`` and ``core_cls`` name the
            config model and the batched core.
        configs: the folder under ``configs/`` holding the packaged configs (names such as
            ``"default"`` resolve there).
        baselines: ``"module:attribute"`` of the family's baselines, a sequence of :class:`Baseline`.
        scenarios: ``"module:attribute"`` of the robustness scenarios, a mapping name -> :data:`Scenario`
            (``"baseline"``, the config as given, first).
        fronts: ``"module:attribute"`` of a function ``config -> {name: BaselineFront}`` (the baselines
            that have a parameter to sweep), or None when the family has none.
    """

    name: str
    env_id: str
    env: str
    configs: str
    baselines: str
    scenarios: str
    fronts: str | None = None

    @property
    def env_class(self) -> type[SingleEnv]:
        """The single-view env class (imports the family)."""
        cls: type[SingleEnv] = load_reference(self.env)
        return cls

    @property
    def config_class(self) -> type[ConfigModel]:
        """The family's config model."""
        return self.env_class.config_cls

    @property
    def core_class(self) -> type[BatchedCore[Any]]:
        """The family's batched core."""
        return self.env_class.core_cls

    def baseline_list(self) -> list[Baseline]:
        """Every baseline of the family, in the order reports list them."""
        return list(load_reference(self.baselines))

    def scenario_map(self) -> Mapping[str, Scenario]:
        """``name -> scenario``."""
        scenarios: Mapping[str, Scenario] = load_reference(self.scenarios)
        return scenarios

    def baseline_fronts(self, config: Any) -> dict[str, BaselineFront]:
        """The swept baselines of ``config`` (none when the family declares no fronts)."""
        if self.fronts is None:
            return {}
        fronts: dict[str, BaselineFront] = load_reference(self.fronts)(config)
        return fronts
