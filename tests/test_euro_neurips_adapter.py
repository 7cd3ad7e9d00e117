"""The controller-protocol solver (``python -m paretochain.euro_neurips``) driven by a minimal controller written here."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from paretochain.envs.dispatch.instances import load_instance
from paretochain.euro_neurips import (
    EpochAdapter,
    ProtocolError,
    generated_instance,
    make_policy,
    run,
    write_instance,
)

EPOCH_S, MARGIN_S, PER_EPOCH = 3600, 3600, 12


class MiniController:
    """The controller side over an instance file: requests sampled per epoch, routes checked and applied.

    Requests draw customer, window, demand and service time independently from the file's
    customers and are kept when a vehicle leaving at the epoch's planning start can serve them;
    a request is must-go when the next epoch's planning start would be too late; every open
    request is must-go at the last epoch. A route is one trip from the depot at the planning
    start; its cost is its driving duration.
    """

    def __init__(self, path: Path, seed: int, epoch_tlim: float = 60.0) -> None:
        inst = load_instance(path, format="vrplib")
        n = inst.num_customers
        self.dur = inst.distance.astype(np.int64)
        self.coords = inst.coords
        self.windows = np.concatenate([[[0, inst.depot_close]], inst.window]).astype(np.int64)
        self.service = np.concatenate([[0], inst.service]).astype(np.int64)
        self.demands = np.concatenate([[0], inst.demand]).astype(np.int64)
        self.capacity = int(inst.capacity)
        self.rng = np.random.default_rng(seed)
        self.epoch_tlim = epoch_tlim
        self.start_epoch = int(max((self.windows[1:, 0].min() - MARGIN_S) // EPOCH_S, 0))
        self.end_epoch = int(max((self.windows[1:, 0].max() - MARGIN_S) // EPOCH_S, 0))
        self.epoch = self.start_epoch
        self.n = n
        # request 0 is the depot
        self.req_customer, self.req_window = [0], [self.windows[0]]
        self.req_demand, self.req_service, self.req_epoch = [0], [0], [0]
        self.dispatched: list[bool] = [True]
        self.dispatched_in: dict[int, list[int]] = {}
        self.must: np.ndarray = np.zeros(1, dtype=bool)
        self.cost = 0
        self.epoch_started = time.monotonic()

    def _arrival_ok(self, start: int, cust: np.ndarray, window: np.ndarray, service: np.ndarray) -> np.ndarray:
        arrive = np.maximum(start + self.dur[0, cust], window[:, 0])
        return (arrive <= window[:, 1]) & (arrive + service + self.dur[cust, 0] <= self.windows[0, 1])

    def observation(self) -> dict[str, Any]:
        planning = self.epoch * EPOCH_S + MARGIN_S
        pick = [self.rng.integers(self.n, size=PER_EPOCH) + 1 for _ in range(4)]
        cust, window, demand, service = pick[0], self.windows[pick[1]], self.demands[pick[2]], self.service[pick[3]]
        for k in np.flatnonzero(self._arrival_ok(planning, cust, window, service)):
            self.req_customer.append(int(cust[k]))
            self.req_window.append(window[k])
            self.req_demand.append(int(demand[k]))
            self.req_service.append(int(service[k]))
            self.req_epoch.append(self.epoch)
            self.dispatched.append(False)
        customer = np.array(self.req_customer)
        windows = np.array(self.req_window)
        service_all = np.array(self.req_service)
        if self.epoch < self.end_epoch:
            self.must = ~self._arrival_ok(planning + EPOCH_S, customer, windows, service_all)
        else:
            self.must = np.ones(len(customer), dtype=bool)
        self.must[0] = False
        open_ids = np.array([0] + [i for i in range(1, len(customer)) if not self.dispatched[i]])
        cust_open = customer[open_ids]
        self.epoch_instance = {
            "is_depot": open_ids == 0,
            "customer_idx": cust_open,
            "request_idx": open_ids,
            "coords": self.coords[cust_open],
            "demands": np.array(self.req_demand)[open_ids],
            "capacity": self.capacity,
            "time_windows": np.clip(windows[open_ids] - planning, 0, None),
            "service_times": service_all[open_ids],
            "duration_matrix": self.dur[np.ix_(cust_open, cust_open)],
            "must_dispatch": self.must[open_ids],
        }
        return {
            "current_epoch": self.epoch,
            "current_time": self.epoch * EPOCH_S,
            "planning_starttime": planning,
            "epoch_instance": self.epoch_instance,
        }

    def reset(self) -> dict[str, Any]:
        info = {
            "dynamic_context": {
                "is_depot": np.arange(self.n + 1) == 0,
                "coords": self.coords,
                "demands": self.demands,
                "capacity": self.capacity,
                "time_windows": self.windows,
                "service_times": self.service,
                "duration_matrix": self.dur,
            },
            "is_static": False,
            "start_epoch": self.start_epoch,
            "end_epoch": self.end_epoch,
            "num_epochs": self.end_epoch - self.start_epoch + 1,
            "epoch_tlim": self.epoch_tlim,
        }
        self.epoch_started = time.monotonic()
        return {"observation": self.observation(), "info": info}

    def check(self, routes: list[list[int]]) -> int:
        """The driving duration of the epoch's routes; AssertionError when they break a rule."""
        ei = self.epoch_instance
        position = {int(r): k for k, r in enumerate(ei["request_idx"])}
        seen: set[int] = set()
        cost = 0
        for route in routes:
            assert route, "empty route"
            stops = [position[r] for r in route]  # KeyError: a request that is not open
            assert not seen & set(route), "a request in two routes"
            seen |= set(route)
            assert ei["demands"][stops].sum() <= ei["capacity"], "capacity exceeded"
            now, prev = 0, 0
            for s in stops:
                now = max(now + ei["duration_matrix"][prev, s], ei["time_windows"][s, 0])
                assert now <= ei["time_windows"][s, 1], f"window missed at request {ei['request_idx'][s]}"
                now += ei["service_times"][s]
                cost += ei["duration_matrix"][prev, s]
                prev = s
            now += ei["duration_matrix"][prev, 0]
            cost += ei["duration_matrix"][prev, 0]
            assert now <= ei["time_windows"][0, 1], "back at the depot too late"
        missing = set(ei["request_idx"][ei["must_dispatch"]].tolist()) - seen
        assert not missing, f"must-go requests not dispatched: {sorted(missing)}"
        return int(cost)

    def step(self, routes: list[list[int]]) -> dict[str, Any]:
        if time.monotonic() - self.epoch_started > self.epoch_tlim:
            return {"observation": None, "reward": -(10**9), "done": True, "info": {"error": "Time exceeded"}}
        try:
            cost = self.check(routes)
        except (AssertionError, KeyError) as exc:
            return {"observation": None, "reward": -(10**9), "done": True, "info": {"error": str(exc)}}
        for route in routes:
            for r in route:
                self.dispatched[r] = True
        self.dispatched_in[self.epoch] = sorted(r for route in routes for r in route)
        self.cost += cost
        self.epoch += 1
        done = self.epoch > self.end_epoch
        self.epoch_started = time.monotonic()
        return {
            "observation": None if done else self.observation(),
            "reward": -cost,
            "done": done,
            "info": {"error": None},
        }


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=lambda x: x.tolist() if isinstance(x, np.ndarray) else x.item())


