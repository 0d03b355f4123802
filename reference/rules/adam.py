r"""Adam as Keras 3 defines it (``keras.optimizers.Adam``), AMSGrad included.

With ``t`` the 1-based count of real updates and ``ε̂`` Keras's "epsilon hat"
(added to ``√v`` before bias correction, which lives in ``α``)::

    α_t = η · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
    m_t = m + (g − m)·(1 − β₁)
    v_t = v + (g² − v)·(1 − β₂)
    v̂_t = max(v̂, v_t)                       amsgrad only: the max of the *raw* v
    θ_t = θ − (m_t · α_t) / (√v_t + ε̂)       √v̂_t in place of √v_t with amsgrad

Keras evaluates ``β^t`` in the variable's dtype with ``t`` cast to it, and
forms ``1 − β`` in float64 (generic path) or from the rounded ``β`` (torch
backend); the budget of ``1 − [β]`` covers both.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.tracked import Tracked, lerp, maximum, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    alpha: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    epsilon: Tracked
    amsgrad: bool


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "velocity", "velocity_hat") if hp["amsgrad"] else ("momentum", "velocity")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    t = Tracked.count(step, fmt)
    beta_1 = Tracked.rounded(hp["beta_1"], fmt)
    beta_2 = Tracked.rounded(hp["beta_2"], fmt)
    alpha = lr * sqrt(1 - power(beta_2, t)) / (1 - power(beta_1, t))
    c = Coefficients(
        alpha=alpha,
        one_minus_beta_1=1 - beta_1,
        one_minus_beta_2=1 - beta_2,
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
        amsgrad=hp["amsgrad"],
    )
    return c, scalars


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    m = lerp(slots["momentum"], g, c.one_minus_beta_1)
    v = lerp(slots["velocity"], g * g, c.one_minus_beta_2)
    new_slots = {"momentum": m, "velocity": v}
    if c.amsgrad:
        v = maximum(slots["velocity_hat"], v)
        new_slots["velocity_hat"] = v
    theta = theta - (m * c.alpha) / (sqrt(v) + c.epsilon)
    return theta, new_slots
