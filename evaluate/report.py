"""``paretochain evaluate``: a learned policy and the family's baselines on the same seeded scenarios.

Writes into the output folder (``evaluation/`` beside the policy by default, so that a run
directory keeps its own training ``metrics.json``):

- ``report.md``: the tables, with the figures saved beside it in ``report_files/``;
- ``report.html``: the same, self-contained (figures embedded as PNG data), readable
  offline in any browser;
- ``metrics.json``: the figures, in the schema below.

``metrics.json`` (``schema: "paretochain.evaluation/1"``)::

    schema            "paretochain.evaluation/1"
    policy            {path, env_id, agent, run}
    objectives        [{name, unit, description, reference, direction}]   reward order
    seeds             evaluation seeds (one episode each, shared by every policy)
    policies          {name: {kind: learned|baseline, preference: [..] | null,
                              mean: [k], ci95: [k], kpis: {kpi: mean per episode}}}
    paired_vs_best_baseline
                      {objective: {baseline, difference, ci95}}  learned - best baseline on that objective,
                      paired by seed (common random numbers)
    pareto            {preferences: [[k]], returns: [[k]], front_mask: [..], reference_point: [k],
                       utility_scale: [k], hypervolume, expected_utility,
                       baselines_hypervolume, baselines_expected_utility}
    scenarios         {scenario: {policy: {mean: [k], ci95: [k]}}}
    seconds           wall time of the evaluation

Expected utility weighs returns divided by ``utility_scale`` (the magnitude of each
objective's reference point, at least 1), so that objectives in different units count
comparably; hypervolume uses the raw returns and the environment's reference point.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paretochain.agents.export import LoadedPolicy, load_policy
from paretochain.devices import require_device
from paretochain.envs.registration import env_class, make_vec
from paretochain.errors import ConfigError
from paretochain.evaluate.baselines import family_baseline_fronts, family_baselines
from paretochain.evaluate.pareto import (
    conditioned_utility,
    default_preferences,
    evaluate_pareto,
    expected_utility,
    hypervolume,
    utility_scale,
)
from paretochain.evaluate.rollout import RolloutResult, rollout
from paretochain.evaluate.scenarios import family_scenarios
from paretochain.evaluate.stats import mean_ci, paired_difference
from paretochain.evaluate.verdict import verdict
from paretochain.seeds import TEST

SCHEMA = "paretochain.evaluation/1"
LEARNED = "learned"


@dataclass
class Evaluation:
    """What :func:`evaluate` produced: the output folder, its files and the metrics."""

    out_dir: Path
    report_md: Path
    report_html: Path
    metrics_json: Path
    metrics: dict[str, Any]


def _check_arguments(episodes: int, out_dir: str | Path | None, device: str) -> str:
    """Refuse bad arguments, each with one line, before any policy is loaded or file written; the device to use."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a whole number of at least 1, got {episodes!r}")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"output folder {out_dir} is an existing file, not a folder")
    return str(require_device(device, "device"))


def _resolve_policy(target: str | Path) -> tuple[Path, LoadedPolicy]:
    path = Path(target)
    if path.is_dir():
        path = path / "policy.pt"
    policy = load_policy(path)
    _check_policy_belongs_to_run(path, policy)
    return path, policy


def _check_policy_belongs_to_run(path: Path, policy: LoadedPolicy) -> None:
    """Refuse a policy file sitting in a run directory (or its ``best/``) that trained another environment."""
    import yaml

    run_dir = path.parent.parent if path.parent.name == "best" else path.parent
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return  # a policy file on its own: nothing to compare with
    try:
        saved = yaml.safe_load(config_file.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_file}: cannot read the run's config ({exc})") from None
    env = saved.get("env") if isinstance(saved, dict) else None
    run_env = env.get("id") if isinstance(env, dict) else None
    policy_env = policy.metadata.get("env_id")
    if run_env is not None and run_env != policy_env:
        raise ConfigError(
            f"{path} is a policy for {policy_env}, but its run directory {run_dir} trained {run_env} "
            f"(config.yaml); refusing to evaluate it there"
        )


def _is_conditioned(policy: LoadedPolicy) -> bool:
    return str(policy.metadata.get("preference", {}).get("trained_on", "")).startswith("Dirichlet")


