"""Instance sampling for the Dispatch family, batched in torch and counter-based.

Every draw is a pure function of the environment's reset key (see :mod:`paretochain.envs._rng`),
so an environment's instance depends only on its seed, never on its batch.

- ``GeneratedInstances`` draws whole instances: depots, customers (uniform, clustered or mixed
  placement), demands, service times, delivery windows and release times.
- ``FileInstances`` replays one :class:`~paretochain.envs.dispatch.types.StaticInstance` and draws only
  the release times on top (``known_share: 1`` gives back the static instance).

Release model: each order is known at the start of the shift with probability ``known_share``;
the others arrive as a Poisson process on ``[0, release_end]`` given their number, that is at
independent uniform times. A release never comes so late that a vehicle leaving the depot at
that moment would miss the order's window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from paretochain.envs import _rng
from paretochain.envs.dispatch.config import GeneratorConfig, ReleaseConfig
from paretochain.envs.dispatch.types import StaticInstance

_SITE_XY, _SITE_CENTRES, _SITE_CLUSTER, _SITE_NORMAL, _SITE_DEPOT = 101, 102, 103, 104, 105
_SITE_DEMAND, _SITE_SERVICE, _SITE_WINDOW, _SITE_KNOWN, _SITE_RELEASE, _SITE_MIXED = 106, 107, 108, 109, 110, 111


@dataclass
class InstanceBatch:
    """Instances for ``k`` environments (float64 tensors, customers padded to the order slots).

    Attributes:
        coords: ``(k, D + N, 2)`` node coordinates, depots first.
        demand: ``(k, N)`` units. service: ``(k, N)`` minutes.
        window: ``(k, N, 2)`` earliest and latest start of service.
        release: ``(k, N)`` time each order becomes known.
        valid: ``(k, N)`` bool, slots holding an order.
    """

    coords: torch.Tensor
    demand: torch.Tensor
    service: torch.Tensor
    window: torch.Tensor
    release: torch.Tensor
    valid: torch.Tensor


def draw_releases(
    u: torch.Tensor, known_u: torch.Tensor, release: ReleaseConfig, shift_end: float, latest: torch.Tensor
) -> torch.Tensor:
    """Release times ``(k, N)``: 0 for known orders, uniform on ``[0, release_end]`` for the others, capped at ``latest``.

    ``u`` and ``known_u`` are the uniforms ``(k, N)`` of the release and known sites.
    """
    known = known_u < release.known_share
    end = release.release_end_fraction * shift_end
    times = torch.minimum(u.to(torch.float64) * end, latest).clamp(min=0.0)
    return torch.where(known, torch.zeros_like(times), times)


class GeneratedInstances:
    """Synthetic instances from a :class:`GeneratorConfig`.

    Args:
        config: placement, demand, service and window distributions.
        release: the release-time model.
        max_orders: order slots ``N`` (>= the number of customers; extra slots are padding).
        num_depots: depots ``D``.
        speed: km per minute.
        shift_end: minutes.
        device: where the tensors live.
    """

    def __init__(
        self,
        config: GeneratorConfig,
        release: ReleaseConfig,
        max_orders: int,
        num_depots: int,
        speed: float,
        shift_end: float,
        device: torch.device,
    ) -> None:
        self.config, self.release = config, release
        self.num_orders, self.num_depots = max_orders, num_depots
        self.speed, self.shift_end = speed, shift_end
        self.device = device
        n, D = max_orders, num_depots
        C = config.num_clusters
        self._xy = _rng.DrawSite(_SITE_XY, (n, 2), device)
        self._centres = _rng.DrawSite(_SITE_CENTRES, (C, 2), device)
        self._cluster = _rng.DrawSite(_SITE_CLUSTER, (n,), device)
        self._normal = _rng.DrawSite(_SITE_NORMAL, (n, 2, 2), device)
        self._depot = _rng.DrawSite(_SITE_DEPOT, (D, 2), device)
        self._demand = _rng.DrawSite(_SITE_DEMAND, (n,), device)
        self._service = _rng.DrawSite(_SITE_SERVICE, (n,), device)
        self._window = _rng.DrawSite(_SITE_WINDOW, (n, 2), device)
        self._known = _rng.DrawSite(_SITE_KNOWN, (n,), device)
        self._release = _rng.DrawSite(_SITE_RELEASE, (n,), device)
        self._mixed = _rng.DrawSite(_SITE_MIXED, (n,), device)
        used = [self._xy, self._depot, self._demand, self._service, self._known, self._release]
        if config.placement != "uniform":
            used += [self._centres, self._cluster, self._normal]
        if config.placement == "mixed":
            used.append(self._mixed)
        if config.time_windows:
            used.append(self._window)
        self._sites = _rng.DrawSites(*used)  # every site a reset reads, hashed in one pass

    def sample(self, keys: torch.Tensor) -> InstanceBatch:
        """Draw one instance per key (``keys``: int64 ``(k,)``)."""
        cfg = self.config
        f64 = torch.float64
        k, n, _D = keys.shape[0], self.num_orders, self.num_depots
        side = cfg.area_km
        u = self._sites.uniform(keys)
        uniform_xy = u[self._xy].to(f64) * side
        if cfg.placement == "uniform":
            xy = uniform_xy
        else:
            centres = u[self._centres].to(f64) * side
            which = (u[self._cluster] * cfg.num_clusters).long().clamp(max=cfg.num_clusters - 1)
            pairs = u[self._normal].to(f64)
            normal = torch.sqrt(-2.0 * torch.log(pairs[..., 0])) * torch.cos(
                2 * math.pi * pairs[..., 1]
            )  # Box-Muller, (k, n, 2)
            centre = centres.gather(1, which.unsqueeze(-1).expand(k, n, 2))
            clustered = (centre + normal * cfg.cluster_std_km).clamp(0.0, side)
            if cfg.placement == "clustered":
                xy = clustered
            else:
                xy = torch.where((u[self._mixed] < 0.5).unsqueeze(-1), clustered, uniform_xy)
        depots = u[self._depot].to(f64) * side
        if cfg.depot_placement == "centre":
            depots[:, 0] = side / 2
        coords = torch.cat([depots, xy], dim=1)

        span = cfg.demand_max - cfg.demand_min + 1
        demand = (cfg.demand_min + (u[self._demand] * span).floor().clamp(max=span - 1)).to(f64)
        service = cfg.service_min + u[self._service].to(f64) * (cfg.service_max - cfg.service_min)

        # travel time from the nearest depot, for windows that a direct trip can meet
        depot_dist = torch.cdist(xy, depots).min(dim=2).values / self.speed  # (k, n)
        latest_start = self.shift_end - service - depot_dist
        release = draw_releases(
            u[self._release], u[self._known], self.release, self.shift_end, latest_start - depot_dist
        )
        earliest = release + depot_dist
        if cfg.time_windows:
            w = u[self._window].to(f64)
            width = cfg.window_width_min + w[..., 0] * (cfg.window_width_max - cfg.window_width_min)
            slack = (latest_start - earliest - width).clamp(min=0.0)
            start = earliest + w[..., 1] * slack
            end = torch.maximum(torch.minimum(start + width, latest_start), start)
        else:
            start = torch.zeros_like(earliest)
            end = torch.full_like(earliest, self.shift_end)
        valid = torch.zeros(k, n, dtype=torch.bool, device=self.device)
        valid[:, : cfg.num_customers] = True
        zero = torch.zeros_like(demand)
        return InstanceBatch(
            coords=coords,
            demand=torch.where(valid, demand, zero),
            service=torch.where(valid, service, zero),
            window=torch.stack([start, end], dim=-1),
            release=torch.where(valid, release, zero),
            valid=valid,
        )


class FileInstances:
    """One static instance for every environment, with release times drawn per episode.

    Args:
        instance: the instance read from a file.
        release: the release-time model (``known_share: 1`` keeps the static instance).
        max_orders: order slots ``N`` (>= the instance's customers).
        shift_end: end of the shift (time units of the file).
        device: where the tensors live.
    """

    def __init__(
        self, instance: StaticInstance, release: ReleaseConfig, max_orders: int, shift_end: float, device: torch.device
    ) -> None:
        self.instance, self.release = instance, release
        self.num_orders, self.num_depots = max_orders, instance.num_depots
        self.shift_end = shift_end
        self.device = device
        n, pad = instance.num_customers, max_orders - instance.num_customers
        f64 = torch.float64
        D = instance.num_depots

        def padded(x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, pad), value=value) if pad else x

        self.coords = torch.as_tensor(instance.coords, dtype=f64, device=device)
        if pad:
            self.coords = torch.cat([self.coords, self.coords[:1].expand(pad, 2)], dim=0)
        self.demand = padded(torch.as_tensor(instance.demand, dtype=f64, device=device))
        self.service = padded(torch.as_tensor(instance.service, dtype=f64, device=device))
        window = torch.as_tensor(instance.window, dtype=f64, device=device).clamp(max=shift_end)
        self.window = torch.stack([padded(window[:, 0]), padded(window[:, 1], shift_end)], dim=-1)
        self.valid = padded(torch.ones(n, dtype=torch.bool, device=device), False)
        # distances including padding slots (at the first depot's place, never visited)
        full = torch.as_tensor(instance.distance, dtype=f64, device=device)
        if pad:
            full = torch.nn.functional.pad(full, (0, pad, 0, pad))
        self.distance = full
        self.latest_release = padded(window[:, 1] - full[:D, D : D + n].min(dim=0).values)
        self._known = _rng.DrawSite(_SITE_KNOWN, (max_orders,), device)
        self._release = _rng.DrawSite(_SITE_RELEASE, (max_orders,), device)
        self._sites = _rng.DrawSites(self._release, self._known)

    def sample(self, keys: torch.Tensor) -> InstanceBatch:
        """The static instance for each key, with that key's release times."""
        k = keys.shape[0]
        u = self._sites.uniform(keys)
        release = draw_releases(
            u[self._release], u[self._known], self.release, self.shift_end, self.latest_release.expand(k, -1)
        )
        return InstanceBatch(
            coords=self.coords.expand(k, -1, -1),
            demand=self.demand.expand(k, -1),
            service=self.service.expand(k, -1),
            window=self.window.expand(k, -1, -1),
            release=torch.where(self.valid, release, 0.0),
            valid=self.valid.expand(k, -1),
        )
