"""A core's step for a small CPU batch, traced once and run without Python's cost per operation.

A step of a small batch is a few dozen tensor operations on a handful of floats each.
Run eagerly, most of its time goes to dispatching every operation from Python (1.5 to
5 us each), not to the arithmetic. :class:`StepGraph` traces the core's own ``_step``
and ``observe`` once with TorchScript, freezes the graph and runs it with TorchScript's
static runtime (the frozen graph where torch has no static runtime). The same ATen
kernels run on the same values, so an episode is the eager step's: equal observations,
rewards and KPIs, which tests compare on every packaged config. (A core may take a cheaper
equal form in graph mode: Pricing's traced step has its rewards and KPIs from one product,
which gives ``0.0`` where the eager step's scaling gives ``-0.0``.) There is no second copy
of the dynamics.

The trace runs the core in **graph mode** (``core.tracing`` is true, ``core.lockstep``
false): the core then reads the period from the tensor ``t``, never from its host
counter, and takes no shortcut decided by a value read back to the host, since a trace
would keep the one decision it saw. Everything a step reads that changes between calls
is an input of the graph: the tensors named in ``core.step_state`` (read and rebound by
every step) and ``core._episode_tensors()`` (drawn at reset). Whatever else the trace
reads is kept as a constant: tables built once per instance. A step that rebinds a
tensor missing from ``step_state``, or that reads a tensor's value on the host (checked on
one untraced run), is refused, and the core steps eagerly.

Cores of one config and batch size share their frozen graphs (traced once per process);
each thread runs them with its own static-runtime module. ``reset()`` without seeds or
mask is traced the same way, from the episodes' stream keys on (:class:`ResetGraph`); a
core of one env starts its next episodes a batch at a time (:class:`EpisodePrefetch`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore, KPIs, StepOutput, kpi_matrix


class GraphRefused(RuntimeError):
    """The core's step cannot be traced into a graph that holds for every call (the message says why)."""