def evaluate(
    target: str | Path,
    episodes: int = 16,
    baselines: Sequence[str] | None = None,
    scenarios: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
) -> Evaluation:
    """Evaluate ``target`` (a run directory or a ``policy.pt``) against the baselines; write the report.

    Args:
        target: run directory (its ``policy.pt`` is used) or a policy file.
        episodes: seeded episodes per policy and scenario.
        baselines: names to include (default: all of the family; see
            :func:`paretochain.evaluate.baselines.family_baselines`).
        scenarios: robustness scenarios to run (default: all of the family; ``baseline`` always).
        out_dir: where to write (default: ``evaluation/`` in the run directory, or beside the policy file).
        device: where the environments run: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when torch sees a GPU).
    """
    device = _check_arguments(episodes, out_dir, device)
    t_start = time.perf_counter()
    policy_path, policy = _resolve_policy(target)
    meta = policy.metadata
    env_id = meta.get("env_id")
    if not env_id:
        raise ConfigError(f"{policy_path}: its metadata names no environment id")
    cls = env_class(env_id)
    cfg = cls.config_cls.load(meta["env_config"])
    # beside the policy, in evaluation/: the run directory's own metrics.json stays the training run's
    out = Path(out_dir) if out_dir is not None else policy_path.parent / "evaluation"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is an existing file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    seeds = TEST.first(episodes)  # disjoint from the tuning and the model-selection seeds

    objectives = cls.core_cls(cfg, num_envs=1, device="cpu").objectives  # type: ignore[call-arg]
    scale = utility_scale(objectives.reference_point)
    default_pref = policy.default_preference.numpy()
    # the baselines are tuned for the preference the learned policy is compared at
    factories = family_baselines(env_id, cfg, names=baselines, device=device, weights=default_pref / scale)
    all_scenarios = family_scenarios(env_id)
    chosen = ["baseline"] + [s for s in (scenarios if scenarios is not None else all_scenarios) if s != "baseline"]
    unknown = [s for s in chosen if s not in all_scenarios]
    if unknown:
        raise ConfigError(f"unknown scenario(s) {unknown} for {env_id}; available: {sorted(all_scenarios)}")

    k = len(objectives)
    names = objectives.names
    ref = objectives.reference_point

    results: dict[str, dict[str, RolloutResult]] = {}
    for scenario in chosen:
        scen_cfg = all_scenarios[scenario](cfg)
        env = make_vec(env_id, len(seeds), device=device, config=scen_cfg, tensors=True, check_actions=False)
        if env.single_observation_space.shape != (int(meta["observation"]["dim"]),):
            continue  # this scenario changes the observation: the policy cannot run there
        row: dict[str, RolloutResult] = {}
        row[LEARNED] = rollout(env, policy, seeds, preference=default_pref, record_first=scenario == "baseline")
        for name, factory in factories.items():
            row[name] = rollout(env, factory(env), seeds, record_first=scenario == "baseline")
        results[scenario] = row

    base = results["baseline"]
    policies: dict[str, Any] = {}
    for name, res in base.items():
        mean, half = mean_ci(res.returns)
        policies[name] = {
            "kind": "learned" if name == LEARNED else "baseline",
            "preference": default_pref.tolist() if name == LEARNED else None,
            "mean": mean.tolist(),
            "ci95": half.tolist(),
            "kpis": {kpi: float(v.mean()) for kpi, v in res.kpis.items()},
        }
    paired: dict[str, Any] = {}
    baseline_names = [n for n in base if n != LEARNED]
    for i, obj in enumerate(names):
        if not baseline_names:
            break
        best = max(baseline_names, key=lambda n: base[n].returns[:, i].mean())
        diff, half = paired_difference(base[LEARNED].returns[:, [i]], base[best].returns[:, [i]])
        paired[obj] = {"baseline": best, "difference": float(diff[0]), "ci95": float(half[0])}

    # the learned front over the preference set (one preference only for fixed-preference policies)
    prefs = default_preferences(k) if _is_conditioned(policy) else default_pref.reshape(1, -1)
    learned = evaluate_pareto(policy, env_id, config=cfg, preferences=prefs, seeds=seeds, device=device)
    front, mask = learned.returns, learned.front_mask
    fronts = _baseline_fronts(env_id, cfg, seeds, device)
    baseline_points = (
        np.asarray([base[n].returns.mean(axis=0) for n in baseline_names]) if baseline_names else np.zeros((0, k))
    )
    pareto = {
        "preferences": prefs.tolist(),
        "returns": front.tolist(),
        "front_mask": mask.tolist(),
        "reference_point": ref.tolist(),
        "utility_scale": scale.tolist(),
        "hypervolume": learned.hypervolume,
        "expected_utility": conditioned_utility(front, prefs, scale),
        "baselines_hypervolume": hypervolume(baseline_points, ref) if len(baseline_points) else 0.0,
        "baselines_expected_utility": expected_utility(baseline_points, prefs, scale) if len(baseline_points) else None,
        "baseline_fronts": fronts,
    }
    scen_table = {
        s: {n: dict(zip(("mean", "ci95"), (v.tolist() for v in mean_ci(r.returns)))) for n, r in row.items()}
        for s, row in results.items()
    }
    metrics = {
        "schema": SCHEMA,
        "policy": {
            "path": str(policy_path),
            "env_id": env_id,
            "agent": meta.get("agent"),
            "run": meta.get("run", {}).get("name"),
        },
        "objectives": objectives.to_list(),
        "seeds": seeds,
        "policies": policies,
        "paired_vs_best_baseline": paired,
        "pareto": pareto,
        "scenarios": scen_table,
        "skipped_scenarios": [s for s in chosen if s not in results],
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    metrics["verdict"] = verdict(metrics)
    figures = _figures(cls, cfg, base, names, front, mask, baseline_points, baseline_names, ref, scen_table, fronts)
    md, page = _render(metrics, figures, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return Evaluation(out, md, page, out / "metrics.json", metrics)


def _baseline_fronts(env_id: str, cfg: Any, seeds: list[int], device: str) -> dict[str, Any]:
    """Each sweepable baseline's mean returns at every value of its parameter, on the evaluation seeds."""
    out: dict[str, Any] = {}
    for name, front in family_baseline_fronts(env_id, cfg).items():
        n = len(seeds)
        env = make_vec(env_id, len(front.values) * n, device=device, config=cfg, tensors=True, check_actions=False)
        result = rollout(env, front.policy(env, n), seeds * len(front.values))
        returns = result.returns.reshape(len(front.values), n, -1).mean(axis=1)
        out[name] = {"parameter": front.parameter, "values": front.values, "returns": returns.tolist()}
    return out


# ------------------------------------------------------------------------------------------ figures


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figures(
    cls: Any,
    cfg: Any,
    base: dict[str, RolloutResult],
    names: list[str],
    front: np.ndarray,
    mask: np.ndarray,
    baseline_points: np.ndarray,
    baseline_names: list[str],
    ref: np.ndarray,
    scen_table: dict[str, Any],
    baseline_fronts: dict[str, Any],
) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, bytes] = {}
    k = len(names)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)][:3] or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        ax.scatter(front[:, i], front[:, j], c="tab:blue", alpha=0.35, label="learned (each preference)")
        ax.scatter(front[mask, i], front[mask, j], c="tab:blue", edgecolors="k", label="learned, non-dominated")
        for p, name in zip(baseline_points, baseline_names):
            ax.scatter(p[i], p[j], marker="s", s=60, label=name)
        for name, swept in baseline_fronts.items():
            r = np.asarray(swept["returns"])
            ax.plot(r[:, i], r[:, j], marker=".", lw=1, alpha=0.8, label=f"{name} ({swept['parameter']} swept)")
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Pareto front: mean episode returns (higher is better)")
    figures["pareto_front"] = _png(fig)

    env = cls(cfg)  # single view, only for its renderer
    for name in [LEARNED, *baseline_names[:1]]:
        traj = base[name].trajectory
        keys = [key for key in traj if key.startswith("state/")]
        if not keys:
            continue
        steps = len(traj[keys[0]])
        history = [{key[6:]: traj[key][t] for key in keys} for t in range(steps)]
        try:
            images = env.report_figures(history)
        except NotImplementedError:
            continue
        for label, image in images.items():
            fig, ax = plt.subplots(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
            ax.imshow(image)
            ax.axis("off")
            ax.set_title(f"first evaluation episode: {name}")
            figures[f"{label}_{name}"] = _png(fig)

    scen = list(scen_table)
    pols = list(scen_table[scen[0]])
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.8), squeeze=False)
    width = 0.8 / max(len(pols), 1)
    for i, ax in enumerate(axes[0]):
        for p_idx, pol in enumerate(pols):
            means = [scen_table[s][pol]["mean"][i] if pol in scen_table[s] else np.nan for s in scen]
            errs = [scen_table[s][pol]["ci95"][i] if pol in scen_table[s] else 0 for s in scen]
            ax.bar(np.arange(len(scen)) + p_idx * width, means, width, yerr=errs, label=pol)
        ax.set_xticks(np.arange(len(scen)) + 0.4 - width / 2)
        ax.set_xticklabels(scen, rotation=20, fontsize=8)
        ax.set_title(names[i])
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Robustness: mean episode return per scenario (95% CI)")
    figures["robustness"] = _png(fig)
    return figures


