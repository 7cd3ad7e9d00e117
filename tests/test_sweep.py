"""Sweeps on Ray Tune (``paretochain sweep``): configs, trials, fault tolerance, resume and the sweep report.

The Ray tests skip when Ray is not installed (it is the optional ``ray`` extra); they
share one local Ray instance of 2 CPUs and run tiny trials (a few seconds each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from paretochain.envs.config import packaged_configs_dir
from paretochain.errors import ConfigError
from paretochain.train.sweep import (
    INSTALL_HINT,
    load_sweep_config,
    trial_name,
    trial_run_data,
)

TINY = packaged_configs_dir() / "sweeps" / "tiny.yaml"
REPO = Path(__file__).resolve().parents[1]


def tiny_data(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(TINY.read_text())
    data.update(changes)
    return data


# ------------------------------------------------------------------------------------------ without ray


def test_sweep_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    code = "import sys; sys.modules['ray'] = None\nfrom paretochain.cli import main\nraise SystemExit(main(['sweep', 'tiny']))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'paretochain[ray]'" in proc.stderr
    assert INSTALL_HINT in proc.stderr
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"serch": {"algorithm": "grid"}}, "serch"),
        ({"axes": {"params": {"hyperparameters.lerning_rate": [0.1]}}}, "lerning_rate"),
        ({"axes": {"params": {"hyperparameters.learning_rate": [-1.0]}}}, "hyperparameters.learning_rate"),
        (
            {
                "axes": {"params": {"hyperparameters.learning_rate": {"loguniform": [1e-3, 1e-4]}}},
                "search": {"algorithm": "random"},
            },
            "loguniform",
        ),
        ({"axes": {"params": {"hyperparameters.learning_rate": {"uniform": [1e-4, 1e-3]}}}}, "axes.params"),
        ({"axes": {"preferences": {"points": [[0.5, 0.5]]}}}, "axes.preferences.points[0]"),
        ({"axes": {"preferences": {"points": [{"profits": 1.0}]}}}, "profits"),
        ({"axes": {"seeds": [-1]}}, "seeds"),
        ({"search": {"algorithm": "grid", "num_samples": 3}}, "search.num_samples"),
        ({"search": {"algorithm": "bayes"}}, "search.algorithm"),
        ({"search": {"metric": "profit"}}, "search.metric"),
        ({"resources": {"cpus_per_trial": 0}}, "resources.cpus_per_trial"),
        ({"overrides": {"num_envs": 0}}, "num_envs"),
        ({"base": "no_such_run_config"}, "no_such_run_config"),
        ({"conditioned_run": {"config": "warehouse_mo_ppo", "run_dir": "x"}}, "conditioned_run"),
    ],
)
def test_bad_sweep_config_is_a_config_error_naming_the_field(change: dict[str, Any], named: str) -> None:
    data = tiny_data(**change)
    with pytest.raises(ConfigError) as info:
        load_sweep_config(data)
    assert named in str(info.value)


def test_packaged_sweep_configs_all_load() -> None:
    names = sorted(p.stem for p in (packaged_configs_dir() / "sweeps").glob("*.yaml"))
    assert {"tiny", "warehouse_sb3_preferences", "warehouse_mo_ppo_seeds", "warehouse_optuna"} <= set(names)
    for name in names:
        plan = load_sweep_config(name)
        assert plan.expected_trials >= 1


def test_tiny_sweep_is_two_preferences_by_two_seeds() -> None:
    plan = load_sweep_config(TINY)
    assert plan.preferences == [[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]]
    assert plan.seeds == [0, 1]
    assert plan.expected_trials == 4
    assert plan.objective_names == ["profit", "fill_rate", "holding_cost"]


def test_preference_grid_axis_spans_the_simplex_lattice() -> None:
    plan = load_sweep_config(tiny_data(axes={"preferences": {"grid": 2}}))
    prefs = np.asarray(plan.preferences)
    assert prefs.shape == (6, 3)  # C(2 + 2, 2)
    np.testing.assert_allclose(prefs.sum(axis=1), 1.0)
    assert plan.expected_trials == 6


def test_trial_run_data_sets_dotted_paths_and_keeps_the_base() -> None:
    plan = load_sweep_config(TINY)
    data = trial_run_data(
        plan.base_data, {"hyperparameters.learning_rate": 0.002, "seed": 3, "preference": [0.5, 0.25, 0.25]}, "t1"
    )
    assert data["hyperparameters"]["learning_rate"] == 0.002
    assert data["hyperparameters"]["num_steps"] == 8  # from the sweep's overrides, merged into the base
    assert data["hyperparameters"]["gamma"] == 0.95  # from the base run config
    assert (data["seed"], data["preference"], data["name"]) == (3, [0.5, 0.25, 0.25], "t1")
    assert (
        plan.base_data["hyperparameters"].get("learning_rate") == 0.001
    )  # the base (configs/runs/warehouse_mo_ppo.yaml) is not modified


params_strategy = st.fixed_dictionaries(
    {"seed": st.integers(0, 1000)},
    optional={
        "preference": st.lists(st.floats(0, 1), min_size=3, max_size=3),
        "hyperparameters.learning_rate": st.floats(1e-6, 1.0),
        "hyperparameters.hidden_sizes": st.lists(st.integers(1, 512), min_size=1, max_size=3),
        "env.overrides.horizon": st.integers(1, 400),
    },
)


@settings(max_examples=60, deadline=None)
@given(a=params_strategy, b=params_strategy)
def test_trial_names_are_deterministic_filesystem_safe_and_distinct(a: dict[str, Any], b: dict[str, Any]) -> None:
    name = trial_name(a)
    assert name == trial_name(dict(reversed(list(a.items()))))
    assert all(c.isalnum() or c in "._=-" for c in name) and len(name) <= 100
    if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
        assert name != trial_name(b)


# ------------------------------------------------------------------------------------------ the report (no ray)


def _train_tiny(run_dir: Path, **changes: Any) -> None:
    from paretochain.train.config import RunConfig
    from paretochain.train.run import train

    plan = load_sweep_config(TINY)
    data = trial_run_data(plan.base_data, changes, run_dir.name)
    train(RunConfig.validate_data(data, "test"), run_dir=run_dir, progress=False)


@pytest.fixture(scope="module")
def fake_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep folder written without Ray: two fixed-preference trials and one conditioned run."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "fake"
    (sweep_dir / "state").mkdir(parents=True)
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(tiny_data(name="fake")))
    trials = {
        "a": ("trial", {"preference": [1.0, 0.0, 0.0], "seed": 0}),
        "b": ("trial", {"preference": [0.5, 0.25, 0.25], "seed": 0}),
        "c": ("conditioned", {}),
    }
    for name, (role, params) in trials.items():
        _train_tiny(sweep_dir / "trials" / name, **params)
        state = {"name": name, "role": role, "params": params, "attempts": [{"resumed_from_step": None}]}
        (sweep_dir / "state" / f"{name}.json").write_text(json.dumps(state))
    (sweep_dir / "state" / "never-ran.json").write_text(
        json.dumps({"name": "never-ran", "role": "trial", "params": {}, "attempts": []})
    )
    return sweep_dir


def test_sweep_report_front_and_bests_agree_with_the_trials(fake_sweep: Path) -> None:
    from paretochain.evaluate.pareto import non_dominated
    from paretochain.evaluate.sweep_report import write_sweep_report

    report = write_sweep_report(fake_sweep)
    m = report.metrics
    assert m["schema"] == "paretochain.sweep-report/1"
    assert m["unfinished"] == ["never-ran"]
    kinds = {t["name"]: t["kind"] for t in m["trials"]}
    assert kinds == {"a": "fixed", "b": "fixed", "c": "conditioned"}
    assert {t["name"]: t["preference"] for t in m["trials"] if t["kind"] == "fixed"} == {
        "a": [1.0, 0.0, 0.0],
        "b": [0.5, 0.25, 0.25],
    }
    points = np.asarray([p["returns"] for p in m["combined_front"]["points"]])
    assert len(points) == 2 + 3  # one point per fixed trial, one per preference of the conditioned run's grid
    assert m["combined_front"]["front_mask"] == non_dominated(points).tolist()
    for i, obj in enumerate(o["name"] for o in m["objectives"]):
        assert m["best_per_objective"][obj]["value"] == pytest.approx(points[:, i].max())
    for best in m["best_per_preference"]:
        w = np.asarray(best["preference"])
        scale = np.asarray(m["combined_front"]["utility_scale"])
        candidates = [p for p in m["combined_front"]["points"] if np.allclose(p["preference"], w)]
        assert best["utility"] == pytest.approx(max(float(w @ (np.asarray(p["returns"]) / scale)) for p in candidates))
    comp = m["comparison"]
    assert comp["preferences"] == [[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]]
    assert comp["conditioned"]["runs"] == ["c"]
    assert np.asarray(comp["conditioned"]["returns"]).shape == (2, 3)
    page = report.report_html.read_text()
    assert page.count("data:image/png;base64,") == 2 and "report_files/" not in page
    assert "Best trial per preference" in report.report_md.read_text()
    assert json.loads(report.metrics_json.read_text())["trials"] == json.loads(json.dumps(m["trials"]))


# ------------------------------------------------------------------------------------------ with ray


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install 'paretochain[ray]'")
    pytest.importorskip("optuna", reason="Optuna is part of the optional ray extra")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _state(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (sweep_dir / "state").glob("*.json")}


@pytest.mark.slow
def test_tiny_sweep_runs_every_trial_to_its_report(ray_cluster: Any, tmp_path: Path) -> None:
    from paretochain.train.sweep import SweepExistsError, run_sweep

    base = tmp_path / "base.yaml"  # the base run config as a file beside the sweep config (a relative path)
    base.write_text((packaged_configs_dir() / "runs" / "warehouse_mo_ppo.yaml").read_text())
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_data(base="base.yaml", sweeps_dir=str(tmp_path))))
    result = run_sweep(config, verbose=False)
    assert result.sweep_dir == tmp_path / "tiny"
    assert not result.failed
    assert len(result.finished) == 5  # 2 preferences x 2 seeds + the conditioned run
    trials = sorted(p for p in (result.sweep_dir / "trials").iterdir())
    assert len(trials) == 5
    for run_dir in trials:  # ordinary run directories
        assert {"config.yaml", "metrics.json", "policy.pt", "checkpoints", "tb"} <= {p.name for p in run_dir.iterdir()}
        assert json.loads((run_dir / "metrics.json").read_text())["env_steps"] == 2048
    m = json.loads(result.metrics_json.read_text())
    assert sorted(t["seed"] for t in m["trials"] if t["kind"] == "fixed") == [0, 0, 1, 1]
    assert len(m["seed_groups"]) == 2 and all(sorted(g["seeds"]) == [0, 1] for g in m["seed_groups"])
    assert m["comparison"]["conditioned"] is not None
    assert result.report_html.exists() and result.report_md.exists()

    with pytest.raises(SweepExistsError, match="--resume"):
        run_sweep(config, verbose=False)
    with pytest.raises(ConfigError, match="sweep config differs"):
        run_sweep(config, overrides=["max_failures=5"], resume=True, verbose=False)
    base.write_text(base.read_text() + "\nkeep_checkpoints: 7\n")  # the base run changed since the sweep started
    with pytest.raises(ConfigError, match="base run config differs"):
        run_sweep(config, resume=True, verbose=False)


@pytest.mark.slow
def test_killed_trial_is_retried_from_its_last_checkpoint(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paretochain.train import sweep as sweep_module
    from paretochain.train.sweep import run_sweep

    def killed_once_after_its_first_checkpoint(config: dict[str, Any], context: dict[str, Any]) -> None:
        # runs in a Ray worker (pickled by value): the trial's process dies right after its first checkpoint, once
        import os
        import signal

        from paretochain.train import run as run_module
        from paretochain.train import sweep as worker_sweep

        params = {key: worker_sweep._decode(value) for key, value in config.items()}
        name = context.get("name") or worker_sweep.trial_name(params)
        marker = Path(context["sweep_dir"]) / "state" / f"{name}.fault"
        save = run_module.save_checkpoint

        def save_then_die(state: Any, path: Path) -> None:
            save(state, path)
            if path.parent.name == "checkpoints" and not marker.exists():
                marker.write_text(f"killed after {path.name}\n")
                os.kill(os.getpid(), signal.SIGKILL)

        run_module.save_checkpoint = save_then_die
        try:
            worker_sweep.run_trial(config, context)
        finally:
            run_module.save_checkpoint = save

    monkeypatch.setattr(sweep_module, "run_trial", killed_once_after_its_first_checkpoint)
    data = tiny_data(name="fault", sweeps_dir=str(tmp_path), axes={"seeds": [0]})
    data.pop("conditioned_run")
    data["overrides"]["budget_env_steps"] = 3072
    result = run_sweep(data, verbose=False)
    (state,) = _state(result.sweep_dir).values()
    assert (result.sweep_dir / "state" / f"{state['name']}.fault").exists()  # the fault did happen
    assert [a["resumed_from_step"] for a in state["attempts"]] == [None, 1024]  # the retry continued from step 1024
    assert state["status"] == "finished"
    metrics = json.loads((result.sweep_dir / "trials" / state["name"] / "metrics.json").read_text())
    assert metrics["env_steps"] == 3072
    assert not result.failed


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_retraining_finished_trials(ray_cluster: Any, tmp_path: Path) -> None:
    from paretochain.train.sweep import run_sweep

    data = tiny_data(name="interrupted", sweeps_dir=str(tmp_path), axes={"seeds": [0, 1, 2]})
    data.pop("conditioned_run")
    data["search"]["max_concurrent"] = 1
    config = tmp_path / "interrupted.yaml"
    config.write_text(yaml.safe_dump(data))
    address = ray_cluster.get_runtime_context().gcs_address
    # the sweep's driver is its own process (submitting to this cluster by --address); Ctrl-C it after one trial
    proc = subprocess.Popen(
        [sys.executable, "-m", "paretochain", "sweep", str(config), "--address", address],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state_dir = tmp_path / "interrupted" / "state"
    deadline = time.monotonic() + 150
    finished: list[str] = []
    while not finished and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        finished = (
            [n for n, s in _state(tmp_path / "interrupted").items() if s.get("status") == "finished"]
            if state_dir.exists()
            else []
        )
    if not finished:
        proc.kill()
        pytest.fail("no trial finished before the deadline:\n" + proc.communicate()[0][-4000:])
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=150)
    before = _state(tmp_path / "interrupted")
    done_before = {n for n, s in before.items() if s.get("status") == "finished"}
    if len(done_before) == 3:
        pytest.skip("the sweep finished before the interrupt reached it; nothing to resume")
    assert proc.returncode == 2 and "--resume" in out

    result = run_sweep(config, resume=True, verbose=False)
    after = _state(result.sweep_dir)
    assert len(after) == 3 and all(s["status"] == "finished" for s in after.values())
    for name in done_before:  # finished trials were not trained again
        assert after[name]["attempts"] == before[name]["attempts"]
    assert sorted(result.finished) == sorted(after)
    assert os.path.exists(result.report_html)


@pytest.mark.slow
def test_optuna_search_draws_trials_inside_the_declared_space(ray_cluster: Any, tmp_path: Path) -> None:
    from paretochain.train.sweep import run_sweep

    data = tiny_data(name="optuna", sweeps_dir=str(tmp_path))
    data.pop("conditioned_run")
    data["axes"] = {
        "params": {
            "hyperparameters.learning_rate": {"loguniform": [1e-4, 1e-2]},
            "hyperparameters.hidden_sizes": {"choice": [[16], [8, 8]]},
        }
    }
    data["search"] = {"algorithm": "optuna", "num_samples": 2, "metric": "return_profit", "max_concurrent": 2}
    result = run_sweep(data, verbose=False)
    assert len(result.finished) == 2 and not result.failed
    for state in _state(result.sweep_dir).values():
        params = state["params"]
        assert 1e-4 <= params["hyperparameters.learning_rate"] <= 1e-2
        assert params["hyperparameters.hidden_sizes"] in ([16], [8, 8])  # lists travel through Optuna and come back
        config = yaml.safe_load((result.sweep_dir / "trials" / state["name"] / "config.yaml").read_text())
        assert config["hyperparameters"]["learning_rate"] == params["hyperparameters.learning_rate"]
        assert config["hyperparameters"]["hidden_sizes"] == params["hyperparameters.hidden_sizes"]
