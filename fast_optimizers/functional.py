"""A functional form: ``state = init(algorithm, params, **config)``, ``params, state = update(state, grads, params)``.

The state is explicit (an :class:`State` holding the optimizer); ``update`` returns
the parameters it was given, updated in place, so the pair reads like optax's
``init``/``update`` while keeping the Keras semantics of :mod:`fast_optimizers.optimizer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer_conformance.fast_optimizers.optimizer import OPTIMIZERS


@dataclass
class State:
    optimizer: Any

    @property
    def iterations(self) -> int:
        return self.optimizer.iterations

    @property
    def slots(self) -> dict[str, list]:
        return self.optimizer.slots


def init(algorithm: str, params: list, **config: Any) -> State:
    if algorithm not in OPTIMIZERS:
        raise ValueError(f"algorithm must be one of {sorted(OPTIMIZERS)}; got {algorithm!r}")
    optimizer = OPTIMIZERS[algorithm](**config)
    optimizer.build(params)
    return State(optimizer)


def update(state: State, grads: list, params: list) -> tuple[list, State]:
    state.optimizer.apply(grads, params)
    return params, state
