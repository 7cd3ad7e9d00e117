"""The production contract of exported policies: inputs checked inside the file, no file runs code, files bound to their metadata."""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from paretochain.agents.export import LoadedPolicy, PolicyInputError, export_policy, load_policy
from paretochain.agents.mo_dqn import MODQNAgent
from paretochain.agents.mo_ppo import MOPPO
from paretochain.agents.sb3 import SB3Agent
from paretochain.cli import main
from paretochain.envs import make_vec
from paretochain.errors import PolicyFileError

WAREHOUSE = "paretochain/Warehouse-v0"
DISPATCH = "paretochain/Dispatch-v0"

#: (agent, Warehouse config): every action kind each exporter writes.
EXPORTS = [
    ("mo_ppo", "lost_sales"),
    ("mo_ppo", "default"),
    ("mo_ppo", "backorder_box"),
    ("mo_dqn", "lost_sales"),
    ("mo_dqn", "default"),
    ("sb3_ppo", "lost_sales"),
    ("sb3_dqn", "lost_sales"),
    ("sb3_maskable_ppo", "default"),
    ("sb3_ppo", "backorder_box"),
]
KIND = {"lost_sales": "Discrete", "default": "MultiDiscrete", "backorder_box": "Box"}


def build_agent(agent: str, env_id: str, config: str | None) -> Any:
    env = make_vec(env_id, 2, config=config, tensors=True, check_actions=False)
    if agent == "mo_ppo":
        return MOPPO(env, {"num_steps": 4, "seed": 1})
    if agent == "mo_dqn":
        return MODQNAgent(env, {"learning_starts": 8, "batch_size": 8}, device="cpu")
    algo = agent.removeprefix("sb3_")
    return SB3Agent(env, {"algo": algo, "n_steps": 8, "batch_size": 8, "n_epochs": 1}, device="cpu")


@pytest.fixture(scope="module")
def exported_files(tmp_path_factory) -> Callable[[str, str], Path]:
    """``get(agent, config) -> policy.pt``: a Warehouse policy exported once per module."""
    cache: dict[tuple[str, str], Path] = {}

    def get(agent: str, config: str) -> Path:
        if (agent, config) not in cache:
            folder = tmp_path_factory.mktemp(f"{agent}_{config}")
            cache[(agent, config)] = export_policy(build_agent(agent, WAREHOUSE, config), folder, run={"name": "t"})
        return cache[(agent, config)]

    return get


@pytest.fixture(params=EXPORTS, ids=[f"{a}-{KIND[c]}" for a, c in EXPORTS])
def policy_pt(request, exported_files) -> Path:
    return exported_files(*request.param)


