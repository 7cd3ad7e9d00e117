"""The report of a sweep (``paretochain sweep``): every trial side by side.

Reads a sweep folder (``sweep.yaml``, ``trials/<trial>/`` run directories, ``state/``)
and writes into it:

- ``report.md`` (figures beside it in ``report_files/``) and ``report.html``
  (self-contained, figures embedded);
- ``metrics.json`` (``schema: "paretochain.sweep-report/1"``)::

    schema             "paretochain.sweep-report/1"
    sweep              {name, env_id, search, metric}
    objectives         [{name, unit, description, reference, direction}]   reward order
    trials             [{name, role, kind: fixed|conditioned, agent, params, seed, preference | null,
                         env_steps, attempts, resumed_from_steps, hypervolume, expected_utility,
                         mean_return: [k], points: [{preference, returns}]}]
    unfinished         names of trials without a finished run (failed, or still to run)
    combined_front     {points: [{trial, preference, returns}], front_mask, reference_point,
                        hypervolume, expected_utility, utility_scale}
    best_per_objective {objective: {trial, preference, value}}
    best_per_preference [{preference, trial, utility, returns}]
    seed_groups        [{preference, params, seeds, trials, mean: [k], ci95: [k]}]   fixed-preference trials over seeds
    comparison         {preferences, fixed: {returns, hypervolume, expected_utility},
                        conditioned: {runs, returns, hypervolume, expected_utility} | null} | null

Every point is a trial's mean vector return over its final evaluation's seeded
episodes (``metrics.json`` of the run). A fixed-preference trial (an SB3 agent, or an
MO agent given ``preference``) contributes one point; a preference-conditioned trial
contributes one point per preference of its evaluation grid. Utilities weigh returns
divided by ``utility_scale`` (the magnitude of each objective's reference point, at
least 1), as in the single-run report. The comparison evaluates each
preference-conditioned run's exported policy at exactly the fixed-preference trials'
preferences and on their evaluation seeds, so both fronts stand on the same points.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from paretochain.errors import ConfigError
from paretochain.evaluate.pareto import (
    default_preferences,
    expected_utility,
    hypervolume,
    non_dominated,
    utility_scale,
)
from paretochain.evaluate.report import _fmt, _png, write_pages
from paretochain.evaluate.stats import mean_ci

SCHEMA = "paretochain.sweep-report/1"


@dataclass
class SweepReport:
    """Where :func:`write_sweep_report` wrote, and the figures."""

    out_dir: Path
    report_md: Path
    report_html: Path
    metrics_json: Path
    metrics: dict[str, Any]


@dataclass
class _Trial:
    name: str
    role: str
    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    state: dict[str, Any]

    @property
    def fixed(self) -> bool:
        return self.config.get("preference") is not None or str(self.config.get("agent", "")).startswith("sb3")

    def preference(self, names: list[str]) -> list[float] | None:
        """The fixed preference the trial trained on (normalised), None for a conditioned trial.

        Taken from the run config (``preference``, or an SB3 agent's ``weights``), since the
        run's own evaluation may record equal weights for agents that ignore the preference input.
        """
        from paretochain.agents.preferences import preference_from_weights

        if not self.fixed:
            return None
        weights = self.config.get("preference") or (self.config.get("hyperparameters") or {}).get("weights")
        if weights is None:
            return [1.0 / len(names)] * len(names)
        return [
            float(x) for x in preference_from_weights(names, weights, f"{self.run_dir / 'config.yaml'}: preference")
        ]

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics["final_evaluation"]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.state.get("params", {}))


def _load_trials(sweep_dir: Path, extra_conditioned: Path | None) -> tuple[list[_Trial], list[str]]:
    from paretochain.train.sweep import finished_metrics

    trials, unfinished = [], []
    states = {p.stem: json.loads(p.read_text()) for p in sorted((sweep_dir / "state").glob("*.json"))}
    for name, state in states.items():
        run_dir = sweep_dir / "trials" / name
        metrics = finished_metrics(run_dir)
        if metrics is None:
            unfinished.append(name)
            continue
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        trials.append(_Trial(name, state.get("role", "trial"), run_dir, config, metrics, state))
    if extra_conditioned is not None:
        metrics = finished_metrics(extra_conditioned)
        if metrics is None:
            raise ConfigError(f"conditioned_run.run_dir {extra_conditioned} holds no finished run")
        config = yaml.safe_load((extra_conditioned / "config.yaml").read_text())
        trials.append(
            _Trial(
                extra_conditioned.name,
                "conditioned",
                extra_conditioned,
                config,
                metrics,
                {"params": {}, "attempts": []},
            )
        )
    return trials, unfinished


def _key(preference: Any) -> tuple[float, ...]:
    return tuple(round(float(x), 6) for x in preference)


def write_sweep_report(
    sweep_dir: str | Path, conditioned_dir: str | Path | None = None, device: str = "cpu"
) -> SweepReport:
    """Write the sweep report of ``sweep_dir`` (see the module docstring) from its finished trials.

    Args:
        sweep_dir: the sweep folder (``<sweeps_dir>/<name>``).
        conditioned_dir: an existing preference-conditioned run directory to compare with
            (the sweep config's ``conditioned_run.run_dir``); trials of role ``conditioned``
            and preference-conditioned trials of the sweep are used as well.
        device: where the comparison evaluates the conditioned policies.

    Raises:
        ConfigError: the folder is not a sweep folder, or no trial has finished.
    """
    from paretochain.agents.export import load_policy
    from paretochain.envs.registration import make_vec
    from paretochain.evaluate.pareto import evaluate_pareto
    from paretochain.train.config import RunConfig
    from paretochain.train.run import env_config_of

    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "sweep.yaml").exists():
        raise ConfigError(f"{sweep_dir} is not a sweep folder (no sweep.yaml)")
    sweep = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    trials, unfinished = _load_trials(sweep_dir, Path(conditioned_dir) if conditioned_dir else None)
    if not trials:
        raise ConfigError(f"{sweep_dir}: no trial has finished; nothing to report")

    first = RunConfig.validate_data(trials[0].config, str(trials[0].run_dir / "config.yaml"))
    env_cfg = env_config_of(first)
    objectives = make_vec(first.env.id, 1, device="cpu", config=env_cfg).objectives
    names = list(objectives.names)
    k = len(names)
    ref = np.asarray(trials[0].final["reference_point"], dtype=np.float64)
    scale = utility_scale(ref)

    # every trial's points
    rows: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for t in trials:
        returns = np.asarray(t.final["returns"], dtype=np.float64)
        fixed_pref = t.preference(names)
        prefs = np.asarray(t.final["preferences"] if fixed_pref is None else [fixed_pref], dtype=np.float64)
        returns = returns[: len(prefs)]
        attempts = t.state.get("attempts", [])
        rows.append(
            {
                "name": t.name,
                "role": t.role,
                "kind": "fixed" if t.fixed else "conditioned",
                "agent": t.config.get("agent"),
                "params": {k_: v for k_, v in t.params.items() if k_ not in ("preference", "seed")},
                "seed": t.config.get("seed"),
                "preference": prefs[0].tolist() if t.fixed else None,
                "env_steps": t.metrics["env_steps"],
                "attempts": len(attempts),
                "resumed_from_steps": [
                    a.get("resumed_from_step") for a in attempts if a.get("resumed_from_step") is not None
                ],
                "hypervolume": float(t.final["hypervolume"]),
                "expected_utility": float(t.final["expected_utility"]),
                "mean_return": returns.mean(axis=0).tolist(),
                "points": [{"preference": p.tolist(), "returns": r.tolist()} for p, r in zip(prefs, returns)],
            }
        )
        points += [{"trial": t.name, "preference": p.tolist(), "returns": r.tolist()} for p, r in zip(prefs, returns)]

    all_returns = np.asarray([p["returns"] for p in points])
    mask = non_dominated(all_returns)
    eval_prefs = default_preferences(k)
    combined = {
        "points": points,
        "front_mask": mask.tolist(),
        "reference_point": ref.tolist(),
        "utility_scale": scale.tolist(),
        "hypervolume": hypervolume(all_returns[mask], ref),
        "expected_utility": expected_utility(all_returns, eval_prefs, scale),
    }
    best_objective = {}
    for i, obj in enumerate(names):
        j = int(np.argmax(all_returns[:, i]))
        best_objective[obj] = {
            "trial": points[j]["trial"],
            "preference": points[j]["preference"],
            "value": float(all_returns[j, i]),
        }
    by_pref: dict[tuple[float, ...], list[dict[str, Any]]] = defaultdict(list)
    for p in points:
        by_pref[_key(p["preference"])].append(p)
    best_preference = []
    for key in sorted(by_pref, reverse=True):
        w = np.asarray(key)
        utilities = [float(w @ (np.asarray(p["returns"]) / scale)) for p in by_pref[key]]
        j = int(np.argmax(utilities))
        best_preference.append(
            {
                "preference": list(key),
                "trial": by_pref[key][j]["trial"],
                "utility": utilities[j],
                "returns": by_pref[key][j]["returns"],
                "candidates": len(utilities),
            }
        )

    # fixed-preference trials over seeds: one group per (preference, other parameters)
    groups: dict[str, dict[str, Any]] = {}
    for t, row in zip(trials, rows):
        if row["kind"] != "fixed":
            continue
        gid = json.dumps([_key(row["preference"]), row["agent"], row["params"]], sort_keys=True, default=str)
        g = groups.setdefault(
            gid,
            {
                "preference": row["preference"],
                "agent": row["agent"],
                "params": row["params"],
                "seeds": [],
                "trials": [],
                "returns": [],
            },
        )
        g["seeds"].append(row["seed"])
        g["trials"].append(t.name)
        g["returns"].append(row["points"][0]["returns"])
    seed_groups = []
    for g in groups.values():
        mean, half = mean_ci(np.asarray(g.pop("returns")))
        seed_groups.append(
            {**g, "mean": mean.tolist(), "ci95": [None if not np.isfinite(h) else float(h) for h in half]}
        )

    comparison = None
    fixed_trials = [t for t in trials if t.fixed]
    conditioned_trials = [t for t in trials if not t.fixed]
    if fixed_trials:
        fixed_prefs = sorted({_key(t.preference(names)) for t in fixed_trials}, reverse=True)
        prefs = np.asarray(fixed_prefs)
        fixed_points = np.asarray([g["mean"] for g in seed_groups])
        seeds = [int(s) for s in fixed_trials[0].final["seeds"]]
        comparison = {
            "preferences": prefs.tolist(),
            "seeds": seeds,
            "fixed": {
                "points": fixed_points.tolist(),
                "point_preferences": [g["preference"] for g in seed_groups],
                "hypervolume": hypervolume(fixed_points[non_dominated(fixed_points)], ref),
                "expected_utility": expected_utility(fixed_points, prefs, scale),
            },
            "conditioned": None,
        }
        if conditioned_trials:
            per_run = []
            for t in conditioned_trials:
                run = RunConfig.validate_data(t.config, str(t.run_dir / "config.yaml"))
                policy = load_policy(t.run_dir / "policy.pt")
                result = evaluate_pareto(
                    policy, run.env.id, config=env_config_of(run), preferences=prefs, seeds=seeds, device=device
                )
                per_run.append(result.returns)
            cond = np.mean(np.asarray(per_run), axis=0)
            comparison["conditioned"] = {
                "runs": [t.name for t in conditioned_trials],
                "returns": cond.tolist(),
                "hypervolume": hypervolume(cond[non_dominated(cond)], ref),
                "expected_utility": expected_utility(cond, prefs, scale),
            }

    search = sweep.get("search", {})
    metrics = {
        "schema": SCHEMA,
        "sweep": {"name": sweep.get("name"), "env_id": first.env.id, "search": search, "metric": search.get("metric")},
        "objectives": objectives.to_list(),
        "trials": rows,
        "unfinished": unfinished,
        "combined_front": combined,
        "best_per_objective": best_objective,
        "best_per_preference": best_preference,
        "seed_groups": seed_groups,
        "comparison": comparison,
    }
    figures = _figures(metrics, names)
    md_path, html_path = _write(metrics, figures, sweep_dir)
    (sweep_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return SweepReport(sweep_dir, md_path, html_path, sweep_dir / "metrics.json", metrics)


# ------------------------------------------------------------------------------------------ figures


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i + 1, k)][:3] or [(0, 0)]


def _figures(metrics: dict[str, Any], names: list[str]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, bytes] = {}
    combined = metrics["combined_front"]
    pts = np.asarray([p["returns"] for p in combined["points"]])
    mask = np.asarray(combined["front_mask"], dtype=bool)
    kinds = {t["name"]: t["kind"] for t in metrics["trials"]}
    fixed = np.asarray([kinds[p["trial"]] == "fixed" for p in combined["points"]], dtype=bool)
    pairs = _pairs(len(names))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        ax.scatter(pts[fixed, i], pts[fixed, j], c="tab:orange", alpha=0.4, marker="s", label="fixed-preference trials")
        ax.scatter(
            pts[~fixed, i], pts[~fixed, j], c="tab:blue", alpha=0.4, label="conditioned trials (each preference)"
        )
        ax.scatter(
            pts[mask, i], pts[mask, j], facecolors="none", edgecolors="k", s=90, label="combined front (non-dominated)"
        )
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Combined Pareto front over all trials and seeds (mean episode returns, higher is better)")
    figures["combined_front"] = _png(fig)

    comp = metrics["comparison"]
    if comp is not None:
        fixed_pts = np.asarray(comp["fixed"]["points"])
        fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
        for ax, (i, j) in zip(axes[0], pairs):
            ax.scatter(
                fixed_pts[:, i],
                fixed_pts[:, j],
                c="tab:orange",
                marker="s",
                s=50,
                label="fixed-preference trials (mean over seeds)",
            )
            if comp["conditioned"] is not None:
                cond = np.asarray(comp["conditioned"]["returns"])
                ax.scatter(
                    cond[:, i],
                    cond[:, j],
                    c="tab:blue",
                    marker="o",
                    s=50,
                    label="preference-conditioned run, same preferences",
                )
            ax.set_xlabel(names[i])
            ax.set_ylabel(names[j])
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle("Fixed-preference trials and one preference-conditioned run on the same preferences and seeds")
        figures["fixed_vs_conditioned"] = _png(fig)
    return figures


# ------------------------------------------------------------------------------------------ writing


def _pref(p: Any) -> str:
    return "—" if p is None else "(" + ", ".join(f"{float(x):.2f}" for x in p) + ")"


def _tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    names = [o["name"] for o in metrics["objectives"]]
    units = [o["unit"] for o in metrics["objectives"]]
    obj_head = [f"{n} ({u})" for n, u in zip(names, units)]
    out = []
    trial_rows = [
        [
            t["name"],
            t["kind"],
            str(t["agent"]),
            _pref(t["preference"]),
            str(t["seed"]),
            ", ".join(f"{k}={v}" for k, v in t["params"].items()) or "—",
            f"{t['env_steps']:,}",
            str(t["attempts"])
            + (f" (resumed at {', '.join(map(str, t['resumed_from_steps']))})" if t["resumed_from_steps"] else ""),
            _fmt(t["hypervolume"]),
            _fmt(t["expected_utility"]),
        ]
        + [_fmt(x) for x in t["mean_return"]]
        for t in metrics["trials"]
    ]
    out.append(
        (
            "Trials (returns: at the trial's preference, or the mean over its evaluation grid)",
            [
                "trial",
                "kind",
                "agent",
                "preference",
                "seed",
                "parameters",
                "env steps",
                "attempts",
                "hypervolume",
                "expected utility",
                *obj_head,
            ],
            trial_rows,
        )
    )
    c = metrics["combined_front"]
    front = [(p, m) for p, m in zip(c["points"], c["front_mask"]) if m]
    out.append(
        (
            f"Combined Pareto front: {len(front)} non-dominated of {len(c['points'])} points; hypervolume {_fmt(c['hypervolume'])}, "
            f"expected utility {_fmt(c['expected_utility'])}",
            ["trial", "preference", *obj_head],
            [[p["trial"], _pref(p["preference"])] + [_fmt(x) for x in p["returns"]] for p, _ in front],
        )
    )
    out.append(
        (
            "Best trial per objective",
            ["objective", "trial", "preference", "return"],
            [
                [obj, b["trial"], _pref(b["preference"]), _fmt(b["value"])]
                for obj, b in metrics["best_per_objective"].items()
            ],
        )
    )
    out.append(
        (
            "Best trial per preference (utility: preference . return / utility scale)",
            ["preference", "trial", "candidates", "utility", *obj_head],
            [
                [_pref(b["preference"]), b["trial"], str(b["candidates"]), _fmt(b["utility"])]
                + [_fmt(x) for x in b["returns"]]
                for b in metrics["best_per_preference"]
            ],
        )
    )
    if metrics["seed_groups"]:
        out.append(
            (
                "Fixed-preference trials over seeds (mean ± 95% CI)",
                ["preference", "agent", "parameters", "seeds", *obj_head],
                [
                    [
                        _pref(g["preference"]),
                        str(g["agent"]),
                        ", ".join(f"{k}={v}" for k, v in g["params"].items()) or "—",
                        ", ".join(map(str, g["seeds"])),
                    ]
                    + [f"{_fmt(m)} ± {_fmt(h)}" for m, h in zip(g["mean"], g["ci95"])]
                    for g in metrics["seed_groups"]
                ],
            )
        )
    comp = metrics["comparison"]
    if comp is not None:
        cond = comp["conditioned"]
        rows = [
            [
                "fixed-preference trials (means over seeds)",
                str(len(comp["fixed"]["points"])),
                _fmt(comp["fixed"]["hypervolume"]),
                _fmt(comp["fixed"]["expected_utility"]),
            ]
        ]
        if cond is not None:
            rows.append(
                [
                    f"preference-conditioned: {', '.join(cond['runs'])}",
                    str(len(cond["returns"])),
                    _fmt(cond["hypervolume"]),
                    _fmt(cond["expected_utility"]),
                ]
            )
        out.append(
            (
                f"Fixed-preference trials beside a preference-conditioned run ({len(comp['preferences'])} preferences, seeds "
                f"{comp['seeds'][0]}..{comp['seeds'][-1]})",
                ["front", "points", "hypervolume", "expected utility"],
                rows,
            )
        )
        if cond is not None:
            out.append(
                (
                    "The preference-conditioned run at each fixed preference",
                    ["preference", *obj_head],
                    [[_pref(p)] + [_fmt(x) for x in r] for p, r in zip(comp["preferences"], cond["returns"])],
                )
            )
    return out


def _write(metrics: dict[str, Any], figures: dict[str, bytes], out: Path) -> tuple[Path, Path]:
    s = metrics["sweep"]
    title = f"Sweep {s['name']} on {s['env_id']}"
    search = s["search"] or {}
    intro = (
        f"{len(metrics['trials'])} finished trial(s)"
        + (
            f", {len(metrics['unfinished'])} unfinished ({', '.join(metrics['unfinished'])})"
            if metrics["unfinished"]
            else ""
        )
        + f"; search: {search.get('algorithm', 'grid')}, metric: {s['metric']} (maximised). Returns are mean episode sums over each "
        "trial's seeded final evaluation; every objective is higher-is-better."
    )
    notes = []
    if metrics["comparison"] is not None and metrics["comparison"]["conditioned"] is None:
        notes.append("No preference-conditioned run to compare with: set conditioned_run in the sweep config.")
    return write_pages(out, title, intro, _tables(metrics), figures, notes)
