"""Run directories as a careless user or an attacker meets them: checkpoints that run no code,
checksums, fallback to the newest good checkpoint, --overwrite and --resume."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import signal
from pathlib import Path

import pytest
import torch
import yaml

from paretochain.cli import main
from paretochain.errors import CheckpointWarning, PolicyFileError
from paretochain.train import run as run_module
from paretochain.train.config import load_run_config
from paretochain.train.run import (
    CHECKPOINT_FORMAT,
    RUN_MARKER,
    _checkpoint,
    checkpoints,
    load_checkpoint,
    newest_good_checkpoint,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
# a run of a few seconds: 8 environments, rollouts of 64 steps, checkpoints at 256 and 512
TINY = [
    "budget_env_steps=512",
    "checkpoint_interval_steps=256",
    "eval_interval_steps=100000",
    "eval_episodes=1",
    "eval_preferences=1",
    "device=cpu",
    "num_envs=8",
    "hyperparameters.num_steps=8",
]


class WritesMarker:
    """Unpickling this object writes a file: the payload an attacker would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (exec, (f"open({self.marker!r}, 'w').write('the payload ran')",))


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished Warehouse MO-PPO run (checkpoints at steps 256 and 512); tests work on copies."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "warehouse_mo_ppo", "--no-progress", *TINY, f"runs_dir={runs}", "name=base"]) == 0
    return runs / "base"


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def _flip_bytes_inside_a_tensor(path: Path) -> None:
    """Flip 16 bytes in the middle of the actor's first weight matrix, as stored in the file."""
    state = load_checkpoint(path)
    weight = next(iter(state["agent"]["actor"].values()))
    stored = weight.contiguous().numpy().tobytes()
    data = bytearray(path.read_bytes())
    at = data.find(stored)
    assert at >= 0, "the tensor's bytes are stored verbatim in the file"
    for i in range(at + len(stored) // 2, at + len(stored) // 2 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------- no file runs code
def test_the_planted_payload_runs_when_unpickled_so_the_refusals_below_mean_something(tmp_path: Path) -> None:
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(WritesMarker(marker)))
    assert marker.read_text() == "the payload ran"