def valid_inputs(policy: LoadedPolicy, n: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    meta = policy.metadata
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(n, meta["observation"]["dim"], generator=g) * 10
    pref = torch.full((n, policy.k), 1.0 / policy.k)
    mask = torch.ones(n, policy.mask_dim, dtype=torch.bool)
    return obs, pref, mask


def both_files(policy_pt: Path) -> list[LoadedPolicy]:
    return [load_policy(policy_pt), load_policy(policy_pt.with_suffix(".pt2"))]


# ---------------------------------------------------------------------------------------------- input checks
def test_both_files_act_on_valid_inputs_with_the_same_actions(policy_pt: Path) -> None:
    pt, pt2 = both_files(policy_pt)
    obs, pref, mask = valid_inputs(pt)
    a, b = pt.module(obs, pref, mask), pt2.module(obs, pref, mask)
    assert a.shape[0] == 5
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("what", ["obs", "preference"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_observations_and_preferences_are_refused_inside_both_files(
    policy_pt: Path, what: str, bad: float
) -> None:
    for policy in both_files(policy_pt):
        obs, pref, mask = valid_inputs(policy)
        (obs if what == "obs" else pref)[2, 0] = bad
        with pytest.raises(Exception, match=f"policy input: {what} holds NaN or inf"):
            policy.module(obs, pref, mask)
        with pytest.raises(PolicyInputError, match=f"{what} holds NaN or inf"):
            policy.act(obs, pref, mask)


def test_a_mask_row_allowing_nothing_is_refused_inside_both_files(policy_pt: Path) -> None:
    for policy in both_files(policy_pt):
        obs, pref, mask = valid_inputs(policy)
        mask[3] = False
        if policy.metadata["action"]["kind"] == "Box":  # Box masks are ignored: nothing to refuse
            assert policy.module(obs, pref, mask).shape == policy.module(*valid_inputs(policy)).shape
            continue
        with pytest.raises(Exception, match="policy input: a row of action_mask allows no action"):
            policy.module(obs, pref, mask)
        with pytest.raises(PolicyInputError, match="allows no action"):
            policy.act(obs, pref, mask)


def test_a_multidiscrete_mask_with_one_dimension_all_false_is_refused(exported_files) -> None:
    for agent in ("mo_ppo", "mo_dqn", "sb3_maskable_ppo"):
        for policy in both_files(exported_files(agent, "default")):
            nvec = policy.metadata["action"]["nvec"]
            obs, pref, mask = valid_inputs(policy)
            mask[1, nvec[0] : nvec[0] + nvec[1]] = False  # the second dimension has no allowed choice
            with pytest.raises(Exception, match="allows no action"):
                policy.module(obs, pref, mask)


def test_wrong_shapes_and_dtypes_are_refused_by_both_files(policy_pt: Path) -> None:
    for policy in both_files(policy_pt):
        obs, pref, mask = valid_inputs(policy)
        cases = {
            "mask one column short": (obs, pref, mask[:, :-1]),
            "float mask": (obs, pref, mask.float()),
            "float64 observations": (obs.double(), pref, mask),
            "float64 preference": (obs, pref.double(), mask),
            "one observation column short": (obs[:, :-1], pref, mask),
            "preference batch differs": (obs, pref[:3], mask),
            "unbatched observation": (obs[0], pref, mask),
        }
        for case, args in cases.items():
            with pytest.raises(Exception) as raised:  # TorchScript and torch.export raise different types
                policy.module(*args)
            assert str(raised.value).strip(), f"{policy.path.suffix}: {case} raised an empty error"


def test_the_python_loader_names_each_wrong_input_in_one_policy_input_error(policy_pt: Path) -> None:
    for policy in both_files(policy_pt):
        obs, pref, mask = valid_inputs(policy)
        with pytest.raises(PolicyInputError, match=r"action_mask must have shape \(5, "):
            policy.act(obs, pref, mask[:, :-1])
        with pytest.raises(PolicyInputError, match="action_mask must be bool"):
            policy.act(obs, pref, mask.float())
        with pytest.raises(PolicyInputError, match="obs must have shape"):
            policy.act(obs[:, :-1], pref, mask)
        with pytest.raises(PolicyInputError, match="preference must have shape"):
            policy.act(obs, pref[:3], mask)
        # documented conversions: float64 observations become float32, a 0/1 integer mask becomes bool
        expected = policy.act(obs, pref, mask)
        assert torch.equal(policy.act(obs.double(), pref, mask.long()), expected)


# ---------------------------------------------------------------------------------------------- files run no code
def rewrite_zip(source: Path, target: Path, change: Callable[[str, bytes], bytes]) -> None:
    """Copy a zip archive entry by entry, passing every entry through ``change(name, data)``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, change(info.filename, src.read(info)))


class Payload:
    """Unpickling it creates the file ``marker`` (standing in for any code an attacker runs)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def plant_in_pt2_weight(policy_pt: Path, target: Path, marker: Path) -> None:
    """The audit's attack: a weight of ``policy.pt2`` switched to a pickled object."""
    source = policy_pt.with_suffix(".pt2")
    with zipfile.ZipFile(source) as archive:
        config_name = next(n for n in archive.namelist() if n.endswith("data/weights/model_weights_config.json"))
        config = json.loads(archive.read(config_name))
    first = sorted(config["config"])[0]
    config["config"][first]["use_pickle"] = True
    weight = config["config"][first]["path_name"]

    def change(name: str, data: bytes) -> bytes:
        if name == config_name:
            return json.dumps(config).encode()
        if name.endswith(f"data/weights/{weight}"):
            return pickle.dumps(Payload(marker))
        return data

    rewrite_zip(source, target, change)


def test_a_payload_in_a_pt2_weight_never_runs_and_the_file_is_refused(exported_files, tmp_path) -> None:
    source = exported_files("mo_ppo", "default")
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt2"
    plant_in_pt2_weight(source, evil, marker)
    with pytest.raises(PolicyFileError, match=r"refused to load.*stored as a pickle"):
        load_policy(evil)
    assert not marker.exists()
    # the planted file is a real attack: torch's own loader runs it
    with pytest.raises(Exception):  # noqa: B017 - torch fails after unpickling, with any type
        torch.export.load(str(evil))
    assert marker.exists()


def test_a_payload_in_pt2_sample_inputs_never_runs_and_the_file_is_refused(exported_files, tmp_path) -> None:
    import io

    source = exported_files("mo_ppo", "default").with_suffix(".pt2")
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt2"
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    rewrite_zip(source, evil, lambda name, data: buffer.getvalue() if "sample_inputs/" in name else data)
    with pytest.raises(PolicyFileError, match=r"refused to load.*names callable (io|builtins)\.open"):
        load_policy(evil)
    assert not marker.exists()


def test_a_payload_pickle_in_a_torchscript_policy_never_runs_and_the_file_is_refused(exported_files, tmp_path) -> None:
    source = exported_files("mo_ppo", "default")
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt"
    rewrite_zip(
        source,
        evil,
        lambda name, data: pickle.dumps(Payload(marker), protocol=2) if name.endswith("data.pkl") else data,
    )
    with pytest.raises(PolicyFileError, match=r"refused to load.*data\.pkl names callable"):
        load_policy(evil)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_evaluate_on_a_planted_policy_file_exits_2_in_one_line_and_runs_nothing(
    exported_files, tmp_path, capsys, suffix: str
) -> None:
    source = exported_files("mo_ppo", "default")
    marker, evil = tmp_path / "ran", tmp_path / f"evil{suffix}"
    if suffix == ".pt2":
        plant_in_pt2_weight(source, evil, marker)
    else:
        rewrite_zip(
            source, evil, lambda n, d: pickle.dumps(Payload(marker), protocol=2) if n.endswith("data.pkl") else d
        )
    assert main(["evaluate", str(evil), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "refused to load" in err and len(err.splitlines()) == 1
    assert not marker.exists()
    assert [p.name for p in tmp_path.iterdir()] == [evil.name]  # no report written either


def test_pickle_inspection_accepts_tensors_and_refuses_other_callables() -> None:
    import io

    from paretochain.agents.export import pickle_refusal

    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3), "n": 2}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        data = next(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    assert pickle_refusal(data) is None
    for protocol in (0, 2, 4):
        refusal = pickle_refusal(pickle.dumps(_OsSystem(), protocol=protocol)) or ""
        assert re.fullmatch(r"callable (posix|nt)\.system", refusal), refusal
    assert pickle_refusal(b"\x80\x04not a pickle") is not None


class _OsSystem:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return (os.system, ("true",))


# ---------------------------------------------------------------------------------------------- bound to metadata
@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_editing_the_metadata_inside_a_policy_file_is_detected_on_load(exported_files, tmp_path, suffix: str) -> None:
    source = exported_files("mo_ppo", "default").with_suffix(suffix)

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("extra/metadata.json"):
            meta = json.loads(data)
            meta["env_id"] = DISPATCH
            return json.dumps(meta, indent=2).encode()
        return data

    edited = tmp_path / f"edited{suffix}"
    rewrite_zip(source, edited, edit)
    with pytest.raises(PolicyFileError, match=r"metadata\.json does not match its checksum"):
        load_policy(edited)
    assert load_policy(source).metadata["env_id"] == WAREHOUSE


@pytest.mark.parametrize("target", ["run_dir", "policy_file"])
def test_evaluate_refuses_a_policy_of_another_environment_in_a_run_directory(tmp_path, capsys, target: str) -> None:
    run_dir = tmp_path / "warehouse_run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": {"id": WAREHOUSE}, "agent": "mo_ppo"}))
    export_policy(build_agent("mo_ppo", DISPATCH, None), run_dir)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    arg = run_dir if target == "run_dir" else run_dir / "policy.pt"
    assert main(["evaluate", str(arg), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and DISPATCH in err and WAREHOUSE in err
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


def test_a_pt2_written_by_another_torch_minor_is_refused_with_the_versions_named(exported_files, tmp_path) -> None:
    from paretochain.agents.export import METADATA_DIGEST, metadata_digest

    source = exported_files("mo_ppo", "default").with_suffix(".pt2")

    def older(name: str, data: bytes) -> bytes:
        if name.endswith("extra/metadata.json"):
            meta = json.loads(data)
            meta["torch_version"] = "2.5.1+cpu"
            meta[METADATA_DIGEST] = metadata_digest(meta)  # a well-formed file, as torch 2.5 would have written it
            return json.dumps(meta).encode()
        return data

    rewrite_zip(source, tmp_path / "old.pt2", older)
    with pytest.raises(PolicyFileError, match=r"written by torch 2\.5\.1\+cpu and loads only on torch 2\.5\.x"):
        load_policy(tmp_path / "old.pt2")
    assert load_policy(source).metadata["torch_version"] == torch.__version__
