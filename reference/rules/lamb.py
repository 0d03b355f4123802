r"""Lamb as Keras 3 defines it (``keras.optimizers.Lamb``): Adam's direction scaled per variable by a trust ratio.

With ``t`` the 1-based count of real updates, for each variable ``θ`` (all its elements together)::

    m_t = m + (g − m)·(1 − β₁)
    v_t = v + (g² − v)·(1 − β₂)
    r   = (m_t / (1 − β₁ᵗ)) / (√(v_t / (1 − β₂ᵗ)) + ε)        element by element
    ρ   = ‖θ‖₂ / ‖r‖₂   if ‖θ‖₂ > 0 and ‖r‖₂ > 0,   else 1      one number per variable
    θ_t = θ − (ρ·η)·r

``ε`` is added after the bias correction (unlike Keras's Adam), and ``‖θ‖`` is the norm of the
variable after weight decay, before the update.  The trust ratio couples every element of a
variable, so this rule updates a variable at a time (:func:`update_variable`); the norms are budgeted
as sums of squares in any order (:func:`reference.tracked.norm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from optimizer_conformance.reference.arrays import budgets, each
from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, Rule
from optimizer_conformance.reference.rules.dialects import KERAS3
from optimizer_conformance.reference.tracked import Tracked, in_either_order, lerp, norm, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    learning_rate: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    one_minus_beta_1_power: Tracked
    one_minus_beta_2_power: Tracked
    epsilon: Tracked


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "velocity")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    t = Tracked.count(step, fmt)
    beta_1, beta_2 = Tracked.rounded(hp["beta_1"], fmt), Tracked.rounded(hp["beta_2"], fmt)
    c = Coefficients(
        learning_rate=lr,
        # Keras's Lamb multiplies by the Python float 1 − β, which a backend may turn into a tensor of its own:
        # 1 − [β] or [1 − β], the same exact value.
        one_minus_beta_1=in_either_order(1 - beta_1, Tracked.rounded(1 - hp["beta_1"], fmt)),
        one_minus_beta_2=in_either_order(1 - beta_2, Tracked.rounded(1 - hp["beta_2"], fmt)),
        one_minus_beta_1_power=1 - power(beta_1, t),
        one_minus_beta_2_power=1 - power(beta_2, t),
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
    )
    return c, scalars


def direction(c: Coefficients, slots: dict[str, Tracked]) -> Tracked:
    """Adam's bias-corrected direction ``r`` of one element, from its new moments."""
    return (slots["momentum"] / c.one_minus_beta_1_power) / (
        sqrt(slots["velocity"] / c.one_minus_beta_2_power) + c.epsilon)


def trust_ratio(weight_norm: Tracked, direction_norm: Tracked) -> Tracked:
    """``‖θ‖ / ‖r‖``, or exactly 1 when either norm is zero (Keras's guard)."""
    if weight_norm.value > 0 and direction_norm.value > 0:
        return weight_norm / direction_norm
    return Tracked.exact(1, weight_norm.fmt)


def keras_trust_ratio(theta: list[Tracked], g: list[Tracked], r: list[Tracked]) -> Tracked:
    """The trust ratio of a variable ``θ`` whose gradient is ``g`` and direction ``r``: ``‖θ‖ / ‖r‖``.

    The guard is a jump: where a vector's budget reaches across zero (a weight cancelled to an exact 0 that an
    honest implementation holds as a rounding residue, or the reverse), either side is honest and the ratio is
    not determined: its budget is infinite.
    """
    norms = norm(theta), norm(r)
    ratio = trust_ratio(*norms)
    if any(_either_side_of_zero(v, n) for v, n in zip((theta, r), norms)):
        return Tracked(ratio.value, math.inf, ratio.fmt)
    return ratio


def _either_side_of_zero(vector: Any, vector_norm: Tracked) -> bool:
    if vector_norm.value == 0:
        return bool(np.any(budgets(vector) > 0))
    return vector_norm.error >= vector_norm.size


TrustRatio = Callable[[list[Tracked], list[Tracked], list[Tracked]], Tracked]


def update_variable(c: Coefficients, g: Any, theta: Any, slots: dict[str, Any], ratio: TrustRatio = keras_trust_ratio):
    """One variable: its elements and slots (lists of ``Tracked``, or ``TrackedArray``), updated together (``ratio``
    is Keras's trust ratio)."""
    new = {"momentum": each(lambda gj, m: lerp(m, gj, c.one_minus_beta_1), g, slots["momentum"]),
           "velocity": each(lambda gj, v: lerp(v, gj * gj, c.one_minus_beta_2), g, slots["velocity"])}
    r = each(lambda m, v: direction(c, {"momentum": m, "velocity": v}), new["momentum"], new["velocity"])
    step_size = ratio(theta, g, r) * c.learning_rate
    return each(lambda x, rj: x - step_size * rj, theta, r), new


RULE = Rule(
    name="lamb",
    dialect=KERAS3,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update_variable=update_variable,
    keras_class="Lamb",
    defaults={"name": "lamb", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    capabilities=frozenset({"variable-norms"}),
    keras_slots=(("_momentums", "momentum", None), ("_velocities", "velocity", None)),
    corpus=(
        Golden("lamb-basic", "Keras 3 Lamb: Adam's direction scaled per variable by the trust ratio |theta| / |r|",
               {"learning_rate": 0.01}),
        Golden("lamb-zero-bias", "Lamb with a bias that starts at zero: its trust ratio is 1 on the first step",
               {"learning_rate": 0.01}, data="zero-variable"),
        Golden("lamb-large-epsilon", "epsilon 0.1 makes its placement (after the bias correction) visible",
               {"learning_rate": 0.1, "epsilon": 0.1}),
        Golden("lamb-float16", "Lamb on float16 inputs", {"learning_rate": 0.01}, input_dtype="float16"),
    ),
)
