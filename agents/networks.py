"""Networks of our agents: observation encoders, preference-conditioned torsos, action heads, value heads.

An actor or critic reads ``(normalised observation, preference)``:

    encoder(obs) -> features ; torso(cat(features, preference)) -> hidden ; head(hidden)

Encoders: :class:`MLPEncoder` for flat observations and :class:`SlotAttentionEncoder`
(a small transformer over padded per-order slots, for Dispatch). Heads:

- :class:`FactoredCategoricalHead`: ``Discrete`` (one factor) and factored
  ``MultiDiscrete`` (one independent categorical per dimension), with action masks;
- :class:`SquashedGaussianHead`: ``Box`` actions ``low + (tanh(u) + 1) / 2 * (high - low)``
  with ``u ~ Normal(mean, std)``, log-probabilities including the tanh and rescaling Jacobians;
- a vector value head: one value per objective (:class:`VectorCritic`).

Every ``forward`` is deterministic and TorchScript-able (it is what export compiles);
``sample`` and ``evaluate`` are the training paths.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from paretochain.errors import ConfigError

#: Logit given to masked-out choices: far below any real logit, finite so that 0 * logit stays 0.
MASKED_LOGIT = -1e8


def layer_init(layer: nn.Linear, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Linear:
    """Orthogonal weights with ``gain`` and a constant bias (the PPO implementation-detail default)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(in_dim: int, hidden_sizes: tuple[int, ...] | list[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear + activation layers of the given widths (no output layer)."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden_sizes:
        layers += [layer_init(nn.Linear(d, h)), activation()]
        d = h
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------- encoders
class MLPEncoder(nn.Module):
    """A flat observation through an MLP.

    Args:
        obs_dim: observation length.
        hidden_sizes: widths of the layers; ``out_dim`` is the last one.
    """

    if TYPE_CHECKING:
        out_dim: int

    def __init__(self, obs_dim: int, hidden_sizes: tuple[int, ...] = (64,)) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes)
        self.out_dim = hidden_sizes[-1] if hidden_sizes else obs_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class SlotAttentionEncoder(nn.Module):
    """A transformer encoder over padded slots (orders) plus an MLP over the rest of the observation.

    The flat observation is split with the environment's ``observation_layout``: the
    block ``slots_block`` of shape ``(num_slots, slot_features)`` holds one row per
    order slot, ``valid_block`` (when given) flags ``(num_slots,)`` which slots hold
    an order (padding is ignored by attention and by the pooling), and every other
    block is "context" (vehicles, clock, ...). Each slot is embedded, the context
    embedding is added to every slot, ``num_layers`` transformer layers mix the
    slots, and the output is ``cat(mean over real slots, max over real slots, context)``.

    Args:
        layout: ``{block: (start, stop, shape)}`` of the flat observation.
        slots_block: name of the ``(num_slots, slot_features)`` block.
        valid_block: name of a ``(num_slots,)`` 0/1 block flagging real slots, or ``None``
            (then a slot is real when any of its features is non-zero).
        embed_dim: width of the slot embeddings.
        num_heads: attention heads.
        num_layers: transformer layers.
    """

    if TYPE_CHECKING:  # declared for type checkers only (TorchScript cannot read string annotations)
        out_dim: int
        context_index: torch.Tensor

    def __init__(
        self,
        layout: dict[str, tuple[int, int, tuple[int, ...]]],
        slots_block: str,
        valid_block: str | None = None,
        embed_dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        if slots_block not in layout:
            raise ConfigError(
                f"SlotAttentionEncoder: observation has no block {slots_block!r}; blocks are {sorted(layout)}"
            )
        start, stop, shape = layout[slots_block]
        if len(shape) != 2:
            raise ConfigError(
                f"SlotAttentionEncoder: block {slots_block!r} must be (num_slots, features), got shape {shape}"
            )
        self.slot_start, self.slot_stop = start, stop
        self.num_slots, self.slot_features = int(shape[0]), int(shape[1])
        self.has_valid = valid_block is not None
        if valid_block is not None:
            if valid_block not in layout:
                raise ConfigError(
                    f"SlotAttentionEncoder: observation has no block {valid_block!r}; blocks are {sorted(layout)}"
                )
            self.valid_start, self.valid_stop = layout[valid_block][0], layout[valid_block][1]
        else:
            self.valid_start, self.valid_stop = 0, 0
        skip = {slots_block} | ({valid_block} if valid_block else set())
        context = [
            torch.arange(s, e)
            for name, (s, e, _) in sorted(layout.items(), key=lambda kv: kv[1][0])
            if name not in skip
        ]
        idx = torch.cat(context) if context else torch.zeros(0, dtype=torch.int64)
        self.register_buffer("context_index", idx.long(), persistent=False)
        self.context_dim = int(idx.numel())
        self.slot_embed = layer_init(nn.Linear(self.slot_features, embed_dim))
        self.context_embed = layer_init(nn.Linear(max(self.context_dim, 1), embed_dim))
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, dim_feedforward=2 * embed_dim, dropout=0.0, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out_dim = 3 * embed_dim
        self.embed_dim = embed_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encode(obs)[0]

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled (B, out_dim), slot embeddings (B, num_slots, embed_dim))``; :meth:`forward` returns the first."""
        b = obs.shape[0]
        slots = obs[:, self.slot_start : self.slot_stop].reshape(b, self.num_slots, self.slot_features)
        if self.has_valid:
            valid = obs[:, self.valid_start : self.valid_stop] > 0.5
        else:
            valid = slots.abs().sum(-1) > 0
        if self.context_dim > 0:
            context = obs.index_select(1, self.context_index)
        else:
            context = torch.zeros(b, 1, dtype=obs.dtype, device=obs.device)
        ctx = torch.tanh(self.context_embed(context))
        x = self.slot_embed(slots) + ctx.unsqueeze(1)
        # an env with no real slot still needs one key to attend to: keep slot 0 visible there
        any_valid = valid.any(dim=1, keepdim=True)
        first = torch.zeros_like(valid)
        first[:, 0] = True
        keep = valid | (first & ~any_valid)
        x = self.transformer(x, src_key_padding_mask=~keep)
        w = valid.to(x.dtype).unsqueeze(-1)
        mean = (x * w).sum(1) / w.sum(1).clamp(min=1.0)
        top = torch.where(valid.unsqueeze(-1), x, torch.full_like(x, -1e4)).amax(1)
        top = torch.where(any_valid, top, torch.zeros_like(top))
        return torch.cat([mean, top, ctx], dim=1), x


class PreferenceTorso(nn.Module):
    """``encoder(obs)`` (or ``encoder([obs, w])``) concatenated with the preference ``w``, then an MLP.

    With ``preference_at_input`` the encoder reads the preference beside the observation
    (an :class:`MLPEncoder` built for ``obs_dim + k`` inputs), so the features of a state
    can differ by preference from the first layer on; otherwise the preference joins only
    after the encoder. On ``dp_single_sku`` MO-PPO whose preference joined only after the
    encoder played nearly the same prices at every corner of the simplex after 300k steps
    (0.926 of the DP optimum at the margin-only preference), against 0.987 with it at the input.

    Args:
        encoder: observation encoder with an ``out_dim`` attribute.
        k: number of objectives (preference length).
        hidden_sizes: widths of the layers after the concatenation.
        preference_at_input: the encoder reads ``[obs, w]`` (it must be built for ``obs_dim + k`` inputs).
    """

    if TYPE_CHECKING:
        out_dim: int

    def __init__(
        self,
        encoder: MLPEncoder | SlotAttentionEncoder,
        k: int,
        hidden_sizes: tuple[int, ...] = (64,),
        preference_at_input: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.preference_at_input = preference_at_input
        self.net = mlp(int(encoder.out_dim) + k, hidden_sizes)
        self.out_dim = hidden_sizes[-1] if hidden_sizes else int(encoder.out_dim) + k

    def forward(self, obs: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        if self.preference_at_input:
            obs = torch.cat([obs, preference], dim=1)
        return self.net(torch.cat([self.encoder(obs), preference], dim=1))


# ---------------------------------------------------------------------------------------------- heads
class FactoredCategoricalHead(nn.Module):
    """Independent categoricals over ``d`` action dimensions with ``nvec[j]`` choices each, with masks.

    ``Discrete(n)`` is the case ``nvec = [n]`` (actions of shape ``(B,)``). Logits are
    laid out padded ``(B, d, max(nvec))``; padding and masked-out choices get
    :data:`MASKED_LOGIT`. The mask uses the flat sb3-contrib layout ``(B, sum(nvec))``.

    Args:
        in_dim: width of the torso output.
        nvec: choices per dimension.
        discrete: actions are scalars (``Discrete``) rather than vectors.
    """

    if TYPE_CHECKING:
        mask_source: torch.Tensor

    def __init__(self, in_dim: int, nvec: list[int], discrete: bool) -> None:
        super().__init__()
        self.d = len(nvec)
        self.nmax = int(max(nvec))
        self.discrete = discrete
        self.mask_dim = int(sum(nvec))
        self.logits = layer_init(nn.Linear(in_dim, self.d * self.nmax), gain=0.01)
        # padded position (j, i) reads flat mask entry offset_j + i, or the extra False column
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        src = np.full((self.d, self.nmax), self.mask_dim, dtype=np.int64)
        for j, n in enumerate(nvec):
            src[j, :n] = offsets[j] + np.arange(n)
        self.register_buffer("mask_source", torch.as_tensor(src.reshape(-1)), persistent=False)

    def masked_logits(self, hidden: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        b = hidden.shape[0]
        logits = self.logits(hidden).reshape(b, self.d, self.nmax)
        extended = torch.cat(
            [action_mask.to(torch.bool), torch.zeros(b, 1, dtype=torch.bool, device=hidden.device)], dim=1
        )
        allowed = extended.index_select(1, self.mask_source).reshape(b, self.d, self.nmax)
        return mask_logits(logits, allowed)

    def forward(self, hidden: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Most likely allowed action: ``(B,)`` int64 for Discrete, ``(B, d)`` otherwise."""
        action = self.masked_logits(hidden, action_mask).argmax(-1)
        if self.discrete:
            return action[:, 0]
        return action

    def sample(
        self, hidden: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(env action, stored action, log-probability)``; Gumbel-max sampling, no host sync."""
        action, logp = sample_logits(self.masked_logits(hidden, action_mask))
        if self.discrete:
            action = action[:, 0]
        return action, action, logp

    def evaluate(
        self, hidden: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of stored actions and the entropy (summed over dimensions)."""
        return evaluate_logits(self.masked_logits(hidden, action_mask), stored)


def mask_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """``logits`` with the entries not ``allowed`` set to :data:`MASKED_LOGIT`."""
    return torch.where(allowed, logits, logits.new_full((1,), -1e8))  # MASKED_LOGIT (a literal for TorchScript)


def sample_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-max samples ``(B, d)`` of masked logits ``(B, d, n)`` and their log-probability summed over ``d``."""
    u = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-7)
    action = (logits - torch.log(-torch.log(u))).argmax(-1)
    logp = F.log_softmax(logits, -1).gather(-1, action.unsqueeze(-1)).squeeze(-1).sum(-1)
    return action, logp


def evaluate_logits(logits: torch.Tensor, stored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of ``stored`` actions under masked logits ``(B, d, n)`` and the entropy, both summed over ``d``."""
    logp, entropy = evaluate_logits_per_dimension(logits, stored)
    return logp.sum(-1), entropy


def evaluate_logits_per_dimension(logits: torch.Tensor, stored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability ``(B, d)`` of each dimension's ``stored`` choice under masked logits ``(B, d, n)``, and the
    entropy summed over ``d``."""
    logp_all = F.log_softmax(logits, -1)
    a = stored.long().reshape(logits.shape[0], logits.shape[1], 1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).sum(-1)
    return logp_all.gather(-1, a).squeeze(-1), entropy


class PointerActor(nn.Module):
    """Preference-conditioned policy over slots: each slot's logit comes from its own embedding.

    For a ``Discrete(n)`` action whose first ``num_slots`` choices pick a slot (Dispatch:
    serve order slot ``a``) and whose other choices are fixed moves (depot, wait). A
    fixed output per slot (the :class:`FactoredCategoricalHead`) would have to learn what
    an arbitrary slot position holds; here, as in the attention model of Kool et al.
    (2019), a query from the pooled observation and the preference is matched with every
    slot embedding of the :class:`SlotAttentionEncoder` (scaled dot product, kept in
    ``[-10, 10]`` by a tanh), and the fixed moves get logits from the same query features.
    Same interface as :class:`Actor`.

    Args:
        torso: a :class:`PreferenceTorso` whose encoder is a :class:`SlotAttentionEncoder`.
        n: number of discrete actions (more than the encoder's slots).
    """

    def __init__(self, torso: PreferenceTorso, n: int) -> None:
        super().__init__()
        encoder = torso.encoder
        if not isinstance(encoder, SlotAttentionEncoder):
            raise ValueError("PointerActor needs the attention encoder")
        if n <= encoder.num_slots:
            raise ValueError(f"PointerActor: {n} actions do not extend the {encoder.num_slots} slots")
        self.torso = torso
        self.embed_dim = int(encoder.embed_dim)
        self.query = layer_init(nn.Linear(int(torso.out_dim), self.embed_dim))
        self.key = layer_init(nn.Linear(self.embed_dim, self.embed_dim))
        self.fixed = layer_init(nn.Linear(int(torso.out_dim), n - encoder.num_slots), gain=0.01)

    def masked_logits(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, n)`` with masked-out choices at :data:`MASKED_LOGIT`."""
        pooled, slots = self.torso.encoder.encode(obs)  # type: ignore[operator]
        hidden = self.torso.net(torch.cat([pooled, preference], dim=1))
        query = self.query(hidden).unsqueeze(2)  # (B, E, 1)
        scores = torch.bmm(self.key(slots), query).squeeze(2) / math.sqrt(self.embed_dim)
        logits = torch.cat([10.0 * torch.tanh(scores), self.fixed(hidden)], dim=1)
        return mask_logits(logits, action_mask.to(torch.bool)).unsqueeze(1)

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        return self.masked_logits(obs, preference, action_mask).argmax(-1)[:, 0]

    def sample(
        self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action, logp = sample_logits(self.masked_logits(obs, preference, action_mask))
        return action[:, 0], action[:, 0], logp

    def evaluate(
        self, obs: torch.Tensor, preference: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return evaluate_logits(self.masked_logits(obs, preference, action_mask), stored)


class PerItemChoiceActor(nn.Module):
    """An actor that makes one choice per item (order slot, node and SKU) from logits ``(B, items, choices)``.

    Subclasses define :meth:`masked_logits`; acting greedily, sampling and scoring stored actions
    follow from it, with the interface of :class:`Actor`.
    """

    def masked_logits(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, items, choices)`` with masked-out choices at :data:`MASKED_LOGIT`."""
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """``(B, items)`` int64: the most likely allowed choice of every item."""
        return self.masked_logits(obs, preference, action_mask).argmax(-1)

    def sample(
        self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action, logp = sample_logits(self.masked_logits(obs, preference, action_mask))
        return action, action, logp

    def evaluate(
        self, obs: torch.Tensor, preference: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return evaluate_logits(self.masked_logits(obs, preference, action_mask), stored)

    def evaluate_items(
        self, obs: torch.Tensor, preference: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability ``(B, items)`` of every item's ``stored`` choice, and the entropy summed over items."""
        return evaluate_logits_per_dimension(self.masked_logits(obs, preference, action_mask), stored)


class OrderDecisionActor(PerItemChoiceActor):
    """Preference-conditioned per-order decisions: one dispatch-now logit per order slot, from that slot's embedding.

    For a ``MultiDiscrete([2] * num_slots)`` action (``DispatchEpoch-v0``: 1 dispatches the order
    in the slot now, 0 postpones it). Each slot's logit comes from its own embedding of the
    :class:`SlotAttentionEncoder` and the preference-conditioned summary of the whole
    observation, through one small network shared by all slots: permuting the order slots (with
    their validity flags) permutes the decisions, and a padded slot changes no other slot's
    decision (attention and pooling skip it). The mask (flat ``[postpone allowed, dispatch
    allowed]`` per slot) forces must-go orders and keeps empty slots at 0. Same interface as
    :class:`Actor`; logits are ``(B, num_slots, 2)`` with postponing at 0.

    Args:
        torso: a :class:`PreferenceTorso` whose encoder is a :class:`SlotAttentionEncoder`.
        num_slots: order slots of the action (the encoder's).
    """

    def __init__(self, torso: PreferenceTorso, num_slots: int) -> None:
        super().__init__()
        encoder = torso.encoder
        if not isinstance(encoder, SlotAttentionEncoder):
            raise ValueError("OrderDecisionActor needs the attention encoder")
        if num_slots != encoder.num_slots:
            raise ValueError(f"OrderDecisionActor: {num_slots} decisions for the encoder's {encoder.num_slots} slots")
        self.torso = torso
        self.num_slots = num_slots
        width = int(encoder.embed_dim)
        self.summary = layer_init(nn.Linear(int(torso.out_dim), width))
        self.hidden = layer_init(nn.Linear(2 * width, width))
        self.dispatch = layer_init(nn.Linear(width, 1), gain=0.01)

    def masked_logits(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_slots, 2)`` (postpone, dispatch) with masked-out choices at :data:`MASKED_LOGIT`."""
        pooled, slots = self.torso.encoder.encode(obs)  # type: ignore[operator]
        hidden = self.torso.net(torch.cat([pooled, preference], dim=1))
        summary = torch.tanh(self.summary(hidden)).unsqueeze(1).expand(-1, slots.shape[1], -1)
        score = self.dispatch(torch.tanh(self.hidden(torch.cat([slots, summary], dim=2))))
        logits = torch.cat([torch.zeros_like(score), score], dim=2)
        allowed = action_mask.to(torch.bool).reshape(obs.shape[0], self.num_slots, 2)
        return mask_logits(logits, allowed)


class ItemOrderActor(PerItemChoiceActor):
    """Preference-conditioned orders per item (node and SKU), from one small network shared by every item.

    For a ``MultiDiscrete([K] * (num_nodes * num_skus))`` action laid out node by node
    (Warehouse: the order ladder of each node and SKU). The flat observation is split with
    the environment's layout: every block of shape ``(num_nodes, num_skus[, f])`` (stock on
    hand, pipeline) gives each item its own row; every block of shape ``(num_warehouses,
    num_skus[, f])`` (demand history, promotions) too, the rows of the upstream nodes (the DC)
    reading the sum over the warehouses they serve; every other block is context. Each item's
    input is its own features, the same features summed over the SKU's nodes and averaged over
    the node's SKUs, a one-hot of its node, a learned embedding of the item (what sets one SKU
    apart: its costs and price are not observed), the context and the preference. The shared
    network turns it into the item's ``K`` logits, so what is learned about one item serves all
    200 of ``network_50sku`` (a plain MLP must learn every item's decision separately from the
    whole observation). Same interface as :class:`Actor`; logits are ``(B, num_items, K)``.

    **Order-up-to head** (``order_up_to`` given): instead of ``K`` free logits, the shared network
    gives each item a target inventory position ``T`` and a sharpness ``c > 0``, both in periods of
    the node's mean demand, and choice ``k`` scores ``-c * (x + q_k - T) ** 2``, where ``x`` is the
    item's inventory position (on hand + in transit - backlog, summed from its observation entries)
    and ``q_k`` the order of ladder entry ``k``, both in the same periods. The greedy choice is the
    ladder entry that brings the position nearest to ``T``: an order-up-to policy with a level the
    network sets per item and state, and sampling spreads over the entries around it. Any
    deterministic choice stays reachable (``T = x + q_k``), but base-stock, the heuristic the network
    is warm-started from, is then one constant per item (a learned per-item level is added to the
    network's target), where free logits must learn each ladder boundary of the summed position
    separately (on ``network_50sku`` they matched 96% of base-stock's decisions after 69,888
    imitation steps, this head 99.7% after 34,944). A ladder entry that orders the same units as an
    earlier one is never chosen. The position is read from the normalised observation, so its
    entries are clipped like every other entry (at 10 of the normaliser's scale).

    Args:
        layout: ``{block: (start, stop, shape)}`` of the flat observation.
        num_nodes: nodes with an order decision (warehouses first, then upstream nodes).
        num_warehouses: the nodes that meet demand (the first ones).
        num_skus: SKUs.
        choices: choices per item decision (``K``).
        k: number of objectives (preference length).
        hidden_sizes: widths of the shared per-item network.
        embed_dim: width of the learned per-item embedding (0: none).
        order_up_to: for the order-up-to head, ``{"position_index": (N, S, P) int64 entries of the
            observation the actor reads, "position_weight": (N, S, P) what each entry counts in the
            position, in periods of the node's mean demand (the sign and the normaliser's scale over
            the mean), "ladder_periods": (N, S, K) each ladder entry's order in the same periods,
            "target_init": (N, S) the target position before training, periods}``; None: free logits.
    """

    if TYPE_CHECKING:
        context_index: torch.Tensor
        node_onehot: torch.Tensor
        position_index: torch.Tensor
        position_weight: torch.Tensor
        ladder_periods: torch.Tensor
        target_init: torch.Tensor
        ladder_distinct: torch.Tensor

    def __init__(
        self,
        layout: dict[str, tuple[int, int, tuple[int, ...]]],
        num_nodes: int,
        num_warehouses: int,
        num_skus: int,
        choices: int,
        k: int,
        hidden_sizes: tuple[int, ...] | list[int] = (64, 64),
        embed_dim: int = 8,
        order_up_to: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= num_warehouses <= num_nodes or num_skus < 1 or choices < 2:
            raise ValueError(
                f"ItemOrderActor: need 1 <= num_warehouses <= num_nodes, num_skus >= 1 and choices >= 2, got "
                f"{num_warehouses}, {num_nodes}, {num_skus}, {choices}"
            )
        self.num_nodes, self.num_warehouses, self.num_skus, self.choices = num_nodes, num_warehouses, num_skus, choices
        self.num_items = num_nodes * num_skus
        # (start, stop, features, per node: 1, per warehouse: 0)
        blocks: list[list[int]] = []
        context: list[torch.Tensor] = []
        for _, (start, stop, shape) in sorted(layout.items(), key=lambda kv: kv[1][0]):
            rows = shape[0] if len(shape) >= 2 else -1
            if len(shape) >= 2 and shape[1] == num_skus and rows in (num_nodes, num_warehouses):
                features = (stop - start) // (rows * num_skus)
                blocks.append([start, stop, features, 1 if rows == num_nodes else 0])
            else:
                context.append(torch.arange(start, stop))
        if not any(b[3] == 1 for b in blocks):
            raise ValueError(
                f"ItemOrderActor: the observation has no block of shape ({num_nodes}, {num_skus}, ...); "
                f"blocks are {sorted(layout)}"
            )
        self.blocks = blocks
        self.item_features = sum(b[2] for b in blocks)
        idx = torch.cat(context) if context else torch.zeros(0, dtype=torch.int64)
        self.register_buffer("context_index", idx.long(), persistent=False)
        self.register_buffer("node_onehot", torch.eye(num_nodes), persistent=False)
        self.embed_dim = embed_dim
        self.item_embedding = nn.Parameter(torch.randn(num_nodes, num_skus, max(embed_dim, 1)) * 0.1)
        width = 3 * self.item_features + num_nodes + embed_dim + int(idx.numel()) + k
        self.net = mlp(width, list(hidden_sizes))
        out_width = list(hidden_sizes)[-1] if hidden_sizes else width
        self.order_up_to = order_up_to is not None
        if order_up_to is None:
            self.logits = layer_init(nn.Linear(out_width, choices), gain=0.01)
            empty = torch.zeros(0)
            for name in ("position_index", "position_weight", "ladder_periods", "target_init"):
                self.register_buffer(name, empty.long() if name == "position_index" else empty, persistent=False)
            # absent from the free-logits actor's parameters and state
            self.register_buffer("target_bias", empty, persistent=False)
            self.register_buffer("ladder_distinct", torch.zeros(0, dtype=torch.bool), persistent=False)
        else:
            expected = {
                "position_index": (num_nodes, num_skus),
                "position_weight": (num_nodes, num_skus),
                "ladder_periods": (num_nodes, num_skus, choices),
                "target_init": (num_nodes, num_skus),
            }
            for name, lead in expected.items():
                value = order_up_to.get(name)
                if value is None or tuple(value.shape[: len(lead)]) != lead:
                    got = None if value is None else tuple(value.shape)
                    raise ValueError(f"ItemOrderActor order_up_to: {name} must start with shape {lead}, got {got}")
            if order_up_to["position_index"].shape != order_up_to["position_weight"].shape:
                raise ValueError("ItemOrderActor order_up_to: position_index and position_weight differ in shape")
            # (target offset, log sharpness) per item; the target starts at target_init, the sharpness at 1
            self.logits = layer_init(nn.Linear(out_width, 2), gain=0.01)
            for name in expected:
                value = torch.as_tensor(order_up_to[name])
                value = value.long() if name == "position_index" else value.to(torch.float32)
                self.register_buffer(name, value.clone(), persistent=False)
            # the item's own level (periods), beside what the shared network sets from the state: an
            # order-up-to level differs by item, and a per-item constant is what a level is
            self.target_bias = nn.Parameter(torch.zeros(num_nodes, num_skus))
            # a ladder entry that orders what an earlier one orders is never chosen (small means round
            # several entries to the same units; their scores would be equal)
            ladder = self.ladder_periods
            distinct = ~(ladder.unsqueeze(-1) == ladder.unsqueeze(-2)).tril(-1).any(-1)
            self.register_buffer("ladder_distinct", distinct, persistent=False)

    def item_inputs(self, obs: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        """The shared network's input per item: ``(B, num_nodes, num_skus, width)``."""
        b = obs.shape[0]
        n, w, s = self.num_nodes, self.num_warehouses, self.num_skus
        parts = []
        for block in self.blocks:
            start, stop, f, per_node = block[0], block[1], block[2], block[3]
            if per_node == 1:
                x = obs[:, start:stop].reshape(b, n, s, f)
            else:
                x = obs[:, start:stop].reshape(b, w, s, f)
                if n > w:  # upstream nodes read the sum over the warehouses they serve
                    x = torch.cat([x, x.sum(1, keepdim=True).expand(b, n - w, s, f)], dim=1)
            parts.append(x)
        own = torch.cat(parts, dim=3)
        per_sku = own.sum(1, keepdim=True).expand(b, n, s, self.item_features)
        node_mean = own.mean(2, keepdim=True).expand(b, n, s, self.item_features)
        inputs = [own, per_sku, node_mean, self.node_onehot.reshape(1, n, 1, n).expand(b, n, s, n)]
        if self.embed_dim > 0:
            inputs.append(self.item_embedding.unsqueeze(0).expand(b, n, s, self.embed_dim))
        if self.context_index.numel() > 0:
            ctx = obs.index_select(1, self.context_index)
            inputs.append(ctx.reshape(b, 1, 1, -1).expand(b, n, s, ctx.shape[1]))
        inputs.append(preference.reshape(b, 1, 1, -1).expand(b, n, s, preference.shape[1]))
        return torch.cat(inputs, dim=3)

    def masked_logits(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_items, K)`` with masked-out choices at :data:`MASKED_LOGIT`."""
        b = obs.shape[0]
        out = self.logits(self.net(self.item_inputs(obs, preference)))
        if self.order_up_to:
            n, s = self.num_nodes, self.num_skus
            entries = obs.index_select(1, self.position_index.reshape(-1)).reshape(b, n, s, -1)
            position = (entries * self.position_weight).sum(-1)  # (B, N, S), periods of mean demand
            target = self.target_init + self.target_bias + out[..., 0]
            # at most e^8: every score stays far above MASKED_LOGIT, so a masked entry never wins
            sharpness = out[..., 1].clamp(max=8.0).exp()
            after = position.unsqueeze(-1) + self.ladder_periods  # (B, N, S, K): the position each order leads to
            out = -sharpness.unsqueeze(-1) * (after - target.unsqueeze(-1)).square()
        logits = out.reshape(b, self.num_items, self.choices)
        allowed = action_mask.to(torch.bool).reshape(b, self.num_items, self.choices)
        if self.order_up_to:
            allowed = allowed & self.ladder_distinct.reshape(1, self.num_items, self.choices)
        return mask_logits(logits, allowed)


class SquashedGaussianHead(nn.Module):
    """Box actions ``low + (tanh(u) + 1) / 2 * (high - low)`` with ``u ~ Normal(mean(h), exp(log_std))``.

    The stored action is the pre-squash sample ``u`` (no ``atanh`` of a saturated
    action is ever needed). Its log-probability is that of the environment action:

    ``log N(u) - sum_i [log(1 - tanh(u_i)^2) + log((high_i - low_i) / 2)]``,

    with ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` for numerical
    stability. The entropy bonus uses the entropy of the Gaussian on ``u`` (the
    squashed distribution has no closed form; SAC-style estimates are noisier).

    Args:
        in_dim: width of the torso output.
        low, high: bounds of the Box (finite).
        log_std_init: initial log standard deviation (state-independent, learned).
    """

    if TYPE_CHECKING:
        low: torch.Tensor
        high: torch.Tensor
        log_half_range: torch.Tensor

    def __init__(self, in_dim: int, low: np.ndarray, high: np.ndarray, log_std_init: float = -0.5) -> None:
        super().__init__()
        low_t = torch.as_tensor(np.asarray(low, dtype=np.float32).reshape(-1))
        high_t = torch.as_tensor(np.asarray(high, dtype=np.float32).reshape(-1))
        if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ValueError("SquashedGaussianHead needs finite action bounds")
        self.dim = int(low_t.numel())
        self.mean = layer_init(nn.Linear(in_dim, self.dim), gain=0.01)
        self.log_std = nn.Parameter(torch.full((self.dim,), float(log_std_init)))
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        self.register_buffer("log_half_range", torch.log(((high_t - low_t) / 2).clamp(min=1e-12)))

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """Pre-squash values to actions inside ``[low, high]``."""
        action = self.low + (torch.tanh(u) + 1.0) * 0.5 * (self.high - self.low)
        return torch.maximum(torch.minimum(action, self.high), self.low)

    def forward(self, hidden: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """The action at the Gaussian's mean, squashed and rescaled: ``(B, dim)``."""
        return self.squash(self.mean(hidden))

    def log_prob(self, mean: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        std = self.log_std.exp()
        gauss = -0.5 * ((u - mean) / std).square() - self.log_std - 0.5 * math.log(2 * math.pi)
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u)) + self.log_half_range
        return (gauss - log_det).sum(-1)

    def sample(
        self, hidden: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = self.mean(hidden)
        u = mean + self.log_std.exp() * torch.randn_like(mean)
        return self.squash(u), u, self.log_prob(mean, u)

    def evaluate(
        self, hidden: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(hidden)
        entropy = (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum().expand(hidden.shape[0])
        return self.log_prob(mean, stored), entropy


def make_head(space: spaces.Space, in_dim: int) -> FactoredCategoricalHead | SquashedGaussianHead:
    """The action head for a Gymnasium action space (``Discrete``, ``MultiDiscrete`` or ``Box``)."""
    if isinstance(space, spaces.Discrete):
        return FactoredCategoricalHead(in_dim, [int(space.n)], discrete=True)
    if isinstance(space, spaces.MultiDiscrete):
        return FactoredCategoricalHead(in_dim, [int(n) for n in np.asarray(space.nvec).reshape(-1)], discrete=False)
    if isinstance(space, spaces.Box):
        return SquashedGaussianHead(in_dim, space.low, space.high)
    raise TypeError(f"no action head for {space}; supported: Discrete, MultiDiscrete, Box")


def mask_dim(space: spaces.Space) -> int:
    """Length of the flat action mask of a space (Box: its action dimension, all True by convention)."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(np.prod(space.shape or ()))


# ---------------------------------------------------------------------------------------------- actor / critic
class Actor(nn.Module):
    """Preference-conditioned policy: ``forward(normalised obs, preference, mask) -> deterministic action``."""

    def __init__(self, torso: PreferenceTorso, head: FactoredCategoricalHead | SquashedGaussianHead) -> None:
        super().__init__()
        self.torso = torso
        self.head = head

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs, preference), action_mask)

    def sample(
        self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head.sample(self.torso(obs, preference), action_mask)

    def evaluate(
        self, obs: torch.Tensor, preference: torch.Tensor, stored: torch.Tensor, action_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.evaluate(self.torso(obs, preference), stored, action_mask)


class VectorCritic(nn.Module):
    """Preference-conditioned vector value: ``(B, k)``, one value per objective."""

    def __init__(self, torso: PreferenceTorso, k: int) -> None:
        super().__init__()
        self.torso = torso
        self.value = layer_init(nn.Linear(int(torso.out_dim), k), gain=1.0)

    def forward(self, obs: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        return self.value(self.torso(obs, preference))


#: the arguments of :class:`SlotAttentionEncoder` a run config's ``attention`` section may set
ATTENTION_OPTIONS = ("slots_block", "valid_block", "embed_dim", "num_heads", "num_layers")


def build_encoder(
    kind: str, obs_dim: int, layout: Any, hidden_sizes: tuple[int, ...], attention: dict[str, Any] | None = None
) -> MLPEncoder | SlotAttentionEncoder:
    """An encoder by name: ``"mlp"`` or ``"attention"`` (needs the env's observation layout).

    ``layout`` is an :class:`~paretochain.envs.core.ObservationLayout`; ``attention``
    holds :class:`SlotAttentionEncoder` arguments (``slots_block``, ``valid_block``,
    ``embed_dim``, ``num_heads``, ``num_layers``).
    """
    if kind == "mlp":
        return MLPEncoder(obs_dim, hidden_sizes[:1] or (64,))
    if kind == "attention":
        blocks = {name: (s.start, s.stop, tuple(s.shape)) for name, s in layout.segments.items()}
        attention = dict(attention or {})
        unknown = sorted(set(attention) - set(ATTENTION_OPTIONS))
        if unknown:
            raise ConfigError(f"attention: unknown {unknown}; allowed: {', '.join(ATTENTION_OPTIONS)}")
        if "slots_block" not in attention:
            raise ConfigError(
                f"attention.slots_block is needed with the attention encoder: the observation block whose rows "
                f"are the slots; this environment's blocks are {sorted(blocks)}"
            )
        return SlotAttentionEncoder(blocks, **attention)
    raise ValueError(f"unknown encoder {kind!r}; choose 'mlp' or 'attention'")


# ------------------------------------------------------------------------------------------ MO-DQN
class BranchingVectorQNetwork(nn.Module):
    """``Q(s, a, w)`` for every branch and choice: ``(B, D, n_max, k)``.

    A shared MLP trunk reads ``[obs, w]``; branch ``d`` has its own head (one hidden
    layer) giving ``nvec[d] * k`` values; branches with fewer choices are padded with
    zeros up to ``n_max`` (their padding is always masked out).
    """

    def __init__(self, obs_dim: int, k: int, nvec: list[int], hidden: list[int], branch_hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim + k
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(width, branch_hidden), nn.ReLU(), nn.Linear(branch_hidden, n * k)) for n in nvec
        )
        self.nvec = [int(n) for n in nvec]
        self.n_max = max(self.nvec)
        self.k = k

    def forward(self, obs: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        z = self.trunk(torch.cat([obs, preference], dim=1))
        out: list[torch.Tensor] = []
        for i, head in enumerate(self.heads):
            n = self.nvec[i]
            q = head(z).view(-1, n, self.k)
            out.append(nn.functional.pad(q, (0, 0, 0, self.n_max - n)))
        return torch.stack(out, dim=1)


def branch_index(nvec: list[int]) -> torch.Tensor:
    """``(D, n_max)`` positions of each branch's choices in the flat mask; padding points past its end."""
    total, n_max = int(sum(nvec)), max(nvec)
    index = torch.full((len(nvec), n_max), total, dtype=torch.int64)
    start = 0
    for d, n in enumerate(nvec):
        index[d, :n] = torch.arange(start, start + n)
        start += n
    return index


class EnvelopeQActor(nn.Module):
    """The greedy policy of a :class:`BranchingVectorQNetwork`: ``(normalised obs, preference, mask) -> action``.

    Scalarises ``Q(s, ., w)`` with ``w`` and takes the masked argmax per branch; returns ``(B,)``
    for Discrete, ``(B, D)`` for MultiDiscrete. ``action_mask`` is bool ``(B, sum(nvec))`` (all
    True where the environment has no masks). TorchScript-able; the network is copied.
    """

    if TYPE_CHECKING:  # a buffer, declared for type checkers only (TorchScript reads class annotations)
        index: torch.Tensor

    def __init__(self, q_net: BranchingVectorQNetwork, nvec: list[int], discrete: bool) -> None:
        super().__init__()
        self.q_net = copy.deepcopy(q_net)
        self.register_buffer("index", branch_index(nvec).to(next(q_net.parameters()).device))
        self.discrete = discrete

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        w = preference.to(torch.float32)
        score = (self.q_net(obs, w) * w[:, None, None, :]).sum(-1)
        padded = torch.cat([action_mask.to(torch.bool), torch.zeros_like(action_mask[:, :1], dtype=torch.bool)], dim=1)
        action = score.masked_fill(~padded[:, self.index], float("-inf")).argmax(-1)
        if self.discrete:
            return action[:, 0]
        return action
