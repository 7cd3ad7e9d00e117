"""One seed module: training, validation and test episodes never share a seed, and every user takes its seeds there."""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import pytest

from paretochain import seeds
from paretochain.agents.baselines import lost_sales, warehouse
from paretochain.errors import ConfigError
from paretochain.evaluate import baselines, report
from paretochain.train import run as run_module


def test_the_training_validation_and_test_ranges_do_not_overlap() -> None:
    assert [r.name for r in seeds.RANGES] == ["training", "validation", "test"]
    for a, b in itertools.combinations(seeds.RANGES, 2):
        assert not a.overlaps(b), (a, b)
        assert a.stop <= b.start  # in the order a policy meets them
    assert all(len(r) > 0 for r in seeds.RANGES)


def test_tuning_seeds_are_the_first_training_seeds() -> None:
    assert tuple(range(seeds.TUNING_EPISODES)) == seeds.TUNING_SEEDS
    assert all(s in seeds.TRAINING for s in seeds.TUNING_SEEDS)
    assert not any(s in seeds.VALIDATION or s in seeds.TEST for s in seeds.TUNING_SEEDS)


def test_first_refuses_more_seeds_than_a_range_holds() -> None:
    assert seeds.VALIDATION.first(3) == [seeds.VALIDATION.start + i for i in range(3)]
    with pytest.raises(ConfigError, match="validation seed range holds"):
        seeds.VALIDATION.first(len(seeds.VALIDATION) + 1)


def test_defaults_take_their_seeds_from_the_seed_module() -> None:
    for tuner in (warehouse.tune_base_stock, warehouse.tune_s_s, warehouse.tune_forecast_order_up_to):
        assert inspect.signature(tuner).parameters["seeds"].default == seeds.TUNING_SEEDS
    assert inspect.signature(lost_sales.tune_lost_sales).parameters["seeds"].default == seeds.TUNING_SEEDS
    assert inspect.signature(baselines.family_baselines).parameters["train_seeds"].default == seeds.TUNING_SEEDS


@pytest.mark.parametrize(
    "module", [run_module, report, baselines, warehouse, lost_sales], ids=lambda m: m.__name__.rsplit(".", 1)[-1]
)
def test_no_module_writes_its_own_seed_range(module: object) -> None:
    source = Path(inspect.getfile(module)).read_text()  # type: ignore[arg-type]
    for written in ("range(64)", "range(10_000", "range(20_000", "SEED_BASE", "SEED_START"):
        assert written not in source, f"{module}: writes {written}"


def test_mo_ppo_starts_every_run_seed_on_training_episodes() -> None:
    from paretochain.seeds import TEST, TRAINING, VALIDATION

    for seed in (0, 1, 7, 10**6):
        seeds = TRAINING.spread(seed, 256)
        assert len(set(seeds)) == 256 and all(s in TRAINING for s in seeds)
        assert not any(s in VALIDATION or s in TEST for s in seeds)
    assert TRAINING.spread(0, 4) == [0, 1, 2, 3]  # seed 0 keeps the episodes it always had
    assert set(TRAINING.spread(1, 256)).isdisjoint(TRAINING.spread(0, 256))
