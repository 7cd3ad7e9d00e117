"""Counter-based random numbers: range, independence from the batch, determinism."""

from __future__ import annotations

import torch

from paretochain.envs import _rng


def test_uniforms_lie_strictly_inside_the_unit_interval_even_at_the_extreme_bits() -> None:
    site = _rng.DrawSite(1, (4,), torch.device("cpu"))
    extreme = torch.tensor([0xFFFFFFFF, 0, 0x7FFFFFFF], dtype=torch.int64)
    for keys in (extreme, torch.arange(100_000, dtype=torch.int64)):
        u = site.uniform(keys)
        assert bool((u > 0).all()) and bool((u < 1).all())
    # the largest value the site can produce is below 1 in float32
    top = (torch.tensor([(1 << 23) - 1], dtype=torch.float32) + 0.5) / float(1 << 23)
    assert float(top) < 1.0


def test_uniforms_are_close_to_uniform() -> None:
    site = _rng.DrawSite(3, (8,), torch.device("cpu"))
    u = site.uniform(torch.arange(50_000, dtype=torch.int64)).flatten()
    assert abs(float(u.mean()) - 0.5) < 0.005
    hist = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert bool(((hist - 0.1).abs() < 0.005).all())


def test_a_draw_depends_only_on_its_own_key_not_on_the_batch() -> None:
    site = _rng.DrawSite(2, (3, 2), torch.device("cpu"))
    keys = torch.tensor([11, 22, 33], dtype=torch.int64)
    batch = site.uniform(keys)
    for i, key in enumerate(keys):
        assert torch.equal(site.uniform(key.view(1))[0], batch[i])


def test_cached_episode_draws_equal_the_step_by_step_hash() -> None:
    site = _rng.DrawSite(5, (2,), torch.device("cpu"))
    stream = torch.tensor([7, 8], dtype=torch.int64)
    table = _rng.mix32(stream.unsqueeze(0) ^ _rng.counter_hashes(10, torch.device("cpu")).unsqueeze(1))  # (T, B)
    site.prepare(table)
    for t in range(10):
        direct = site.uniform(_rng.step_keys(stream, torch.full((2,), t)))
        cached = site.uniform(_rng.StepDraw(table[t], torch.full((2,), t), table))
        assert torch.equal(direct, cached)


def test_the_key_chain_hashed_on_python_ints_gives_the_keys_of_the_tensor_hash() -> None:
    gen = torch.Generator().manual_seed(0)
    lo = torch.randint(0, 2**32, (64,), generator=gen)
    hi = torch.randint(0, 2**32, (64,), generator=gen)
    lo[:2], hi[:2] = torch.tensor([0, 2**32 - 1]), torch.tensor([2**32 - 1, 0])  # the extremes
    episode = torch.randint(0, 2**40, (64,), generator=gen)  # large counters wrap the same way
    for i in range(64):
        host = _rng.next_episodes_on_host(int(lo[i]), int(hi[i]), int(episode[i]), 3)
        k_lo, k_hi, ep = lo[i : i + 1], hi[i : i + 1], episode[i : i + 1]
        for key_lo, key_hi, number, stream in host:
            ep = ep + 1
            k_lo, k_hi = _rng.next_episode_seed(k_lo, k_hi, ep)
            assert (key_lo, key_hi, number) == (int(k_lo), int(k_hi), int(ep))
            assert stream == int(_rng.derive_key(k_lo, k_hi))


def test_sites_hashed_together_give_each_site_exactly_its_own_uniforms() -> None:
    cpu = torch.device("cpu")
    sites = [_rng.DrawSite(7, (5, 2), cpu), _rng.DrawSite(8, (1,), cpu), _rng.DrawSite(9, (3, 2, 2), cpu)]
    keys = torch.tensor([0, 1, 0xFFFFFFFF, 123456789], dtype=torch.int64)
    together = _rng.DrawSites(*sites).uniform(keys)
    assert list(together) == sites
    for site in sites:
        alone = site.uniform(keys)
        assert together[site].shape == alone.shape == (4, *site.shape)
        assert torch.equal(together[site], alone)
    # a single key row draws what it draws in the batch
    assert torch.equal(_rng.DrawSites(*sites).uniform(keys[2:3])[sites[2]], together[sites[2]][2:3])
