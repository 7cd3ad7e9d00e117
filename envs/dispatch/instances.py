"""Routing instances from VRPLIB files (CVRPLIB, Solomon) through the ``vrplib`` package.

Distance conventions, so that a published solution costs exactly its published value:

- ``round``: Euclidean distance rounded to the nearest integer (TSPLIB ``EUC_2D``; CVRPLIB sets A, B, P, X);
- ``trunc1``: Euclidean distance truncated to one decimal, ``floor(10 d) / 10`` (the DIMACS convention
  of the Solomon VRPTW best-known solutions);
- ``exact``: unrounded Euclidean distance;
- ``explicit``: the file's own matrix (``EDGE_WEIGHT_TYPE : EXPLICIT``).

Travel time equals distance for file instances. Anything that cannot be trusted (a missing section,
a demand above the capacity, a window that closes before it opens, ...) raises
:class:`~paretochain.errors.DataError` naming the file and the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from paretochain.envs.dispatch.types import StaticInstance
from paretochain.errors import DataError


def euclidean(coords: np.ndarray, convention: str) -> np.ndarray:
    """Pairwise distances ``(M, M)`` of ``coords`` under a convention (``round``, ``trunc1`` or ``exact``)."""
    diff = coords[:, None, :] - coords[None, :, :]
    d = np.sqrt((diff**2).sum(-1))
    if convention == "round":
        return np.floor(d + 0.5)
    if convention == "trunc1":
        return np.floor(10.0 * d + 1e-9) / 10.0
    if convention == "exact":
        return d
    raise ValueError(f"unknown distance convention {convention!r}; use round, trunc1 or exact")


def _fail(path: Path, problem: str) -> DataError:
    return DataError(f"{path}: {problem}")


def packaged_instance(path: Path) -> Path:
    """``path`` itself, or for a relative path missing from the working directory the instance of that name
    shipped with the package (``configs/dispatch/instances/``, where the packaged configs' files are)."""
    if path.is_absolute() or path.exists():
        return path
    from paretochain.envs.config import packaged_configs_dir

    shipped = packaged_configs_dir() / "dispatch" / "instances" / path
    return shipped if shipped.is_file() else path


def load_instance(path: str | Path, format: str = "auto", distance: str = "auto") -> StaticInstance:
    """Read a CVRP or VRPTW instance.

    Args:
        path: a VRPLIB ``.vrp`` file, or a classic Solomon ``.txt`` file.
        format: ``"vrplib"``, ``"solomon"`` or ``"auto"`` (``.txt`` means Solomon).
        distance: ``"round"``, ``"trunc1"``, ``"exact"`` or ``"auto"``: ``round`` for CVRP files,
            ``trunc1`` for files with time windows, the file's matrix for ``EXPLICIT`` weights.

    Raises:
        DataError: the file is missing, unreadable or inconsistent (the message names the file and the problem).
    """
    import vrplib

    path = packaged_instance(Path(path))
    if not path.exists():
        raise _fail(path, "instance file does not exist (give the file in the config as instance.path)")
    fmt = ("solomon" if path.suffix.lower() == ".txt" else "vrplib") if format == "auto" else format
    try:
        data: dict[str, Any] = vrplib.read_instance(str(path), instance_format=fmt, compute_edge_weights=False)
    except Exception as exc:  # vrplib raises many kinds of errors on malformed text
        raise _fail(path, f"not a readable {fmt} instance ({type(exc).__name__}: {exc})") from None
    return instance_from_dict(data, path, fmt, distance)


def instance_from_dict(data: dict[str, Any], path: Path, fmt: str, distance: str) -> StaticInstance:
    """Check a parsed instance and turn it into a :class:`StaticInstance` (see :func:`load_instance`)."""
    name = str(data.get("name", path.stem))
    if "demand" not in data:
        raise _fail(path, "no DEMAND_SECTION")
    demand_all = np.asarray(data["demand"], dtype=np.float64).reshape(-1)
    dim = int(data.get("dimension", demand_all.shape[0]))
    if demand_all.shape[0] != dim:
        raise _fail(path, f"DIMENSION is {dim} but DEMAND_SECTION has {demand_all.shape[0]} entries")
    if dim < 2:
        raise _fail(path, f"DIMENSION {dim}: an instance needs a depot and at least one customer")
    if "capacity" not in data:
        raise _fail(path, "no CAPACITY")
    capacity = float(np.asarray(data["capacity"]).reshape(-1)[0])
    if not capacity > 0:
        raise _fail(path, f"CAPACITY must be positive, got {capacity}")

    depots = np.asarray(data.get("depot", [0]), dtype=np.int64).reshape(-1)
    if depots.size == 0:
        raise _fail(path, "DEPOT_SECTION lists no depot")
    if (depots < 0).any() or (depots >= dim).any():
        raise _fail(
            path, f"DEPOT_SECTION names node {int(depots[(depots < 0) | (depots >= dim)][0]) + 1}, outside 1..{dim}"
        )
    customers = np.array([i for i in range(dim) if i not in set(depots.tolist())], dtype=np.int64)
    if customers.size == 0:
        raise _fail(path, "every node is a depot; there is no customer")
    order = np.concatenate([depots, customers])

    coords = data.get("node_coord")
    edge_type = str(data.get("edge_weight_type", "EUC_2D")).upper()
    if coords is not None:
        coords = np.asarray(coords, dtype=np.float64)
        if coords.shape != (dim, 2):
            raise _fail(path, f"NODE_COORD_SECTION has shape {coords.shape}, expected ({dim}, 2) for DIMENSION {dim}")
        if not np.isfinite(coords).all():
            raise _fail(path, "NODE_COORD_SECTION holds a non-finite coordinate")
    if edge_type == "EXPLICIT":
        matrix = data.get("edge_weight")
        if matrix is None:
            raise _fail(path, "EDGE_WEIGHT_TYPE is EXPLICIT but there is no EDGE_WEIGHT_SECTION")
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (dim, dim):
            raise _fail(path, f"EDGE_WEIGHT_SECTION has shape {matrix.shape}, expected ({dim}, {dim})")
        convention = "explicit" if distance == "auto" else distance
        if convention != "explicit":
            raise _fail(path, f"distance convention {distance!r} needs coordinates; this file has an explicit matrix")
        full = matrix.copy()
        if coords is None:
            coords = np.zeros((dim, 2))
    else:
        if coords is None:
            raise _fail(path, f"EDGE_WEIGHT_TYPE {edge_type} needs a NODE_COORD_SECTION, which is missing")
        if edge_type not in ("EUC_2D",):
            raise _fail(path, f"EDGE_WEIGHT_TYPE {edge_type} is not supported (EUC_2D or EXPLICIT)")
        has_tw = "time_window" in data
        convention = ("trunc1" if has_tw else "round") if distance == "auto" else distance
        if convention == "explicit":
            raise _fail(path, "distance 'explicit' needs an EDGE_WEIGHT_SECTION")
        full = euclidean(coords, convention)
    if (full < 0).any() or not np.isfinite(full).all():
        raise _fail(path, "distances must be finite and non-negative")
    full = full[np.ix_(order, order)]
    np.fill_diagonal(full, 0.0)

    demand = demand_all[customers]
    if (demand < 0).any():
        i = int(np.argmax(demand < 0))
        raise _fail(path, f"customer at node {customers[i] + 1} has negative demand {demand[i]:g}")
    if (demand > capacity).any():
        i = int(np.argmax(demand > capacity))
        raise _fail(
            path,
            f"customer at node {customers[i] + 1} demands {demand[i]:g} units, more than the vehicle capacity {capacity:g}",
        )

    service_raw = data.get("service_time", 0.0)
    service_arr = np.asarray(service_raw, dtype=np.float64).reshape(-1)
    if service_arr.size == 1:
        service = np.full(customers.size, float(service_arr[0]))
    elif service_arr.size == dim:
        service = service_arr[customers]
    else:
        raise _fail(path, f"SERVICE_TIME has {service_arr.size} entries for DIMENSION {dim}")
    if (service < 0).any():
        raise _fail(path, "SERVICE_TIME must be non-negative")

    depot_close = float("inf")
    if "time_window" in data:
        tw = np.asarray(data["time_window"], dtype=np.float64)
        if tw.shape != (dim, 2):
            raise _fail(path, f"TIME_WINDOW_SECTION has shape {tw.shape}, expected ({dim}, 2)")
        bad = tw[:, 1] < tw[:, 0]
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(
                path, f"node {i + 1} has a time window [{tw[i, 0]:g}, {tw[i, 1]:g}] that closes before it opens"
            )
        window = tw[customers]
        depot_close = float(tw[depots, 1].min())
    else:
        window = np.stack([np.zeros(customers.size), np.full(customers.size, np.inf)], axis=1)

    vehicles = data.get("vehicles")
    match = re.search(r"-k(\d+)", name)
    return StaticInstance(
        name=name,
        coords=coords[order],
        distance=full,
        demand=demand,
        service=service,
        window=window,
        capacity=capacity,
        num_depots=int(depots.size),
        depot_close=depot_close,
        num_vehicles=int(vehicles) if vehicles is not None else None,
        min_vehicles=int(match.group(1)) if match else None,
        convention=convention,
        file_node=order,
        path=str(path),
    )


def load_solution(path: str | Path) -> tuple[list[list[int]], float]:
    """Read a ``.sol`` file: routes as customer numbers ``1..N`` (the VRPLIB numbering) and the stated cost.

    Raises:
        DataError: the file is missing, has no route or no ``Cost`` line.
    """
    import vrplib

    path = Path(path)
    if not path.exists():
        raise _fail(path, "solution file does not exist")
    try:
        sol = vrplib.read_solution(str(path))
    except Exception as exc:
        raise _fail(path, f"not a readable VRPLIB solution ({type(exc).__name__}: {exc})") from None
    routes = [[int(c) for c in r] for r in sol.get("routes", [])]
    if not routes:
        raise _fail(path, "no 'Route #' line")
    if "cost" not in sol:
        raise _fail(path, "no 'Cost' line")
    return routes, float(sol["cost"])