def drive(controller: MiniController, policy: str, *options: str) -> tuple[int, list[dict[str, Any]]]:
    """Run the solver as a subprocess under ``controller``; its exit status and every answer sent."""
    cmd = [
        sys.executable,
        "-m",
        "paretochain.euro_neurips",
        "--policy",
        policy,
        "--routing-iterations",
        "200",
        *options,
    ]
    answers = []
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        assert p.stdin is not None and p.stdout is not None
        for line in p.stdout:
            request = json.loads(line)
            if request["action"] == "reset":
                answer = controller.reset()
            else:
                assert request["action"] == "step"
                answer = controller.step(request["data"])
            answers.append(answer)
            p.stdin.write(to_json(answer) + "\n")
            p.stdin.flush()
        p.stdin.close()
        status = p.wait(timeout=60)
    return status, answers


@pytest.fixture(scope="module")
def instance_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("euro") / "generated-n40.txt"
    write_instance(path, generated_instance(40, seed=3), name="generated-n40")
    return path


def test_a_written_instance_reads_back_with_its_matrix_windows_and_demands(instance_file: Path) -> None:
    original = generated_instance(40, seed=3)
    read = load_instance(instance_file, format="vrplib")
    assert np.array_equal(read.distance, original["duration_matrix"])
    assert np.array_equal(read.window, original["time_windows"][1:])
    assert np.array_equal(read.demand, original["demands"][1:])
    assert read.depot_close == original["time_windows"][0, 1] and read.capacity == 50


