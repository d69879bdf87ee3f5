"""Exponential back-off with jitter for reconnect loops (list, watch, status writes).

"Full jitter": each delay is drawn uniformly between ``(1 - jitter)`` and ``1`` times the
current exponential step, so many clients that failed together do not retry together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    _step: float = field(default=0.0, init=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``maximum``."""
        self._step = self.initial if self._step == 0 else min(self.maximum, self._step * self.factor)
        return self._step * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Call after a success: the next failure starts from ``initial`` again."""
        self._step = 0.0
