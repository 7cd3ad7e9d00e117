"""Heuristics for the single-SKU lost-sales model, each tuned by long-run simulation.

The model is the one :mod:`~paretochain.agents.baselines.lost_sales_dp` solves exactly
(the packaged ``lost_sales`` config and any config like it): Poisson demand, a fixed
lead time ``L >= 1``, unmet demand lost, holding cost ``h`` per unit left at the end of
a period and penalty ``p`` per lost unit, no ordering costs.

At the moment of ordering the state is ``x``, the stock on hand once this period's
delivery is in, and the ``L - 1`` orders still outstanding (oldest first,
``q_1 .. q_{L-1}``); the inventory position is ``x + q_1 + ... + q_{L-1}``. An order
placed now is on the shelf for the demand of period ``t + L``.

- :class:`ConstantOrderPolicy`: the same quantity every period.
- :class:`CappedBaseStockPolicy`: order up to a level, never more than a cap:
  ``min((S - position)+, r)`` (Xin 2021, "Understanding the performance of capped
  base-stock policies in lost-sales inventory models"). With no cap it is the
  standard base-stock policy.
- :class:`VectorBaseStockPolicy`: one level per partial sum of the pipeline, counted
  from the newest order: the order is ``max(0, min_l (s_l - w_l))`` where ``w_0 = 0``,
  ``w_l`` is the sum of the ``l`` most recent outstanding orders and ``w_L`` the whole
  inventory position. Our standard levels are ``s_l = r + l * mean`` for ``l < L``
  and ``s_L = S``, two tuned numbers (``r`` caps the order, ``S`` is the base-stock
  level); base-stock and capped base-stock are special cases.
- :class:`MyopicPolicy`: ``lookahead=1`` orders what minimises the expected cost of
  period ``t + L``, the first period the order affects (the myopic policy of Zipkin
  2008, "Old and new methods for lost-sales inventory systems"). ``lookahead=2`` adds
  the expected cost of period ``t + L + 1`` when next period's order is chosen the
  one-step myopic way after this period's demand is seen. Both are exact expectations
  over the Poisson demand, tabulated over the state space the dynamic program uses; they
  have no parameter to tune.
- :class:`ProjectedInventoryLevelPolicy`: order up to a level on the *projected inventory
  level*, the expected stock left just before the new order arrives, never more than a cap:
  ``min((S - E[z])+, r)`` (the capped PIL policy of van Jaarsveld and Arts 2021, "Projected
  inventory level policies for lost sales inventory systems"). Where base-stock counts the
  whole pipeline, this subtracts the demand the stock is expected to serve before the
  order arrives (less than the mean demand where sales are expected to be lost). The
  expectation is exact, from the same tables as the myopic policies; ``S`` is tuned in
  quarter units.

Every policy follows the policy contract (``act(obs, preference, action_mask)`` on
batches) and maps its order to the nearest ladder entry. The tuners search parameters by
simulation on training seeds, all candidates in one batch under common random numbers,
and score each by :func:`long_run_cost`: the average cost per period over a window after
a warm-up, so the arbitrary starting stock does not count.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from paretochain.agents.baselines.lost_sales_dp import LostSalesDPPolicy, _poisson_pmf, check_lost_sales_config
from paretochain.agents.baselines.warehouse import _core
from paretochain.envs.registration import make_vec
from paretochain.envs.warehouse.config import WarehouseConfig
from paretochain.envs.warehouse.core import WarehouseCore
from paretochain.seeds import SELECTION_SEEDS as SELECTION_SEEDS  # scored on again to choose among candidates
from paretochain.seeds import TUNING_SEEDS

#: periods simulated before costs are counted, and periods counted, by default
WARMUP_PERIODS = 50
WINDOW_PERIODS = 200
#: candidates of a grid scored again on the selection seeds
FINALISTS = 32


@dataclass(frozen=True)
class LostSalesModel:
    """The parameters of a lost-sales instance, read from a config the dynamic program accepts.

    Attributes:
        mean: Poisson demand per period.
        lead_time: periods between ordering and the order's first demand period.
        holding_cost: per unit left at the end of a period.
        penalty: per unit of demand lost.
        max_order: the largest order the action space allows, in units.
    """

    mean: float
    lead_time: int
    holding_cost: float
    penalty: float
    max_order: int

    @classmethod
    def of(cls, env_or_config: object) -> LostSalesModel:
        """The model of an environment, core or config; refuses configs outside the model."""
        if isinstance(env_or_config, (WarehouseConfig, str)):
            core = WarehouseCore(WarehouseConfig.load(env_or_config), 1, "cpu")
        else:
            core = _core(env_or_config)
        cfg = core.config
        check_lost_sales_config(cfg)
        return cls(
            mean=float(cfg.demand.mean),  # type: ignore[arg-type]
            lead_time=int(core._L0[0, 0]),
            holding_cost=float(cfg.holding_cost),
            penalty=float(cfg.shortage_penalty),  # type: ignore[arg-type]
            max_order=int(core.max_order[0, 0]),
        )


class _LostSalesPolicy(ABC):
    """Shared plumbing: read the state from observations, map unit orders to ladder actions."""

    def __init__(self, env: object) -> None:
        core = _core(env)
        self.model = LostSalesModel.of(core)
        self.layout = core.observation_layout
        self.kind = core.config.action.kind
        self.ladder = torch.as_tensor(core.ladder_units[0, 0], dtype=torch.float32)

    def state(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stock on hand after this period's delivery ``(B,)`` and outstanding orders ``(B, L - 1)``, oldest first."""
        seg = self.layout.segments
        on_hand = obs[:, seg["on_hand"].start : seg["on_hand"].stop].sum(1)
        pipe = obs[:, seg["pipeline"].start : seg["pipeline"].stop]  # (B, L): index 0 arrives this period
        return on_hand + pipe[:, 0], pipe[:, 1 : self.model.lead_time]

    def position(self, obs: torch.Tensor) -> torch.Tensor:
        """Inventory position ``(B,)``: stock after this period's delivery plus every outstanding order."""
        stock, outstanding = self.state(obs)
        return stock + outstanding.sum(1)

    def to_action(self, units: torch.Tensor) -> torch.Tensor:
        """The ladder index nearest each order ``(B,)`` (in the shape of the action space)."""
        ladder = self.ladder.to(units.device)
        action = (ladder.unsqueeze(0) - units.clamp(min=0).unsqueeze(1)).abs().argmin(1)
        return action if self.kind == "discrete" else action.unsqueeze(1)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.to_action(self.order(obs))

    @abstractmethod
    def order(self, obs: torch.Tensor) -> torch.Tensor:
        """The order in units ``(B,)`` for each observation."""


