"""Routing instances from VRPLIB files (CVRPLIB, Solomon) through the ``vrplib`` package.

Distance conventions, so that a published solution costs exactly its published value:

- ``round``: Euclidean distance rounded to the nearest integer (TSPLIB ``EUC_2D``; CVRPLIB sets A, B, P, X);
- ``trunc1``: Euclidean distance truncated to one decimal, ``floor(10 d) / 10`` (the DIMACS convention
  of the Solomon VRPTW best-known solutions);
- ``exact``: unrounded Euclidean distance;
- ``explicit``: the file's own matrix (``EDGE_WEIGHT_TYPE : EXPLICIT``).

The data sections of a VRPLIB file (``NODE_COORD_SECTION``, ``DEMAND_SECTION``, ``TIME_WINDOW_SECTION``,
``SERVICE_TIME_SECTION``, ...) are read by the node id that starts each line, not by line order: two
lines swapped with their ids change nothing. Every node ``1..DIMENSION`` must appear exactly once in
each section.

Travel time equals distance for file instances. Anything that cannot be trusted (a missing section,
a node id missing or given twice, a value that is not a number, a demand above the capacity, a window
that closes before it opens, ...) raises :class:`~paretochain.errors.DataError` naming the file, the
line or node, and the problem.
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


#: Sections whose lines do not start with a node id.
_NOT_BY_NODE = ("EDGE_WEIGHT_SECTION", "DEPOT_SECTION")


def read_node_sections(text: str, path: Path) -> dict[str, np.ndarray]:
    """The node-indexed data sections of a VRPLIB text, each ``(DIMENSION, columns)`` in node order.

    Each line of such a section is ``id value [value ...]`` with ``id`` in ``1..DIMENSION``; rows are
    placed by that id. Sections named in ``_NOT_BY_NODE`` are left to ``vrplib``. Keys are the
    section names in lower case without ``_SECTION`` (as ``vrplib`` names them).

    Raises:
        DataError: naming the line, for an id that is not an integer in ``1..DIMENSION``, an id given
            twice, a value that is not a number, a line with a different number of values than the
            section's first, or naming the node for an id that is missing.
    """
    dimension: int | None = None
    sections: dict[str, list[tuple[int, int, list[float]]]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("EOF"):
            break
        head = line.split()[0].rstrip(":")
        if head.endswith("_SECTION"):
            current = head if head not in _NOT_BY_NODE else None
            if current is not None:
                if current in sections:
                    raise _fail(path, f"line {number}: {current} appears a second time")
                sections[current] = []
            continue
        if current is None:
            key, sep, value = line.partition(":")
            if sep and key.strip().upper() == "DIMENSION":
                try:
                    dimension = int(value.strip())
                except ValueError:
                    raise _fail(path, f"line {number}: DIMENSION {value.strip()!r} is not an integer") from None
            continue
        tokens = line.split()
        try:
            node = int(tokens[0])
        except ValueError:
            raise _fail(path, f"line {number}: {current} line starts with {tokens[0]!r}, not a node id") from None
        values: list[float] = []
        for token in tokens[1:]:
            try:
                values.append(float(token))
            except ValueError:
                raise _fail(path, f"line {number}: {current}, node {node}: {token!r} is not a number") from None
        sections[current].append((number, node, values))
    if dimension is None:
        if sections:
            raise _fail(path, "no DIMENSION specification")
        return {}
    out: dict[str, np.ndarray] = {}
    for name, rows in sections.items():
        seen: dict[int, int] = {}
        width = len(rows[0][2]) if rows else 0
        table = np.zeros((dimension, width))
        for number, node, values in rows:
            if not 1 <= node <= dimension:
                raise _fail(path, f"line {number}: {name} names node {node}, outside 1..{dimension} (DIMENSION)")
            if node in seen:
                raise _fail(path, f"line {number}: {name} gives node {node} a second time (first on line {seen[node]})")
            if len(values) != width:
                raise _fail(
                    path,
                    f"line {number}: {name}, node {node}: {len(values)} values, the section's first line has {width}",
                )
            seen[node] = number
            table[node - 1] = values
        missing = [n for n in range(1, dimension + 1) if n not in seen]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise _fail(path, f"{name} has no line for node(s) {shown} of 1..{dimension} (DIMENSION)")
        key = name.removesuffix("_SECTION").lower()
        out[key] = table[:, 0] if width == 1 else table
    return out


def _floats(value: Any, what: str, path: Path) -> np.ndarray:
    """``value`` as a float array; a clear error when an entry is not a number."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, f"{what} holds a value that is not a number") from None


def _integer(value: Any, what: str, path: Path) -> int:
    """``value`` as an int; a clear error when it is not a whole number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(path, f"{what} {value!r} is not a whole number") from None
    if not number.is_integer():
        raise _fail(path, f"{what} {value!r} is not a whole number")
    return int(number)


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
    if fmt == "vrplib":
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(path, f"cannot be read as text: {exc}") from None
        data.update(read_node_sections(text, path))  # the sections by node id, not by line order
    return instance_from_dict(data, path, fmt, distance)


def instance_from_dict(data: dict[str, Any], path: Path, fmt: str, distance: str) -> StaticInstance:
    """Check a parsed instance and turn it into a :class:`StaticInstance` (see :func:`load_instance`)."""
    name = str(data.get("name", path.stem))
    if "demand" not in data:
        raise _fail(path, "no DEMAND_SECTION")
    demand_all = _floats(data["demand"], "DEMAND_SECTION", path).reshape(-1)
    dim = _integer(data.get("dimension", demand_all.shape[0]), "DIMENSION", path)
    if demand_all.shape[0] != dim:
        raise _fail(path, f"DIMENSION is {dim} but DEMAND_SECTION has {demand_all.shape[0]} entries")
    if dim < 2:
        raise _fail(path, f"DIMENSION {dim}: an instance needs a depot and at least one customer")
    if "capacity" not in data:
        raise _fail(path, "no CAPACITY")
    capacity = float(_floats(data["capacity"], "CAPACITY", path).reshape(-1)[0])
    if not (capacity > 0 and np.isfinite(capacity)):
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
        coords = _floats(coords, "NODE_COORD_SECTION", path)
        if coords.shape != (dim, 2):
            raise _fail(path, f"NODE_COORD_SECTION has shape {coords.shape}, expected ({dim}, 2) for DIMENSION {dim}")
        if not np.isfinite(coords).all():
            raise _fail(path, "NODE_COORD_SECTION holds a non-finite coordinate")
    if edge_type == "EXPLICIT":
        matrix = data.get("edge_weight")
        if matrix is None:
            raise _fail(path, "EDGE_WEIGHT_TYPE is EXPLICIT but there is no EDGE_WEIGHT_SECTION")
        matrix = _floats(matrix, "EDGE_WEIGHT_SECTION", path)
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
    service_arr = _floats(service_raw, "SERVICE_TIME", path).reshape(-1)
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
        tw = _floats(data["time_window"], "TIME_WINDOW_SECTION", path)
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
        num_vehicles=_integer(vehicles, "VEHICLES", path) if vehicles is not None else None,
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
