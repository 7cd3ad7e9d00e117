"""Run a policy on the batched view for whole episodes, under common random numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from paretochain.agents.policy import Policy
from paretochain.envs.episodes import all_episodes_ended
from paretochain.envs.views import BatchedVectorEnv


@dataclass
class RolloutResult:
    """Per-episode results of :func:`rollout`.

    Attributes:
        returns: undiscounted vector returns ``(episodes, k)``.
        kpis: per-episode sums of every KPI, name -> ``(episodes,)``.
        lengths: steps per episode.
        seeds: the seed each episode ran under (episode ``i`` used ``seeds[i]``).
        trajectory: per-step KPIs of the first episode, name -> ``(T,)`` (when asked for).
    """

    returns: np.ndarray
    kpis: dict[str, np.ndarray]
    lengths: np.ndarray
    seeds: list[int]
    trajectory: dict[str, np.ndarray] = field(default_factory=dict)

    def mean_return(self) -> np.ndarray:
        return self.returns.mean(axis=0)


@torch.inference_mode()
def rollout(
    env: BatchedVectorEnv,
    policy: Policy,
    seeds: Sequence[int],
    preference: np.ndarray | torch.Tensor | None = None,
    max_steps: int | None = None,
    record_first: bool = False,
) -> RolloutResult:
    """Play exactly one episode per seed; environment ``i`` of the batch plays seed ``i``.

    The batch size of ``env`` must equal ``len(seeds)``. Every policy evaluated on the
    same seeds meets the same demand (or orders, or customers) draws wherever its
    actions do not change them: common random numbers for paired comparisons.

    Args:
        env: a batched view (numpy or tensor mode).
        policy: follows :class:`~paretochain.agents.policy.Policy`.
        seeds: one seed per environment of the batch.
        preference: ``(k,)`` or ``(B, k)`` weights passed to the policy.
        max_steps: safety cap on steps (default: the core's horizon times 10).
        record_first: keep the per-step KPIs (and snapshots) of the first episode.
    """
    core = env.core
    if len(seeds) != core.num_envs:
        raise ValueError(f"rollout: {len(seeds)} seeds for a batch of {core.num_envs} environments")
    device = core.device
    k = len(core.objectives)
    obs = core.reset(seeds=list(seeds))
    pref = None
    if preference is not None:
        pref = torch.as_tensor(preference, dtype=torch.float32, device=device)
        if pref.dim() == 1:
            pref = pref.expand(core.num_envs, k)
    returns = torch.zeros(core.num_envs, k, dtype=torch.float64, device=device)
    kpi_sums: dict[str, torch.Tensor] = {}
    lengths = torch.zeros(core.num_envs, dtype=torch.int64, device=device)
    alive = torch.ones(core.num_envs, dtype=torch.bool, device=device)
    trajectory: dict[str, list[float]] = {}
    limit = max_steps if max_steps is not None else core.horizon * 10
    for _ in range(limit):
        action = policy.act(obs, pref, core.action_masks())
        out = core.step(action, check=False)
        live = alive.to(torch.float64)
        returns += out.reward.to(torch.float64) * live.unsqueeze(1)
        for name, value in out.kpis.items():
            kpi_sums[name] = kpi_sums.get(name, torch.zeros_like(live)) + value.to(torch.float64) * live
        lengths += alive.long()
        if record_first and bool(alive[0]):
            for name, value in out.kpis.items():
                trajectory.setdefault(name, []).append(float(value[0]))
            for name, value in core.snapshot(0).items():  # copies: a snapshot may view state updated in place
                trajectory.setdefault(f"state/{name}", []).append(np.array(value, copy=True))  # type: ignore[arg-type]
        alive = alive & ~(out.terminated | out.truncated)
        if all_episodes_ended(core, alive):
            break
        obs = out.obs
    return RolloutResult(
        returns=returns.cpu().numpy(),
        kpis={n: v.cpu().numpy() for n, v in kpi_sums.items()},
        lengths=lengths.cpu().numpy(),
        seeds=[int(s) for s in seeds],
        trajectory={n: np.asarray(v) for n, v in trajectory.items()},
    )
