"""Export trained policies for production: ``policy.pt`` (TorchScript) and ``policy.pt2`` (``torch.export``).

Both files hold one deterministic function

    forward(obs: Tensor, preference: Tensor, action_mask: Tensor) -> Tensor

- ``obs``: float32 ``(B, obs_dim)`` in the environment's flat observation layout;
- ``preference``: float32 ``(B, k)``, weights over the objectives (order in the metadata);
- ``action_mask``: bool ``(B, mask_dim)``: the environment's mask, or all True where it has none
  (``mask_dim`` is in the metadata; for Box actions it is the action dimension and is ignored);
- returns int64 ``(B,)`` (Discrete), int64 ``(B, d)`` (MultiDiscrete) or float32 ``(B, d)`` (Box,
  inside the bounds).

Observation normalisation, action post-processing and the input checks of
:class:`CheckedPolicy` (shapes, dtypes, finite values, at least one allowed action)
are inside the file. ``metadata.json`` travels inside both files (an ``_extra_files``
entry): the environment id and config, objective names and order, observation and
action layout, the meaning of every action index and the mask rule
(:mod:`~paretochain.agents.action_meaning`), preference semantics, library and torch
versions, the training run, a SHA-256 of the weights and one of the metadata itself,
which :func:`load_policy` checks. :func:`load_policy` also inspects a file before torch
reads it and refuses any that would make torch unpickle more than tensors.
See ``docs/production.md``.

Production code needs only ``torch``::

    files = {"metadata.json": ""}
    policy = torch.jit.load("policy.pt", _extra_files=files)
    metadata = json.loads(files["metadata.json"])
    action = policy(obs, preference, action_mask)
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import pickletools
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from paretochain.agents.action_meaning import describe_action
from paretochain.errors import ParetochainError, PolicyFileError

if TYPE_CHECKING:
    from paretochain.agents.protocol import Agent

#: Version tag of the file layout written here.
FORMAT = "paretochain.policy/1"
#: Metadata entry holding :func:`metadata_digest`.
METADATA_DIGEST = "metadata_sha256"


class PolicyModule(nn.Module):
    """``forward(obs, preference, action_mask) -> action`` with normalisation inside (CPU, eval mode).

    The one export module of every agent (MO-PPO's actor, MO-DQN's
    :class:`~paretochain.agents.networks.EnvelopeQActor`, the SB3 adapter's
    :class:`~paretochain.agents.sb3.train.SB3Actor`).

    Args:
        actor: a module ``(normalised obs, preference, mask) -> deterministic action``
            (e.g. :class:`~paretochain.agents.networks.Actor`).
        obs_mean, obs_std: ``(obs_dim,)`` normalisation statistics (zeros and ones, with an
            infinite ``clip``, for an agent that does not normalise).
        clip: bound of normalised observations.
        detached: copy the actor to the CPU in eval mode (an export); False uses it as it is,
            on its device (an agent acting with its live networks).
    """

    def __init__(
        self, actor: nn.Module, obs_mean: torch.Tensor, obs_std: torch.Tensor, clip: float = 10.0, detached: bool = True
    ) -> None:
        super().__init__()
        self.actor = copy.deepcopy(actor).cpu().eval() if detached else actor
        device = torch.device("cpu") if detached else obs_mean.device
        self.register_buffer("obs_mean", obs_mean.detach().to(device, torch.float32).clone())
        self.register_buffer("obs_std", obs_std.detach().to(device, torch.float32).clone())
        self.clip = float(clip)

    if TYPE_CHECKING:  # buffers, declared for type checkers only (TorchScript reads class annotations)
        obs_mean: torch.Tensor
        obs_std: torch.Tensor

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        x = ((obs - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        return self.actor(x, preference, action_mask)


class PolicyInputError(ParetochainError, ValueError):
    """An input given to an exported policy has the wrong shape or dtype, holds NaN or inf, or a mask allows nothing."""


class CheckedPolicy(nn.Module):
    """An export module behind the input checks of the production contract.

    Before acting, ``forward(obs, preference, action_mask)`` checks that

    - ``obs`` is float32 ``(B, obs_dim)``, ``preference`` float32 ``(B, k)`` and
      ``action_mask`` bool ``(B, mask_dim)``, with the same ``B``;
    - ``obs`` and ``preference`` hold finite values only;
    - (Discrete and MultiDiscrete) every row of the mask allows at least one choice
      in each action dimension.

    and raises instead of acting. Nothing is converted: a float64 observation or a
    float mask is refused (by both ``policy.pt`` and ``policy.pt2``). Every message
    starts with ``policy input:``. In TorchScript the checks are Python ``raise``
    statements; in a ``torch.export`` program shapes are the program's own guards,
    dtypes ``aten._assert_tensor_metadata`` and values ``aten._assert_async``.

    Args:
        policy: the agent's export module ``forward(obs, preference, action_mask) -> action``.
        obs_dim: observation length.
        k: number of objectives (preference length).
        mask_dim: mask length (``n``, ``sum(nvec)``, or the Box size, where the mask is ignored).
        nvec: choices per action dimension for Discrete (``[n]``) and MultiDiscrete; empty for Box.
    """

    def __init__(self, policy: nn.Module, obs_dim: int, k: int, mask_dim: int, nvec: list[int]) -> None:
        super().__init__()
        self.policy = policy
        self.obs_dim = int(obs_dim)
        self.k = int(k)
        self.mask_dim = int(mask_dim)
        self.check_mask = len(nvec) > 0
        # Box: one unused entry keeps the list typed for TorchScript
        self.nvec = [int(n) for n in nvec] if nvec else [self.mask_dim]

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        self._check_shapes(obs, preference, action_mask)
        if torch.jit.is_scripting():
            self._check_scripted(obs, preference, action_mask)
        else:
            self._check_traced(obs, preference, action_mask)
        return self.policy(obs, preference, action_mask)

    def _check_shapes(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> None:
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"policy input: obs must have shape (B, {self.obs_dim}), got {list(obs.shape)}")
        if preference.dim() != 2 or preference.shape[1] != self.k:
            raise ValueError(f"policy input: preference must have shape (B, {self.k}), got {list(preference.shape)}")
        if action_mask.dim() != 2 or action_mask.shape[1] != self.mask_dim:
            raise ValueError(
                f"policy input: action_mask must have shape (B, {self.mask_dim}), got {list(action_mask.shape)}"
            )
        if preference.shape[0] != obs.shape[0] or action_mask.shape[0] != obs.shape[0]:
            raise ValueError(
                f"policy input: obs, preference and action_mask must have the same batch size, got "
                f"{obs.shape[0]}, {preference.shape[0]} and {action_mask.shape[0]}"
            )

    def _mask_allows_something(self, action_mask: torch.Tensor) -> torch.Tensor:
        allowed = [branch.any(1) for branch in torch.split(action_mask, self.nvec, dim=1)]
        return torch.stack(allowed, dim=1).all()

    @torch.jit.unused
    def _check_traced(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> None:
        torch.ops.aten._assert_tensor_metadata.default(obs, dtype=torch.float32)
        torch.ops.aten._assert_tensor_metadata.default(preference, dtype=torch.float32)
        torch.ops.aten._assert_tensor_metadata.default(action_mask, dtype=torch.bool)
        torch._assert_async(torch.isfinite(obs).all(), "policy input: obs holds NaN or inf")
        torch._assert_async(torch.isfinite(preference).all(), "policy input: preference holds NaN or inf")
        if self.check_mask:
            torch._assert_async(
                self._mask_allows_something(action_mask),
                "policy input: a row of action_mask allows no action (in some action dimension)",
            )

    def _check_scripted(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> None:
        if obs.dtype != torch.float32:
            raise ValueError("policy input: obs must be float32")
        if preference.dtype != torch.float32:
            raise ValueError("policy input: preference must be float32")
        if action_mask.dtype != torch.bool:
            raise ValueError("policy input: action_mask must be bool")
        if not bool(torch.isfinite(obs).all()):
            raise ValueError("policy input: obs holds NaN or inf")
        if not bool(torch.isfinite(preference).all()):
            raise ValueError("policy input: preference holds NaN or inf")
        if self.check_mask and not bool(self._mask_allows_something(action_mask)):
            raise ValueError("policy input: a row of action_mask allows no action (in some action dimension)")


def weights_digest(module: nn.Module | dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and bytes of every parameter and buffer, in name order."""
    state = module if isinstance(module, dict) else module.state_dict()
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def space_description(space: spaces.Space) -> dict[str, Any]:
    """The action space as JSON: kind, sizes, bounds and the mask length."""
    if isinstance(space, spaces.Discrete):
        return {"kind": "Discrete", "n": int(space.n), "mask_dim": int(space.n), "dtype": "int64", "shape": []}
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).reshape(-1)
        return {
            "kind": "MultiDiscrete",
            "nvec": nvec.tolist(),
            "mask_dim": int(nvec.sum()),
            "dtype": "int64",
            "shape": [int(nvec.size)],
        }
    if isinstance(space, spaces.Box):
        return {
            "kind": "Box",
            "low": np.asarray(space.low).reshape(-1).tolist(),
            "high": np.asarray(space.high).reshape(-1).tolist(),
            "mask_dim": int(np.prod(space.shape)),
            "dtype": "float32",
            "shape": list(space.shape),
        }
    raise TypeError(f"cannot describe action space {space}")


