"""The ``paretochain`` command line: version, help, overrides anywhere, run names, results, clear errors."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import warnings
from pathlib import Path

import pytest
import torch

from paretochain import __version__
from paretochain.cli import _one_line_warnings, build_parser, main
from paretochain.envs import make_vec
from paretochain.errors import CheckpointWarning
from paretochain.train import run as run_module
from paretochain.train.agents import build_agent
from paretochain.train.config import load_run_config
from paretochain.train.run import env_config_of, planned_env_steps

TINY = [
    "checkpoint_interval_steps=256",
    "eval_interval_steps=100000",
    "eval_episodes=1",
    "eval_preferences=1",
    "device=cpu",
    "num_envs=8",
    "hyperparameters.num_steps=8",
]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A tiny run whose budget (500) is not a whole number of rollouts (64), overrides given after the options."""
    runs = tmp_path_factory.mktemp("runs")
    out, err = io.StringIO(), io.StringIO()  # a module fixture cannot use capsys
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "warehouse_mo_ppo", "--no-progress", "budget_env_steps=500", *TINY, f"runs_dir={runs}"])
    assert code == 0, err.getvalue()
    return runs / "mo_ppo-warehouse-default-s0", out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------ 18.8
def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"paretochain {__version__}"


def test_every_subcommand_and_option_has_help_text() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, where: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name):
                        missing.append(f"{where} {name}")
                    if not sub.description:
                        missing.append(f"{where} {name} (description)")
                    walk(sub, f"{where} {name}")
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "paretochain")
    assert missing == []
    assert {"train", "evaluate", "demo", "sweep"} <= set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_overrides_are_accepted_before_and_after_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def fake_train(run, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((run, kwargs))
        raise run_module.ConfigError("stop here")

    monkeypatch.setattr(run_module, "train", fake_train)
    assert main(["train", "warehouse_mo_ppo", "--full", "seed=5", "env.overrides.horizon=20"]) == 2
    assert main(["train", "warehouse_mo_ppo", "seed=5", "--full", "env.overrides.horizon=20"]) == 2
    assert main(["train", "seed=5", "warehouse_mo_ppo", "--full"]) == 2  # a config after an override is not one
    assert len(seen) == 2
    for run, _ in seen:
        assert run.seed == 5 and run.env.overrides == {"horizon": 20}
        assert run.budget_env_steps == run.full_budget_env_steps
    with pytest.raises(SystemExit):
        main(["train", "warehouse_mo_ppo", "--no-such-option"])


def test_default_run_names_differ_exactly_when_the_environment_differs() -> None:
    plain = load_run_config("warehouse_mo_ppo")
    assert plain.run_name == "mo_ppo-warehouse-default-s0"
    short = load_run_config("warehouse_mo_ppo", ["env.overrides.horizon=20"])
    longer = load_run_config("warehouse_mo_ppo", ["env.overrides.horizon=30"])
    same = load_run_config("warehouse_mo_ppo", ["env.overrides.horizon=20", "budget_env_steps=10"])
    assert len({plain.run_name, short.run_name, longer.run_name}) == 3
    assert short.run_name == same.run_name and short.run_name.startswith(plain.run_name + "-")
    assert load_run_config("warehouse_mo_ppo", ["name=mine", "env.overrides.horizon=20"]).run_name == "mine"


def test_a_finished_train_prints_its_final_returns_per_objective(finished: tuple[Path, str, str]) -> None:
    run_dir, out, _ = finished
    metrics = json.loads((run_dir / "metrics.json").read_text())
    final = metrics["final_evaluation"]
    assert "final evaluation after 512 env steps" in out
    header = next(line for line in out.splitlines() if "preference" in line)
    assert header.split()[1:] == final["objective_names"]
    first_row = next(line for line in out.splitlines() if line.strip().startswith("[1.00"))
    printed = [float(x) for x in first_row.split("]")[1].split()]
    assert printed == pytest.approx(final["returns"][0], rel=1e-5)


def test_a_budget_between_updates_is_rounded_up_front_and_the_run_ends_there(finished: tuple[Path, str, str]) -> None:
    run_dir, out, _ = finished
    first = out.splitlines()[0]
    assert first == "budget_env_steps=500 is not a whole number of updates of 64 env steps: training to 512 env steps"
    assert json.loads((run_dir / "metrics.json").read_text())["env_steps"] == 512


def test_the_progress_bar_keeps_the_planned_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bars = []
    real = run_module._progress

    def spy(total: int, start: int):  # type: ignore[no-untyped-def]
        bars.append(real(total, start))
        return bars[-1]

    monkeypatch.setattr(run_module, "_progress", spy)
    run = load_run_config("warehouse_mo_ppo", ["budget_env_steps=130", *TINY, f"runs_dir={tmp_path}"])
    result = run_module.train(run, progress=True)
    assert bars[0].total == 192 and bars[0].n == 192 == result.metrics["env_steps"]


@pytest.mark.parametrize("name", ["warehouse_mo_ppo", "warehouse_mo_dqn", "warehouse_sb3_ppo", "lost_sales_sb3_dqn"])
def test_the_planned_step_count_is_where_the_agent_stops(name: str) -> None:
    overrides = ["device=cpu", "num_envs=4"]
    if name == "warehouse_mo_ppo":
        overrides.append("hyperparameters.num_steps=8")
    if "sb3" in name:
        overrides += ["hyperparameters.n_steps=8", "hyperparameters.batch_size=16", "hyperparameters.learning_starts=8"]
    if name == "warehouse_mo_dqn":
        overrides += ["hyperparameters.learning_starts=8", "hyperparameters.batch_size=16"]
    run = load_run_config(name, overrides)
    env = make_vec(run.env.id, run.num_envs, device="cpu", config=env_config_of(run), tensors=True, check_actions=False)
    agent = build_agent(run, env, "cpu")
    size = agent.update_env_steps
    budget = size * 2 + 1
    agent.learn(budget)
    assert run_module.agent_steps(agent) == planned_env_steps(agent, budget) == size * 3


# ------------------------------------------------------------------------------ 19.9
def test_an_unregistered_env_id_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "warehouse_mo_ppo", "env.id=paretochain/Nowhere-v0", f"runs_dir={tmp_path}"])
    assert code == 2
    assert "unknown environment id 'paretochain/Nowhere-v0'" in _one_error_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_device_cuda_without_a_gpu_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["train", "warehouse_mo_ppo", "device=cuda", f"runs_dir={tmp_path}"])
    assert code == 2
    assert "device=cuda: torch sees no GPU" in _one_error_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--episodes", "0"], "episodes must be a whole number of at least 1, got 0"),
        (["--device", "tpu"], "device='tpu' is not a device paretochain runs on"),
        (["--out", "FILE"], "is an existing file, not a folder"),
    ],
)
def test_bad_evaluate_arguments_are_one_line_and_write_nothing(
    finished: tuple[Path, str, str], tmp_path: Path, options: list[str], message: str, capsys
) -> None:
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    options = [str(existing) if o == "FILE" else o for o in options]
    run_dir = finished[0]
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["evaluate", str(run_dir), *options]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in run_dir.iterdir()) == before and existing.read_text() == "keep me"


def test_multi_line_errors_and_package_warnings_print_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "warehouse_mo_ppo", "num_envs=0", "seed=-1", f"runs_dir={tmp_path}"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "num_envs" in line and "seed" in line
    with _one_line_warnings():
        text = warnings.formatwarning(CheckpointWarning("step_9.pt\nis damaged"), CheckpointWarning, "x.py", 1)
    assert text == "warning: step_9.pt is damaged\n"


def test_the_best_policy_line_names_the_figure_that_chose_it() -> None:
    from paretochain.cli import best_policy_line

    corner = {
        "policy": "runs/r/best/policy.pt",
        "step": 224,
        "selected_by": "return of service_cost",
        "value": -596.064,
    }
    assert best_policy_line(corner) == "best policy: runs/r/best/policy.pt (step 224, return of service_cost -596.064)"
    conditioned = {"policy": "p.pt", "step": 8, "selected_by": "hypervolume", "value": 2.5}
    assert "hypervolume 2.5" in best_policy_line(conditioned)
