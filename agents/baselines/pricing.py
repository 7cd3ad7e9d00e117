"""Pricing baselines: fixed prices, stock-cover rules, myopic, a tuned markdown schedule and exact dynamic programming.

Every policy follows the contract of :class:`paretochain.agents.policy.Policy`:
``act(obs, preference=None, action_mask=None)`` on batched tensors in the flat
observation layout of the Pricing family, returning actions the batched
environment accepts (masks respected). Preferences are ignored, except by
:class:`PriceRuleFrontPolicy` and :class:`FixedPriceFrontPolicy`: these are the
planners' rules the learned policies are compared with.

- :class:`FixedPricePolicy`: the same price (list price by default) all season.
- :class:`StockCoverPolicy` and :func:`tune_stock_cover`: the price moves with the stock's
  cover of the rest of the season (on hand over the units expected to be asked at list price,
  :func:`sales_to_go`): it rises when the stock will run short and falls when it will be
  left over, every channel of a SKU together, and is held otherwise.
- :class:`PriceRuleFrontPolicy` and :func:`tune_price_rule_front`: for each row, the fixed
  price or stock-cover rule whose mean return on training seeds is best at that row's
  preference (a teacher for preference-conditioned learners).
- :class:`FixedPriceFrontPolicy` and :func:`tune_fixed_price_front`: for each row, the
  fixed price whose mean return on training seeds is best at that row's preference (the
  front of fixed prices; a teacher for preference-conditioned learners).
- :class:`MyopicPolicy`: each period, the prices maximising this period's expected
  margin given expected demand (capped by the stock on hand), per SKU over the
  joint prices of its channels.
- :class:`MarkdownPolicy` and :func:`tune_markdown`: list price until a share of the
  season has passed, then a fixed discount; start and depth tuned on training seeds.
- :class:`DynamicProgrammingPolicy`: the optimal policy of a single-SKU instance
  with one or two channels, by backward induction over (period, stock); its value
  :attr:`DynamicProgrammingPolicy.value` is the yardstick for learned policies.

Promotion budgets and re-orders stay at level 0 in all of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from paretochain.envs.pricing.config import PricingConfig
from paretochain.envs.pricing.core import PricingCore
from paretochain.envs.pricing.demand import poisson_grid_size
from paretochain.errors import ConfigError


def pricing_core(env: Any) -> PricingCore:
    """The :class:`PricingCore` behind a core, a single env (possibly wrapped) or a batched view."""
    if isinstance(env, PricingCore):
        return env
    core = getattr(env, "core", None) or getattr(getattr(env, "unwrapped", None), "core", None)
    if not isinstance(core, PricingCore):
        raise TypeError(f"expected a Pricing environment or core, got {type(env).__name__}")
    return core


class _PricingPolicy:
    """Shared plumbing: reading observations and building actions with masks applied."""

    def __init__(self, env: Any) -> None:
        self.core = pricing_core(env)
        core = self.core
        self.device = core.device
        self.layout = core.observation_layout
        self.num_skus, self.num_channels = core.num_skus, core.num_channels
        space = core.single_action_space
        # ladder choices per action (behind a joint index with action.kind: discrete), or Box entries
        self.action_dim = len(core.ladder_nvec) if core.ladder_mode else int(space.shape[0])
        if core.ladder_mode:
            self.candidates = torch.as_tensor(
                np.tile(core.price_ladder, (core.num_channels, 1)), dtype=torch.float32, device=self.device
            )
        else:
            low = torch.as_tensor(
                space.low[: core.num_skus * core.num_channels].reshape(core.num_skus, core.num_channels)[0],
                device=self.device,
            )
            high = float(space.high[0])
            steps = torch.linspace(0.0, 1.0, 201, device=self.device)
            self.candidates = low.unsqueeze(1) + (high - low).unsqueeze(1) * steps  # (C, G)
            self._box_low = torch.as_tensor(space.low, device=self.device)
            self._box_high = torch.as_tensor(space.high, device=self.device)

    def period(self, obs: torch.Tensor) -> torch.Tensor:
        """Period index ``(B,)`` read from the observation's calendar."""
        cal = obs[:, self.layout.segments["calendar"].start + 2]
        return (cal * self.core.horizon).round().long()

    def block(self, obs: torch.Tensor, name: str) -> torch.Tensor | None:
        seg = self.layout.segments.get(name)
        if seg is None:
            return None
        return obs[:, seg.start : seg.stop].reshape(obs.shape[0], *seg.shape)

    def allowed(self, batch: int, action_mask: torch.Tensor | None) -> torch.Tensor:
        """Bool ``(B, K, C, n)`` of allowed price candidates."""
        K, C, n = self.num_skus, self.num_channels, self.candidates.shape[1]
        if action_mask is None or not self.core.ladder_mode:
            return torch.ones(batch, K, C, n, dtype=torch.bool, device=self.device)
        if self.core.joint_actions:
            action_mask = self.core.ladder_masks_of(action_mask)
        return action_mask[:, : K * C * n].reshape(batch, K, C, n).bool()

    def action_from_index(self, index: torch.Tensor) -> torch.Tensor:
        """Full actions from candidate indices ``(B, K, C)``; promotions and orders at 0."""
        B = index.shape[0]
        if self.core.ladder_mode:
            action = torch.zeros(B, self.action_dim, dtype=torch.int64, device=self.device)
            action[:, : self.num_skus * self.num_channels] = index.reshape(B, -1)
            return self.core.joint_index(action) if self.core.joint_actions else action
        price = (
            self.candidates.unsqueeze(0)
            .unsqueeze(0)
            .expand(B, self.num_skus, -1, -1)
            .gather(3, index.unsqueeze(-1))
            .squeeze(-1)
        )
        action = self._box_low.expand(B, -1).clone()
        action[:, self.num_skus * self.num_channels :] = 0.0
        action[:, : self.num_skus * self.num_channels] = price.reshape(B, -1)
        return action.clamp(self._box_low, self._box_high)

    def play_ratio(self, ratio: torch.Tensor, batch: int, action_mask: torch.Tensor | None) -> torch.Tensor:
        """The action pricing every SKU and channel at the allowed price nearest to ``ratio`` (one or ``(B,)``) x list."""
        target = ratio.reshape(-1, 1, 1).expand(batch, self.num_skus, self.num_channels)
        return self.action_from_index(self.nearest(target, self.allowed(batch, action_mask)))

    def nearest(self, target: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Index of the allowed candidate nearest to ``target`` ``(B, K, C)`` (lower on ties)."""
        dist = (self.candidates.view(1, 1, *self.candidates.shape) - target.unsqueeze(-1)).abs()
        dist = torch.where(allowed, dist, torch.inf)
        return dist.argmin(-1)


class FixedPricePolicy(_PricingPolicy):
    """The same price all season: the allowed price nearest to ``price_ratio`` times list price.

    Args:
        env: a Pricing environment (single or batched view) or its core.
        price_ratio: the target price as a multiple of list price, one value or ``(B,)``.
    """

    def __init__(self, env: Any, price_ratio: float | torch.Tensor = 1.0) -> None:
        super().__init__(env)
        self.price_ratio = torch.as_tensor(price_ratio, dtype=torch.float32, device=self.device)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.play_ratio(self.price_ratio, obs.shape[0], action_mask)


class MyopicPolicy(_PricingPolicy):
    """Each period, the prices that maximise this period's expected margin.

    For every SKU, each joint choice of its channels' prices (the ladder, or a grid of
    201 points across the Box) is scored by ``sum_c (price_c (1 - commission_c) -
    unit_cost) * sales_c`` with ``sales_c`` the expected demand scaled down to the
    stock on hand when the stock is short. Above ``max_joint`` joint choices it
    improves one channel at a time (three sweeps) instead of enumerating.

    Args:
        env: a Pricing environment (single or batched view) or its core.
        max_joint: largest number of joint price choices enumerated per SKU.
    """

    def __init__(self, env: Any, max_joint: int = 4096) -> None:
        super().__init__(env)
        core = self.core
        n, C = self.candidates.shape[1], self.num_channels
        self.enumerate = n**C <= max_joint
        if self.enumerate:
            combos = torch.as_tensor(list(itertools.product(range(n), repeat=C)), dtype=torch.int64, device=self.device)
            self.combos = combos  # (M, C)
        self._list = torch.as_tensor(core.list_price, dtype=torch.float32, device=self.device).view(-1, 1)
        self._cost = torch.as_tensor(core.unit_cost, dtype=torch.float32, device=self.device).view(-1, 1)
        self._keep = torch.as_tensor(1.0 - core.commission, dtype=torch.float32, device=self.device)

    def _margin(self, price: torch.Tensor, obs_parts: dict[str, Any]) -> torch.Tensor:
        """Expected margin ``(M, B, K)`` of prices ``(M, B, K, C)``."""
        demand = self.core.demand
        mean = demand.expected_demand(price, obs_parts["t"], obs_parts["reference"], obs_parts["competitor"], None)
        total = mean.sum(-1, keepdim=True)
        stock = obs_parts["stock"].unsqueeze(-1)
        sales = mean * torch.where(total > stock, stock / total.clamp(min=1e-9), 1.0)
        return ((price * self._list * self._keep - self._cost) * sales).sum(-1)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, K, C = obs.shape[0], self.num_skus, self.num_channels
        allowed = self.allowed(B, action_mask)  # (B, K, C, n)
        parts = {
            "t": self.period(obs),
            "reference": self.block(obs, "reference_price"),
            "competitor": self.block(obs, "competitor_price"),
            "stock": self.block(obs, "on_hand"),
        }
        cand = self.candidates  # (C, n)
        if self.enumerate:
            combos = self.combos  # (M, C)
            price = cand[torch.arange(C, device=self.device), combos]  # (M, C)
            price = price.view(-1, 1, 1, C).expand(-1, B, K, C)
            score = self._margin(price, parts)  # (M, B, K)
            ok = allowed.permute(2, 3, 0, 1)[torch.arange(C, device=self.device), combos]  # (M, C, B, K)
            score = torch.where(ok.all(1), score, -torch.inf)
            best = combos[score.argmax(0)]  # (B, K, C)
            return self.action_from_index(best)
        index = self.nearest(torch.ones(B, K, C, device=self.device), allowed)
        n = cand.shape[1]
        for _sweep in range(3):
            for c in range(C):
                trial = index.unsqueeze(0).repeat(n, 1, 1, 1)
                trial[..., c] = torch.arange(n, device=self.device).view(n, 1, 1)
                price = cand[torch.arange(C, device=self.device), trial]  # (n, B, K, C)
                score = self._margin(price, parts)
                score = torch.where(allowed[..., c, :].permute(2, 0, 1), score, -torch.inf)
                index[..., c] = score.argmax(0)
        return self.action_from_index(index)


class MarkdownPolicy(_PricingPolicy):
    """List price until ``start`` (a share of the season), then ``depth`` times list price.

    Args:
        env: a Pricing environment (single or batched view) or its core.
        start: share of the season after which the markdown applies, one value or ``(B,)``.
        depth: the marked-down price as a multiple of list price, one value or ``(B,)``.
    """

    def __init__(self, env: Any, start: float | torch.Tensor = 0.5, depth: float | torch.Tensor = 0.8) -> None:
        super().__init__(env)
        self.start = torch.as_tensor(start, dtype=torch.float32, device=self.device)
        self.depth = torch.as_tensor(depth, dtype=torch.float32, device=self.device)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        B = obs.shape[0]
        elapsed = obs[:, self.layout.segments["calendar"].start + 2]
        ratio = torch.where(elapsed >= self.start, self.depth, torch.ones_like(self.depth)).expand(B)
        return self.play_ratio(ratio, B, action_mask)


def tune_markdown(
    config: Any,
    seeds: Sequence[int],
    weights: Sequence[float] | None = None,
    starts: Sequence[float] = (0.25, 0.5, 0.65, 0.8, 1.01),
    depths: Sequence[float] = (0.6, 0.7, 0.8, 0.9),
    device: str | torch.device = "cpu",
) -> tuple[MarkdownPolicy, dict[tuple[float, float], float]]:
    """Pick the markdown start and depth with the best mean scalarised return on training seeds.

    All candidates play all seeds in one batched run (common random numbers).

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        weights: per-objective weights of the scalarised return (default: all ones).
        starts: candidate shares of the season before the markdown (above 1: never).
        depths: candidate marked-down prices, multiples of list price.
        device: where the tuning runs.

    Returns:
        the tuned policy (for any batch size) and the mean score of every candidate.
    """
    from paretochain.envs.registration import make_vec
    from paretochain.evaluate.rollout import rollout

    cfg = PricingConfig.load(config)
    grid = [(float(s), float(d)) for s in starts for d in depths]
    n_seeds = len(seeds)
    env = make_vec("paretochain/Pricing-v0", len(grid) * n_seeds, device=device, config=cfg, tensors=True)
    start = torch.tensor([g[0] for g in grid for _ in seeds])
    depth = torch.tensor([g[1] for g in grid for _ in seeds])
    policy = MarkdownPolicy(env, start.to(env.device), depth.to(env.device))
    result = rollout(env, policy, [int(s) for _ in grid for s in seeds])
    w = np.ones(result.returns.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    score = (result.returns @ w).reshape(len(grid), n_seeds).mean(axis=1)
    table = {g: float(v) for g, v in zip(grid, score)}
    best = grid[int(np.argmax(score))]
    return MarkdownPolicy(env.core, best[0], best[1]), table


class DynamicProgrammingPolicy(_PricingPolicy):
    """The optimal prices of a small single-SKU instance (one or two channels), by backward induction.

    Maximises ``E[sum of gross margin] - leftover_weight * E[cost value of stock left]``
    over the season, exactly: the state is (period, units on hand), demand is Poisson
    per channel with the environment's own expected-demand function, and when stock
    is short the sales follow the environment's own allocation rule. Customer
    satisfaction is not part of the objective.

    The instance must have one SKU, at most two channels, a price ladder, no
    promotions, no re-orders, no reference-price effect, a constant competitor
    price and channels that may reprice every period; price floors are respected.

    Args:
        env: a Pricing environment (single or batched view), its core, or a config.
        leftover_weight: weight of the cost value of the stock left at the end.
        max_inventory: largest initial stock accepted (the state space is 0..stock).

    Attributes:
        value: the optimal expected objective from the initial stock at period 0.
        values: ``(T + 1, X + 1)`` optimal values by period and stock.
        table: ``(T, X + 1, C)`` optimal ladder indices by period and stock.
    """

    def __init__(self, env: Any, leftover_weight: float = 0.0, max_inventory: int = 400) -> None:
        if isinstance(env, (PricingConfig, str, dict)):
            env = PricingCore(PricingConfig.load(env), num_envs=1)
        super().__init__(env)
        core = self.core
        cfg = core.config
        self._check_instance(cfg, max_inventory)
        self.leftover_weight = float(leftover_weight)
        self.values, self.table = self._solve()
        self.value = float(self.values[0, int(core.initial_inventory[0])])
        self._table = torch.as_tensor(self.table, dtype=torch.int64, device=self.device)

    @staticmethod
    def _check_instance(cfg: PricingConfig, max_inventory: int) -> None:
        d = cfg.demand
        problems = []
        if cfg.num_skus != 1:
            problems.append(f"num_skus is {cfg.num_skus} (needs 1)")
        if len(cfg.channels) > 2:
            problems.append(f"{len(cfg.channels)} channels (at most 2)")
        if cfg.action.kind == "box":
            problems.append("action.kind is box (needs ladder)")
        if cfg.replenishment is not None:
            problems.append("replenishment is on")
        if any(len(ch.promotion_levels) > 1 for ch in cfg.channels):
            problems.append("promotion_levels beyond 0")
        if any(ch.change_every > 1 for ch in cfg.channels):
            problems.append("a channel with change_every > 1")
        if d.model == "mnl" and (d.reference_price.loss_weight > 0 or d.reference_price.gain_weight > 0):
            problems.append("a reference-price effect")
        if d.model == "mnl" and d.competitor.volatility > 0 and d.competitor.attractiveness > -20:
            problems.append("a moving competitor price")
        stock = per_sku_first(cfg.initial_inventory)
        if stock > max_inventory:
            problems.append(f"initial_inventory {stock} above max_inventory {max_inventory}")
        if problems:
            raise ConfigError(
                "dynamic programming needs a small single-SKU instance; this config has " + "; ".join(problems)
            )

    def _solve(self) -> tuple[np.ndarray, np.ndarray]:
        core = self.core
        T, C = core.horizon, core.num_channels
        X = int(core.initial_inventory[0])
        ladder = core.price_ladder
        n = len(ladder)
        combos = np.array(list(itertools.product(range(n), repeat=C)))  # (A, C)
        ok = core.ladder_floor_mask[np.arange(C), combos].all(axis=1)
        combos = combos[ok]
        price = torch.as_tensor(ladder[combos], dtype=torch.float32, device=self.device)  # (A, C)
        t = torch.arange(T, device=self.device)
        with torch.inference_mode():
            mean = core.demand.expected_demand(
                price.view(-1, 1, 1, C).expand(-1, T, 1, C), t, None, self._competitor(), None
            )
        mean = mean[:, :, 0, :].double().cpu().numpy()  # (A, T, C)
        unit = ladder[combos] * core.list_price[0] * (1.0 - core.commission)  # (A, C) net price per unit
        cost, hold = core.unit_cost[0], float(per_sku_first(core.config.holding_cost))
        G = max(poisson_grid_size(float(mean.max())), X + 2)
        d = np.arange(G)
        logfact = np.array([math.lgamma(k + 1) for k in range(G)])
        pmf = np.exp(d * np.log(np.maximum(mean[..., None], 1e-300)) - mean[..., None] - logfact)  # (A, T, C, G)
        pmf[..., -1] += np.clip(1.0 - pmf.sum(-1), 0.0, None)
        # sales per channel for every stock x and demand vector: (X + 1, G^C, C)
        grids = np.stack(np.meshgrid(*([d] * C), indexing="ij"), axis=-1).reshape(-1, C)
        stock = torch.arange(X + 1, dtype=torch.float32).view(-1, 1).expand(-1, grids.shape[0])
        asked = torch.as_tensor(grids, dtype=torch.float32).unsqueeze(0).expand(X + 1, -1, -1)
        sales = core.allocate(stock, asked).double().numpy()  # (X + 1, D, C)
        sold = sales.sum(-1).astype(np.int64)  # (X + 1, D)
        after = np.arange(X + 1)[:, None] - sold  # stock after the period
        values = np.zeros((T + 1, X + 1))
        values[T] = -self.leftover_weight * cost * np.arange(X + 1)
        table = np.zeros((T, X + 1, C), dtype=np.int64)
        money = np.einsum("xdc,ac->axd", sales, unit) - cost * sold[None] - hold * after[None]  # (A, X + 1, D)
        for period in range(T - 1, -1, -1):
            joint = pmf[:, period, 0, :]
            for c in range(1, C):
                joint = (joint[:, :, None] * pmf[:, period, c, None, :]).reshape(len(combos), -1)  # (A, D)
            q = np.einsum("ad,axd->ax", joint, money + values[period + 1][after][None])
            best = q.argmax(axis=0)
            values[period] = q[best, np.arange(X + 1)]
            table[period] = combos[best]
        return values, table

    def _competitor(self) -> torch.Tensor | None:
        core = self.core
        if not core.demand.use_competitor:
            return None
        return core.demand.competitor_ratio(torch.zeros(1, 1, device=self.device))

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = self.period(obs).clamp(0, self.core.horizon - 1)
        on_hand = self.block(obs, "on_hand")
        assert on_hand is not None
        stock = on_hand[:, 0].round().long().clamp(0, self._table.shape[1] - 1)
        index = self._table[t, stock]  # (B, C)
        return self.action_from_index(index.unsqueeze(1))


def per_sku_first(value: float | list[float]) -> float:
    """The first SKU's value of a per-SKU parameter."""
    return float(value[0] if isinstance(value, list) else value)


