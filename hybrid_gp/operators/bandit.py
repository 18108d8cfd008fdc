"""Adaptive operator choice: Thompson sampling over every operator, classic and LLM.

Each arm keeps a Beta posterior on "a child beats its best parent". At each barrier
the portfolio draws one sample per arm, divides it by the arm's cost per child, and
normalises: that is the share of the next epoch's children each arm makes. Classic
children cost 1; an LLM child costs 1 + tokens / (k * TOKENS_PER_UNIT), tokens as the
endpoint reported them, so a replayed run makes the same choices. A floor keeps every
arm explored; the LLM arms' total is clamped to [min_share, max_share].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TOKENS_PER_UNIT = 250.0  # tokens an LLM child may cost for the price of a classic one
FLOOR = 0.02  # least share of any arm


@dataclass
class Arm:
    trials: float = 0.0
    successes: float = 0.0
    cost: float = 0.0  # summed cost units of its children

    @property
    def cost_per_child(self) -> float:
        return self.cost / self.trials if self.trials else 1.0


@dataclass
class Bandit:
    """Arms by operator name; `llm` names the arms whose children come from an LLM."""

    arms: dict[str, Arm] = field(default_factory=dict)
    llm: set[str] = field(default_factory=set)

    def add_arm(self, name: str, is_llm: bool = False) -> None:
        self.arms.setdefault(name, Arm())
        if is_llm:
            self.llm.add(name)

    def credit(self, name: str, trials: float, successes: float, cost: float) -> None:
        arm = self.arms.setdefault(name, Arm())
        arm.trials += trials
        arm.successes += successes
        arm.cost += cost

    def shares(self, rng: np.random.Generator, min_llm: float = 0.0,
               max_llm: float = 1.0) -> dict[str, float]:
        """This epoch's share of children per arm (sums to 1)."""
        names = sorted(self.arms)
        samples = np.array([rng.beta(self.arms[n].successes + 1.0,
                                     self.arms[n].trials - self.arms[n].successes + 1.0)
                            for n in names])
        value = samples / np.array([self.arms[n].cost_per_child for n in names])
        share = value / value.sum() if value.sum() > 0 else np.full(len(names), 1 / len(names))
        floor = min(FLOOR, 1.0 / len(names))
        share = floor + (1.0 - floor * len(names)) * share  # every arm keeps >= floor
        is_llm = np.array([n in self.llm for n in names])
        if is_llm.any() and (~is_llm).any():
            total = share[is_llm].sum()
            target = min(max(total, min_llm), max_llm)
            if total > 0:
                share[is_llm] *= target / total
            share[~is_llm] *= (1 - target) / share[~is_llm].sum()
        return dict(zip(names, share.tolist(), strict=True))
