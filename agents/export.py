"""Export trained policies for production: ``policy.pt`` (TorchScript) and ``policy.pt2`` (``torch.export``).

Both files hold one deterministic function

    forward(obs: Tensor, preference: Tensor, action_mask: Tensor) -> Tensor

- ``obs``: float32 ``(B, obs_dim)`` in the environment's flat observation layout;
- ``preference``: float32 ``(B, k)``, weights over the objectives (order in the metadata);
- ``action_mask``: bool ``(B, mask_dim)``: the environment's mask, or all True where it has none
  (``mask_dim`` is in the metadata; for Box actions it is the action dimension and is ignored);
- returns int64 ``(B,)`` (Discrete), int64 ``(B, d)`` (MultiDiscrete) or float32 ``(B, d)`` (Box,
  inside the bounds).

Observation normalisation and action post-processing are inside the file.
``metadata.json`` travels inside both files (an ``_extra_files`` entry): the
environment id and config, objective names and order, observation and action
layout, preference semantics, library and torch versions, the training run, and a
SHA-256 of the weights that :func:`load_policy` checks.

Production code needs only ``torch``::

    files = {"metadata.json": ""}
    policy = torch.jit.load("policy.pt", _extra_files=files)
    metadata = json.loads(files["metadata.json"])
    action = policy(obs, preference, action_mask)
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from paretochain.errors import PolicyFileError

#: Version tag of the file layout written here.
FORMAT = "paretochain.policy/1"


class PolicyModule(nn.Module):
    """``forward(obs, preference, action_mask) -> action`` with normalisation inside (CPU, eval mode).

    Args:
        actor: a module ``(normalised obs, preference, mask) -> deterministic action``
            (e.g. :class:`~paretochain.agents.networks.Actor`); it is copied.
        obs_mean, obs_std: ``(obs_dim,)`` normalisation statistics.
        clip: bound of normalised observations.
    """

    def __init__(self, actor: nn.Module, obs_mean: torch.Tensor, obs_std: torch.Tensor, clip: float = 10.0) -> None:
        super().__init__()
        self.actor = copy.deepcopy(actor).cpu().eval()
        self.register_buffer("obs_mean", obs_mean.detach().to("cpu", torch.float32).clone())
        self.register_buffer("obs_std", obs_std.detach().to("cpu", torch.float32).clone())
        self.clip = float(clip)

    if TYPE_CHECKING:  # buffers, declared for type checkers only (TorchScript reads class annotations)
        obs_mean: torch.Tensor
        obs_std: torch.Tensor

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        x = ((obs - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        return self.actor(x, preference, action_mask)


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
    from paretochain.envs.registration import ENTRY_POINTS, env_class

    for env_id in ENTRY_POINTS:
        try:
            if env_class(env_id).core_cls is type(core):
                return env_id
        except Exception:  # a family whose module does not import yet
            continue
    return None


def build_metadata(agent: Any, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``metadata.json`` of an agent with an ``env`` (batched view) and ``export_metadata()``."""
    from paretochain import __version__

    env = agent.env
    core = env.core
    config = getattr(env, "config", None) or getattr(core, "config", None)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "signature": "forward(obs: float32 (B, obs_dim), preference: float32 (B, k), action_mask: bool (B, mask_dim)) -> action",
        "library_version": __version__,
        "torch_version": torch.__version__,
        "env_id": env_id_of(core),
        "env_config": None if config is None else config.model_dump(mode="json"),
        "objectives": core.objectives.to_list(),
        "objective_names": list(core.objectives.names),
        "observation": {
            "dim": int(core.single_observation_space.shape[0]),
            "layout": core.observation_layout.to_dict(),
        },
        "action": space_description(core.single_action_space),
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


def export_policy(agent: Any, directory: str | Path, run: dict[str, Any] | None = None, pt2: bool = True) -> Path:
    """Write ``policy.pt`` (and ``policy.pt2``) for an agent into ``directory``; return the ``policy.pt`` path.

    Args:
        agent: offers ``export_module()``, ``export_metadata()`` and ``env`` (the batched
            view it trained on): :class:`~paretochain.agents.mo_ppo.MOPPO`, or an SB3 adapter
            following the same contract.
        directory: output folder (created if missing).
        run: information about the training run stored in the metadata (name, directory, config).
        pt2: also write the ``torch.export`` program ``policy.pt2``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = agent.export_module().cpu().eval()
    meta = build_metadata(agent, run)
    scripted = torch.jit.script(module)
    program = export_program(module, meta) if pt2 else None
    meta["weights_sha256"] = {"policy.pt": weights_digest(dict(scripted.state_dict()))}
    if program is not None:
        meta["weights_sha256"]["policy.pt2"] = weights_digest(dict(program.state_dict))
    meta_json = json.dumps(meta, indent=2)
    path = directory / "policy.pt"
    scripted.save(str(path), _extra_files={"metadata.json": meta_json})
    if program is not None:
        torch.export.save(program, str(directory / "policy.pt2"), extra_files={"metadata.json": meta_json})
    return path


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
        self.default_preference = torch.as_tensor(
            metadata.get("preference", {}).get("default", [1.0 / self.k] * self.k), dtype=torch.float32
        )

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic actions; ``preference`` defaults to the metadata's, the mask to all True."""
        obs = torch.as_tensor(obs, dtype=torch.float32)
        device = obs.device
        obs = obs.cpu()
        n = obs.shape[0]
        pref = (
            self.default_preference.expand(n, self.k)
            if preference is None
            else torch.as_tensor(preference, dtype=torch.float32).cpu().expand(n, self.k)
        )
        mask = (
            torch.ones(n, self.mask_dim, dtype=torch.bool)
            if action_mask is None
            else torch.as_tensor(action_mask).cpu().to(torch.bool)
        )
        return self.module(obs, pref.contiguous(), mask).to(device)

    __call__ = act


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load ``policy.pt`` (TorchScript) or ``policy.pt2`` (``torch.export``) with its metadata, on the CPU.

    Raises:
        PolicyFileError: the file is missing, truncated, corrupted, not a policy file
            of this library, or its weights do not match the digest in its metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file {path} does not exist")
    files = {"metadata.json": ""}
    kind = "torch.export program" if path.suffix == ".pt2" else "TorchScript file"
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
    digests = metadata.get("weights_sha256") or {}
    expected = digests.get("policy.pt2" if path.suffix == ".pt2" else "policy.pt")
    if expected is not None:
        got = _digest_loaded(state)
        if got != expected:
            raise PolicyFileError(
                f"{path}: the weights do not match the digest in metadata.json; the file is corrupted"
            )
    return LoadedPolicy(module, metadata, path)


def _digest_loaded(state: dict[str, torch.Tensor]) -> str:
    return weights_digest({name: t for name, t in state.items() if isinstance(t, torch.Tensor)})
