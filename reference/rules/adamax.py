r"""Adamax as Keras 3 defines it (``keras.optimizers.Adamax``): Adam with the infinity norm.

With ``t`` the 1-based count of real updates::

    m_t = m + (g − m)·(1 − β₁)
    u_t = max(β₂·u, |g|)
    θ_t = θ − (η·m_t) / ((1 − β₁ᵗ)·(u_t + ε))

Keras evaluates ``β₁ᵗ`` in the variable's dtype with ``t`` cast to it, multiplies ``u`` by ``β₂``
in that dtype, and forms ``1 − β₁`` in float64 (generic path) or from the rounded ``β₁`` (the torch
backend's weighted form ``β₁·m + (1 − β₁)·g``); the budget of ``1 − [β₁]`` covers both.  ``ε`` is
added to the norm before the bias correction multiplies it (it is not ``ε̂``).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, Rule
from optimizer_conformance.reference.rules.dialects import KERAS3
from optimizer_conformance.reference.tracked import Tracked, absolute, lerp, maximum, power


@dataclass(frozen=True)
class Coefficients:
    learning_rate: Tracked
    one_minus_beta_1: Tracked
    beta_2: Tracked
    one_minus_beta_1_power: Tracked
    epsilon: Tracked


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "norm")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    t = Tracked.count(step, fmt)
    beta_1 = Tracked.rounded(hp["beta_1"], fmt)
    c = Coefficients(
        learning_rate=lr,
        one_minus_beta_1=1 - beta_1,
        beta_2=Tracked.rounded(hp["beta_2"], fmt),
        one_minus_beta_1_power=1 - power(beta_1, t),
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
    )
    return c, scalars


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    m = lerp(slots["momentum"], g, c.one_minus_beta_1)
    u = maximum(c.beta_2 * slots["norm"], absolute(g))
    theta = theta - (c.learning_rate * m) / (c.one_minus_beta_1_power * (u + c.epsilon))
    return theta, {"momentum": m, "norm": u}


RULE = Rule(
    name="adamax",
    dialect=KERAS3,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="Adamax",
    defaults={"name": "adamax", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    capabilities=frozenset({"running-max"}),
    keras_torch_parallel=True,
    keras_slots=(("_m", "momentum", None), ("_u", "norm", None)),
    corpus=(
        Golden("adamax-basic", "Keras 3 Adamax: the infinity norm u = max(beta_2 u, |g|)", {"learning_rate": 0.01}),
        Golden("adamax-shrinking-gradients", "Adamax after a gradient spike: the norm decays by beta_2 0.9 a step",
               {"learning_rate": 0.01, "beta_2": 0.9}, data="shrinking"),
        Golden("adamax-large-epsilon", "epsilon 0.1 makes its placement (added to the norm, outside the max) visible",
               {"learning_rate": 0.1, "epsilon": 0.1}),
        Golden("adamax-float16", "Adamax on float16 inputs", {"learning_rate": 0.01}, input_dtype="float16"),
        Golden("adamax-float64", "Adamax on float64 inputs", {"learning_rate": 0.01}, input_dtype="float64"),
    ),
)
