"""Exponential moving average of the weights (``use_ema=True``), as Keras 3 keeps it.

On every ``apply`` call, after the update (and on accumulation micro-steps too)::

    μ_eff = 0 if iterations == 0 else μ        (public iterations: the first real step copies θ)
    avg   ← μ_eff·avg + (1 − μ_eff)·θ

and, when ``ema_overwrite_frequency = F`` and ``(iterations + 1) mod F == 0``,
``θ ← avg``.  ``finalize_variable_values`` sets ``θ ← avg``.  ``1 − μ`` is
formed in the variable's dtype from the rounded ``μ``.
"""

from __future__ import annotations

from optimizer_conformance.reference.tracked import Tracked, lerp


def update_average(average: Tracked, theta: Tracked, weight: Tracked | None) -> Tracked:
    """``weight`` is ``1 − μ`` (``None`` on the first step, when the average becomes θ)."""
    if weight is None:
        return Tracked(theta.value, theta.error, theta.fmt) if isinstance(theta, Tracked) else theta
    return lerp(average, theta, weight)


def blend_weight(momentum: float, iterations: int, fmt) -> Tracked | None:
    if iterations == 0:
        return None
    return 1 - Tracked.rounded(momentum, fmt)


def overwrites(frequency: int | None, iterations: int) -> bool:
    return bool(frequency) and (iterations + 1) % frequency == 0
