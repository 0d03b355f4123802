"""Gradient clipping as Keras 3 applies it (at most one of the three).

    clipnorm c          g ← (g·c) / max(‖g‖₂, c)            per tensor, no epsilon
    global_clipnorm c   g ← g · (c · min(1/N, 1/c) + (N − N))    N = √(Σ_tensors Σ g²)
    clipvalue c         g ← min(max(g, −c), c)

Non-finite gradients: an Inf element makes ‖g‖ Inf, so ``clipnorm`` sends the tensor's finite elements to 0
and the Inf one to NaN, and a NaN makes the whole tensor NaN (``max`` propagates NaN); ``global_clipnorm``
makes every gradient of the call NaN (Keras adds ``N − N`` for that); ``clipvalue`` clips ±Inf to ±c and keeps
NaN.

Keras's global clip multiplies by ``c·(1/c)`` even when it does not clip,
which in floating point may be one ulp away from 1: the budget of that
product covers it.  A sum of squares is budgeted for any summation order
(:func:`reference.tracked.sum_of_squares`).  Keras's torch backend returns ``max(‖g‖, c)`` and
``min(1/N, 1/c)`` of a float64 gradient in float32 (an upstream bug, keras #23704): the budget does not
allow for it; :func:`reference.tracked.through_floatx` marks where its deviated oracle rounds.
"""

from __future__ import annotations

from gmpy2 import mpfr
from optimizer_conformance.reference.arrays import each, format_of
from optimizer_conformance.reference.tracked import (
    Tracked,
    is_special,
    maximum,
    minimum,
    norm,
    root_of,
    sum_of_squares,
    through_floatx,
)


def clip_by_norm(values: list[Tracked], clipnorm: float) -> list[Tracked]:
    c = Tracked.rounded(clipnorm, format_of(values))
    denominator = through_floatx(maximum(norm(values), c))
    return each(lambda g: (g * c) / denominator, values)


def clip_by_global_norm(tensors: list[list[Tracked]], clipnorm: float) -> list[list[Tracked]]:
    """Over tensors of several dtypes, each tensor's sum of squares is formed in its own; Keras stacks them, which
    promotes them to the widest (exactly), and the norm, the scale and each product ``g·scale`` are in that one;
    the rule casts the product back to its variable's dtype (a second rounding for a narrower variable)."""
    fmt = max((format_of(t) for t in tensors if len(t)), key=lambda f: f.precision, default=None)
    if fmt is None:
        return tensors
    partial = [sum_of_squares(t) for t in tensors]
    total = Tracked(sum(p.value for p in partial), 0.0, fmt)
    total.error = sum(p.error for p in partial) + len(partial) * fmt.unit_roundoff * total.size
    total_norm = root_of(total)
    c = Tracked.rounded(clipnorm, fmt)
    inverse_c = Tracked.rounded(1 / mpfr(clipnorm), fmt)
    limit = inverse_c if total_norm.value == 0 else through_floatx(minimum(1 / total_norm, inverse_c))
    scale = through_floatx(c * limit)
    if is_special(total_norm.value):  # Keras adds N − N to the scale: NaN for an Inf or NaN norm
        scale = Tracked(mpfr("nan"), 0.0, fmt)
    return [each(lambda g: (g.to(fmt) * scale).to(g.fmt), t) for t in tensors]


def clip_by_value(values: list[Tracked], clipvalue: float) -> list[Tracked]:
    c = Tracked.rounded(clipvalue, format_of(values))
    return each(lambda g: minimum(maximum(g, -c), c), values)


def clip(tensors: list[list[Tracked]], config: dict) -> list[list[Tracked]]:
    """Apply whichever clipping ``config`` turns on (Keras tests ``c and c > 0``; a dialect without clipping has
    none of the keys)."""
    if config.get("clipnorm") and config["clipnorm"] > 0:
        return [clip_by_norm(t, config["clipnorm"]) for t in tensors]
    if config.get("global_clipnorm") and config["global_clipnorm"] > 0:
        return clip_by_global_norm(tensors, config["global_clipnorm"])
    if config.get("clipvalue") and config["clipvalue"] > 0:
        return [clip_by_value(t, config["clipvalue"]) for t in tensors]
    return tensors
