"""The C++ example (examples/cpp) builds against the torch wheel's libtorch and acts exactly like Python."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from paretochain.agents.export import export_policy, load_policy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cpp"
WAREHOUSE = "paretochain/Warehouse-v0"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("cmake") is None or (shutil.which("c++") is None and shutil.which("g++") is None),
        reason="needs cmake and a C++ compiler (scripts/test.sh installs them when run as root)",
    ),
]


@pytest.fixture(scope="module")
def run_policy(tmp_path_factory) -> Path:
    """The example built once, exactly as docs/production.md says."""
    build = tmp_path_factory.mktemp("cpp_build")
    prefix = torch.utils.cmake_prefix_path
    configure = ["cmake", "-S", str(EXAMPLE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    for command in ([*configure, f"-DCMAKE_PREFIX_PATH={prefix}"], ["cmake", "--build", str(build)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return build / "run_policy"


def exported(config: str, folder: Path) -> tuple[MOPPO, Path]:
    env = make_vec(WAREHOUSE, 4, config=config, tensors=True, check_actions=False)
    agent = MOPPO(env, {"num_steps": 8, "seed": 1})
    agent.learn(64)
    with torch.no_grad():  # spread the output layer so that actions depend on the input
        head = agent.actor.head
        (head.logits if hasattr(head, "logits") else head.mean).weight.mul_(100.0)
    return agent, export_policy(agent, folder)


def inputs(agent: MOPPO, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mean, std = agent.obs_norm.scale()
    obs = (mean + 3 * std * torch.randn(n, agent.obs_dim, generator=g)).clamp(min=0)
    pref = torch.distributions.Dirichlet(torch.ones(agent.k)).sample((n,))
    mask = torch.rand(n, agent.mask_dim, generator=g) < 0.6
    if agent.mask_dim == 21:
        mask[:, ::7] = True  # every dimension keeps a choice
    return obs, pref, mask


def run(binary: Path, *args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config", ["default", "backorder_box"], ids=["multidiscrete", "box"])
def test_the_cpp_example_reproduces_the_python_actions(run_policy: Path, tmp_path, config: str) -> None:
    agent, path = exported(config, tmp_path)
    obs, pref, mask = inputs(agent, 300, seed=5)
    torch.save((obs, pref, mask), tmp_path / "inputs.pt")
    done = run(run_policy, path, tmp_path / "inputs.pt", tmp_path / "actions.pt")
    assert done.returncode == 0, done.stderr
    cpp = torch.load(tmp_path / "actions.pt")
    python = load_policy(path).act(obs, pref, mask)
    if python.is_floating_point():
        torch.testing.assert_close(cpp, python, atol=1e-5, rtol=0)
    else:
        assert torch.equal(cpp, python)
        assert python.unique().numel() > 1, "the test needs actions that depend on the input"


def test_the_cpp_example_reports_a_refused_input_in_one_line(run_policy: Path, tmp_path) -> None:
    agent, path = exported("default", tmp_path)
    obs, pref, mask = inputs(agent, 4, seed=6)
    obs[2, 1] = float("nan")
    torch.save((obs, pref, mask), tmp_path / "inputs.pt")
    done = run(run_policy, path, tmp_path / "inputs.pt", tmp_path / "actions.pt")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["run_policy: builtins.ValueError: policy input: obs holds NaN or inf"]
    assert not (tmp_path / "actions.pt").exists()


def test_the_cpp_example_builds_inputs_from_the_metadata(run_policy: Path, tmp_path) -> None:
    agent, path = exported("default", tmp_path)
    done = run(run_policy, path)
    assert done.returncode == 0, done.stderr
    assert f"observation dim {agent.obs_dim}, objectives {agent.k}, mask dim {agent.mask_dim}" in done.stdout
    zero = torch.zeros(1, agent.obs_dim)
    expected = load_policy(path).act(zero).flatten().tolist()
    numbers = done.stdout.split("action", 1)[1].split("[")[0].split()
    assert [int(x) for x in numbers] == expected
