"""DCL iteration by iteration on one lost-sales instance: does each policy-improvement step improve?

A diagnostic, not a decision-quality claim (that is ``bench_quality_lost_sales.py``). It builds
the DCL agent of a run config (default: the packaged ``lost_sales_dcl``, with ``key=value``
overrides of its hyperparameters), lets it imitate the run's ``imitation`` teacher (the packaged
config's: ``best_lost_sales_heuristic``), tuned as a training run tunes it, then runs the
policy-improvement iterations one at a time. After the imitation and after every iteration it
prints the policy's long-run cost at the cost-only preference on validation seeds (500,000
onwards), as a ratio to the exact optimum and as the paired differences to the teacher and to
tuned capped base-stock on the same episodes (95% CI), with the iteration's share of labels equal
to the policy's own action and the classifier's accuracy. The imitation line says how closely the
network reproduces its teacher.

Usage::

    python bench/bench_dcl_iterations.py --instance 4,39
    python bench/bench_dcl_iterations.py --instance 4,39 significance=1.5 corner_share=0.5
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.lost_sales import LostSalesModel, long_run_cost
from paretochain.agents.baselines.lost_sales_dp import solve_lost_sales
from paretochain.agents.dcl import DCLAgent
from paretochain.envs.registration import make_vec
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.baselines import family_baselines
from paretochain.evaluate.stats import paired_difference
from paretochain.seeds import TUNING_SEEDS, VALIDATION
from paretochain.train.config import load_run_config


class _CostOnly:
    """The agent at the cost-only preference (weight 1 on total_cost), as a long_run_cost factory."""

    def __init__(self, agent: DCLAgent) -> None:
        self.agent = agent
        self.preference = torch.zeros(1, agent.k)
        self.preference[0, agent.objective_names.index("total_cost")] = 1.0

    def __call__(self, env: object) -> _CostOnly:
        return self

    def act(self, obs: torch.Tensor, preference: object = None, action_mask: object = None) -> torch.Tensor:
        return self.agent.act(obs, self.preference.expand(obs.shape[0], -1), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instance", default="4,39", help="L,p (lead time, penalty)")
    parser.add_argument("--run-config", default="lost_sales_dcl", help="a DCL run config (path or packaged name)")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--episodes", type=int, default=1024, help="validation episodes per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imitation-steps", type=int, default=None, help="instead of the run config's (quick looks)")
    parser.add_argument("overrides", nargs="*", help="hyperparameter=value (YAML values)")
    args = parser.parse_args()

    lead_time, penalty = (float(x) for x in args.instance.split(","))
    run = load_run_config(args.run_config, [f"hyperparameters.{o}" for o in args.overrides] + [f"seed={args.seed}"])
    hyperparameters = {**run.hyperparameters, "seed": args.seed}
    cfg = WarehouseConfig.load("lost_sales", supplier_lead_time={"periods": int(lead_time)}, shortage_penalty=penalty)
    model = LostSalesModel.of(cfg)
    optimum = solve_lost_sales(model.mean, model.lead_time, model.holding_cost, penalty, model.max_order).average_cost
    started = time.perf_counter()
    teacher_name = run.imitation.baseline if run.imitation is not None else "capped_base_stock"
    names = list(dict.fromkeys([teacher_name, "capped_base_stock"]))
    baselines = family_baselines(run.env.id, cfg, names, train_seeds=TUNING_SEEDS)
    seeds = VALIDATION.first(args.episodes)
    teacher_cost = long_run_cost(cfg, baselines[teacher_name], seeds)
    capped_cost = long_run_cost(cfg, baselines["capped_base_stock"], seeds)
    env = make_vec("paretochain/Warehouse-v0", run.num_envs, config=cfg, tensors=True, check_actions=False)
    teacher = baselines[teacher_name](env)
    print(
        f"L={lead_time:g} p={penalty:g} {yaml.safe_dump(args.overrides, default_flow_style=True).strip()} "
        f"optimum {optimum:.4f}; teacher {teacher_name} ({type(teacher).__name__}) "
        f"x{teacher_cost.mean() / optimum:.4f}, capped base-stock x{capped_cost.mean() / optimum:.4f} "
        f"(tuned in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    agent = DCLAgent(env, hyperparameters)
    policy = _CostOnly(agent)

    def report(stage: str, seconds: float, stats: dict[str, float] | None = None) -> None:
        cost = long_run_cost(cfg, policy, seeds)
        line = f"{stage:>10}  x{cost.mean() / optimum:.4f}"
        for name, reference in (("teacher", teacher_cost), ("capped base-stock", capped_cost)):
            diff, half = (float(x) for x in paired_difference(cost, reference))
            line += f"  - {name} {diff:+.4f} ± {half:.4f}"
        if stats is not None:
            line += (
                f"  labels = own action {stats['charts/label_agreement']:.3f}, accuracy {stats['losses/accuracy']:.3f}"
            )
        print(f"{line}  ({seconds:.0f} s)", flush=True)

    if run.imitation is not None:
        started = time.perf_counter()
        agent.imitate(teacher, args.imitation_steps or run.imitation.env_steps)
        report("imitation", time.perf_counter() - started)
    for i in range(args.iterations):
        started = time.perf_counter()
        stats = agent.learn(agent.update_env_steps)
        report(f"iteration {i + 1}", time.perf_counter() - started, stats)


if __name__ == "__main__":
    main()