@pytest.mark.parametrize("where", ["outer file", "inside the checksummed payload", "inside the SB3 state"])
def test_a_checkpoint_holding_a_pickled_object_is_refused_and_its_payload_never_runs(
    where: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "step_1.pt"
    if where == "outer file":
        torch.save({"format": CHECKPOINT_FORMAT, "sha256": "0" * 64, "payload": WritesMarker(marker)}, path)
    elif where == "inside the checksummed payload":  # an attacker can compute the checksum too
        save_checkpoint({"step": 1, "agent": WritesMarker(marker)}, path)
    else:
        sb3_state = {"format": "paretochain.sb3/2", "normalizer": WritesMarker(marker), "num_env_steps": 1}
        save_checkpoint({"step": 1, "agent": sb3_state}, path)
    with pytest.raises(PolicyFileError, match=r"other than tensors and plain data.*refused") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_resume_refuses_planted_checkpoints_with_one_line_and_the_payload_never_runs(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    found = checkpoints(run_dir)
    assert len(found) == 2
    for path in found:
        save_checkpoint({"step": 512, "agent": WritesMarker(marker)}, path)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    with pytest.warns(CheckpointWarning):
        code = main(["train", "--resume", str(run_dir), "--no-progress"])
    assert code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "none of its 2 checkpoint(s) is usable" in line and "refused" in line
    assert not marker.exists()
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # nothing written


def test_a_checkpoint_refuses_to_write_what_it_could_not_read_back(tmp_path: Path) -> None:
    class Agent:
        def state_dict(self) -> dict:
            return {"weights": torch.zeros(2), "generator": WritesMarker(tmp_path / "x")}

    with pytest.raises(TypeError, match=r"checkpoint\.agent\.generator is a WritesMarker"):
        _checkpoint(1, Agent(), None)


def test_saved_checkpoints_load_with_weights_only(finished_run: Path) -> None:
    for path in [*checkpoints(finished_run), finished_run / "checkpoints" / "best.pt"]:
        outer = torch.load(path, weights_only=True)
        assert outer["format"] == CHECKPOINT_FORMAT and len(outer["sha256"]) == 64
        state = load_checkpoint(path)
        assert state["run_config"]["env"]["id"] == "paretochain/Warehouse-v0"
        assert isinstance(state["agent"]["rng"]["numpy"]["key"], torch.Tensor)


# ------------------------------------------------------------------------------ checksums
def test_flipped_bytes_inside_a_tensor_fail_the_checksum(finished_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "step_512.pt"
    shutil.copyfile(checkpoints(finished_run)[-1], path)
    _flip_bytes_inside_a_tensor(path)
    with pytest.raises(PolicyFileError, match="fails its SHA-256 checksum"):
        load_checkpoint(path)


def test_resume_needs_no_config_and_falls_back_past_a_corrupt_newest_checkpoint(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    newest = run_dir / "checkpoints" / "step_512.pt"
    _flip_bytes_inside_a_tensor(newest)
    damaged = newest.read_bytes()
    with pytest.warns(CheckpointWarning, match=r"step_512\.pt fails its SHA-256 checksum"):
        path, state = newest_good_checkpoint(run_dir)
    assert path.name == "step_256.pt" and state["step"] == 256
    with pytest.warns(CheckpointWarning, match=r"step_512\.pt") as caught:
        code = main(["train", "--resume", str(run_dir), "budget_env_steps=768", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert any("resuming from step_256.pt" in str(w.message) for w in caught)
    assert (run_dir / "checkpoints" / "step_512.pt.damaged").read_bytes() == damaged  # kept, not deleted
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["env_steps"] == 768
    assert load_checkpoint(newest)["step"] == 512  # redone from step 256 and written anew
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["budget_env_steps"] == 768


def test_threads_set_torch_and_may_change_on_resume(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    before = torch.get_num_threads()
    try:
        code = main(["train", "--resume", str(run_dir), "budget_env_steps=768", "threads=1", "--no-progress"])
        assert code == 0, capsys.readouterr().err
        assert torch.get_num_threads() == 1
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(Exception, match="threads"):
        load_run_config("warehouse_mo_ppo", ["threads=0"])


def test_at_least_two_checkpoints_are_kept() -> None:
    with pytest.raises(Exception, match="keep_checkpoints"):
        load_run_config("warehouse_mo_ppo", ["keep_checkpoints=1"])
    assert load_run_config("warehouse_mo_ppo", ["keep_checkpoints=2"]).keep_checkpoints == 2


# ------------------------------------------------------------------------------ --overwrite
def test_overwrite_refuses_a_directory_no_run_made_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    code = main(["train", "warehouse_mo_ppo", *TINY, "--run-dir", str(folder), "--overwrite", "--no-progress"])
    assert code == 2
    assert "not made by a paretochain run" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in folder.iterdir()) == ["chapter1.tex"]
    assert (folder / "chapter1.tex").read_text() == "years of work"


def test_overwrite_replaces_a_directory_a_run_made(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    (run_dir / "stale.txt").write_text("left from before")
    code = main(["train", "warehouse_mo_ppo", *TINY, "--run-dir", str(run_dir), "--overwrite", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert not (run_dir / "stale.txt").exists()
    assert (run_dir / RUN_MARKER).is_file() and (run_dir / "policy.pt").is_file()


# ------------------------------------------------------------------------------ --resume
def test_resume_refuses_a_changed_field_and_names_it(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    assert main(["train", "--resume", str(run_dir), "seed=3"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "seed (run: 0, given: 3)" in line and "only budget_env_steps, runs_dir and threads may change" in line
    assert main(["train", "warehouse_mo_ppo", "--resume", str(run_dir)]) == 2  # the packaged config: 256 envs
    assert "num_envs (run: 8, given: 256)" in _one_error_line(capsys.readouterr().err)


def test_the_printed_resume_command_continues_the_run_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_steps = run_module.agent_steps
    sent = []

    def steps_then_sigterm(agent: object) -> int:
        steps = real_steps(agent)
        if steps >= 256 and not sent:  # as if the user pressed Ctrl-C half-way
            sent.append(steps)
            os.kill(os.getpid(), signal.SIGTERM)
        return steps

    monkeypatch.setattr(run_module, "agent_steps", steps_then_sigterm)
    args = ["train", "warehouse_mo_ppo", *TINY, f"runs_dir={tmp_path}", "env.overrides.horizon=20", "--no-progress"]
    assert main(args) == 130
    out = capsys.readouterr().out
    command = out.strip().splitlines()[-1].strip()
    assert command.startswith("paretochain train --resume ")
    monkeypatch.setattr(run_module, "agent_steps", real_steps)
    assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    run_dir = Path(shlex.split(command)[-1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["env_steps"] == 512 and metrics["interrupted"] is None
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["env"]["overrides"] == {"horizon": 20}


def test_a_checkpoint_of_another_family_is_refused_on_resume_with_one_line(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    tiny = [*TINY, "budget_env_steps=256", f"runs_dir={runs}", "name=dispatch"]
    assert main(["train", "dispatch_mo_ppo", "--no-progress", *tiny]) == 0
    run_dir = _copy(finished_run, tmp_path)
    for path in checkpoints(run_dir):
        path.unlink()
    shutil.copyfile(checkpoints(runs / "dispatch")[-1], run_dir / "checkpoints" / "step_256.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "belongs to another run" in line
    assert "(checkpoint: 'paretochain/Dispatch-v0', this run: 'paretochain/Warehouse-v0')" in line


@pytest.mark.slow
def test_the_readme_train_then_resume_example_works_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text()
    commands = [ln.strip() for ln in readme.splitlines() if ln.strip().startswith(".venv/bin/paretochain train ")]
    first, resume = commands[0], next(c for c in commands if "--resume" in c)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    # the README's first command, made tiny by overrides after its own (later ones win)
    assert main([*shlex.split(first)[1:], *TINY, "--no-progress"]) == 0, capsys.readouterr().err
    assert main([*shlex.split(resume)[1:], "--no-progress"]) == 0, capsys.readouterr().err


def test_a_new_run_on_a_taken_name_of_another_config_is_refused_naming_the_field(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.stat().st_mtime_ns for p in finished_run.rglob("*")}
    args = ["train", "warehouse_mo_ppo", *TINY, f"runs_dir={finished_run.parent}", "name=base", "seed=7"]
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "already exists" in line and "seed (run: 0, given: 7)" in line and "set name=" in line
    assert f"paretochain train --resume {finished_run}" in line
    assert {p: p.stat().st_mtime_ns for p in finished_run.rglob("*")} == before


def test_a_damaged_or_foreign_best_checkpoint_is_dropped_with_a_warning(finished_run: Path, tmp_path: Path) -> None:
    from paretochain.train.run import _BestPolicy

    run = load_run_config(finished_run / "config.yaml")
    best = tmp_path / "best.pt"
    shutil.copyfile(finished_run / "checkpoints" / "best.pt", best)
    assert _BestPolicy(best, resumed_at=512, run=run).step == 512
    other = run.model_copy(update={"seed": 9})
    with pytest.warns(CheckpointWarning, match=r"belongs to another run: seed"):
        assert _BestPolicy(best, resumed_at=512, run=other).step is None
    best.write_bytes(best.read_bytes()[:1000])
    with pytest.warns(CheckpointWarning, match="cannot be read"):
        assert _BestPolicy(best, resumed_at=512, run=run).step is None
