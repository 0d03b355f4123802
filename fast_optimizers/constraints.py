"""Keras's weight constraints on any array-API array, applied after the update (as ``optimizer.apply`` does).

    NonNeg                         θ ← max(θ, 0)
    MaxNorm(m, axis)               θ ← θ · (clip(N, 0, m) / (ε + N))
    UnitNorm(axis)                 θ ← θ / (ε + N)
    MinMaxNorm(a, b, rate, axis)   θ ← θ · ((rate·clip(N, a, b) + (1 − rate)·N) / (ε + N))

``N`` is the Euclidean norm along ``axis`` (kept for broadcasting), ``ε = 1e-7`` (``keras.backend.epsilon()``).
:func:`from_config` reads Keras's serialization (``keras.constraints.serialize``), so a port's configuration
needs no Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EPSILON = 1e-7


def _namespace(x):
    try:
        import array_api_compat
    except ImportError:
        import numpy

        return numpy
    return array_api_compat.array_namespace(x)


def _norms(xp, w, axis):
    return xp.sqrt(xp.sum(w * w, axis=axis, keepdims=True))


def non_neg() -> Callable[[Any], Any]:
    def constrain(w):
        xp = _namespace(w)
        return xp.where(w > 0, w, xp.zeros_like(w))
    return constrain


def max_norm(max_value: float = 2.0, axis: int = 0) -> Callable[[Any], Any]:
    def constrain(w):
        xp = _namespace(w)
        n = _norms(xp, w, axis)
        return w * (xp.clip(n, 0.0, max_value) / (EPSILON + n))
    return constrain


def unit_norm(axis: int = 0) -> Callable[[Any], Any]:
    def constrain(w):
        xp = _namespace(w)
        return w / (EPSILON + _norms(xp, w, axis))
    return constrain


def min_max_norm(min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int = 0) -> Callable[[Any], Any]:
    def constrain(w):
        xp = _namespace(w)
        n = _norms(xp, w, axis)
        return w * ((rate * xp.clip(n, min_value, max_value) + (1 - rate) * n) / (EPSILON + n))
    return constrain


_FACTORIES = {"NonNeg": non_neg, "MaxNorm": max_norm, "UnitNorm": unit_norm, "MinMaxNorm": min_max_norm}


def from_config(config: dict[str, Any]) -> Callable[[Any], Any]:
    """A constraint from ``{"class_name": ..., "config": {...}}``; ``ValueError`` naming what is accepted."""
    if not isinstance(config, dict) or config.get("class_name") not in _FACTORIES:
        raise ValueError(f"constraint: expected class_name one of {', '.join(_FACTORIES)}; got {config!r}")
    try:
        return _FACTORIES[config["class_name"]](**dict(config.get("config") or {}))
    except TypeError as error:
        raise ValueError(f"constraint {config['class_name']}: {error}") from None
