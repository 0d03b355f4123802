r"""Nadam as Keras 3 defines it (``keras.optimizers.Nadam``).

The momentum schedule is ``u_t = β₁·(1 − ½·0.96ᵗ)`` and ``Π_t = ∏_{i≤t} u_i``
is kept as optimizer state (``_u_product``, initially 1, advanced once per real
update)::

    Π_t   = Π_{t−1} · u_t ,   Π_{t+1} = Π_t · u_{t+1}
    m_t   = m + (g − m)·(1 − β₁)
    v_t   = v + (g² − v)·(1 − β₂)
    m̂_t   = u_{t+1}·m_t / (1 − Π_{t+1}) + (1 − u_t)·g / (1 − Π_t)
    v̂_t   = v_t / (1 − β₂ᵗ)
    θ_t   = θ − (m̂_t · η) / (√v̂_t + ε)         ε outside the bias-corrected root

``Π·u_t`` is budgeted in either association (Keras forms ``(Π·β₁)·(1 − ½·0.96ᵗ)``), and the update as one
subtraction or as torch.optim's two, ``θ − (g/d)·η(1 − u_t)/(1 − Π_t) − (m/d)·η·u_{t+1}/(1 − Π_{t+1})``.
Keras evaluates every scalar here in the variable's dtype (``0.96``, ``β``
and ``t`` cast to it; ``1 − β`` formed from the rounded ``β`` on TF and JAX,
in float64 on the torch backend: the budget covers both).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, Rule
from optimizer_conformance.reference.rules.dialects import KERAS3
from optimizer_conformance.reference.tracked import Tracked, in_either_order, lerp, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    u_t: Tracked
    u_next: Tracked
    one_minus_product: Tracked
    one_minus_next_product: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    one_minus_beta_2_power: Tracked
    learning_rate: Tracked
    epsilon: Tracked
    gradient_step: Tracked  # η·(1 − u_t) / (1 − Π_t): the gradient's step size when the update is applied in parts
    momentum_step: Tracked  # η·u_{t+1} / (1 − Π_{t+1}): the momentum's


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "velocity")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {"u_product": Tracked.exact(1, fmt)}


def schedule_factor(step: Tracked) -> Tracked:
    """``1 − ½·0.96ᵗ``."""
    return 1 - 0.5 * power(Tracked.rounded(0.96, step.fmt), step)


def momentum_schedule(beta_1: Tracked, step: Tracked) -> Tracked:
    """``u_t = β₁·(1 − ½·0.96ᵗ)``."""
    return beta_1 * schedule_factor(step)


def advanced_product(product: Tracked, beta_1: Tracked, step: Tracked) -> Tracked:
    """``Π·u_t = Π·β₁·(1 − ½·0.96ᵗ)`` in either association: ``Π·u_t`` with ``u_t`` formed first, or Keras's
    ``(Π·β₁)·(1 − ½·0.96ᵗ)``.  The budget covers both: they differ by more than one rounding once ``Π`` is
    subnormal (float16 from about the fifth step with a small ``β₁``)."""
    schedule = schedule_factor(step)
    return in_either_order(product * (beta_1 * schedule), (product * beta_1) * schedule)


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    beta_1 = Tracked.rounded(hp["beta_1"], fmt)
    product = advanced_product(scalars["u_product"], beta_1, Tracked.count(step, fmt))
    return coefficients_beside(hp, lr, step, fmt, {"u_product": product}), {"u_product": product}


def coefficients_beside(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, advanced: dict) -> Coefficients:
    """The coefficients given ``Π_t`` as advanced this step: for a variable of another dtype than the first one's,
    Keras casts the product (advanced once, in the first variable's dtype) to the variable's and forms the rest
    there."""
    beta_1 = Tracked.rounded(hp["beta_1"], fmt)
    beta_2 = Tracked.rounded(hp["beta_2"], fmt)
    t = Tracked.count(step, fmt)
    u_t = momentum_schedule(beta_1, t)
    u_next = momentum_schedule(beta_1, Tracked.count(step + 1, fmt))
    product = advanced["u_product"]
    return Coefficients(
        u_t=u_t,
        u_next=u_next,
        one_minus_product=1 - product,
        one_minus_next_product=1 - product * u_next,
        one_minus_beta_1=1 - beta_1,
        one_minus_beta_2=1 - beta_2,
        one_minus_beta_2_power=1 - power(beta_2, t),
        learning_rate=lr,
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
        gradient_step=lr * (1 - u_t) / (1 - product),
        momentum_step=lr * u_next / (1 - product * u_next),
    )


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    m = lerp(slots["momentum"], g, c.one_minus_beta_1)
    v = lerp(slots["velocity"], g * g, c.one_minus_beta_2)
    m_hat = (c.u_next * m) / c.one_minus_next_product + ((1 - c.u_t) * g) / c.one_minus_product
    denominator = sqrt(v / c.one_minus_beta_2_power) + c.epsilon
    # Keras's one subtraction, or torch.optim's two (θ − (g/d)·s_g − (m/d)·s_m): the same exact update.
    theta = in_either_order(theta - (m_hat * c.learning_rate) / denominator,
                            (theta - (g / denominator) * c.gradient_step) - (m / denominator) * c.momentum_step)
    return theta, {"momentum": m, "velocity": v}


RULE = Rule(
    name="nadam",
    dialect=KERAS3,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    coefficients_beside=coefficients_beside,
    update=update,
    keras_class="Nadam",
    keras_torch_parallel=True,
    defaults={"name": "nadam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    keras_slots=(("_momentums", "momentum", None), ("_velocities", "velocity", None)),
    keras_scalars={"_u_product": "u_product"},
    counterpart="nadam-legacy",  # ported with TF 2.0's schedule, 0.96^(0.004 t)
    corpus=(
        Golden("nadam-basic", "Keras 3 Nadam: momentum schedule 0.96^t and the u_product state",
               {"learning_rate": 0.01}),
        Golden("nadam-custom-betas", "Nadam with beta_1 0.5, beta_2 0.67, epsilon 1e-5 (Keras's golden test)",
               {"learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.67, "epsilon": 1e-5}),
        Golden("nadam-float16", "Nadam on float16 inputs", {"learning_rate": 0.01}, input_dtype="float16"),
    ),
)
