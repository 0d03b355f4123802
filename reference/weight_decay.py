"""Decoupled weight decay, which every Keras 3 optimizer applies when ``weight_decay`` is set.

Before the update, with the same learning rate ``η_t`` the update uses::

    θ ← θ − θ·λ·η_t        for every variable not excluded

A variable is excluded when it was named in ``exclude_from_weight_decay(var_list=...)``
or when ``re.search("|".join(var_names), variable.name)`` matches (a regular
expression over the variable's ``name``, not its path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from optimizer_conformance.reference.arrays import each, format_of
from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.tracked import Tracked, decay


class Exclusions:
    def __init__(self) -> None:
        self.indices: set[int] = set()
        self.pattern: str | None = None

    def add(self, indices: Iterable[int] = (), names: Iterable[str] | None = None) -> None:
        self.indices.update(indices)
        if names:
            names = list(names)
            for name in names:
                if not isinstance(name, str):
                    raise ValueError(f"var_names must be strings (regular expressions); got {name!r}")
            self.pattern = "|".join(sorted(set(names)))

    def excludes(self, index: int, name: str) -> bool:
        if index in self.indices:
            return True
        return self.pattern is not None and re.search(self.pattern, name) is not None


def apply_weight_decay(
    theta: list[Tracked], rate: float, learning_rate: Tracked, factor_fmt: FloatFormat
) -> list[Tracked]:
    """``θ·(1 − λη)`` of each element; ``factor_fmt``: where ``1 − λη`` may be formed."""
    lam = Tracked.rounded(rate, format_of(theta))
    return each(lambda x: decay(x, lam, learning_rate, factor_fmt), theta)
