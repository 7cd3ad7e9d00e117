"""The seed ranges of the project: training, validation (model selection) and test (reports).

Every episode seed a tuner, a training run or a report chooses comes from one of three
disjoint ranges, so that no figure is measured on the episodes a choice was made on:

- :data:`TRAINING` (0 ..): baselines are tuned on its first :data:`TUNING_EPISODES` seeds;
- :data:`VALIDATION` (500,000 ..): a training run's evaluations, which pick its best policy,
  and benchmark model selection;
- :data:`TEST` (1,000,000 ..): ``paretochain evaluate`` reports and the decision-quality
  benchmarks' test episodes.

MO-PPO starts its environments on training seeds (:meth:`SeedRange.spread`: a run seeded ``s``
with ``n`` environments takes block ``s`` of ``n`` training seeds). MO-DQN and the SB3 adapter
seed theirs from ``numpy.random.SeedSequence(seed)`` (32-bit draws, which may fall in any range;
one of them meeting one of the few thousand test seeds a report uses is a chance of about
one in a million per environment).
"""

from __future__ import annotations

from dataclasses import dataclass

from paretochain.errors import ConfigError


@dataclass(frozen=True)
class SeedRange:
    """Episode seeds ``start, start + 1, ..., stop - 1`` set aside for one use.

    Args:
        name: what the seeds are for (``training``, ``validation``, ``test``), in messages.
        start: the first seed.
        stop: one past the last seed.
    """

    name: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, int) and self.start <= seed < self.stop

    def first(self, count: int) -> list[int]:
        """The first ``count`` seeds of the range; ConfigError when the range holds fewer."""
        if count < 0 or count > len(self):
            raise ConfigError(f"{count} {self.name} episodes asked for: the {self.name} seed range holds {len(self)}")
        return list(range(self.start, self.start + count))

    def spread(self, seed: int, count: int) -> list[int]:
        """``count`` seeds of the range for a run seeded ``seed``: block ``seed`` of ``count`` seeds, wrapping
        around the range (seed 0 gives its first ``count`` seeds)."""
        if count < 1 or count > len(self):
            raise ConfigError(f"{count} {self.name} episodes asked for: the {self.name} seed range holds {len(self)}")
        return [self.start + (seed * count + i) % len(self) for i in range(count)]

    def overlaps(self, other: SeedRange) -> bool:
        """Whether the two ranges share a seed."""
        return self.start < other.stop and other.start < self.stop


TRAINING = SeedRange("training", 0, 500_000)
VALIDATION = SeedRange("validation", 500_000, 1_000_000)
TEST = SeedRange("test", 1_000_000, 2**31)
#: All ranges, in the order a policy meets them.
RANGES = (TRAINING, VALIDATION, TEST)
#: Episodes a baseline is tuned on (the first training seeds).
TUNING_EPISODES = 64
#: The seeds baselines are tuned on: ``TRAINING.first(TUNING_EPISODES)``, i.e. 0..63.
TUNING_SEEDS: tuple[int, ...] = tuple(TRAINING.first(TUNING_EPISODES))
#: Training seeds a baseline's candidates are scored on again to choose among them (the 4,096
#: after the tuning seeds): 64 episodes cannot tell apart returns 0.5% apart, and the best of
#: hundreds of candidates on 64 episodes is flattered by its luck on them.
SELECTION_SEEDS: tuple[int, ...] = tuple(TRAINING.first(TUNING_EPISODES + 4096)[TUNING_EPISODES:])