def _per_env(value: float | np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


class ConstantOrderPolicy(_LostSalesPolicy):
    """Order ``quantity`` units every period (a scalar, or one per env ``(B,)``)."""

    def __init__(self, env: object, quantity: float | np.ndarray | torch.Tensor) -> None:
        super().__init__(env)
        self.quantity = _per_env(quantity)

    def order(self, obs: torch.Tensor) -> torch.Tensor:
        return self.quantity.to(obs.device).expand(obs.shape[0]).clone()


class CappedBaseStockPolicy(_LostSalesPolicy):
    """Order ``min((level - position)+, cap)``; ``cap=inf`` is the standard base-stock policy.

    Args:
        env: the environment (single, vector or core) the policy will act in.
        level: the base-stock level ``S`` in units (scalar or per env ``(B,)``).
        cap: the largest order ``r`` in units (scalar or per env ``(B,)``).
    """

    def __init__(
        self, env: object, level: float | np.ndarray | torch.Tensor, cap: float | np.ndarray | torch.Tensor = math.inf
    ) -> None:
        super().__init__(env)
        self.level, self.cap = _per_env(level), _per_env(cap)

    def order(self, obs: torch.Tensor) -> torch.Tensor:
        gap = self.level.to(obs.device) - self.position(obs)
        return torch.minimum(gap.clamp(min=0), self.cap.to(obs.device))


class VectorBaseStockPolicy(_LostSalesPolicy):
    """Order ``max(0, min_l (levels[l] - w_l))`` over the partial sums ``w_l`` of the newest orders.

    Args:
        env: the environment the policy will act in (lead time ``L``).
        levels: ``(L + 1,)`` or per env ``(B, L + 1)`` levels in units: ``levels[l]`` bounds
            the ``l`` most recent outstanding orders plus the new one (``l < L``), and
            ``levels[L]`` the whole inventory position plus the new order.
    """

    def __init__(self, env: object, levels: np.ndarray | torch.Tensor) -> None:
        super().__init__(env)
        self.levels = _per_env(levels)
        if self.levels.shape[-1] != self.model.lead_time + 1:
            raise ValueError(
                f"a vector base-stock policy for lead time {self.model.lead_time} needs "
                f"{self.model.lead_time + 1} levels, got {self.levels.shape[-1]}"
            )

    @staticmethod
    def standard_levels(model: LostSalesModel, level: float, cap: float) -> np.ndarray:
        """``s_l = cap + l * mean`` for ``l < L`` and ``s_L = level``."""
        partial = cap + model.mean * np.arange(model.lead_time)
        return np.concatenate([partial, [level]])

    def order(self, obs: torch.Tensor) -> torch.Tensor:
        stock, outstanding = self.state(obs)
        newest_first = outstanding.flip(1).cumsum(1)  # w_1 .. w_{L-1}
        zero = torch.zeros_like(stock).unsqueeze(1)
        sums = torch.cat([zero, newest_first, (stock + outstanding.sum(1)).unsqueeze(1)], dim=1)  # (B, L + 1)
        levels = self.levels.to(obs.device)
        return (levels - sums).min(dim=1).values.clamp(min=0)


@dataclass
class MyopicTables:
    """Expected costs of :class:`MyopicPolicy`, over the dynamic program's truncated state space.

    Attributes:
        period_cost: ``(X + 1, Q + 1, ..., Q + 1, Q + 1)``: the expected cost of period
            ``t + L`` for state ``(x, q_1, .., q_{L-1})`` and order ``q`` (the last axis).
        two_period_cost: the same plus the expected cost of period ``t + L + 1`` under a
            one-step myopic order next period.
        projected_stock: ``(X + 1, Q + 1, ..., Q + 1)``: the expected stock left just before
            an order placed now arrives (the projected inventory level), per state.
        max_stock, max_order: the truncation of stock and orders.
    """

    period_cost: np.ndarray
    two_period_cost: np.ndarray
    projected_stock: np.ndarray
    max_stock: int
    max_order: int

    def at_state(self, table: torch.Tensor, stock: torch.Tensor, outstanding: torch.Tensor) -> torch.Tensor:
        """Entries ``(B,)`` of a per-state ``table`` (``(X + 1, Q + 1, ..., Q + 1)``, on the obs's device) at the
        states ``(stock (B,), outstanding (B, L - 1))``, clamped to the truncation."""
        index = [stock.long().clamp(0, self.max_stock)]
        index += [outstanding[:, j].long().clamp(0, self.max_order) for j in range(outstanding.shape[1])]
        return table[tuple(index)]


def myopic_tables(model: LostSalesModel, max_stock: int | None = None) -> MyopicTables:
    """Tabulate the one- and two-period expected costs of every state and order, exactly.

    The stock left just before the new order arrives is ``z = (x_{L-1} - D)+`` where
    ``x_j = min((x_{j-1} - D)+ + q_j, X)`` starting from ``x_0 = x``; its distribution is
    propagated over the whole state grid at once.
    """
    big_l, mean = model.lead_time, model.mean
    max_order = model.max_order
    if max_stock is None:
        max_stock = math.ceil((big_l + 1) * mean + 8 * math.sqrt((big_l + 1) * mean))
    if (max_stock + 1) * (max_order + 1) ** big_l > 30_000_000:
        raise ValueError("the myopic tables are too large for this lead time and order range")
    d_max = math.ceil(mean + 12 * math.sqrt(mean) + 12)
    pmf = _poisson_pmf(mean, d_max)
    stock = np.arange(max_stock + 1)
    demand = np.arange(d_max + 1)
    left = np.maximum(stock[:, None] - demand[None, :], 0)  # (X + 1, D + 1)
    cost_of_stock = (model.holding_cost * left + model.penalty * np.maximum(demand[None, :] - stock[:, None], 0)) @ pmf
    # after[a, b] = P((a - D)+ = b)
    after = np.zeros((max_stock + 1, max_stock + 1))
    np.add.at(after, (np.repeat(stock, d_max + 1), left.ravel()), np.tile(pmf, max_stock + 1))

    def shifted(dist: np.ndarray) -> np.ndarray:
        """A new axis over the next arriving order q: ``out[..., q, v] = dist[..., v - q]`` (capped at X)."""
        out = np.zeros((*dist.shape[:-1], max_order + 1, max_stock + 1))
        for q in range(max_order + 1):
            out[..., q, q:] = dist[..., : max_stock + 1 - q]
            out[..., q, max_stock] += dist[..., max_stock + 1 - q :].sum(-1) if q else 0.0
        return out

    dist = np.eye(max_stock + 1)  # over x: a point mass at x
    for _ in range(big_l - 1):
        dist = shifted(dist @ after)  # demand, then the next outstanding order arrives
    dist = dist @ after  # the distribution of z: (X + 1, Q + 1, .., Q + 1, X + 1)
    # cost of period t + L when q arrives on top of z
    arriving = np.minimum(stock[:, None] + np.arange(max_order + 1)[None, :], max_stock)  # (z, q)
    period_cost = dist @ cost_of_stock[arriving]  # (..., Q + 1)
    best_next = period_cost.min(axis=-1)  # the one-step myopic cost of every state
    trans = np.zeros((max_stock + 1, max_order + 1, max_stock + 1))  # P[x, q_1, x'] as in the DP
    for q1 in range(max_order + 1):
        nxt = np.minimum(left + q1, max_stock)
        for j in range(d_max + 1):
            trans[stock, q1, nxt[:, j]] += pmf[j]
    if big_l == 1:
        future = np.einsum("aqy,y->aq", trans, best_next)
    else:
        future = np.tensordot(trans, best_next, axes=([2], [0]))
    projected = dist @ stock.astype(np.float64)
    return MyopicTables(period_cost, period_cost + future, projected, max_stock, max_order)


class MyopicPolicy(_LostSalesPolicy):
    """Order what minimises the expected cost of the next ``lookahead`` (1 or 2) periods the order affects.

    Args:
        env: the environment the policy will act in.
        lookahead: 1 (myopic) or 2 (two-step myopic, the next order chosen myopically).
        tables: precomputed :func:`myopic_tables` for this model (computed when omitted).
    """

    def __init__(self, env: object, lookahead: int = 1, tables: MyopicTables | None = None) -> None:
        super().__init__(env)
        if lookahead not in (1, 2):
            raise ValueError(f"lookahead must be 1 or 2, got {lookahead}")
        self.lookahead = lookahead
        self.tables = tables or myopic_tables(self.model)
        costs = self.tables.period_cost if lookahead == 1 else self.tables.two_period_cost
        self._orders = torch.as_tensor(costs.argmin(axis=-1), dtype=torch.float32)

    def order(self, obs: torch.Tensor) -> torch.Tensor:
        return self.tables.at_state(self._orders.to(obs.device), *self.state(obs))


class ProjectedInventoryLevelPolicy(_LostSalesPolicy):
    """Order ``min((level - E[z])+, cap)``, ``E[z]`` the expected stock left just before the order arrives.

    Args:
        env: the environment the policy will act in.
        level: the target ``S`` in units (scalar or per env ``(B,)``; fractions allowed: the
            order is rounded to the nearest ladder entry).
        cap: the largest order ``r`` in units (scalar or per env ``(B,)``); ``inf``: no cap.
        tables: precomputed :func:`myopic_tables` for this model (computed when omitted).
    """

    def __init__(
        self,
        env: object,
        level: float | np.ndarray | torch.Tensor,
        cap: float | np.ndarray | torch.Tensor = math.inf,
        tables: MyopicTables | None = None,
    ) -> None:
        super().__init__(env)
        self.level, self.cap = _per_env(level), _per_env(cap)
        self.tables = tables or myopic_tables(self.model)
        self._projected = torch.as_tensor(self.tables.projected_stock, dtype=torch.float32)

    def projected_stock(self, obs: torch.Tensor) -> torch.Tensor:
        """The expected stock ``(B,)`` left just before an order placed now arrives."""
        return self.tables.at_state(self._projected.to(obs.device), *self.state(obs))

    def order(self, obs: torch.Tensor) -> torch.Tensor:
        gap = self.level.to(obs.device) - self.projected_stock(obs)
        return torch.minimum(gap.clamp(min=0), self.cap.to(obs.device))


#: The exact optimum (:class:`~paretochain.agents.baselines.lost_sales_dp.LostSalesDPPolicy`), under the
#: name the benchmark and the tests use beside the heuristics.
OptimalPolicy = LostSalesDPPolicy


# ------------------------------------------------------------------------------ long-run costs


def long_run_config(
    config: WarehouseConfig | str, warmup: int = WARMUP_PERIODS, window: int = WINDOW_PERIODS
) -> WarehouseConfig:
    """The config with its horizon set to ``warmup + window`` periods."""
    if warmup < 0 or window < 1:
        raise ValueError(f"the warm-up must be >= 0 and the window >= 1 period, got {warmup} and {window}")
    return WarehouseConfig.load(config).model_copy(update={"horizon": warmup + window})


def long_run_cost(
    config: WarehouseConfig | str,
    make_policy: Callable[[object], object],
    seeds: Sequence[int],
    warmup: int = WARMUP_PERIODS,
    window: int = WINDOW_PERIODS,
    device: str = "cpu",
) -> np.ndarray:
    """Average cost per period of each episode ``(len(seeds),)`` over periods ``warmup .. warmup + window``.

    ``make_policy(env)`` builds the policy for the batch (one env per seed); policies with
    per-env parameters can repeat candidates over seeds to score many at once.
    """
    return long_run_objectives(config, make_policy, seeds, warmup, window, device)[:, 0]


@torch.inference_mode()
def long_run_objectives(
    config: WarehouseConfig | str,
    make_policy: Callable[[object], object],
    seeds: Sequence[int],
    warmup: int = WARMUP_PERIODS,
    window: int = WINDOW_PERIODS,
    device: str = "cpu",
) -> np.ndarray:
    """Each episode's cost and fill rate per period over periods ``warmup .. warmup + window``: ``(len(seeds), 2)``.

    The fill rate is the mean of the periods' fill rates; ``make_policy`` as in :func:`long_run_cost`.
    """
    cfg = long_run_config(config, warmup, window)
    env = make_vec("paretochain/Warehouse-v0", len(seeds), device=device, config=cfg)
    core = env.core
    policy = make_policy(env)
    obs = core.reset(seeds=[int(s) for s in seeds])
    cost = torch.zeros(core.num_envs, dtype=torch.float64, device=core.device)
    fill = torch.zeros_like(cost)
    cost_index = list(core.objectives.names).index("total_cost")
    for t in range(warmup + window):
        out = core.step(policy.act(obs, None, core.action_masks()), check=False)  # type: ignore[attr-defined]
        if t >= warmup:
            cost -= out.reward[:, cost_index].to(torch.float64)
            fill += out.kpis["fill_rate"].reshape(core.num_envs, -1).mean(dim=1).to(torch.float64)
        obs = out.obs
    return (torch.stack([cost, fill], dim=1) / window).cpu().numpy()


@dataclass
class LostSalesTuning:
    """A tuned lost-sales heuristic.

    Attributes:
        name: the heuristic.
        parameters: the chosen parameters by name.
        training_cost: its average cost per period on the training seeds it was chosen on
            (the selection seeds where :func:`tune_lost_sales` was given some).
        policy: builds the tuned policy for an environment.
    """

    name: str
    parameters: dict[str, float]
    training_cost: float
    policy: Callable[[object], _LostSalesPolicy]


def _grid_search(
    cfg: WarehouseConfig,
    candidates: np.ndarray,
    make: Callable[[object, np.ndarray], _LostSalesPolicy],
    seeds: Sequence[int],
    warmup: int,
    window: int,
    device: str,
    selection_seeds: Sequence[int] = (),
) -> tuple[int, float]:
    """Index and mean cost of the cheapest candidate (rows of ``candidates``), all in one batch.

    With ``selection_seeds``, the :data:`FINALISTS` cheapest candidates on ``seeds`` are scored
    again on ``selection_seeds`` (common random numbers) and the cheapest there wins, with its
    cost there.
    """

    def mean_costs(rows: np.ndarray, episodes: Sequence[int]) -> np.ndarray:
        n_c, n_s = len(rows), len(episodes)
        costs = long_run_cost(
            cfg,
            lambda env: make(env, np.repeat(rows, n_s, axis=0)),
            [int(s) for s in episodes] * n_c,
            warmup,
            window,
            device,
        )
        return costs.reshape(n_c, n_s).mean(axis=1)

    means = mean_costs(candidates, seeds)
    if len(selection_seeds) == 0:
        best = int(np.argmin(means))
        return best, float(means[best])
    finalists = np.argsort(means, kind="stable")[:FINALISTS]
    final = mean_costs(candidates[finalists], selection_seeds)
    best = int(finalists[int(np.argmin(final))])
    return best, float(final.min())


def _base_stock_range(model: LostSalesModel) -> np.ndarray:
    """Whole-unit levels from zero to well past the mean demand over the lead time plus one period."""
    cover = (model.lead_time + 1) * model.mean
    return np.arange(0, math.ceil(cover + 6 * math.sqrt(cover) + 4) + 1, dtype=np.float64)


def tune_lost_sales(
    config: WarehouseConfig | str,
    seeds: Sequence[int] = TUNING_SEEDS,
    warmup: int = WARMUP_PERIODS,
    window: int = WINDOW_PERIODS,
    device: str = "cpu",
    selection_seeds: Sequence[int] = (),
) -> dict[str, LostSalesTuning]:
    """Tune every lost-sales heuristic on the training ``seeds``; the result is keyed by heuristic name.

    ``constant_order``, ``base_stock`` and ``capped_base_stock`` are searched over every
    whole-unit level and cap, ``vector_base_stock`` over its two standard levels on the same
    grid, ``projected_inventory_level`` over levels in quarter units and the same caps (and
    none); ``myopic`` and ``myopic_2`` have nothing to tune and
    are only scored.

    With ``selection_seeds`` (e.g. :data:`SELECTION_SEEDS`), each grid's :data:`FINALISTS`
    cheapest candidates on ``seeds`` are scored again on them and the cheapest there is kept;
    every ``training_cost`` is then the cost on ``selection_seeds`` (the same episodes for
    every heuristic), so that the cheapest heuristic is told apart from one 0.5% costlier.
    """
    cfg = WarehouseConfig.load(config)
    model = LostSalesModel.of(cfg)
    run = dict(seeds=seeds, warmup=warmup, window=window, device=device, selection_seeds=selection_seeds)
    out: dict[str, LostSalesTuning] = {}

    quantities = np.arange(0, model.max_order + 1, dtype=np.float64)
    i, cost = _grid_search(cfg, quantities, ConstantOrderPolicy, **run)  # type: ignore[arg-type]
    q = float(quantities[i])
    out["constant_order"] = LostSalesTuning(
        "constant_order", {"quantity": q}, cost, lambda env: ConstantOrderPolicy(env, q)
    )

    levels = _base_stock_range(model)
    i, cost = _grid_search(cfg, levels, CappedBaseStockPolicy, **run)  # type: ignore[arg-type]
    s = float(levels[i])
    out["base_stock"] = LostSalesTuning("base_stock", {"level": s}, cost, lambda env: CappedBaseStockPolicy(env, s))

    caps = np.arange(max(1, math.floor(model.mean) - 1), model.max_order + 1, dtype=np.float64)
    pairs = np.array([(lv, c) for lv in levels for c in caps])
    i, cost = _grid_search(
        cfg,
        pairs,
        lambda env, p: CappedBaseStockPolicy(env, p[:, 0], p[:, 1]),
        **run,  # type: ignore[arg-type]
    )
    cs, cr = (float(v) for v in pairs[i])
    out["capped_base_stock"] = LostSalesTuning(
        "capped_base_stock", {"level": cs, "cap": cr}, cost, lambda env: CappedBaseStockPolicy(env, cs, cr)
    )

    vectors = np.array([VectorBaseStockPolicy.standard_levels(model, lv, c) for lv, c in pairs])
    i, cost = _grid_search(cfg, vectors, VectorBaseStockPolicy, **run)  # type: ignore[arg-type]
    vs, vr = (float(v) for v in pairs[i])
    vector = vectors[i]
    out["vector_base_stock"] = LostSalesTuning(
        "vector_base_stock", {"level": vs, "cap": vr}, cost, lambda env: VectorBaseStockPolicy(env, vector)
    )

    tables = myopic_tables(model)
    targets = np.arange(0.0, math.ceil(model.mean + 6 * math.sqrt(model.mean) + 4) + 0.125, 0.25)
    pil_pairs = np.array([(lv, c) for lv in targets for c in (*caps, math.inf)])
    i, cost = _grid_search(
        cfg,
        pil_pairs,
        lambda env, p: ProjectedInventoryLevelPolicy(env, p[:, 0], p[:, 1], tables),
        **run,  # type: ignore[arg-type]
    )
    ps, pr = (float(v) for v in pil_pairs[i])
    out["projected_inventory_level"] = LostSalesTuning(
        "projected_inventory_level",
        {"level": ps, "cap": pr},
        cost,
        lambda env: ProjectedInventoryLevelPolicy(env, ps, pr, tables),
    )

    for name, lookahead in (("myopic", 1), ("myopic_2", 2)):

        def make(env: object, lookahead: int = lookahead) -> MyopicPolicy:
            return MyopicPolicy(env, lookahead, tables)

        scored = list(selection_seeds) or list(seeds)
        costs = long_run_cost(cfg, make, scored, warmup, window, device)
        out[name] = LostSalesTuning(name, {}, float(costs.mean()), make)
    return out
