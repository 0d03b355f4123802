"""Gradient clipping as Keras 3 applies it (at most one of the three).

    clipnorm c          g ← (g·c) / max(‖g‖₂, c)            per tensor, no epsilon
    global_clipnorm c   g ← g · (c · min(1/N, 1/c))          N = √(Σ_tensors Σ g²)
    clipvalue c         g ← min(max(g, −c), c)

Keras's global clip multiplies by ``c·(1/c)`` even when it does not clip,
which in floating point may be one ulp away from 1: the budget of that
product covers it.  A sum of ``n`` squares is budgeted as any summation
order (``(n − 1)·u·Σ g²``).  Keras's torch backend returns ``max(‖g‖, c)`` and
``min(1/N, 1/c)`` in ``floatx`` (the Python float turns the result float32),
which a float64 budget allows for.
"""

from __future__ import annotations

from gmpy2 import mpfr
from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.tracked import Tracked, maximum, minimum, sqrt


def sum_of_squares(values: list[Tracked]) -> Tracked:
    fmt = values[0].fmt
    total = mpfr(0)
    propagated = 0.0
    for x in values:
        total += x.value * x.value
        propagated += 2 * x.size * x.error + x.error * x.error
    out = Tracked(total, 0.0, fmt)
    n = len(values)
    out.error = propagated + n * fmt.unit_roundoff * out.size + n * fmt.underflow
    return out


def _norm(squares: Tracked) -> Tracked:
    return sqrt(squares) if squares.value > 0 else squares


def clip_by_norm(values: list[Tracked], clipnorm: float) -> list[Tracked]:
    fmt = values[0].fmt
    c = Tracked.rounded(clipnorm, fmt)
    denominator = _through_floatx(maximum(_norm(sum_of_squares(values)), c))
    return [(g * c) / denominator for g in values]


def _through_floatx(x: Tracked) -> Tracked:
    """Keras's torch backend returns max/min of a tensor and a Python float in floatx."""
    via = x.fmt.hyperparameters_via
    if via is None:
        return x
    return Tracked(x.value, x.error + via.unit_roundoff * x.size + via.underflow, x.fmt)


def clip_by_global_norm(tensors: list[list[Tracked]], clipnorm: float, fmt: FloatFormat) -> list[list[Tracked]]:
    partial = [sum_of_squares(t) for t in tensors]
    total = Tracked(sum(p.value for p in partial), 0.0, fmt)
    total.error = sum(p.error for p in partial) + len(partial) * fmt.unit_roundoff * total.size
    norm = _norm(total)
    c = Tracked.rounded(clipnorm, fmt)
    inverse_c = Tracked.rounded(1 / mpfr(clipnorm), fmt)
    limit = inverse_c if norm.value == 0 else _through_floatx(minimum(1 / norm, inverse_c))
    scale = c * limit
    return [[g * scale for g in t] for t in tensors]


def clip_by_value(values: list[Tracked], clipvalue: float) -> list[Tracked]:
    c = Tracked.rounded(clipvalue, values[0].fmt)
    return [minimum(maximum(g, -c), c) for g in values]


def clip(tensors: list[list[Tracked]], config: dict, fmt: FloatFormat) -> list[list[Tracked]]:
    """Apply whichever clipping ``config`` turns on (Keras tests ``c and c > 0``)."""
    if config["clipnorm"] and config["clipnorm"] > 0:
        return [clip_by_norm(t, config["clipnorm"]) for t in tensors]
    if config["global_clipnorm"] and config["global_clipnorm"] > 0:
        return clip_by_global_norm(tensors, config["global_clipnorm"], fmt)
    if config["clipvalue"] and config["clipvalue"] > 0:
        return [clip_by_value(t, config["clipvalue"]) for t in tensors]
    return tensors
