"""VRPLIB sections are read by node id: line order does not matter, ids missing or given twice are refused."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from paretochain.cli import main
from paretochain.envs.dispatch import DispatchEnv, load_instance
from paretochain.errors import DataError

SMALL = """NAME : small-k2
TYPE : CVRPTW
DIMENSION : 4
CAPACITY : 10
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
{coords}
DEMAND_SECTION
1 0
2 3
3 4
4 5
TIME_WINDOW_SECTION
1 0 1000
2 0 100
3 10 200
4 20 300
DEPOT_SECTION
1
-1
EOF
"""
COORDS = ["1 0 0", "2 30 40", "3 60 80", "4 -5 12"]


def _write(tmp_path: Path, coords: list[str], name: str = "small.vrp") -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(coords="\n".join(coords)))
    return path


def test_swapping_two_coordinate_lines_with_their_ids_changes_nothing(tmp_path: Path) -> None:
    ordered = load_instance(_write(tmp_path, COORDS))
    swapped = load_instance(_write(tmp_path, [COORDS[0], COORDS[3], COORDS[2], COORDS[1]], "swapped.vrp"))
    np.testing.assert_array_equal(ordered.coords, swapped.coords)
    np.testing.assert_array_equal(ordered.distance, swapped.distance)
    assert ordered.distance[0, 1] == 50.0  # node 2 at (30, 40) from the depot at (0, 0)


def test_the_node_id_decides_which_node_a_coordinate_belongs_to(tmp_path: Path) -> None:
    relabelled = load_instance(_write(tmp_path, ["1 0 0", "3 30 40", "2 60 80", "4 -5 12"]))
    assert relabelled.distance[0, 1] == 100.0  # node 2 is now the one at (60, 80)
    np.testing.assert_array_equal(relabelled.demand, [3, 4, 5])  # demands stay with their ids


@pytest.mark.parametrize(
    ("coords", "problem"),
    [
        (["1 0 0", "2 30 40", "2 60 80", "4 -5 12"], "line 9: NODE_COORD_SECTION gives node 2 a second time"),
        (["1 0 0", "2 30 40", "4 -5 12"], "NODE_COORD_SECTION has no line for node(s) 3 of 1..4"),
        (["1 0 0", "2 30 40", "3 abc 80", "4 -5 12"], "line 9: NODE_COORD_SECTION, node 3: 'abc' is not a number"),
        (["1 0 0", "2 30 40", "3 60 80", "7 -5 12"], "NODE_COORD_SECTION names node 7, outside 1..4"),
        (["1 0 0", "2 30 40", "x 60 80", "4 -5 12"], "starts with 'x', not a node id"),
        (["1 0 0", "2 30 40", "3 60", "4 -5 12"], "node 3: 1 values, the section's first line has 2"),
    ],
)
def test_bad_node_lines_give_one_data_error_naming_the_line(tmp_path: Path, coords: list[str], problem: str) -> None:
    path = _write(tmp_path, coords)
    with pytest.raises(DataError) as caught:
        load_instance(path)
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)


def test_a_duplicate_demand_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.vrp"
    path.write_text(SMALL.format(coords="\n".join(COORDS)).replace("3 4\n", "2 4\n"))
    with pytest.raises(DataError, match="DEMAND_SECTION gives node 2 a second time"):
        load_instance(path)


def test_a_coordinate_abc_is_one_clear_error_through_the_env_and_the_cli(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, ["1 0 0", "2 30 40", "3 abc 80", "4 -5 12"])
    with pytest.raises(DataError, match="'abc' is not a number"):
        DispatchEnv(instance_source="file", instance={"path": str(path)})
    code = main(
        [
            "train",
            "dispatch_mo_ppo",
            "env.overrides.instance_source=file",
            f"env.overrides.instance={{path: {path}}}",
            f"runs_dir={tmp_path / 'runs'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "'abc' is not a number" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_shipped_instances_read_by_id_match_the_published_optimum(shared_data: Path) -> None:
    inst = load_instance(shared_data / "cvrplib" / "A" / "A-n32-k5.vrp")
    text = (shared_data / "cvrplib" / "A" / "A-n32-k5.sol").read_text()
    routes = [[int(c) for c in line.split(":")[1].split()] for line in text.splitlines() if line.startswith("Route")]
    cost = sum(
        inst.distance[0, r[0]] + sum(inst.distance[a, b] for a, b in pairwise(r)) + inst.distance[r[-1], 0]
        for r in routes
    )
    assert cost == 784