def env_id_of(core: Any) -> str | None:
    """The registered id whose environment class uses this core's class, if any."""
    from paretochain.envs.registration import FAMILIES

    for env_id, record in FAMILIES.items():
        try:
            if record.core_class is type(core):
                return env_id
        except Exception:  # a family whose module does not import yet
            continue
    return None


def build_metadata(agent: Agent, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``metadata.json`` of an agent with an ``env`` (batched view) and ``export_metadata()``."""
    from paretochain import __version__

    env = agent.env
    core = env.core
    config = getattr(env, "config", None) or getattr(core, "config", None)
    env_id = env_id_of(core)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "signature": "forward(obs: float32 (B, obs_dim), preference: float32 (B, k), action_mask: bool (B, mask_dim)) -> action",
        "library_version": __version__,
        "torch_version": torch.__version__,
        "env_id": env_id,
        "env_config": None if config is None else config.model_dump(mode="json"),
        "objectives": core.objectives.to_list(),
        "objective_names": list(core.objectives.names),
        "observation": {
            "dim": int(core.single_observation_space.shape[0]),
            "layout": core.observation_layout.to_dict(),
        },
        "action": {**space_description(core.single_action_space), **describe_action(core, env_id)},
        "has_action_masks": core.action_masks() is not None,
        "run": run or {},
    }
    meta.update(agent.export_metadata())
    return meta


def _example_inputs(meta: dict[str, Any], batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = len(meta["objective_names"])
    obs = torch.rand(batch, meta["observation"]["dim"])
    pref = torch.full((batch, k), 1.0 / k)
    mask = torch.ones(batch, meta["action"]["mask_dim"], dtype=torch.bool)
    return obs, pref, mask


def export_policy(agent: Agent, directory: str | Path, run: dict[str, Any] | None = None, pt2: bool = True) -> Path:
    """Write ``policy.pt`` (and ``policy.pt2``) for an agent into ``directory``; return the ``policy.pt`` path.

    Args:
        agent: an :class:`~paretochain.agents.protocol.Agent` (its ``export_module()``,
            ``export_metadata()`` and ``env``, the batched view it trained on).
        directory: output folder (created if missing).
        run: information about the training run stored in the metadata (name, directory, config).
        pt2: also write the ``torch.export`` program ``policy.pt2``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = build_metadata(agent, run)
    module = checked_module(agent.export_module().cpu().eval(), meta)
    scripted = torch.jit.script(module)
    program = export_program(module, meta) if pt2 else None
    meta["weights_sha256"] = {"policy.pt": weights_digest(dict(scripted.state_dict()))}
    if program is not None:
        meta["weights_sha256"]["policy.pt2"] = weights_digest(dict(program.state_dict))
    meta[METADATA_DIGEST] = metadata_digest(meta)
    meta_json = json.dumps(meta, indent=2)
    path = directory / "policy.pt"
    scripted.save(str(path), _extra_files={"metadata.json": meta_json})
    if program is not None:
        torch.export.save(program, str(directory / "policy.pt2"), extra_files={"metadata.json": meta_json})
    return path


def checked_module(module: nn.Module, meta: dict[str, Any]) -> CheckedPolicy:
    """``module`` behind the input checks of :class:`CheckedPolicy`, sized by the metadata."""
    action = meta["action"]
    nvec = {"Discrete": [action.get("n", 0)], "MultiDiscrete": action.get("nvec", [])}.get(action["kind"], [])
    return CheckedPolicy(
        module, meta["observation"]["dim"], len(meta["objective_names"]), action["mask_dim"], list(nvec)
    )


def metadata_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of the metadata without its own digest entry (canonical JSON: sorted keys, no spaces).

    The metadata holds the weights' digests, so this one checksum covers the weights too.
    """
    body = {key: value for key, value in meta.items() if key != METADATA_DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def export_program(module: nn.Module, meta: dict[str, Any]) -> torch.export.ExportedProgram:
    """A ``torch.export`` program of ``module`` with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    example = _example_inputs(meta, 4)
    dynamic = {"obs": {0: batch}, "preference": {0: batch}, "action_mask": {0: batch}}
    with torch.no_grad():
        return torch.export.export(module, example, dynamic_shapes=dynamic, strict=False)


class LoadedPolicy:
    """A policy loaded from ``policy.pt`` or ``policy.pt2``, following the policy contract.

    Attributes:
        module: the callable ``forward(obs, preference, action_mask)``.
        metadata: the parsed ``metadata.json``.
        path: where it was loaded from.
    """

    def __init__(self, module: Any, metadata: dict[str, Any], path: Path) -> None:
        self.module = module
        self.metadata = metadata
        self.path = path
        self.k = len(metadata["objective_names"])
        self.mask_dim = int(metadata["action"]["mask_dim"])
        self.obs_dim = int(metadata["observation"]["dim"])
        self.default_preference = torch.as_tensor(
            metadata.get("preference", {}).get("default", [1.0 / self.k] * self.k), dtype=torch.float32
        )

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic actions for ``obs`` ``(B, obs_dim)``; the result is on ``obs``'s device.

        Conveniences over the file's own ``forward``: ``obs`` and ``preference`` are converted
        to float32, ``preference`` defaults to the metadata's and one row ``(k,)`` serves the
        whole batch, the mask defaults to all True and an integer 0/1 mask becomes bool.
        Everything else is checked by the file itself (see :class:`CheckedPolicy`).

        Raises:
            PolicyInputError: a shape or dtype is wrong, ``obs`` or ``preference`` holds NaN
                or inf, or a mask row allows no action.
        """
        obs = torch.as_tensor(obs)
        device = obs.device
        obs = obs.cpu().to(torch.float32)
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise PolicyInputError(f"policy input: obs must have shape (B, {self.obs_dim}), got {list(obs.shape)}")
        n = obs.shape[0]
        if preference is None:
            pref = self.default_preference.expand(n, self.k)
        else:
            pref = torch.as_tensor(preference).cpu().to(torch.float32)
            if pref.shape not in ((self.k,), (1, self.k), (n, self.k)):
                raise PolicyInputError(
                    f"policy input: preference must have shape ({self.k},) or (B, {self.k}), got {list(pref.shape)}"
                )
            pref = pref.expand(n, self.k)
        if action_mask is None:
            mask = torch.ones(n, self.mask_dim, dtype=torch.bool)
        else:
            mask = torch.as_tensor(action_mask).cpu()
            if mask.is_floating_point() or mask.is_complex():
                raise PolicyInputError(f"policy input: action_mask must be bool, got {mask.dtype}")
            mask = mask.to(torch.bool)
            if mask.shape != (n, self.mask_dim):
                raise PolicyInputError(
                    f"policy input: action_mask must have shape ({n}, {self.mask_dim}), got {list(mask.shape)}"
                )
        try:
            action = self.module(obs, pref.contiguous(), mask)
        except Exception as exc:  # the file's own checks: TorchScript and torch.export raise different types
            text = str(exc)
            if "policy input:" not in text:
                raise
            line = next(ln for ln in reversed(text.splitlines()) if "policy input:" in ln)
            raise PolicyInputError(line[line.index("policy input:") :].strip()) from None
        return action.to(device)

    __call__ = act


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load ``policy.pt`` (TorchScript) or ``policy.pt2`` (``torch.export``) with its metadata, on the CPU.

    The file is inspected before torch reads it (nothing is unpickled): pickles inside may
    name only tensor-rebuilding callables, and a ``.pt2`` archive may hold only the entries
    ``torch.export`` writes, with no pickled weight or constant.

    Raises:
        PolicyFileError: the file is missing, truncated, corrupted, not a policy file
            of this library, refused by the inspection (the reason is named), a ``.pt2``
            of another torch minor version, or its weights or metadata do not match the
            checksums in its metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file {path} does not exist")
    files = {"metadata.json": ""}
    kind = "torch.export program" if path.suffix == ".pt2" else "TorchScript file"
    data = path.read_bytes()
    if path.suffix == ".pt2":
        _check_pt2_archive(path, data)
    elif data[:2] == b"PK":
        _check_torch_save_zip(path, "", data, torchscript=True)
    try:
        if path.suffix == ".pt2":
            program = torch.export.load(str(path), extra_files=files)
            module: Any = program.module()
            state = dict(program.state_dict)
        else:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
            state = dict(module.state_dict())
    except Exception as exc:  # torch raises RuntimeError / ValueError / zipfile errors for damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PolicyFileError(f"{path} is not a readable {kind} (truncated or corrupted?): {reason}") from None
    raw = files["metadata.json"]
    if not raw:
        raise PolicyFileError(
            f"{path} has no metadata.json: it is not a paretochain policy file (export it with paretochain.agents.export.export_policy)"
        )
    try:
        metadata = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{path}: metadata.json is not valid JSON ({exc}); the file is corrupted") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise PolicyFileError(f"{path}: metadata format {found!r} is not {FORMAT!r}")
    if METADATA_DIGEST not in metadata:
        raise PolicyFileError(
            f"{path}: metadata.json has no checksum ({METADATA_DIGEST}); export the policy again with this version"
        )
    if metadata[METADATA_DIGEST] != metadata_digest(metadata):
        raise PolicyFileError(
            f"{path}: metadata.json does not match its checksum ({METADATA_DIGEST}); "
            "it was edited or corrupted after export"
        )
    digests = metadata.get("weights_sha256") or {}
    expected = digests.get("policy.pt2" if path.suffix == ".pt2" else "policy.pt")
    if expected is not None:
        got = _digest_loaded(state)
        if got != expected:
            raise PolicyFileError(
                f"{path}: the weights do not match the digest in metadata.json; the file is corrupted"
            )
    return LoadedPolicy(module, metadata, path)


# ---------------------------------------------------------------------------------------------- inspection
#: Callables a policy file's pickles may name: tensor rebuilding, storages and ordered dicts.
_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"),
}
#: Opcodes that reach callables other than through GLOBAL / STACK_GLOBAL (the copyreg extension registry).
_EXTENSION_OPCODES = {"EXT1", "EXT2", "EXT4"}
#: Entries of a ``torch.export`` archive, below its top folder (anything else is refused).
_PT2_ENTRIES = ("archive_format", "archive_version", "byteorder", "version", ".data/version", ".data/serialization_id")
_PT2_FOLDERS = ("models/", "data/weights/", "data/constants/", "data/sample_inputs/", "extra/")


def _safe_global(module: str, name: str, torchscript: bool) -> bool:
    if (module, name) in _SAFE_GLOBALS:
        return True
    if module == "torch" and name.endswith("Storage") and name.isidentifier():
        return True
    # TorchScript's own unpickler builds these from the archive's compiled code, never from Python
    return torchscript and (module.startswith("__torch__.") or module == "torch.jit._pickle")


def pickle_refusal(data: bytes, torchscript: bool = False) -> str | None:
    """Why a pickle must not be loaded (it names a callable outside the allowed set), or ``None``.

    The opcodes are read with :mod:`pickletools`; nothing is unpickled. Allowed callables
    rebuild tensors, storages and ordered dicts; a TorchScript archive may also name its
    own compiled classes (``__torch__.*``) and ``torch.jit._pickle`` helpers.
    """
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # values pushed lately, enough to resolve STACK_GLOBAL's two strings
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in _EXTENSION_OPCODES:
                return f"opcode {name} (the copyreg extension registry)"
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                if not _safe_global(module, attr, torchscript):
                    return f"callable {module}.{attr}"
                recent.append(None)
            elif name == "STACK_GLOBAL":
                pushed: list[Any] = recent[-2:] if len(recent) >= 2 else [None, None]
                owner, attr = pushed
                if not (isinstance(owner, str) and isinstance(attr, str) and _safe_global(owner, attr, torchscript)):
                    return f"callable {owner}.{attr}"
                recent.append(None)
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(str(arg))] = recent[-1] if recent else None
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                recent.append(memo.get(int(str(arg))))
            elif "UNICODE" in name or name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                recent.append(arg)
            else:
                recent.append(None)
            del recent[:-4]
    except Exception as exc:  # pickletools raises ValueError and others on malformed data
        return f"a malformed pickle ({exc})"
    return None


def _refuse(path: Path, reason: str) -> PolicyFileError:
    return PolicyFileError(f"{path}: refused to load: {reason}; a policy file holds tensors and plain data only")


def _check_torch_save_zip(path: Path, entry: str, data: bytes, torchscript: bool) -> None:
    """Refuse a ``torch.save`` zip (or a TorchScript archive) whose pickles name unsafe callables."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if torchscript:
            return  # TorchScript's loader fails on a damaged archive; it never unpickles through Python
        raise _refuse(path, f"{entry} is not a readable zip archive ({exc})") from None
    for name, payload in members:
        if name.endswith(".pkl"):
            why = pickle_refusal(payload, torchscript)
            if why is not None:
                raise _refuse(path, f"its pickle {entry}{name} names {why}")


def _check_pt2_archive(path: Path, data: bytes) -> None:
    """Refuse a ``torch.export`` archive that would make torch unpickle anything but tensors."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        # refused before torch's own reader, which might read what zipfile cannot
        raise PolicyFileError(
            f"{path} is not a readable torch.export program (truncated or corrupted?): {exc}"
        ) from None
    tops = {name.split("/", 1)[0] for name in entries}
    if len(tops) != 1:
        raise _refuse(path, f"expected one top folder, found {sorted(tops)}")
    top = tops.pop() + "/"
    for name in entries:
        rel = name[len(top) :]
        if rel not in _PT2_ENTRIES and not rel.startswith(_PT2_FOLDERS):
            raise _refuse(path, f"unexpected entry {name!r}")
        if rel.startswith("data/weights/") and rel.endswith(".pt"):
            raise _refuse(path, f"legacy pickled weights {name!r}")
    for name in entries:
        rel = name[len(top) :]
        if rel.endswith("_config.json") and rel.startswith(("data/weights/", "data/constants/")):
            try:
                config = json.loads(archive.read(name)).get("config", {})
            except (ValueError, AttributeError) as exc:
                raise _refuse(path, f"{name} is not valid JSON ({exc})") from None
            for fqn, payload in config.items():
                if not isinstance(payload, dict):
                    raise _refuse(path, f"{name} entry {fqn!r} is not a mapping")
                if payload.get("use_pickle"):
                    raise _refuse(path, f"{fqn!r} is stored as a pickle ({name})")
                if rel.startswith("data/constants/") and not str(payload.get("path_name", "")).startswith("tensor"):
                    raise _refuse(path, f"constant {fqn!r} is an object, not a tensor ({name})")
        elif rel.startswith("data/sample_inputs/"):
            _check_torch_save_zip(path, name + ":", archive.read(name), torchscript=False)
    if top + "extra/metadata.json" in entries:
        _check_pt2_torch_version(path, archive.read(top + "extra/metadata.json"))


def _minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _check_pt2_torch_version(path: Path, raw: bytes) -> None:
    """Refuse a ``policy.pt2`` written by another torch minor version (torch.export programs do not carry over)."""
    try:
        written = json.loads(raw).get("torch_version")
    except (ValueError, AttributeError):
        return  # a damaged metadata.json is reported after loading
    if isinstance(written, str) and _minor(written) != _minor(torch.__version__):
        raise PolicyFileError(
            f"{path} was written by torch {written} and loads only on torch {_minor(written)}.x "
            f"(this is torch {torch.__version__}); load policy.pt instead, which older and newer torch versions read"
        )


def _digest_loaded(state: dict[str, torch.Tensor]) -> str:
    return weights_digest({name: t for name, t in state.items() if isinstance(t, torch.Tensor)})
