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
from optimizer_conformance.reference.rules.descriptor import Golden, Rule
from optimizer_conformance.reference.rules.dialects import KERAS3
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


RULE = Rule(
    name="adam",
    dialect=KERAS3,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="Adam",
    defaults={"name": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    capabilities=frozenset({"amsgrad"}),
    keras_torch_parallel=True,
    keras_slots=(("_momentums", "momentum", None), ("_velocities", "velocity", None),
                 ("_velocity_hats", "velocity_hat", "amsgrad")),
    corpus=(
        Golden("adam-basic", "Keras 3 Adam, default betas and epsilon", {"learning_rate": 0.01}),
        Golden("adam-defaults", "Keras 3 Adam with every default (learning rate 0.001)", {}),
        Golden("adam-amsgrad-shrinking-gradients", "AMSGrad after a gradient spike: velocity_hat keeps the max",
               {"learning_rate": 0.01, "amsgrad": True}, data="shrinking"),
        Golden("adam-large-epsilon", "epsilon 0.1 makes its placement (epsilon-hat, outside the root) visible",
               {"learning_rate": 0.1, "epsilon": 0.1}),
        Golden("adam-float64", "Adam on float64 inputs", {"learning_rate": 0.01}, input_dtype="float64"),
        Golden("adam-float16", "Adam on float16 inputs (epsilon 1e-7 is subnormal in float16)",
               {"learning_rate": 0.01}, input_dtype="float16"),
        Golden("adam-bfloat16", "Adam on bfloat16 inputs (beta_2 0.999 rounds to 1 in bfloat16)",
               {"learning_rate": 0.01}, input_dtype="bfloat16"),
        Golden("adam-bfloat16-representable-betas", "Adam on bfloat16 with betas bfloat16 can hold (0.875, 0.984375)",
               {"learning_rate": 0.015625, "beta_1": 0.875, "beta_2": 0.984375, "epsilon": 0.001},
               input_dtype="bfloat16"),
    ),
)
