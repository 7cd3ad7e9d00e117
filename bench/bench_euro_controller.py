"""The EURO Meets NeurIPS 2022 controller running ``python -m paretochain.euro_neurips`` on generated instances.

The controller (``controller.py``, ``environment.py`` and ``tools.py`` of the public repository
``ortec/euro-neurips-vrp-2022-quickstart``) is not part of this project: pass the folder that holds
them. Instances are generated here in the competition's file format
(:func:`paretochain.euro_neurips.generated_instance`), so none of the competition's
non-commercial instances is needed. Every (instance size, policy, instance seed) runs the whole
dynamic episode under the controller with ``--epoch_tlim``; the table gives the controller's cost,
the wall-clock time of the run and the controller's error, if any (``Time exceeded`` when an
epoch's routes came too late).

Usage::

    python bench/bench_euro_controller.py --controller-dir ../euro-neurips-vrp-2022-quickstart \\
        --customers 100 200 --policies greedy lazy runs/RUN/policy.pt --seeds 1 2 --epoch-tlim 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paretochain.euro_neurips import generated_instance, write_instance


def run_once(controller_dir: Path, instance: Path, policy: str, seed: int, epoch_tlim: int) -> tuple[str, float, str]:
    """The controller's cost, the run's wall-clock seconds and the first error line (empty if none)."""
    solver = [sys.executable, "-m", "paretochain.euro_neurips", "--policy", policy]
    cmd = [sys.executable, "controller.py", "--instance", str(instance), "--instance_seed", str(seed)]
    cmd += ["--epoch_tlim", str(epoch_tlim), "--", *solver]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=controller_dir, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    cost = next((line.split(":")[1].strip() for line in output.splitlines() if line.startswith("Cost of solution")), "")
    errors = [ln for ln in output.splitlines() if "error" in ln.lower() or "exceeded" in ln.lower()]
    if done.returncode != 0 and not errors:
        errors = [f"exit status {done.returncode}"]
    return cost, seconds, errors[0] if errors else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controller-dir", type=Path, required=True, help="folder with controller.py")
    parser.add_argument("--customers", type=int, nargs="+", default=[100, 200], help="instance sizes")
    parser.add_argument("--policies", nargs="+", default=["greedy", "lazy"], help="names or policy.pt paths")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="the controller's instance seeds")
    parser.add_argument("--epoch-tlim", type=int, default=5, help="seconds per epoch")
    parser.add_argument("--instance-seed", type=int, default=11, help="seed of the generated instances")
    args = parser.parse_args()
    if not (args.controller_dir / "controller.py").is_file():
        parser.error(f"{args.controller_dir} holds no controller.py")
    print(f"epoch time limit {args.epoch_tlim} s; generated instances (seed {args.instance_seed})")
    print("| customers | policy | instance seed | cost | wall-clock s | error |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.customers:
            instance = Path(folder) / f"generated-n{n}.txt"
            write_instance(instance, generated_instance(n, seed=args.instance_seed), name=instance.stem)
            for policy in args.policies:
                for seed in args.seeds:
                    cost, seconds, error = run_once(args.controller_dir, instance, policy, seed, args.epoch_tlim)
                    print(f"| {n} | {policy} | {seed} | {cost} | {seconds:.1f} | {error or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