@pytest.mark.parametrize("seed", [1, 2])
def test_greedy_solver_completes_an_instance_under_the_controller_dispatching_each_request_at_once(
    instance_file: Path, seed: int
) -> None:
    controller = MiniController(instance_file, seed=seed)
    status, answers = drive(controller, "greedy")
    assert all(not a["info"].get("error") for a in answers[1:]), [a["info"] for a in answers]
    assert status == 0 and answers[-1]["done"]
    assert all(controller.dispatched), "every request dispatched by the end"
    epochs = np.array(controller.req_epoch[1:])
    for epoch, ids in controller.dispatched_in.items():  # greedy: each request leaves in the epoch it appears
        assert ids == [i for i in range(1, len(controller.req_epoch)) if controller.req_epoch[i] == epoch]
    assert epochs.size > 0 and -sum(a["reward"] for a in answers[1:]) == controller.cost > 0


def test_lazy_solver_dispatches_only_must_go_requests_before_the_last_epoch(instance_file: Path) -> None:
    controller = MiniController(instance_file, seed=1)
    status, answers = drive(controller, "lazy")
    assert status == 0 and all(not a["info"].get("error") for a in answers[1:])
    assert all(controller.dispatched)
    assert controller.dispatched_in[controller.end_epoch], "what was left went at the last epoch"
    greedy = MiniController(instance_file, seed=1)
    drive(greedy, "greedy")
    assert greedy.req_customer == controller.req_customer  # the same requests: the controller's seed decides them
    early = [e for e in controller.dispatched_in if e < controller.end_epoch]
    assert sum(len(controller.dispatched_in[e]) for e in early) < sum(len(greedy.dispatched_in[e]) for e in early)


def scripted(*answers: Any) -> io.StringIO:
    return io.StringIO("".join((a if isinstance(a, str) else to_json(a)) + "\n" for a in answers))


def test_a_refused_epoch_stops_the_solver_with_the_controllers_reason(instance_file: Path) -> None:
    controller = MiniController(instance_file, seed=1)
    reset = controller.reset()
    refusal = {"observation": None, "reward": -1, "done": True, "info": {"error": "Time exceeded"}}
    sent = io.StringIO()
    with pytest.raises(ProtocolError, match=r"refused the routes of epoch \d+: Time exceeded"):
        run(EpochAdapter(make_policy("greedy")), scripted(reset, refusal), sent, io.StringIO())
    requests = [json.loads(line) for line in sent.getvalue().splitlines()]
    assert [r["action"] for r in requests] == ["reset", "step"]


