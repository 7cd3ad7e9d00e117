"""Export: TorchScript and torch.export policies agree with the agent, load without paretochain, refuse damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import DISPATCH_ATTENTION

from paretochain.agents.export import FORMAT, export_policy, load_policy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec
from paretochain.errors import PolicyFileError
from paretochain.evaluate.rollout import rollout

WAREHOUSE = "paretochain/Warehouse-v0"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def trained_agent(config: str) -> MOPPO:
    env = make_vec(WAREHOUSE, 8, config=config, tensors=True, check_actions=False)
    agent = MOPPO(env, {"num_steps": 8, "seed": 1})
    agent.learn(64)
    # spread the output layer so that the greedy action depends on the input
    with torch.no_grad():
        head = agent.actor.head
        layer = head.logits if hasattr(head, "logits") else head.mean
        layer.weight.mul_(100.0)
    return agent


@pytest.fixture(scope="module")
def export_of(tmp_path_factory):
    """``export_of(config) -> (config, agent, policy.pt path)``, trained and exported once per config."""
    cache: dict[str, tuple[str, MOPPO, Path]] = {}

    def get(config: str) -> tuple[str, MOPPO, Path]:
        if config not in cache:
            agent = trained_agent(config)
            path = export_policy(agent, tmp_path_factory.mktemp(config), run={"name": "test"})
            cache[config] = (config, agent, path)
        return cache[config]

    return get


@pytest.fixture(params=["lost_sales", "default", "backorder_box"], ids=["discrete", "multidiscrete", "box"])
def exported(request, export_of):
    return export_of(request.param)


@pytest.fixture
def exported_multidiscrete(export_of):
    return export_of("default")


def random_inputs(agent: MOPPO, n: int = 1000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    mean, std = agent.obs_norm.scale()
    obs = (mean + std * 3 * torch.randn(n, agent.obs_dim, generator=g)).clamp(min=0)
    pref = torch.distributions.Dirichlet(torch.ones(agent.k)).sample((n,))
    mask = torch.ones(n, agent.mask_dim, dtype=torch.bool)
    return obs, pref, mask


def test_torchscript_and_torch_export_policies_match_the_eager_policy(exported) -> None:
    _, agent, path = exported
    obs, pref, mask = random_inputs(agent)
    eager = agent.act(obs, pref, mask)
    scripted = load_policy(path).act(obs, pref, mask)
    program = load_policy(path.with_suffix(".pt2")).act(obs, pref, mask)
    module = agent.export_module()
    direct = module(obs, pref, mask)
    if eager.is_floating_point():
        assert torch.allclose(eager, scripted, atol=1e-5, rtol=0)
        assert torch.allclose(eager, program, atol=1e-5, rtol=0)
        assert torch.allclose(eager, direct, atol=1e-5, rtol=0)
    else:
        assert torch.equal(eager, scripted)
        assert torch.equal(eager, program)
        assert torch.equal(eager, direct)
        assert eager.unique().numel() > 1, "the test needs actions that depend on the input"
    assert eager.shape[0] == 1000


def test_exported_multidiscrete_policy_respects_masks_like_the_agent(exported_multidiscrete) -> None:
    _, agent, path = exported_multidiscrete
    obs, pref, _ = random_inputs(agent, 200)
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(200, agent.mask_dim, generator=g) < 0.6
    mask[:, ::7] = True  # the first choice (order nothing) of each of the 3 dimensions stays allowed
    eager = agent.act(obs, pref, mask)
    for file in (path, path.with_suffix(".pt2")):
        assert torch.equal(load_policy(file).act(obs, pref, mask), eager)
    flat = eager + torch.tensor([0, 7, 14])
    assert bool(mask.gather(1, flat).all())


def test_metadata_describes_env_objectives_layout_and_preferences(exported) -> None:
    _, agent, path = exported
    meta = load_policy(path).metadata
    assert meta["format"] == FORMAT
    assert meta["env_id"] == WAREHOUSE
    assert meta["objective_names"] == agent.objective_names
    assert meta["observation"]["dim"] == agent.obs_dim
    assert set(meta["observation"]["layout"]) == set(agent.core.observation_layout.segments)
    assert meta["action"]["mask_dim"] == agent.mask_dim
    assert meta["env_config"]["horizon"] == agent.core.horizon
    assert "semantics" in meta["preference"] and len(meta["preference"]["default"]) == agent.k
    assert meta["run"] == {"name": "test"}
    assert meta["training"]["global_step"] == agent.global_step
    assert load_policy(path.with_suffix(".pt2")).metadata["objective_names"] == agent.objective_names


def test_loaded_policy_plays_the_same_episodes_as_the_agent(exported) -> None:
    config, agent, path = exported
    env = make_vec(WAREHOUSE, 4, config=config, tensors=True, check_actions=False)
    pref = torch.full((agent.k,), 1.0 / agent.k)
    a = rollout(env, agent, [11, 12, 13, 14], preference=pref)
    b = rollout(env, load_policy(path), [11, 12, 13, 14], preference=pref)
    assert torch.allclose(torch.as_tensor(a.returns), torch.as_tensor(b.returns), rtol=1e-5)


def test_policy_file_loads_in_a_process_that_cannot_import_paretochain(exported_multidiscrete, tmp_path) -> None:
    _, agent, path = exported_multidiscrete
    target = tmp_path / "policy.pt"
    target.write_bytes(path.read_bytes())
    obs, pref, mask = random_inputs(agent, 16)
    torch.save({"obs": obs, "pref": pref, "mask": mask}, tmp_path / "inputs.pt")
    expected = agent.act(obs, pref, mask)
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        root = {str(PROJECT_ROOT)!r}
        # hide the project: its folders and the editable-install hooks (the venv's site-packages stays)
        sys.path[:] = [p for p in sys.path if "__editable__" not in p and not (p.startswith(root) and "site-packages" not in p)]
        sys.path_importer_cache.clear()
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__name__.lower() and "editable" not in getattr(f, "__module__", "")]
        assert importlib.util.find_spec("paretochain") is None, "paretochain is still importable"
        import torch
        files = {{"metadata.json": ""}}
        policy = torch.jit.load("policy.pt", _extra_files=files)
        meta = json.loads(files["metadata.json"])
        x = torch.load("inputs.pt")
        action = policy(x["obs"], x["pref"], x["mask"])
        torch.save(action, "action.pt")
        print(json.dumps({{"objectives": meta["objective_names"], "has_paretochain": "paretochain" in sys.modules}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"objectives": agent.objective_names, "has_paretochain": False}
    assert torch.equal(torch.load(tmp_path / "action.pt"), expected)


def test_truncated_policy_file_raises_a_clear_policy_file_error(exported, tmp_path) -> None:
    _, _, path = exported
    data = path.read_bytes()
    for suffix in (".pt", ".pt2"):
        source = path.with_suffix(suffix).read_bytes() if suffix == ".pt2" else data
        broken = tmp_path / f"truncated{suffix}"
        broken.write_bytes(source[: len(source) // 2])
        with pytest.raises(PolicyFileError, match="truncated or corrupted"):
            load_policy(broken)


def test_corrupted_weights_are_detected_by_the_digest(exported, tmp_path) -> None:
    _, _, path = exported
    import zipfile

    broken = tmp_path / "corrupted.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            payload = src.read(info)
            if "/data/" in info.filename and len(payload) >= 8:
                payload = bytes(b ^ 0x55 for b in payload[:8]) + payload[8:]
            dst.writestr(info, payload)
    with pytest.raises(PolicyFileError, match="corrupted"):
        load_policy(broken)


def test_flipped_bytes_in_the_middle_of_the_file_raise_a_policy_file_error(exported, tmp_path) -> None:
    _, _, path = exported
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    broken = tmp_path / "flipped.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(PolicyFileError):
        load_policy(broken)


def test_files_that_are_not_policies_are_refused_by_name(tmp_path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(PolicyFileError, match=r"notes\.pt"):
        load_policy(text)
    plain = tmp_path / "plain.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(plain))
    with pytest.raises(PolicyFileError, match=r"no metadata\.json"):
        load_policy(plain)
    wrong = tmp_path / "wrong.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(
        str(wrong), _extra_files={"metadata.json": json.dumps({"format": "other/9"})}
    )
    with pytest.raises(PolicyFileError, match="format"):
        load_policy(wrong)
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_policy(tmp_path / "missing.pt")


@pytest.mark.parametrize("env_id", ["paretochain/Dispatch-v0", "paretochain/Pricing-v0"])
def test_exports_of_masked_families_match_the_eager_policy_on_visited_states(env_id: str, tmp_path) -> None:
    env = make_vec(env_id, 32, tensors=True, check_actions=False)
    overrides = DISPATCH_ATTENTION if env_id.endswith("Dispatch-v0") else {}
    agent = MOPPO(env, {"num_steps": 4, "update_epochs": 1, **overrides})
    agent.learn(128)
    # visited observations and their masks, under random allowed actions (stepped like the views step: inference mode)
    core = env.core
    observations, masks = [], []
    with torch.inference_mode():
        core.reset(seeds=list(range(32)))
        for _ in range(8):
            obs, mask = core.observe(), core.action_masks()
            observations.append(obs)
            masks.append(mask)
            random_logits = torch.where(mask, torch.rand(mask.shape), torch.full(mask.shape, -1.0))
            if env_id.endswith("Dispatch-v0"):
                action = random_logits.argmax(1)
            else:
                action = random_logits.view(32, -1, int(env.single_action_space.nvec.max())).argmax(-1)
            core.step(action, check=False)
    obs, mask = torch.cat(observations), torch.cat(masks)
    pref = torch.distributions.Dirichlet(torch.ones(agent.k)).sample((obs.shape[0],))
    path = export_policy(agent, tmp_path)
    eager = agent.act(obs, pref, mask)
    assert torch.equal(load_policy(path).act(obs, pref, mask), eager)
    assert torch.equal(load_policy(path.with_suffix(".pt2")).act(obs, pref, mask), eager)
    assert load_policy(path).metadata["env_id"] == env_id
