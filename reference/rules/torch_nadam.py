r"""NAdam as torch.optim defines it (``torch.optim.NAdam``): Dozat's warming momentum schedule, each parameter with
its own step count and momentum product, both weight decays and ``maximize``.

With ``ψ`` the ``momentum_decay`` (default 0.004: the legacy TensorFlow schedule; 1.0 is Keras 3's)::

    μ_t   = β₁·(1 − ½·0.96^(t·ψ)) ,   μ_{t+1} = β₁·(1 − ½·0.96^((t + 1)·ψ))
    Π_t   = [Π_{t−1}·[μ_t]]                   ``mu_product``: a float32 tensor, μ_t rounded to float32 first
    g ← −g (maximize);  g ← g + λ·θ (L2) or θ ← θ·(1 − η·λ) (``decoupled_weight_decay``)
    m_t   = m + (g − m)·(1 − β₁) ,   v_t = β₂·v + (1 − β₂)·g²
    d     = √(v_t / (1 − β₂ᵗ)) + ε
    θ_t   = θ − (η·(1 − μ_t) / (1 − Π_t))·g / d − (η·μ_{t+1} / (1 − Π_t·μ_{t+1}))·m_t / d     two subtractions

The schedule and step sizes are Python floats (double) formed from the float32 product, each rounded once where it
meets a tensor.  The state is torch's: ``exp_avg``, ``exp_avg_sq``, ``mu_product`` and ``step`` per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FLOAT32, FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, KerasEquivalent, Rule
from optimizer_conformance.reference.rules.dialects import TORCH, torch_in_keras
from optimizer_conformance.reference.rules.nadam_legacy import momentum_schedule
from optimizer_conformance.reference.rules.torch_adam import moment_scalars, moments
from optimizer_conformance.reference.tracked import Tracked, in_either_order, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    gradient_step: Tracked  # η·(1 − μ_t) / (1 − Π_t)
    momentum_step: Tracked  # η·μ_{t+1} / (1 − Π_t·μ_{t+1})
    correction: Tracked  # 1 − β₂ᵗ
    beta_2: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    epsilon: Tracked
    learning_rate: Tracked
    weight_decay: Tracked
    maximize: bool
    decoupled: bool
    decays: bool


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {"mu_product": Tracked.exact(1, FLOAT32)}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    beta_1 = Tracked.rounded(hp["betas"][0], fmt)
    beta_2 = Tracked.rounded(hp["betas"][1], fmt)
    psi = Tracked.rounded(hp["momentum_decay"], fmt)
    mu_t = momentum_schedule(beta_1, psi, Tracked.count(step, fmt))
    mu_next = momentum_schedule(beta_1, psi, Tracked.count(step + 1, fmt))
    # mu_product *= mu: a float32 tensor times a Python float, which torch rounds to float32 first.
    held = (scalars["mu_product"].to(FLOAT32) * mu_t.to(FLOAT32)).to(FLOAT32)
    product = held.to(fmt) if fmt.precision >= FLOAT32.precision else held
    c = Coefficients(gradient_step=lr * (1 - mu_t) / (1 - product),
                     momentum_step=lr * mu_next / (1 - product * mu_next),
                     correction=1 - power(beta_2, Tracked.count(step, fmt)), **moment_scalars(hp, lr, fmt))
    return c, {"mu_product": held}


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    g, theta, m, v = moments(c, g, theta, slots)
    denominator = sqrt(v / c.correction) + c.epsilon
    # Two addcdiv: each θ − s·(x / d), or (s·x) / d.
    theta = in_either_order(
        (theta - c.gradient_step * (g / denominator)) - c.momentum_step * (m / denominator),
        (theta - (c.gradient_step * g) / denominator) - (c.momentum_step * m) / denominator)
    return theta, {"exp_avg": m, "exp_avg_sq": v}


def in_keras(config: dict) -> tuple[str, dict] | str:
    """Keras 3's Nadam where ``momentum_decay`` is 1 (its schedule 0.96ᵗ), else the legacy Nadam with ψ as its
    schedule decay (no weight decay there; its ε of 0 is 10⁻⁷)."""
    psi = config["momentum_decay"]
    translated = torch_in_keras(config, "nadam" if psi == 1 else "nadam-legacy",
                                decoupled=config["decoupled_weight_decay"])
    if isinstance(translated, str):
        return translated
    rule, keras = translated
    if rule == "nadam":
        return rule, keras
    if keras.pop("weight_decay"):
        return (f"momentum_decay={psi!r} is the legacy TensorFlow Nadam's schedule (Keras 3's is momentum_decay=1), "
                "which has no weight decay")
    if not keras["epsilon"]:
        return "eps=0: the legacy TensorFlow Nadam takes an ε of 0 as 1e-7"
    return rule, {**keras, "decay": psi}


RULE = Rule(
    name="torch-nadam",
    dialect=TORCH,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="NAdam",  # torch.optim.NAdam
    defaults={"lr": 0.002, "momentum_decay": 0.004, "decoupled_weight_decay": False},
    explore={"maximize": (False, True), "momentum_decay": (0.004, 0.004, 1.0), "weight_decay": (0.0, 0.0, 0.01, 0.5),
             "decoupled_weight_decay": (False, True)},
    counterpart="nadam-legacy",
    keras_equivalent=KerasEquivalent(("nadam", "nadam-legacy"), in_keras,
                                     scalar_names={"nadam": "u_product", "nadam-legacy": "momentum_cache"}),
    corpus=(
        Golden("torch-nadam-basic", "torch.optim.NAdam, the legacy schedule (momentum_decay 0.004)", {"lr": 0.01}),
        Golden("torch-nadam-keras-schedule-decoupled", "momentum_decay 1.0 (Keras 3's 0.96ᵗ) with decoupled decay",
               {"lr": 0.01, "momentum_decay": 1.0, "weight_decay": 0.1, "decoupled_weight_decay": True}),
        Golden("torch-nadam-float64", "torch.optim.NAdam on float64 inputs (its momentum product in float32)",
               {"lr": 0.01}, input_dtype="float64"),
    ),
)
