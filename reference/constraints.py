r"""Keras's weight constraints (``keras.constraints``), applied by ``optimizer.apply`` after the update.

With ``N`` the Euclidean norm along ``axis`` (one per slice, kept for broadcasting) and ``ε`` Keras's
``backend.epsilon()`` (1e-7, rounded to the variable's dtype)::

    NonNeg                         θ ← max(θ, 0)
    MaxNorm(m, axis)               θ ← θ · (clip(N, 0, m) / (ε + N))
    UnitNorm(axis)                 θ ← θ / (ε + N)
    MinMaxNorm(a, b, rate, axis)   θ ← θ · ((rate·clip(N, a, b) + (1 − rate)·N) / (ε + N))

Keras applies them to every variable that had a gradient in the call (those assigned their gradient
through ``overwrite_with_gradient`` excepted), after the EMA, on every call (under gradient accumulation
too, when nothing else moved).  ``MaxNorm`` is not idempotent: below the limit it still scales by
``N/(ε + N)``.  A constraint is given as Keras serializes it (``keras.constraints.serialize``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from optimizer_conformance.reference.arrays import each, format_of, gather, scattered
from optimizer_conformance.reference.tracked import Tracked, maximum, minimum, norm, through_floatx

EPSILON = 1e-7  # keras.backend.epsilon()

# A variable's elements (a list of Tracked, or a TrackedArray) and its shape -> the constrained elements.
Constraint = Callable[[Any, tuple[int, ...]], Any]


def _slices(shape: tuple[int, ...], axis: int | list[int]) -> list[list[int]]:
    """The flat (row-major) indices of each slice along ``axis``: the groups a norm is taken over."""
    if not shape:
        raise ValueError("a norm constraint needs a variable with at least one axis")
    axes = [axis] if isinstance(axis, int) else list(axis)
    ndim = len(shape)
    axes = [a % ndim for a in axes]
    index = np.arange(int(np.prod(shape))).reshape(shape)
    kept = [a for a in range(ndim) if a not in axes]
    grouped = np.transpose(index, kept + axes).reshape(-1, int(np.prod([shape[a] for a in axes])))
    return [row.tolist() for row in grouped]


def _per_slice(theta: Any, shape: tuple[int, ...], axis, constrained: Callable[[Any, Tracked], Any]) -> Any:
    """Each slice along ``axis`` replaced by ``constrained(its elements, its norm)``."""
    groups = _slices(shape, axis)
    parts = []
    for group in groups:
        elements = gather(theta, group)
        parts.append(constrained(elements, norm(elements)))
    return scattered(theta, groups, parts)


def _scaled(theta: Any, shape: tuple[int, ...], axis, desired: Callable[[Tracked], Tracked]) -> Any:
    eps = Tracked.rounded(EPSILON, format_of(theta))

    def constrained(elements: Any, n: Tracked) -> Any:
        factor = desired(n) / (eps + n)
        return each(lambda x: x * factor, elements)
    return _per_slice(theta, shape, axis, constrained)


def non_neg(theta: Any, shape: tuple[int, ...]) -> Any:
    zero = Tracked.exact(0, format_of(theta)) if len(theta) else None
    # Keras 3.15 on torch returns max(θ, 0.0) of a float64 θ in float32: an upstream bug (see through_floatx).
    return each(lambda x: through_floatx(maximum(x, zero)), theta)


def max_norm(max_value: float = 2.0, axis: int | list[int] = 0) -> Constraint:
    def constrain(theta: Any, shape: tuple[int, ...]) -> Any:
        fmt = format_of(theta)
        limit = Tracked.rounded(max_value, fmt)
        return _scaled(theta, shape, axis, lambda n: minimum(maximum(n, Tracked.exact(0, fmt)), limit))
    return constrain


def unit_norm(axis: int | list[int] = 0) -> Constraint:
    def constrain(theta: Any, shape: tuple[int, ...]) -> Any:
        eps = Tracked.rounded(EPSILON, format_of(theta))
        return _per_slice(theta, shape, axis, lambda elements, n: each(lambda x: x / (eps + n), elements))
    return constrain


def min_max_norm(min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | list[int] = 0) -> Constraint:
    def constrain(theta: Any, shape: tuple[int, ...]) -> Any:
        fmt = format_of(theta)
        low, high = Tracked.rounded(min_value, fmt), Tracked.rounded(max_value, fmt)
        r = Tracked.rounded(rate, fmt)
        return _scaled(theta, shape, axis, lambda n: r * minimum(maximum(n, low), high) + (1 - r) * n)
    return constrain


_FACTORIES: dict[str, Callable[..., Constraint]] = {
    "MaxNorm": max_norm, "UnitNorm": unit_norm, "MinMaxNorm": min_max_norm,
}
NAMES = ("NonNeg", *_FACTORIES)


def deserialize(config: dict[str, Any]) -> Constraint:
    """A constraint from its Keras serialization ``{"class_name": ..., "config": {...}}``."""
    if not isinstance(config, dict) or config.get("class_name") not in NAMES:
        raise ValueError(f"constraint: expected a serialized keras.constraints object with class_name one of "
                         f"{', '.join(NAMES)}; got {config!r}")
    if config["class_name"] == "NonNeg":
        return non_neg
    arguments = dict(config.get("config") or {})
    try:
        return _FACTORIES[config["class_name"]](**arguments)
    except TypeError as error:
        raise ValueError(f"constraint {config['class_name']}: {error}") from None