class _TracedStep(torch.nn.Module):
    """The module traced: puts the inputs into the core, runs one step and observes.

    Args:
        core: the core.
        used: which of the step's possible inputs (``step_state``, then the episode's tensors)
            the graph takes; the others are never read. None: all of them.
        written: the ``step_state`` tensors the step rebinds (the outputs). None: all of them.
    """

    def __init__(self, core: BatchedCore, used: list[bool] | None = None, written: list[str] | None = None) -> None:
        super().__init__()
        self.core = core
        self.used, self.written = used, written
        self.kpi_names: tuple[str, ...] = ()  # filled by the traced call
        self.terminated: str | None = None  # the core's attribute of constant flags, when it returns those
        self.widths: tuple[int, int, int] = (0, 0, 0)  # observation, reward and KPI columns (filled by the call)

    def forward(self, action: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        core = self.core
        names = core.step_state
        given = iter(tensors)
        everything = [*(getattr(core, name) for name in names), *core._episode_tensors()]
        inputs = [next(given) if self.used is None or self.used[i] else x for i, x in enumerate(everything)]
        for name, value in zip(names, inputs):
            setattr(core, name, value)
        core._use_episode_tensors(inputs[len(names) :])
        reward, terminated, truncated, kpis = core._step(action)
        core.t = core.t + 1
        obs = core.observe()
        self.kpi_names = tuple(kpis)
        # the whole KPI matrix: the views read every KPI of a small batch
        matrix = kpi_matrix(kpis)
        self.widths = (obs.shape[1], reward.shape[1], matrix.shape[1])
        if self.written is None:  # the untraced run: the tensors the step rebinds
            self.written = [name for name, value in zip(names, inputs) if getattr(core, name) is not value]
        outputs: tuple[torch.Tensor, ...]
        if core.num_envs == 1:  # one row holds everything: observation, reward, KPIs, flags
            flags = torch.stack([terminated.to(obs.dtype), truncated.to(obs.dtype)], dim=1)
            outputs = (torch.cat([obs, reward, matrix, flags], dim=1).view(-1),)
        else:
            outputs = (obs, reward, truncated, matrix)
            constant = [name for name, value in vars(core).items() if value is terminated and name not in names]
            if constant:
                self.terminated = constant[0]  # a constant of the core (episodes never end early): not an output
            else:
                outputs += (terminated,)
        return (*outputs, *(getattr(core, name) for name in self.written))


class _NoHostReads(TorchFunctionMode):
    """Refuses every read of a tensor's values on the host (what a trace would keep as a constant)."""

    READS = frozenset(
        {"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy", "__array__", "nonzero"}
    )

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", "") in self.READS:
            raise GraphRefused(f"the step reads tensor values on the host ({func.__name__})")
        return func(*args, **(kwargs or {}))


def _tensors(core: BatchedCore) -> dict[str, torch.Tensor]:
    """The tensor attributes of ``core``, by name."""
    return {name: value for name, value in vars(core).items() if isinstance(value, torch.Tensor)}


def _rebound(core: BatchedCore, before: dict[str, torch.Tensor]) -> list[str]:
    """The tensor attributes of ``core`` rebound since ``before`` (:func:`_tensors`) was taken."""
    return [name for name, value in _tensors(core).items() if before.get(name) is not value]


@contextmanager
def _graph_mode(
    core: BatchedCore, inputs: Sequence[str], rebinds: set[str] | None
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Run ``core`` in graph mode, yielding the tensors named ``inputs`` and the episode's tensors; put every tensor back afterwards.

    With ``rebinds``, raises :class:`GraphRefused` when the run rebound a tensor not named there.
    """
    kept = _tensors(core)
    episode = core._episode_tensors()
    lockstep = core.lockstep
    core.tracing, core.lockstep = True, False
    try:
        yield (*(getattr(core, name) for name in inputs), *episode)
        rebound = [name for name in _rebound(core, kept) if name not in (rebinds or ())]
    finally:
        for name, value in kept.items():
            setattr(core, name, value)
        core._use_episode_tensors(episode)
        core.tracing, core.lockstep = False, lockstep
    if rebinds is not None and rebound:
        raise GraphRefused(f"the step rebinds {rebound}, which step_state does not name")


def _freeze(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """Trace ``module`` on ``example`` and freeze it."""
    with warnings.catch_warnings():
        # the tracer warns of every comparison of sizes; they are fixed for this graph, and values were checked
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's notice that TorchScript is in maintenance
        traced = torch.jit.trace(module, example, check_trace=False)
        return torch.jit.freeze(traced.eval(), optimize_numerics=False)


#: Frozen graphs and what they return, by signature: cores of one config and batch size share them.
_FROZEN: dict[tuple[Any, ...], tuple[torch.jit.ScriptModule, dict[str, Any]]] = {}
#: Graphs kept for new cores (and runners per thread); the oldest go first. A core keeps its own graph.
KEEP = 128
_THREAD = threading.local()


def _signature(core: BatchedCore, kind: str, *extra: Any) -> tuple[Any, ...]:
    """What a graph of ``core`` depends on beyond its inputs: the core's class, config and batch, the inputs' layout.

    Whatever a trace keeps as a constant is built from these, so cores with equal signatures share a graph.
    """
    config = getattr(core, "config", None)
    identity = config.model_dump_json() if hasattr(config, "model_dump_json") else id(core)  # type: ignore[union-attr]
    tensors = [*(getattr(core, name) for name in core.step_state), *core._episode_tensors()]
    layout = tuple((tuple(x.shape), x.dtype) for x in tensors)
    return (kind, type(core), identity, core.num_envs, str(core.device), layout, *extra)


class _SharedGraph:
    """A frozen graph shared by the cores of one signature (:func:`_signature`), run by this thread's runner."""

    def __init__(self, key: tuple[Any, ...], build: Callable[[], tuple[torch.jit.ScriptModule, dict[str, Any]]]):
        self._key = key
        if key not in _FROZEN:
            if len(_FROZEN) >= KEEP:
                del _FROZEN[next(iter(_FROZEN))]
            _FROZEN[key] = build()
        self._frozen, self._meta = _FROZEN[key]
        self._runner()  # ready before the first call

    def _runner(self) -> Callable[..., Any]:
        """This thread's runner of the graph (a static-runtime module is not for two threads at once)."""
        runners = getattr(_THREAD, "runners", None)
        if runners is None:
            runners = _THREAD.runners = {}
        run = runners.get(self._key)
        if run is None:
            if len(runners) >= KEEP:
                del runners[next(iter(runners))]
            to_static = getattr(torch._C, "_jit_to_static_module", None)
            run = runners[self._key] = to_static(self._frozen._c) if to_static is not None else self._frozen
        return run


class StepGraph(_SharedGraph):
    """One core's step traced for actions of one dtype and shape; call it in place of the eager step.

    Args:
        core: the core; its current state is the trace's example and is left as it was.
        action: an example action (the graph serves actions of its dtype and shape).

    Raises:
        GraphRefused: the trace would not hold for every call.
    """

    def __init__(self, core: BatchedCore, action: torch.Tensor) -> None:
        self.action_dtype, self.action_shape = action.dtype, action.shape
        super().__init__(_signature(core, "step", action.dtype, tuple(action.shape)), lambda: self._trace(core, action))
        meta = self._meta
        self._used, self._written = meta["used"], meta["written"]
        self.kpi_names: tuple[str, ...] = meta["kpi_names"]  # the KPIs of a row, in order
        self._terminated, self._widths = meta["terminated"], meta["widths"]
        self._state = [name for name, take in zip(core.step_state, self._used) if take]
        self._episode: tuple[torch.Tensor | None, list[torch.Tensor]] = (None, [])  # (episode keys, used tensors)

    @staticmethod
    def _trace(core: BatchedCore, action: torch.Tensor) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
        names = core.step_state
        probe = _TracedStep(core)
        # one eager step first: sizes are plain ints there, so any read on the host is a value's
        with _graph_mode(core, names, set(names)) as example, _NoHostReads():
            probe(action, *example)
        # a first trace finds the inputs the step reads; the graph run takes only those
        with _graph_mode(core, names, set(names)) as example:
            full = _freeze(_TracedStep(core, written=probe.written), (action, *example))
        used = [bool(value.uses()) for value in list(full.graph.inputs())[2:]]  # after the module and the action
        module = _TracedStep(core, used, probe.written)
        with _graph_mode(core, names, set(names)) as example:
            frozen = _freeze(module, (action, *(x for x, take in zip(example, used) if take)))
        meta = {
            "used": used,
            "written": probe.written,
            "kpi_names": module.kpi_names,
            "terminated": module.terminated,  # the name of the core's constant flags, if the step returns those
            "widths": module.widths,
        }
        return frozen, meta

    def serves(self, action: torch.Tensor) -> bool:
        """Whether ``action`` has the dtype and shape the graph was traced for."""
        return action.dtype is self.action_dtype and action.shape == self.action_shape

    def _run(self, core: BatchedCore, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the graph on ``core``'s state and rebind the state it wrote; the other outputs."""
        keys, episode = self._episode
        if keys is not core._episode_keys:  # new episodes (every reset makes new keys): their tensors, once
            everything = core._episode_tensors()
            episode = [x for x, take in zip(everything, self._used[len(core.step_state) :]) if take]
            self._episode = (core._episode_keys, episode)
        outputs = self._runner()(action, *[getattr(core, name) for name in self._state], *episode)
        n = len(outputs) - len(self._written)
        for name, value in zip(self._written, outputs[n:]):
            setattr(core, name, value)
        return outputs[:n]

    def row(self, core: BatchedCore, action: torch.Tensor) -> torch.Tensor:
        """One step of a one-env ``core``: everything it returns in one float32 row (:attr:`StepOutput.flat`)."""
        return self._run(core, action)[0]

    def __call__(self, core: BatchedCore, action: torch.Tensor) -> StepOutput:
        """One step of ``core`` (its ``t`` and state tensors advance; its host counter does not)."""
        outputs = self._run(core, action)
        if core.num_envs == 1:  # the row's pieces, as views
            flat = outputs[0]
            d, k, m = self._widths
            row = flat.view(1, -1)
            kpis = KPIs(self.kpi_names, values=row[:, d + k : d + k + m])
            flags = row[:, d + k + m :] != 0.0
            return StepOutput(row[:, :d], row[:, d : d + k], flags[:, 0], flags[:, 1], kpis, flat)
        obs, reward, truncated, matrix, *rest = outputs
        terminated = getattr(core, self._terminated) if self._terminated is not None else rest[0]
        return StepOutput(obs, reward, terminated, truncated, KPIs(self.kpi_names, values=matrix))


class _TracedReset(torch.nn.Module):
    """The module traced: starts the episodes of the given stream keys; returns what the reset wrote."""

    def __init__(self, core: BatchedCore) -> None:
        super().__init__()
        self.core = core
        self.written: list[str] = []  # the tensors the reset rebinds, found by the untraced run

    def forward(self, stream_key: torch.Tensor) -> tuple[torch.Tensor, ...]:
        core = self.core
        core.stream_key = stream_key
        before = _tensors(core)
        obs = core._start_episodes()
        if not self.written:
            self.written = _rebound(core, before)
        return (obs, *(getattr(core, name) for name in self.written), *core._episode_tensors())


def _start_with(core: BatchedCore, written: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """Put a traced reset's outputs into ``core``: the tensors named ``written``, then the episode's tensors."""
    for name, value in zip(written, tensors):
        setattr(core, name, value)
    core._use_episode_tensors(tensors[len(written) :])


class ResetGraph(_SharedGraph):
    """A core's start of the next episodes (``reset()`` without seeds or mask), traced from the episodes' stream
    keys on; call it in place of :meth:`BatchedCore._next_episodes`.

    Raises:
        GraphRefused: the trace would not hold for every call.
    """

    def __init__(self, core: BatchedCore) -> None:
        super().__init__(_signature(core, "reset"), lambda: self._trace(core))
        self._written = self._meta["written"]

    @staticmethod
    def _trace(core: BatchedCore) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
        """The frozen start of ``core``'s episodes from their stream keys, and the names of the tensors it rebinds."""
        module = _TracedReset(core)
        with _graph_mode(core, ("stream_key",), None) as example, _NoHostReads():
            module(example[0])
        with _graph_mode(core, ("stream_key",), None) as example:
            return _freeze(module, example[:1]), {"written": module.written}

    def __call__(self, core: BatchedCore) -> torch.Tensor:
        """Start the next episodes of ``core``; the observations."""
        core._next_keys()
        obs, *tensors = self._runner()(core.stream_key)
        _start_with(core, self._written, tensors)
        return obs


class EpisodePrefetch(_SharedGraph):
    """One env's next episodes, started :attr:`COUNT` at a time; call it in place of
    :meth:`BatchedCore._next_episodes` for a core of one env.

    Starting an episode draws its whole season at once (the uniforms of every step, the
    competitor's path): a few hundred operations on small tensors, each costing about what it
    costs for a batch of a few dozen envs. So the traced reset of a core of the same config with
    :attr:`COUNT` envs starts the env's next :attr:`COUNT` episodes in one call, from their stream
    keys (the key chain is hashed on the host); each reset then takes the next episode's rows. An
    episode depends only on its key, never on its batch, so every row is the env's episode to the bit.

    Keys set by anything else (a seeded reset, a restored checkpoint) are noticed: the next
    episodes are then started from those.

    Raises:
        GraphRefused: the batched reset does not return the env's tensors batch-first.
    """

    COUNT = 16

    def __init__(self, core: BatchedCore) -> None:
        super().__init__(_signature(core, "episodes", self.COUNT), lambda: self._trace_batch(core))
        self._written = self._meta["written"]
        mine = [*(getattr(core, name) for name in self._written), *core._episode_tensors()]
        shapes = [tuple(x.shape[1:]) for x in mine]
        if core.num_envs != 1 or shapes != self._meta["shapes"][1:]:
            raise GraphRefused("the batched reset does not return this env's tensors as rows")
        self._rows: list[tuple[torch.Tensor, ...]] = []  # per output: the rows of the episodes started
        self._keys: list[tuple[torch.Tensor, ...]] = []  # key_lo, key_hi, episode and stream_key rows
        self._next = self.COUNT  # the next episode to hand out
        self._given: tuple[torch.Tensor, ...] = ()  # the keys handed out last (the env's, unless replaced)

    def _trace_batch(self, core: BatchedCore) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
        batch = core._sibling(self.COUNT)
        batch.reset(seeds=range(self.COUNT))
        frozen, meta = ResetGraph._trace(batch)
        with torch.no_grad():
            outputs = frozen(batch.stream_key)
        meta["shapes"] = [tuple(x.shape[1:]) for x in outputs]
        if any(x.shape[0] != self.COUNT for x in outputs):
            raise GraphRefused("the batched reset returns tensors that are not batch-first")
        return frozen, meta

    def __call__(self, core: BatchedCore) -> torch.Tensor:
        """Start the next episode of ``core`` (one env); its observation."""
        given = self._given
        if self._next >= self.COUNT or not (
            core.key_lo is given[0] and core.key_hi is given[1] and core.episode is given[2]
        ):
            self._start_batch(core)
        i = self._next
        self._next += 1
        core.key_lo, core.key_hi, core.episode, core.stream_key = self._given = self._keys[i]
        obs, *tensors = (rows[i] for rows in self._rows)
        _start_with(core, self._written, tensors)
        return obs

    def _start_batch(self, core: BatchedCore) -> None:
        """Start the :attr:`COUNT` episodes after the env's current one."""
        keys = torch.tensor(  # (COUNT, 4)
            _rng.next_episodes_on_host(int(core.key_lo), int(core.key_hi), int(core.episode), self.COUNT)
        )
        self._keys = list(zip(*(keys[:, j].split(1) for j in range(4))))
        self._rows = [x.split(1) for x in self._runner()(keys[:, 3].contiguous())]
        self._next = 0