@pytest.mark.parametrize(
    "answer, problem",
    [
        ("not json", "not JSON"),
        ('{"reward": 0}', "no observation"),
        ('{"observation": {"current_epoch": 0}, "info": {}}', "no dynamic_context"),
        ('{"observation": {}, "info": {"dynamic_context": {}}}', "reset lacks the field 'start_epoch'"),
    ],
)
def test_a_malformed_controller_answer_is_a_protocol_error(answer: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        run(EpochAdapter(make_policy("lazy")), scripted(answer), io.StringIO(), io.StringIO())


def test_the_solver_exits_with_status_two_and_one_line_when_the_controller_hangs_up() -> None:
    cmd = [sys.executable, "-m", "paretochain.euro_neurips", "--policy", "greedy"]
    done = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: the controller closed the pipe after a 'reset' request"]


@pytest.fixture(scope="module")
def epoch_policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) per-order attention policy exported from a small ``DispatchEpoch-v0`` agent."""
    import torch

    from paretochain.agents.export import export_policy
    from paretochain.agents.mo_ppo import MOPPO
    from paretochain.envs import make_vec
    from paretochain.train.config import load_run_config

    tiny = {"generator": {"num_customers": 10}, "num_vehicles": 2, "epoch": {"routing_iterations": 20}}
    env = make_vec("paretochain/DispatchEpoch-v0", 2, config="default", tensors=True, check_actions=False, **tiny)
    torch.manual_seed(0)
    agent = MOPPO(env, {**load_run_config("dispatch_epoch_mo_ppo").hyperparameters, "seed": 0}, device="cpu")
    return export_policy(agent, tmp_path_factory.mktemp("epoch_policy"), pt2=False)


def test_a_trained_epoch_policy_file_runs_under_the_controller_in_its_own_layout(
    instance_file: Path, epoch_policy_file: Path
) -> None:
    from paretochain.agents.export import load_policy

    policy = make_policy(str(epoch_policy_file))
    adapter = EpochAdapter(policy)
    assert (adapter.max_orders, adapter.layout.fleet_rows) == (10, 2)  # the file's slots and fleet, not the default
    controller = MiniController(instance_file, seed=1)
    status, answers = drive(controller, str(epoch_policy_file), "--preference", "1,0,0")
    assert status == 0 and answers[-1]["done"]
    assert all(not a["info"].get("error") for a in answers[1:]), [a["info"] for a in answers]
    assert all(controller.dispatched), "every request dispatched by the end"
    assert load_policy(epoch_policy_file).metadata["env_id"] == "paretochain/DispatchEpoch-v0"


def test_a_policy_file_of_another_environment_is_refused_with_one_line(tmp_path: Path) -> None:
    import torch

    from paretochain.agents.export import export_policy
    from paretochain.agents.mo_ppo import MOPPO
    from paretochain.envs import make_vec

    env = make_vec("paretochain/Warehouse-v0", 2, config="lost_sales", tensors=True, check_actions=False)
    torch.manual_seed(0)
    path = export_policy(MOPPO(env, {"seed": 0}, device="cpu"), tmp_path, pt2=False)
    cmd = [sys.executable, "-m", "paretochain.euro_neurips", "--policy", str(path)]
    done = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "paretochain/Warehouse-v0" in lines[0] and "DispatchEpoch-v0" in lines[0]


@pytest.mark.parametrize("text", ["1,x,0", "1,-1,0", "0,0,0", "nan,1,0"])
def test_a_bad_preference_is_refused_with_one_line(text: str) -> None:
    cmd = [sys.executable, "-m", "paretochain.euro_neurips", "--policy", "greedy", "--preference", text]
    done = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --preference")


def test_the_adapters_wait_slack_and_due_count_say_when_the_controller_makes_a_request_must_go(
    instance_file: Path,
) -> None:
    controller = MiniController(instance_file, seed=5)
    adapter = EpochAdapter(make_policy("lazy"), max_orders=200)
    answer = controller.reset()
    adapter.start(answer["info"])
    T = float(controller.windows[0, 1])
    N, width = adapter.max_orders, 11
    checked = 0
    dues: list[int] = []
    while True:
        observation = answer["observation"]
        ei = observation["epoch_instance"]
        shown = len(ei["request_idx"]) - 1
        open_now = np.zeros(N, dtype=bool)
        open_now[:shown] = True
        must = np.zeros(N, dtype=bool)
        must[:shown] = ei["must_dispatch"][1:]
        obs = adapter.observation(observation, open_now, must)
        slack = obs[: N * width].reshape(N, width)[:shown, 10].astype(np.float64)
        due = round(float(obs[-2]) * N)
        ids = np.asarray(ei["request_idx"])[1:]
        waiting = ~must[:shown]
        if observation["current_epoch"] < controller.end_epoch:
            leave_by = observation["planning_starttime"] + EPOCH_S + slack * T
            rows = ids[waiting]
            cust = np.array(controller.req_customer)[rows]
            window = np.array(controller.req_window)[rows]
            service = np.array(controller.req_service)[rows]
            assert controller._arrival_ok(leave_by[waiting] - 1.0, cust, window, service).all()  # type: ignore[arg-type]
            assert not controller._arrival_ok(leave_by[waiting] + 1.0, cust, window, service).any()  # type: ignore[arg-type]
            checked += int(waiting.sum())
        answer = controller.step([[int(r)] for r in ids[~waiting]])
        assert answer["info"]["error"] is None
        if answer["done"]:
            break
        still = np.asarray(answer["observation"]["epoch_instance"]["request_idx"])
        now_must = set(still[np.asarray(answer["observation"]["epoch_instance"]["must_dispatch"])].tolist())
        assert due == len(now_must & set(ids[waiting].tolist()))
        dues.append(due)
    assert checked > 0 and max(dues) > 0