# ------------------------------------------------------------------------------------------ writing


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    names = [o["name"] for o in metrics["objectives"]]
    units = [o["unit"] for o in metrics["objectives"]]
    head = ["policy"] + [f"{n} ({u})" for n, u in zip(names, units)]
    rows = [
        [n] + [f"{_fmt(m)} ± {_fmt(c)}" for m, c in zip(p["mean"], p["ci95"])] for n, p in metrics["policies"].items()
    ]
    out = [("Mean episode return per objective (95% confidence interval)", head, rows)]
    paired = metrics["paired_vs_best_baseline"]
    if paired:
        out.append(
            (
                "Learned minus the best baseline on each objective (paired by seed)",
                ["objective", "best baseline", "difference", "95% CI"],
                [[o, d["baseline"], _fmt(d["difference"]), f"± {_fmt(d['ci95'])}"] for o, d in paired.items()],
            )
        )
    p = metrics["pareto"]
    out.append(
        (
            "Pareto front",
            ["measure", "learned", "baselines"],
            [
                ["hypervolume", _fmt(p["hypervolume"]), _fmt(p["baselines_hypervolume"])],
                ["expected utility", _fmt(p["expected_utility"]), _fmt(p["baselines_expected_utility"])],
                [
                    "points (non-dominated / evaluated)",
                    f"{sum(p['front_mask'])} / {len(p['front_mask'])}",
                    str(len(metrics["policies"]) - 1),
                ],
            ],
        )
    )
    for scen, row in metrics["scenarios"].items():
        out.append(
            (
                f"Scenario: {scen}",
                head,
                [[n] + [f"{_fmt(m)} ± {_fmt(c)}" for m, c in zip(v["mean"], v["ci95"])] for n, v in row.items()],
            )
        )
    return out


