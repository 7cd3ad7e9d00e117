"""Training runs and the command line: run directories, resume after SIGKILL, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from paretochain.cli import main
from paretochain.envs.config import packaged_configs_dir
from paretochain.errors import ConfigError
from paretochain.train.config import load_run_config
from paretochain.train.run import RunDirectoryExists, checkpoints, load_checkpoint, train

RUN_CONFIGS = sorted(p.stem for p in (packaged_configs_dir() / "runs").glob("*.yaml"))
TINY = [
    "budget_env_steps=512",
    "checkpoint_interval_steps=256",
    "eval_interval_steps=512",
    "eval_episodes=1",
    "eval_preferences=1",
    "device=cpu",
]


def _tiny(name: str, runs_dir: Path, extra: list[str] | None = None):
    run = load_run_config(name, [*TINY, f"runs_dir={runs_dir}", *(extra or [])])
    # small batches and rollouts so that every agent finishes in seconds
    hp = dict(run.hyperparameters)
    agent_fields = {"mo_ppo": {"num_steps": 8}, "mo_dqn": {"learning_starts": 64, "batch_size": 32}}
    hp.update(agent_fields.get(run.agent, {}))
    if run.agent.startswith("sb3"):
        hp.update({"n_steps": 16, "batch_size": 32, "learning_starts": 64, "log_interval_steps": 256})
    update: dict = {"num_envs": min(run.num_envs, 8), "hyperparameters": hp}
    if run.imitation is not None:
        update["imitation"] = run.imitation.model_copy(update={"env_steps": 64})
    if run.env.id == "paretochain/DispatchEpoch-v0":  # PyVRP's search is nearly all of an epoch's time
        overrides = dict(run.env.overrides)
        overrides["epoch"] = {**overrides.get("epoch", {}), "routing_iterations": 30}
        update["env"] = run.env.model_copy(update={"overrides": overrides})
    return run.model_copy(update=update)


def test_at_least_eight_run_configs_ship_each_with_a_documented_full_budget() -> None:
    assert len(RUN_CONFIGS) >= 8
    families = set()
    for name in RUN_CONFIGS:
        run = load_run_config(name)
        assert run.full_budget_env_steps is not None and run.full_budget_env_steps >= run.budget_env_steps
        text = (packaged_configs_dir() / "runs" / f"{name}.yaml").read_text()
        assert text.lstrip().startswith("#")  # a comment documents the run
        families.add(run.env.id)
    assert families == {
        "paretochain/Warehouse-v0",
        "paretochain/Dispatch-v0",
        "paretochain/DispatchEpoch-v0",
        "paretochain/Pricing-v0",
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_every_shipped_run_config_trains_exports_and_writes_metrics_at_a_tiny_budget(name: str, tmp_path: Path) -> None:
    run = _tiny(name, tmp_path)
    result = train(run, progress=False)
    d = result.run_dir
    assert (d / "config.yaml").exists() and (d / "tb").is_dir()
    assert any((d / "tb").iterdir())
    assert checkpoints(d), "at least one checkpoint"
    assert (d / "policy.pt").exists() and (d / "policy.pt2").exists()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["env_steps"] >= 512 and metrics["agent"] == run.agent
    # every agent's checkpoint reads back with weights_only (tensors and plain data only)
    assert load_checkpoint(checkpoints(d)[-1])["step"] == metrics["env_steps"]
    # one evaluation, at the end: the best policy is the final one, copied
    assert metrics["best_evaluation"]["step"] == metrics["env_steps"]
    assert (d / "best" / "policy.pt").read_bytes() == (d / "policy.pt").read_bytes()
    assert metrics["final_evaluation"]["objective_names"] == metrics["objectives"]
    saved = yaml.safe_load((d / "config.yaml").read_text())
    assert saved["agent"] == run.agent and saved["budget_env_steps"] == 512


def test_overrides_use_dotted_paths_and_bad_ones_name_the_field(tmp_path: Path) -> None:
    run = load_run_config(
        "warehouse_mo_ppo", ["env.overrides.horizon=20", "hyperparameters.learning_rate=0.001", "seed=4"]
    )
    assert run.env.overrides == {"horizon": 20} and run.hyperparameters["learning_rate"] == 0.001 and run.seed == 4
    with pytest.raises(ConfigError, match="learning_rat"):
        load_run_config("warehouse_mo_ppo", ["hyperparameters.learning_rat=0.1"])
    with pytest.raises(ConfigError, match=r"allowed fields here: .*budget_env_steps"):
        load_run_config("warehouse_mo_ppo", ["budget=10"])
    with pytest.raises(ConfigError, match="num_envs"):
        load_run_config("warehouse_mo_ppo", ["num_envs=0"])
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        load_run_config("warehouse_mo_ppo", ["seed"])


def test_cli_errors_are_one_line_and_leave_an_existing_run_untouched(tmp_path: Path, capsys) -> None:
    run = _tiny("warehouse_mo_ppo", tmp_path)
    result = train(run, progress=False)
    before = {p: p.stat().st_mtime_ns for p in result.run_dir.rglob("*")}
    code = main(["train", "warehouse_mo_ppo", *TINY, f"runs_dir={tmp_path}", "hyperparameters.nope=1"])
    assert code == 2 and "nope" in capsys.readouterr().err
    with pytest.raises(RunDirectoryExists):
        train(run, progress=False)
    code = main(["train", "warehouse_mo_ppo", "env.overrides.horizon=-3", f"runs_dir={tmp_path}"])
    assert code == 2 and "horizon" in capsys.readouterr().err
    after = {p: p.stat().st_mtime_ns for p in result.run_dir.rglob("*")}
    assert before == after


def test_env_config_errors_are_raised_before_anything_is_written(tmp_path: Path) -> None:
    run = load_run_config("warehouse_mo_ppo", [f"runs_dir={tmp_path}", "env.overrides.num_skus=-1"])
    with pytest.raises(ConfigError, match="num_skus"):
        train(run, progress=False)
    assert not any(tmp_path.iterdir())


def test_corrupted_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "step_1.pt"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Exception, match="cannot be read"):
        load_checkpoint(bad)


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = checkpoints(run_dir)
        if found:
            return found[-1]
        if proc.poll() is not None:
            raise AssertionError(f"training exited early with code {proc.returncode}")
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_resume_after_sigkill_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = [
        "warehouse_mo_ppo",
        "budget_env_steps=200000",
        "checkpoint_interval_steps=2048",
        "eval_interval_steps=1000000",
        "num_envs=16",
        "hyperparameters.num_steps=16",
        "device=cpu",
        f"runs_dir={runs}",
        "name=killed",
        "eval_episodes=1",
        "eval_preferences=1",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "paretochain", "train", *args, "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run_dir = runs / "killed"
    try:
        first = _wait_for_checkpoint(run_dir, proc)
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    found = checkpoints(run_dir)
    last = load_checkpoint(found[-1])
    assert last["step"] >= load_checkpoint(first)["step"] > 0
    resumed_from = last["step"]
    # resume with a budget just above the checkpoint: the step counter continues, it does not restart
    run = load_run_config("warehouse_mo_ppo", [*args[1:], f"budget_env_steps={resumed_from + 512}"])
    result = train(run, run_dir=run_dir, resume=True, progress=False)
    assert result.metrics["env_steps"] >= resumed_from + 512
    assert result.metrics["env_steps"] < resumed_from + 4096  # it went on from the checkpoint, not from zero
    state = load_checkpoint(checkpoints(run_dir)[-1])
    assert state["step"] == result.metrics["env_steps"]
    assert torch.isfinite(torch.as_tensor(result.metrics["final_evaluation"]["returns"])).all()


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = [
        "warehouse_mo_ppo",
        "budget_env_steps=500000",
        "checkpoint_interval_steps=1000000",
        "eval_interval_steps=1000000",
        "num_envs=16",
        "hyperparameters.num_steps=16",
        "device=cpu",
        f"runs_dir={runs}",
        "name=term",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "paretochain", "train", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = runs / "term"
    deadline = time.time() + 120
    while not (run_dir / "config.yaml").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in out
    assert checkpoints(run_dir), "a checkpoint was written on SIGTERM"
    assert json.loads((run_dir / "metrics.json").read_text())["interrupted"] == "SIGTERM"


def test_fixed_preference_runs_are_evaluated_at_their_own_preference(tmp_path: Path) -> None:
    run = _tiny("warehouse_mo_ppo", tmp_path, ["preference={profit: 3.0, fill_rate: 1.0}"])
    metrics = train(run, progress=False).metrics
    assert metrics["final_evaluation"]["preferences"] == [[0.75, 0.25, 0.0]]
    sb3 = _tiny("warehouse_sb3_ppo", tmp_path)
    metrics = train(sb3, progress=False).metrics
    assert metrics["final_evaluation"]["preferences"] == [pytest.approx([0.6, 0.3, 0.1])]


def test_an_imitation_section_warm_starts_mo_ppo_from_a_baseline(tmp_path: Path) -> None:
    run = _tiny("dispatch_mo_ppo", tmp_path, ["imitation.baseline=nearest_neighbour", "imitation.env_steps=256"])
    run = run.model_copy(update={"imitation": run.imitation.model_copy(update={"env_steps": 256})})
    result = train(run, progress=False)
    assert result.metrics["env_steps"] == 512  # imitation is not part of the training budget
    state = load_checkpoint(checkpoints(result.run_dir)[-1])["agent"]
    assert state["imitation"] == {"steps": 256, "teacher": "NearestNeighbourPolicy"}


def test_imitation_errors_name_the_problem_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only agents mo_ppo and dcl can imitate"):
        load_run_config("dispatch_sb3_maskable_ppo", ["imitation.baseline=nearest_neighbour", "imitation.env_steps=64"])
    with pytest.raises(ConfigError, match=r"anchor_coef.*add an imitation section"):
        load_run_config("dispatch_mo_ppo", ["hyperparameters.anchor_coef=0.1"])
    run = _tiny("dispatch_mo_ppo", tmp_path, ["imitation.baseline=clairvoyant", "imitation.env_steps=64"])
    with pytest.raises(ConfigError, match=r"unknown baseline.*nearest_neighbour"):
        train(run, progress=False)
    assert not (tmp_path / run.run_name / "config.yaml").exists()


def test_the_best_evaluation_is_exported_beside_the_final_policy(tmp_path: Path, monkeypatch) -> None:
    from paretochain.agents.export import load_policy
    from paretochain.train import run as run_module

    real = run_module._evaluate
    scripted = iter([1.0, 3.0, 2.0, 0.5])  # the second of four evaluations is the best

    def scored(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = real(*args, **kwargs)
        return {**entry, "hypervolume": next(scripted)}

    monkeypatch.setattr(run_module, "_evaluate", scored)
    run = _tiny("warehouse_mo_ppo", tmp_path, ["budget_env_steps=1024", "eval_interval_steps=256"])
    result = train(run, progress=False)
    d = result.run_dir
    history = result.metrics["evaluations"]
    assert [e["hypervolume"] for e in history] == [1.0, 3.0, 2.0, 0.5]
    best = result.metrics["best_evaluation"]
    assert best["step"] == history[1]["step"] < result.metrics["env_steps"]
    assert best == {
        "step": best["step"],
        "selected_by": "hypervolume",
        "value": 3.0,
        "policy": str(d / "best" / "policy.pt"),
    }
    assert (d / "best" / "policy.pt").exists() and (d / "best" / "policy.pt2").exists()
    assert load_checkpoint(d / "checkpoints" / "best.pt")["step"] == best["step"]
    final, kept = load_policy(d / "policy.pt"), load_policy(d / "best" / "policy.pt")
    assert kept.metadata["run"]["env_steps"] == best["step"]
    assert final.metadata["run"]["env_steps"] == result.metrics["env_steps"]
    assert kept.metadata["weights_sha256"]["policy.pt"] != final.metadata["weights_sha256"]["policy.pt"]
    assert (d / "policy.pt").exists() and not (d / "best" / "best").exists()


def test_a_run_at_a_corner_preference_keeps_the_evaluation_best_on_its_one_objective(
    tmp_path: Path, monkeypatch
) -> None:
    from paretochain.train import run as run_module

    real = run_module._evaluate
    # (total_cost, fill_rate) returns: the second is cheapest, the third has the highest fill rate and hypervolume
    scripted = iter([([-700.0, 0.90], 1.0), ([-600.0, 0.91], 2.0), ([-800.0, 0.99], 5.0), ([-650.0, 0.95], 3.0)])

    def scored(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = real(*args, **kwargs)
        returns, hypervolume = next(scripted)
        return {**entry, "returns": [returns], "hypervolume": hypervolume}

    monkeypatch.setattr(run_module, "_evaluate", scored)
    extra = ["budget_env_steps=1024", "eval_interval_steps=256", "preference=[1.0, 0.0]"]
    result = train(_tiny("lost_sales_mo_ppo", tmp_path, extra), progress=False)
    history = result.metrics["evaluations"]
    best = result.metrics["best_evaluation"]
    assert best["selected_by"] == "return of total_cost" and best["value"] == -600.0
    assert best["step"] == history[1]["step"]
    assert max(history, key=lambda e: e["hypervolume"])["step"] != best["step"]


def test_preference_corner_names_the_one_weighted_objective() -> None:
    from paretochain.train.run import preference_corner

    assert preference_corner(None) is None
    assert preference_corner(np.array([0.0, 1.0, 0.0])) == 1
    assert preference_corner(torch.tensor([1.0, 0.0], dtype=torch.float64)) == 0
    assert preference_corner(np.array([0.5, 0.5])) is None


def test_a_resumed_run_keeps_a_best_from_before_its_checkpoint_and_drops_one_from_after(tmp_path: Path) -> None:
    from paretochain.train.run import _BestPolicy

    path = tmp_path / "best.pt"
    agent = torch.nn.Linear(2, 2)
    fresh = _BestPolicy(path, resumed_at=None)
    fresh.offer({"step": 300, "hypervolume": 2.0}, agent)
    assert _BestPolicy(path, resumed_at=512).summary() == {"step": 300, "selected_by": "hypervolume", "value": 2.0}
    assert _BestPolicy(path, resumed_at=256).step is None  # the run redoes steps 256..300: that best is dropped
    assert _BestPolicy(path, resumed_at=None).step is None  # a new run ignores an old file
    worse = _BestPolicy(path, resumed_at=512)
    worse.offer({"step": 600, "hypervolume": 1.0}, agent)
    assert load_checkpoint(path)["step"] == 300
