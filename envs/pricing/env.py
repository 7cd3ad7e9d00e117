"""``paretochain/Pricing-v0``: multi-channel pricing and promotion over shared inventory, with a vector reward."""

from __future__ import annotations

import numpy as np

from paretochain.envs.pricing.config import PricingConfig
from paretochain.envs.pricing.core import PricingCore
from paretochain.envs.pricing.render import ansi_table, episode_chart
from paretochain.envs.views import SingleEnv


class PricingEnv(SingleEnv):
    """Pricing of K SKUs over a season through C channels that share one inventory per SKU.

    ## Description
    Each period the policy sets a price for every SKU in every channel (a web shop,
    a marketplace that keeps a commission, stores...), optionally a promotion budget
    per channel and a re-order per SKU. Shoppers arrive per channel (Poisson, with
    seasonality and a diminishing-returns lift from promotion) and choose where to
    buy, or not to buy, by a multinomial logit with channel-specific price
    sensitivity, a reference-price effect and an exogenous competitor price
    (:mod:`paretochain.envs.pricing.demand`). All channels sell from the same stock;
    when it runs short it is split across channels in proportion to the units asked
    (:meth:`PricingCore.allocate`). The order of events is listed in
    :mod:`paretochain.envs.pricing.core`. A constant-elasticity mode
    (``demand.model: constant_elasticity``, packaged config ``constant_elasticity``)
    has the closed-form optimal price ``c e / (e - 1)``.

    ## Action space
    Prices as multiples of list price, flattened SKU-major (SKU 0 channel 0, SKU 0
    channel 1, ...), then one promotion level per channel (when some channel has more
    than the level 0), then one re-order per SKU (with ``replenishment``):

    - ``action.kind: ladder``: ``MultiDiscrete``, indices into ``price_ladder``,
      ``promotion_levels`` and ``order_quantities``. Channel rules are action masks
      (``action_masks()``, ``info["action_mask"]``, a flat bool vector of length
      ``sum(nvec)``): a marketplace ``price_floor`` masks the ladder below it; a channel
      with ``change_every: k`` allows only its current price in periods ``t % k != 0``.
    - ``action.kind: discrete``: ``Discrete(prod(nvec))``, one index for every combination
      of the ladder choices above, in ``np.ravel_multi_index`` order over the MultiDiscrete
      layout (the first price varies slowest; ``core.joint_index`` turns ladder choices into
      it). Its mask (``n`` entries) allows an index when every choice behind it is allowed.
      For small instances (at most 65,536 actions): ``dp_single_sku`` gives ``Discrete(7)``,
      ``default`` ``Discrete(2401)``; larger ones are refused with a ``ConfigError``.
    - ``action.kind: box``: ``Box`` of price multipliers in ``[box_low, box_high]``
      (the lower bound raised to each channel's floor), promotion budgets in currency
      and order quantities in units (rounded). A held channel keeps its price whatever
      the action says.

    What an action outside the mask (or a Box entry outside the bounds) does is the
    ``invalid_action`` option:

    - ``"fallback"`` (the default of the single view, for clients that read no masks):
      every forbidden choice becomes the allowed level nearest to it (ties: the higher):
      the current price of a channel that holds its prices, the lowest level at or above a
      channel's price floor; a joint index keeps its allowed choices and moves the others
      so. Box entries are clipped to the bounds. ``info["actions_replaced"]`` counts the
      choices replaced or entries clipped in the step (0 for an allowed action).
    - ``"raise"`` (the default of ``make_vec``; the project's agents and tests): such an
      action raises :class:`~paretochain.errors.ActionError`.

    An index outside a ladder, a value that is not finite, a wrong shape, ``None`` or
    text raise ``ActionError`` in both modes.

    ## Observation space
    A flat float32 ``Box``; ``env.unwrapped.observation_layout`` gives each block's
    slice and shape. With K SKUs, C channels and lead time L:

    | block | shape | content |
    | --- | --- | --- |
    | ``on_hand`` | K | units on hand, shared by the channels |
    | ``pipeline`` | K x L | units on order by periods until arrival (with replenishment, L > 0) |
    | ``price`` | K x C | last period's prices, multiples of list price (1 at the start) |
    | ``reference_price`` | K x C | customers' reference prices (when the reference effect is on) |
    | ``competitor_price`` | K | the competitor's price this period (MNL demand with a competitor) |
    | ``sales`` | K x C | units sold last period |
    | ``calendar`` | 3 | sin, cos of the seasonal phase; share of the season elapsed |
    | ``price_change_allowed`` | C | 1 where a channel may change price now (when some channel holds prices) |

    ## Rewards
    A float32 vector, one entry per objective named in ``objectives`` (default
    ``[gross_margin, customer_satisfaction, leftover_inventory]``), every entry
    "higher is better":

    | objective | unit | per-step reward |
    | --- | --- | --- |
    | ``gross_margin`` | currency | revenue net of commissions - cost of goods sold - promotion - holding - order-line costs |
    | ``customer_satisfaction`` | score | (1 - penalties for price jumps, channel price gaps, stock-outs) / horizon |
    | ``leftover_inventory`` | currency | minus the cost value of stock on hand and on order, in the last period only |
    | ``revenue`` | currency | price times units sold |
    | ``units_sold`` | units | units sold |
    | ``promotion_spend`` | currency | minus the promotion budgets |

    The satisfaction formula is in :mod:`paretochain.envs.pricing.objectives`.
    ``env.unwrapped.objectives`` declares each with unit, description and reference
    point (for hypervolume); ``info`` carries every KPI of the period, ``actions_replaced``
    and, with ladder actions, the next ``action_mask`` (a new array every step).

    ## Starting state
    ``initial_inventory`` units per SKU, nothing on order, every price and reference
    price at list price, the competitor's price drawn from its stationary law.

    ## Episode end
    Termination after ``horizon`` periods: the season is finite, so its end is a terminal state
    (``terminated``; nothing is earned after it, and agents must not bootstrap a value there).
    ``truncated`` is never set.

    ## Arguments
    ``gymnasium.make("paretochain/Pricing-v0", config=None, render_mode=None,
    device="cpu", invalid_action="fallback", **overrides)``: ``invalid_action`` is
    ``"fallback"`` or ``"raise"`` (see Action space); ``config`` is a packaged config name (``default``,
    ``multichannel``, ``constant_elasticity``, ``dp_single_sku``, ``dp_two_channel``), a YAML path, a
    mapping or a :class:`PricingConfig`; ``overrides`` replace its top-level fields.
    ``render_mode`` is ``"ansi"`` (a table of the state) or ``"rgb_array"`` (prices,
    stock and sales over the season).
    """

    config_cls = PricingConfig
    core_cls = PricingCore

    def render_ansi(self) -> str:
        return ansi_table(self.core.snapshot(0), self.core.channel_names)  # type: ignore[attr-defined]

    def render_rgb(self, history: list[dict[str, np.ndarray]]) -> np.ndarray:
        return episode_chart(history or [self.core.snapshot(0)], self.core.channel_names)  # type: ignore[attr-defined]