def write_pages(
    out: Path,
    title: str,
    intro: str,
    tables: list[tuple[str, list[str], list[list[str]]]],
    figures: dict[str, bytes],
    notes: list[str] = (),  # type: ignore[assignment]
    summary: list[str] = (),  # type: ignore[assignment]
) -> tuple[Path, Path]:
    """Write ``report.md`` (figures in ``report_files/``) and a self-contained ``report.html`` into ``out``.

    ``summary`` is a list of plain sentences placed first, under "Verdict"; ``notes`` are
    paragraphs placed after the tables.
    """
    files = out / "report_files"
    files.mkdir(parents=True, exist_ok=True)
    for name, data in figures.items():
        (files / f"{name}.png").write_bytes(data)
    md = [f"# {title}", "", intro, ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>"]
    if summary:
        md += ["## Verdict", ""] + [f"- {line}" for line in summary] + [""]
        body.append("<h2>Verdict</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary) + "</ul>")
    for caption, head, rows in tables:
        md += [f"## {caption}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        body.append(
            f"<h2>{html.escape(caption)}</h2><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr>"
        )
        body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        body.append("</table>")
    for note in notes:
        md += [note, ""]
        body.append(f"<p>{html.escape(note)}</p>")
    for name, data in figures.items():
        label = name.replace("_", " ")
        md += [f"## Figure: {label}", "", f"![{label}](report_files/{name}.png)", ""]
        b64 = base64.b64encode(data).decode()
        body.append(
            f'<h2>Figure: {html.escape(label)}</h2><img alt="{html.escape(label)}" src="data:image/png;base64,{b64}">'
        )
    style = (
        "body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
    )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(page)
    return out / "report.md", out / "report.html"


def _render(metrics: dict[str, Any], figures: dict[str, bytes], out: Path) -> tuple[Path, Path]:
    pol = metrics["policy"]
    title = f"Evaluation of {pol['run'] or Path(pol['path']).name} on {pol['env_id']}"
    intro = (
        f"{len(metrics['seeds'])} seeded episodes per policy (seeds {metrics['seeds'][0]}..{metrics['seeds'][-1]}), the same "
        f"for every policy (common random numbers). Returns are summed over an episode; every objective is higher-is-better."
    )
    notes = []
    if metrics.get("skipped_scenarios"):
        notes.append(
            f"Skipped scenarios (they change the observation layout): {', '.join(metrics['skipped_scenarios'])}"
        )
    return write_pages(out, title, intro, _tables(metrics), figures, notes, summary=metrics.get("verdict", []))


def headline(metrics: dict[str, Any]) -> str:
    """The per-objective table as plain text, for the terminal."""
    caption, head, rows = _tables(metrics)[0]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    table = [caption, line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    return "\n".join(
        table + (["", "Verdict:"] + [f"- {v}" for v in metrics["verdict"]] if metrics.get("verdict") else [])
    )
