"""Evaluation reports: files, schema, the learned policy against baselines, rendering in a browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from paretochain.cli import main
from paretochain.evaluate.report import SCHEMA, evaluate
from paretochain.train.config import load_run_config
from paretochain.train.run import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    run = load_run_config(
        "warehouse_mo_ppo",
        [
            "budget_env_steps=2048",
            "num_envs=16",
            "hyperparameters.num_steps=16",
            "checkpoint_interval_steps=2048",
            "eval_interval_steps=4096",
            "eval_episodes=1",
            "eval_preferences=1",
            "device=cpu",
            f"runs_dir={runs}",
        ],
    )
    return train(run, progress=False).run_dir


@pytest.fixture(scope="module")
def report(trained_run: Path):
    return evaluate(trained_run, episodes=3, baselines=["base_stock", "s_S"], scenarios=["demand_shock"])


def test_evaluation_does_not_overwrite_the_training_metrics(trained_run: Path, report) -> None:
    assert report.out_dir == trained_run / "evaluation"
    training = json.loads((trained_run / "metrics.json").read_text())
    assert "env_steps" in training and training["agent"] == "mo_ppo"


def test_report_files_exist_and_markdown_links_resolve(report) -> None:
    assert report.report_md.exists() and report.report_html.exists() and report.metrics_json.exists()
    md = report.report_md.read_text()
    for line in md.splitlines():
        if line.startswith("!["):
            target = line.split("(", 1)[1].rstrip(")")
            assert (report.out_dir / target).exists(), target
    assert "Mean episode return per objective" in md and "Scenario: demand_shock" in md
    # the verdict opens the report, before the first table, one bullet per sentence
    verdict = json.loads(report.metrics_json.read_text())["verdict"]
    assert len(verdict) >= 3 and md.index("## Verdict") < md.index("## Mean episode return")
    assert all(f"- {line}" in md for line in verdict)


def test_html_is_self_contained_with_its_plots_embedded(report) -> None:
    page = report.report_html.read_text()
    assert page.count('src="data:image/png;base64,') >= 3
    assert "http://" not in page and "https://" not in page  # opens with no network
    assert "<table>" in page


def test_metrics_follow_the_documented_schema(report) -> None:
    m = json.loads(report.metrics_json.read_text())
    assert m["schema"] == SCHEMA
    names = [o["name"] for o in m["objectives"]]
    assert names == ["profit", "fill_rate", "holding_cost"]
    assert set(m["policies"]) == {"learned", "base_stock", "s_S"}
    for p in m["policies"].values():
        assert len(p["mean"]) == len(p["ci95"]) == 3 and "profit" in p["kpis"]
    assert set(m["paired_vs_best_baseline"]) == set(names)
    for d in m["paired_vs_best_baseline"].values():
        assert d["baseline"] in ("base_stock", "s_S") and np.isfinite(d["difference"])
    pareto = m["pareto"]
    assert len(pareto["returns"]) == len(pareto["preferences"]) == len(pareto["front_mask"]) > 1
    assert pareto["hypervolume"] >= 0 and pareto["baselines_hypervolume"] > 0
    assert set(m["scenarios"]) == {"baseline", "demand_shock"}
    assert len(m["seeds"]) == 3


def test_paired_difference_matches_the_per_seed_returns(report) -> None:
    m = report.metrics
    d = m["paired_vs_best_baseline"]["profit"]
    learned = m["policies"]["learned"]["mean"][0]
    best = m["policies"][d["baseline"]]["mean"][0]
    assert d["difference"] == pytest.approx(learned - best, rel=1e-6, abs=1e-6)


def test_a_bare_policy_file_is_evaluated_from_its_metadata(trained_run: Path, tmp_path: Path, capsys) -> None:
    shutil.copy(trained_run / "policy.pt", tmp_path / "policy.pt")
    code = main(
        [
            "evaluate",
            str(tmp_path / "policy.pt"),
            "--episodes",
            "2",
            "--baselines",
            "base_stock",
            "--scenario",
            "baseline",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "base_stock" in out and "report:" in out
    assert (tmp_path / "evaluation" / "report.html").exists()


def test_unknown_baseline_or_scenario_is_a_clear_error(trained_run: Path, capsys) -> None:
    assert main(["evaluate", str(trained_run), "--baselines", "psychic"]) == 2
    assert "available" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(
    _chromium() is None,
    reason="headless Chromium is not installed (scripts/test.sh installs Debian's chromium when run as root)",
)
def test_report_renders_its_plots_in_headless_chromium(report, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1300,4200",
        f"--screenshot={shot}",
        report.report_html.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    image = mpimg.imread(shot)[..., :3]
    # matplotlib's default blue (31, 119, 180) only appears if the embedded plots were decoded and drawn
    blue = np.abs(image - np.array([31, 119, 180]) / 255.0).max(axis=-1) < 0.06
    assert blue.sum() > 200
    assert (image.mean(axis=-1) < 0.9).mean() > 0.02  # text, tables and plots, not a blank page


def test_the_report_measures_the_learned_front_with_the_function_training_evaluations_use(
    trained_run: Path, tmp_path: Path, monkeypatch
) -> None:
    from paretochain.evaluate import pareto
    from paretochain.evaluate import report as report_module
    from paretochain.train import run as run_module

    assert report_module.evaluate_pareto is pareto.evaluate_pareto
    calls = []
    original = pareto.evaluate_pareto

    def recorded(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(report_module, "evaluate_pareto", recorded)
    result = evaluate(trained_run, episodes=2, baselines=["base_stock"], scenarios=[], out_dir=tmp_path / "e")
    assert len(calls) == 1 and calls[0]["seeds"] == result.metrics["seeds"]
    again = pareto.evaluate_pareto(
        report_module.load_policy(trained_run / "policy.pt"),
        "paretochain/Warehouse-v0",
        config=calls[0]["config"],
        preferences=np.asarray(result.metrics["pareto"]["preferences"]),
        seeds=result.metrics["seeds"],
    )
    assert np.allclose(result.metrics["pareto"]["returns"], again.returns)
    assert result.metrics["pareto"]["hypervolume"] == pytest.approx(again.hypervolume)
    assert result.metrics["pareto"]["front_mask"] == again.front_mask.tolist()
    # training's evaluations call the same function
    from paretochain.agents.logging import NullLogger
    from paretochain.envs.registration import make_vec
    from paretochain.train.agents import build_agent

    run = run_module.resume_config(trained_run)
    env_cfg = run_module.env_config_of(run)
    env = make_vec(run.env.id, 2, device="cpu", config=env_cfg, tensors=True, check_actions=False)
    monkeypatch.setattr(pareto, "evaluate_pareto", recorded)
    evaluation = run_module._evaluate(build_agent(run, env, "cpu"), run, env_cfg, 0, NullLogger())
    assert len(calls) == 2 and evaluation["hypervolume"] >= 0
