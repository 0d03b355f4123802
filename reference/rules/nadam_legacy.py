r"""The legacy TensorFlow Nadam (TF 2.0 ``tf.keras.optimizers.Nadam``,
``tf_keras.optimizers.legacy.Nadam``), with Dozat's warming schedule.

The momentum schedule decays 250 times slower than Keras 3's, with
``ψ = 0.004`` (the ``schedule_decay``, stored by the legacy optimizer as its
``decay`` hyperparameter)::

    μ_t   = β₁·(1 − ½·0.96^(ψ·t))
    Π_t   = Π_{t−1}·μ_t ,   Π_{t+1} = Π_t·μ_{t+1}         (``momentum_cache``)
    g'    = g / (1 − Π_t)
    m_t   = β₁·m + (1 − β₁)·g ,    m' = m_t / (1 − Π_{t+1})
    v_t   = β₂·v + (1 − β₂)·g² ,   v' = v_t / (1 − β₂ᵗ)
    m̄    = (1 − μ_t)·g' + μ_{t+1}·m'
    θ_t   = θ − η·m̄ / (√v' + ε)                 or torch.optim's NAdam's two subtractions (budgeted as either)

The legacy optimizer keeps ``η``, ``β₁``, ``β₂`` and ``ψ`` in float32
variables and casts them to the variable's dtype, so a float64 model sees
float32-rounded hyperparameters: the budgets count that rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FLOAT32, FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, Rule, require_number
from optimizer_conformance.reference.rules.dialects import TF_LEGACY
from optimizer_conformance.reference.tracked import Tracked, in_either_order, lerp, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    mu_t: Tracked
    mu_next: Tracked
    one_minus_product: Tracked
    one_minus_next_product: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    one_minus_beta_2_power: Tracked
    learning_rate: Tracked
    epsilon: Tracked
    gradient_step: Tracked  # η·(1 − μ_t) / (1 − Π_t): the gradient's step size when the update is applied in parts
    momentum_step: Tracked  # η·μ_{t+1} / (1 − Π_{t+1}): the momentum's


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "velocity")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {"momentum_cache": Tracked.exact(1, fmt)}


def momentum_schedule(beta_1: Tracked, schedule_decay: Tracked, step: Tracked) -> Tracked:
    """``μ_t = β₁·(1 − ½·0.96^(ψ·t))``."""
    decay = Tracked.rounded(0.96, beta_1.fmt)
    return beta_1 * (1 - 0.5 * power(decay, schedule_decay * step))


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    beta_1 = Tracked.rounded(hp["beta_1"], fmt, via=FLOAT32)
    beta_2 = Tracked.rounded(hp["beta_2"], fmt, via=FLOAT32)
    psi = Tracked.rounded(hp["decay"], fmt, via=FLOAT32)
    t = Tracked.count(step, fmt)
    mu_t = momentum_schedule(beta_1, psi, t)
    mu_next = momentum_schedule(beta_1, psi, Tracked.count(step + 1, fmt))
    product = scalars["momentum_cache"] * mu_t
    c = Coefficients(
        mu_t=mu_t,
        mu_next=mu_next,
        one_minus_product=1 - product,
        one_minus_next_product=1 - product * mu_next,
        one_minus_beta_1=1 - beta_1,
        one_minus_beta_2=1 - beta_2,
        one_minus_beta_2_power=1 - power(beta_2, t),
        learning_rate=lr,
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
        gradient_step=lr * (1 - mu_t) / (1 - product),
        momentum_step=lr * mu_next / (1 - product * mu_next),
    )
    return c, {"momentum_cache": product}


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    g_prime = g / c.one_minus_product
    m = lerp(slots["momentum"], g, c.one_minus_beta_1)
    m_prime = m / c.one_minus_next_product
    v = lerp(slots["velocity"], g * g, c.one_minus_beta_2)
    v_prime = v / c.one_minus_beta_2_power
    m_bar = (1 - c.mu_t) * g_prime + c.mu_next * m_prime
    denominator = sqrt(v_prime) + c.epsilon
    # TF's one subtraction, or torch.optim's NAdam's two (θ − (g/d)·s_g − (m/d)·s_m): the same exact update.
    theta = in_either_order(theta - (c.learning_rate * m_bar) / denominator,
                            (theta - (g / denominator) * c.gradient_step) - (m / denominator) * c.momentum_step)
    return theta, {"momentum": m, "velocity": v}


def _validate(config: dict) -> None:
    require_number(config, "decay")
    if config["epsilon"] == 0:
        config["epsilon"] = 1e-7  # tf_keras legacy: `epsilon or backend.epsilon()`


RULE = Rule(
    name="nadam-legacy",
    dialect=TF_LEGACY,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="Nadam",  # tf_keras.optimizers.legacy.Nadam
    # Its get_config writes the schedule decay as "decay".
    defaults={"name": "Nadam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "decay": 0.004},
    aliases={"schedule_decay": "decay"},
    validate=_validate,
    counterpart="nadam",  # ported with Keras 3's schedule, 0.96^t
    corpus=(
        Golden("nadam-legacy-basic", "TF 2.0 / tf_keras legacy Nadam: schedule 0.96^(0.004 t)",
               {"learning_rate": 0.01}),
        Golden("nadam-legacy-float64", "legacy Nadam on float64 inputs (hyperparameters held in float32)",
               {"learning_rate": 0.01}, input_dtype="float64"),
    ),
)