#: The default candidate fixed prices, multiples of list price: 0.5 to 1.5 in steps of 0.05.
FIXED_PRICE_GRID: tuple[float, ...] = tuple(float(r) for r in np.round(np.arange(0.5, 1.5001, 0.05), 2))


def fixed_price_returns(
    config: Any,
    seeds: Sequence[int],
    ratios: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[list[float], np.ndarray, Any]:
    """Episode returns of fixed prices, every candidate on every seed in one batched run (common random numbers).

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        ratios: candidate prices as multiples of list price (default: 0.5 to 1.5 in steps of 0.05,
            each played at the allowed price nearest to it).
        device: where the run goes.

    Returns:
        the candidates, their returns ``(candidates, seeds, k)`` and the batched env they played in.
    """
    grid = [float(r) for r in (ratios if ratios is not None else FIXED_PRICE_GRID)]
    if not grid or not all(math.isfinite(r) and r > 0 for r in grid):
        raise ConfigError(f"fixed price candidates must be finite multiples of list price above 0, got {grid}")
    returns, env = price_rule_returns(config, seeds, fixed_price_rules(grid), device)
    return grid, returns, env


def tune_fixed_price(
    config: Any,
    seeds: Sequence[int],
    weights: Sequence[float] | None = None,
    ratios: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[FixedPricePolicy, dict[float, float]]:
    """Pick the fixed price (a multiple of list price) with the best mean scalarised return on training seeds.

    All candidates play all seeds in one batched run (common random numbers).

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        weights: per-objective weights of the scalarised return (default: all ones).
        ratios: candidate prices as multiples of list price (default: 0.5 to 1.5 in steps of 0.05,
            each played at the allowed price nearest to it).
        device: where the tuning runs.

    Returns:
        the tuned policy (for any batch size) and the mean score of every candidate.
    """
    grid, returns, env = fixed_price_returns(config, seeds, ratios, device)
    w = np.ones(returns.shape[-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    score = (returns @ w).mean(axis=1)
    table = dict(zip(grid, (float(v) for v in score)))
    return FixedPricePolicy(env.core, grid[int(np.argmax(score))]), table


#: The columns of a price rule row (:class:`StockCoverPolicy`): the opening price, then the
#: markup below a cover and the markdown above one late in the season.
RULE_FIELDS = ("start", "low_cover", "markup", "high_cover", "markdown_from", "markdown")


def fixed_price_rules(ratios: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rule rows ``(n, 6)`` that hold each price ratio all season (no markup, no markdown)."""
    r = np.asarray(ratios, dtype=np.float64).reshape(-1)
    return np.stack([r, np.zeros_like(r), r, np.zeros_like(r), np.full_like(r, 2.0), r], axis=1)


def stock_cover_rules(
    starts: Sequence[float] = (1.0, 1.1, 1.2, 1.3),
    low_covers: Sequence[float] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    rises: Sequence[float] = (0.1, 0.2),
    high_covers: Sequence[float] = (1.0, 1.2, 1.5),
    markdown_froms: Sequence[float] = (0.0, 0.5),
    cuts: Sequence[float] = (0.1, 0.2),
) -> np.ndarray:
    """The default candidate stock-cover rules, rows of :data:`RULE_FIELDS`.

    Every opening price (multiple of list price) with every cover below which the price rises
    by a rise (0: never), and either no markdown or every cover above which, from every share of
    the season, the price falls by a cut: the markup and the markdown are the opening price plus
    the rise and minus the cut.
    """
    rows: list[tuple[float, ...]] = []
    for start in starts:
        for low in low_covers:
            for rise in rises[:1] if low == 0 else rises:
                up = round(start + rise, 4)
                rows.append((start, low, up, 0.0, 2.0, start))
                for high in high_covers:
                    for since in markdown_froms:
                        for cut in cuts:
                            rows.append((start, low, up, high, since, round(start - cut, 4)))
    return np.asarray(rows, dtype=np.float64)


def check_rules(rules: Any, where: str) -> np.ndarray:
    """Rule rows as a float ``(n, 6)`` array; one ConfigError naming ``where`` for any other shape or value."""
    r = np.asarray(rules, dtype=np.float64)
    if r.ndim == 1:
        r = r.reshape(1, -1)
    if r.ndim != 2 or r.shape[1] != len(RULE_FIELDS) or r.shape[0] == 0:
        raise ConfigError(
            f"{where}: price rules must be rows of {len(RULE_FIELDS)} values {RULE_FIELDS}, got shape {r.shape}"
        )
    if not np.isfinite(r).all():
        raise ConfigError(f"{where}: a price rule holds a value that is not finite")
    prices = r[:, [0, 2, 5]]
    if (prices <= 0).any() or (r[:, [1, 3, 4]] < 0).any():
        raise ConfigError(
            f"{where}: price rule prices (start, markup, markdown) must be above 0 and covers and markdown_from "
            f"not below 0; got {r[(prices <= 0).any(axis=1) | (r[:, [1, 3, 4]] < 0).any(axis=1)][0].tolist()}"
        )
    return r


def sales_to_go(core: PricingCore) -> torch.Tensor:
    """Expected units asked per SKU from each period to the season's end at list price, ``(T + 1, K)``.

    Every channel at list price, customers' reference prices at list price and the competitor
    at its long-run price (``demand.competitor.mean_ratio``); row ``T`` is 0. The yardstick a
    planner holds the stock on hand against: its cover of the rest of the season.
    """
    T, K, C = core.horizon, core.num_skus, core.num_channels
    t = torch.arange(T, device=core.device)
    ones = torch.ones(T, K, C, device=core.device)
    comp = torch.full((T, K), float(core.config.demand.competitor.mean_ratio), device=core.device)
    asked = core.demand.expected_demand(ones, t, ones, comp, None).sum(-1)  # (T, K)
    to_go = asked.flip(0).cumsum(0).flip(0)
    return torch.cat([to_go, torch.zeros(1, K, device=core.device)])


class StockCoverPolicy(_PricingPolicy):
    """A planner's rule: move the price with the stock's cover of the rest of the season.

    A SKU's cover is its stock on hand over the units expected to be asked for it from this
    period to the season's end at list price (:func:`sales_to_go`). The season opens at
    ``start`` times list price. Each period, from the prices of the last period (per channel):

    - where the cover is below ``low_cover``, the price rises to at least ``markup`` (scarce
      stock is sold dearer, and lasts to the season's end instead of running out);
    - else, from the share ``markdown_from`` of the season on, where the cover is above
      ``high_cover``, the price falls to at most ``markdown`` (slow stock is cleared).

    Otherwise the price is held, so the rule changes a price only when the stock calls for
    it, every channel of a SKU together. ``low_cover=0`` with ``markdown_from`` above 1 is a
    fixed price. Parameters are one value or ``(B,)`` (a rule per row).
    """

    def __init__(
        self,
        env: Any,
        start: float | torch.Tensor = 1.0,
        low_cover: float | torch.Tensor = 0.0,
        markup: float | torch.Tensor = 1.0,
        high_cover: float | torch.Tensor = 0.0,
        markdown_from: float | torch.Tensor = 2.0,
        markdown: float | torch.Tensor = 1.0,
    ) -> None:
        super().__init__(env)
        values = [
            torch.as_tensor(v, dtype=torch.float32).reshape(-1)
            for v in (start, low_cover, markup, high_cover, markdown_from, markdown)
        ]
        rows = max(v.numel() for v in values)
        self.rules = torch.stack([v.expand(rows) for v in values], dim=1).to(self.device)
        check_rules(self.rules.cpu().numpy(), type(self).__name__)
        self._setup_rules()

    def _setup_rules(self) -> None:
        if "price" not in self.layout.segments:
            raise ConfigError(f"{type(self).__name__}: the observation has no last prices to hold")
        self.to_go = sales_to_go(self.core)

    def play_rules(self, obs: torch.Tensor, rules: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
        """The action of rule rows ``(B, 6)`` (or one row) in the states ``obs``."""
        B = obs.shape[0]
        r = rules.expand(B, -1)
        t = self.period(obs).clamp(0, self.core.horizon)
        last = self.block(obs, "price")
        assert last is not None
        price = torch.where((t == 0).view(B, 1, 1), r[:, 0].view(B, 1, 1), last)
        on_hand = self.block(obs, "on_hand")
        assert on_hand is not None
        cover = on_hand / self.to_go[t].clamp(min=1e-6)  # (B, K)
        low = cover < r[:, 1:2]
        price = torch.where(low.unsqueeze(-1), price.clamp(min=r[:, 2].view(B, 1, 1)), price)
        late = (t.float() / self.core.horizon >= r[:, 4]).unsqueeze(1)
        high = (cover > r[:, 3:4]) & late & ~low
        price = torch.where(high.unsqueeze(-1), torch.minimum(price, r[:, 5].view(B, 1, 1)), price)
        return self.action_from_index(self.nearest(price, self.allowed(B, action_mask)))

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.play_rules(obs, self.rules, action_mask)


class PriceRuleFrontPolicy(StockCoverPolicy):
    """For each row, the price rule whose mean return is best at that row's preference.

    Holds the mean return per objective of a set of candidate rules (:data:`RULE_FIELDS`
    rows: fixed prices and stock-cover rules, measured once on training seeds by
    :func:`tune_price_rule_front`) and, for each row of a batch, plays the candidate
    maximising ``sum_i w_i * mean_return_i / objective_scale_i``, with ``w`` the row's
    preference: the best planner's rule of every trade-off, read off the front of rules
    without a tuning run per preference. A preference-conditioned learner imitating it
    starts from the tuned rule at each corner of the simplex.

    Args:
        env: a Pricing environment (single or batched view) or its core.
        rules: ``(n, 6)`` candidate rules, rows of :data:`RULE_FIELDS`.
        mean_returns: ``(n, k)`` mean episode return of each candidate per objective.
        objective_scale: ``(k,)`` positive divisors of the objectives before weighing (default:
            ``max(|reference point|, 1)``, the utility scale of ``paretochain evaluate``).
        default_preference: ``(k,)`` preference of rows acted on without one (default: equal weights).

    Raises:
        ConfigError: shapes that do not agree, a value that is not finite, a price or scale
            not above 0, or a default preference that is negative or sums to 0.
    """

    def __init__(
        self,
        env: Any,
        rules: Sequence[Sequence[float]] | np.ndarray,
        mean_returns: np.ndarray,
        objective_scale: Sequence[float] | np.ndarray | None = None,
        default_preference: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        from paretochain.evaluate.pareto import utility_scale

        _PricingPolicy.__init__(self, env)
        name = type(self).__name__
        k = len(self.core.objectives)
        table = check_rules(rules, name)
        means = np.asarray(mean_returns, dtype=np.float64)
        if means.shape != (table.shape[0], k):
            raise ConfigError(
                f"{name}: mean_returns of shape {means.shape} for {table.shape[0]} price rules "
                f"and {k} objectives (expected ({table.shape[0]}, {k}))"
            )
        if not np.isfinite(means).all():
            raise ConfigError(f"{name}: mean_returns holds a value that is not finite")
        scale = (
            utility_scale(self.core.objectives.reference_point)
            if objective_scale is None
            else np.asarray(objective_scale, dtype=np.float64).reshape(-1)
        )
        if scale.shape != (k,) or not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ConfigError(f"{name}: objective_scale must be {k} finite values above 0, got {scale.tolist()}")
        default = np.full(k, 1.0 / k) if default_preference is None else np.asarray(default_preference, np.float64)
        if default.shape != (k,) or not np.isfinite(default).all() or (default < 0).any() or default.sum() <= 0:
            raise ConfigError(
                f"{name}: default_preference must be {k} finite weights, none negative, not all 0; got {default.tolist()}"
            )
        self.rule_table = table
        self.mean_returns = means
        self.objective_scale = scale
        self.default_preference = default / default.sum()
        self._default = torch.as_tensor(self.default_preference, dtype=torch.float32, device=self.device)
        self.rules = torch.as_tensor(table, dtype=torch.float32, device=self.device)
        # (k, n): a preference row times this matrix scores every candidate
        self._scaled = torch.as_tensor((means / scale).T, dtype=torch.float32, device=self.device)
        self._setup_rules()

    def choose(self, preference: torch.Tensor | np.ndarray | None, batch: int) -> torch.Tensor:
        """Index ``(batch,)`` of the candidate each row plays (the first of equals)."""
        k = self._scaled.shape[0]
        pref = (
            self._default
            if preference is None
            else torch.as_tensor(preference, dtype=torch.float32, device=self.device)
        )
        if pref.dim() == 1:
            pref = pref.unsqueeze(0)
        if pref.dim() != 2 or pref.shape[1] != k or pref.shape[0] not in (1, batch):
            raise ConfigError(
                f"{type(self).__name__}: preference of shape {tuple(pref.shape)} for a batch of {batch} "
                f"and {k} objectives (expected ({batch}, {k}) or ({k},))"
            )
        return (pref @ self._scaled).argmax(dim=1).expand(batch)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.play_rules(obs, self.rules[self.choose(preference, obs.shape[0])], action_mask)


class FixedPriceFrontPolicy(PriceRuleFrontPolicy):
    """For each row, the fixed price whose mean return is best at that row's preference.

    The :class:`PriceRuleFrontPolicy` of fixed prices only: each row plays, all season, the
    candidate price maximising ``sum_i w_i * mean_return_i / objective_scale_i`` at its
    preference (on the default Pricing config: the list price at margin only, 1.1 times
    list price at satisfaction only).

    Args:
        env: a Pricing environment (single or batched view) or its core.
        price_ratios: ``(n,)`` candidate prices, multiples of list price (each played at the
            allowed price nearest to it).
        mean_returns: ``(n, k)`` mean episode return of each candidate per objective.
        objective_scale: see :class:`PriceRuleFrontPolicy`.
        default_preference: see :class:`PriceRuleFrontPolicy`.

    Raises:
        ConfigError: as :class:`PriceRuleFrontPolicy`, and a ratio that is not finite or not above 0.
    """

    def __init__(
        self,
        env: Any,
        price_ratios: Sequence[float] | np.ndarray,
        mean_returns: np.ndarray,
        objective_scale: Sequence[float] | np.ndarray | None = None,
        default_preference: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        ratios = np.asarray(price_ratios, dtype=np.float64).reshape(-1)
        if ratios.size == 0 or not (np.isfinite(ratios).all() and (ratios > 0).all()):
            raise ConfigError(f"FixedPriceFrontPolicy: price_ratios must be finite and above 0, got {ratios.tolist()}")
        super().__init__(env, fixed_price_rules(ratios), mean_returns, objective_scale, default_preference)
        self.price_ratios = ratios


def tune_fixed_price_front(
    config: Any,
    seeds: Sequence[int],
    ratios: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
    objective_scale: Sequence[float] | np.ndarray | None = None,
    default_preference: Sequence[float] | np.ndarray | None = None,
) -> tuple[FixedPriceFrontPolicy, dict[float, list[float]]]:
    """Measure every candidate fixed price once on training seeds: the :class:`FixedPriceFrontPolicy` of them.

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        ratios: candidate prices as multiples of list price (default: 0.5 to 1.5 in steps of 0.05).
        device: where the tuning runs.
        objective_scale: see :class:`FixedPriceFrontPolicy`.
        default_preference: see :class:`FixedPriceFrontPolicy`.

    Returns:
        the policy (for any batch size) and the mean return per objective of every candidate.
    """
    grid, returns, env = fixed_price_returns(config, seeds, ratios, device)
    means = returns.mean(axis=1)
    policy = FixedPriceFrontPolicy(env.core, grid, means, objective_scale, default_preference)
    return policy, {r: [float(v) for v in row] for r, row in zip(grid, means)}


#: Selection seeds the price rules are measured on besides the tuning seeds: the best of some
#: 300 rules on 64 episodes was flattered by its luck (on ``dp_single_sku`` a stock-cover rule
#: beat the best fixed price there and lost to it by 1.8% on the test episodes).
RULE_SELECTION_EPISODES = 1024
#: Most environments run side by side when measuring rules (the rest wait for the next batch).
RULE_BATCH_ENVS = 65_536


def price_rule_seeds(tuning_seeds: Sequence[int]) -> list[int]:
    """The tuning seeds and the first :data:`RULE_SELECTION_EPISODES` selection seeds not among them."""
    from paretochain.seeds import SELECTION_SEEDS

    given = [int(s) for s in tuning_seeds]
    taken = set(given)
    return given + [s for s in SELECTION_SEEDS if s not in taken][:RULE_SELECTION_EPISODES]


def price_rule_returns(
    config: Any, seeds: Sequence[int], rules: np.ndarray, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, Any]:
    """Episode returns ``(rules, seeds, k)`` of price rules, every rule on every seed (common random numbers).

    Rules play side by side in batches of at most :data:`RULE_BATCH_ENVS` environments; every
    rule meets the same draws on a seed where its prices do not change them. Also returns the
    last batched environment.
    """
    from paretochain.envs.registration import make_vec
    from paretochain.evaluate.rollout import rollout

    cfg = PricingConfig.load(config)
    table = check_rules(rules, "price rule tuning")
    if not seeds:
        raise ConfigError("price rule tuning needs at least one training seed")
    n_seeds = len(seeds)
    per_batch = max(1, RULE_BATCH_ENVS // n_seeds)
    parts, env = [], None
    for first in range(0, table.shape[0], per_batch):
        chunk = table[first : first + per_batch]
        if env is None or env.core.num_envs != chunk.shape[0] * n_seeds:
            env = make_vec("paretochain/Pricing-v0", chunk.shape[0] * n_seeds, device=device, config=cfg, tensors=True)
        rows = torch.as_tensor(np.repeat(chunk, n_seeds, axis=0), dtype=torch.float32, device=env.device)
        result = rollout(env, StockCoverPolicy(env, *rows.T), [int(s) for _ in range(chunk.shape[0]) for s in seeds])
        parts.append(result.returns.reshape(chunk.shape[0], n_seeds, -1))
    return np.concatenate(parts), env


def default_price_rules() -> np.ndarray:
    """Fixed prices from 0.5 to 1.5 x list price in steps of 0.05, then :func:`stock_cover_rules`."""
    return np.concatenate([fixed_price_rules(FIXED_PRICE_GRID), stock_cover_rules()])


def moves_price(rules: np.ndarray) -> np.ndarray:
    """Bool per rule row: whether it can move the price (a markup cover above 0 or a markdown within the season)."""
    return (rules[:, 1] > 0) | (rules[:, 4] <= 1.0)


def measure_price_rules(
    config: Any, seeds: Sequence[int], rules: np.ndarray | None = None, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate rules (default: :func:`default_price_rules`) and their mean returns ``(n, k)`` on ``seeds``."""
    table = default_price_rules() if rules is None else check_rules(rules, "measure_price_rules")
    returns, _ = price_rule_returns(config, seeds, table, device)
    return table, returns.mean(axis=1)


def best_rule(rules: np.ndarray, means: np.ndarray, weights: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """The row of ``rules`` with the best mean scalarised return ``means @ weights`` (default weights: all ones)."""
    w = np.ones(means.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    return rules[int(np.argmax(means @ w))]


def tune_stock_cover(
    config: Any,
    seeds: Sequence[int],
    weights: Sequence[float] | None = None,
    rules: np.ndarray | None = None,
    device: str | torch.device = "cpu",
) -> tuple[StockCoverPolicy, np.ndarray, np.ndarray]:
    """Pick the stock-cover rule with the best mean scalarised return on training seeds.

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        weights: per-objective weights of the scalarised return (default: all ones).
        rules: candidate rules (default: :func:`stock_cover_rules`).
        device: where the tuning runs.

    Returns:
        the tuned policy (for any batch size), the candidate rules and their mean scores.
    """
    table = stock_cover_rules() if rules is None else check_rules(rules, "tune_stock_cover")
    returns, env = price_rule_returns(config, seeds, table, device)
    means = returns.mean(axis=1)
    w = np.ones(means.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    return StockCoverPolicy(env.core, *(float(v) for v in best_rule(table, means, w))), table, means @ w


def tune_price_rule_front(
    config: Any,
    seeds: Sequence[int],
    rules: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    objective_scale: Sequence[float] | np.ndarray | None = None,
    default_preference: Sequence[float] | np.ndarray | None = None,
) -> tuple[PriceRuleFrontPolicy, np.ndarray]:
    """Measure every candidate rule once on training seeds: the :class:`PriceRuleFrontPolicy` of them.

    Args:
        config: a Pricing config (name, path, mapping or instance).
        seeds: training seeds.
        rules: candidate rules (default: :func:`default_price_rules`).
        device: where the tuning runs.
        objective_scale: see :class:`PriceRuleFrontPolicy`.
        default_preference: see :class:`PriceRuleFrontPolicy`.

    Returns:
        the policy (for any batch size) and the mean return per objective of every candidate ``(n, k)``.
    """
    table = default_price_rules() if rules is None else check_rules(rules, "tune_price_rule_front")
    returns, env = price_rule_returns(config, seeds, table, device)
    means = returns.mean(axis=1)
    return PriceRuleFrontPolicy(env.core, table, means, objective_scale, default_preference), means
