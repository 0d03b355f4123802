r"""Adam as torch.optim defines it (``torch.optim.Adam``), AMSGrad, ``maximize`` and both weight decays included.

With ``t`` the parameter's own count of updates (a parameter whose ``.grad`` is None is skipped whole), ``λ`` the
``weight_decay`` and ε added to the bias-corrected root (where Keras adds ε̂ to ``√v`` and scales the step)::

    g ← −g                                     maximize only
    g ← g + λ·θ                                L2 decay (``decoupled_weight_decay=False``, λ ≠ 0)
    θ ← θ·(1 − η·λ)                            decoupled decay instead (``AdamW``; before the moments)
    m_t = m + (g − m)·(1 − β₁)                 ``exp_avg.lerp_(g, 1 − β₁)``
    v_t = β₂·v + (1 − β₂)·g²                   ``exp_avg_sq.mul_(β₂).addcmul_(g, g, 1 − β₂)``
    v̂_t = max(v̂, v_t)                          amsgrad only: the max of the raw v (``max_exp_avg_sq``)
    θ_t = θ − (η / (1 − β₁ᵗ)) · m_t / (√v_t / √(1 − β₂ᵗ) + ε)      √v̂_t in place of √v_t with amsgrad

torch forms the per-step scalars (``1 − β₁ᵗ``, the step size, ``√(1 − β₂ᵗ)``, ``1 − η·λ``) from Python floats, in
double, each rounded once where it meets a tensor; the fused kernel forms the same in double and computes each
element in the parameter's math type.  The state is torch's: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` and
the per-parameter ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, KerasEquivalent, Rule
from optimizer_conformance.reference.rules.dialects import TORCH, torch_in_keras
from optimizer_conformance.reference.tracked import Tracked, decay, in_either_order, lerp, maximum, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    step_size: Tracked  # η / (1 − β₁ᵗ)
    root_of_correction: Tracked  # √(1 − β₂ᵗ)
    beta_2: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    epsilon: Tracked
    learning_rate: Tracked
    weight_decay: Tracked
    amsgrad: bool
    maximize: bool
    decoupled: bool
    decays: bool  # λ ≠ 0


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if hp["amsgrad"] else ("exp_avg", "exp_avg_sq")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def moment_scalars(hp: dict, lr: Tracked, fmt: FloatFormat) -> dict:
    """The scalars torch's Adam and NAdam both use before their steps (:func:`moments`), by field name."""
    beta_1 = Tracked.rounded(hp["betas"][0], fmt)
    beta_2 = Tracked.rounded(hp["betas"][1], fmt)
    return {"beta_2": beta_2, "one_minus_beta_1": 1 - beta_1, "one_minus_beta_2": 1 - beta_2,
            "epsilon": Tracked.rounded(hp["eps"], fmt), "learning_rate": lr,
            "weight_decay": Tracked.rounded(hp["weight_decay"], fmt), "maximize": hp["maximize"],
            "decoupled": hp.get("decoupled_weight_decay", False), "decays": hp["weight_decay"] != 0}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    t = Tracked.count(step, fmt)
    beta_1 = Tracked.rounded(hp["betas"][0], fmt)
    beta_2 = Tracked.rounded(hp["betas"][1], fmt)
    c = Coefficients(step_size=lr / (1 - power(beta_1, t)), root_of_correction=sqrt(1 - power(beta_2, t)),
                     amsgrad=hp["amsgrad"], **moment_scalars(hp, lr, fmt))
    return c, scalars


def moments(c, g: Tracked, theta: Tracked, slots: dict[str, Tracked]) -> tuple[Tracked, Tracked, Tracked, Tracked]:
    """What torch.optim's Adam and NAdam share before their steps: ``maximize``, the L2 or decoupled decay, and the
    moments; ``(g, θ, m, v)`` after them (``c`` has ``maximize``, ``decays``, ``decoupled``, ``weight_decay``,
    ``learning_rate``, ``beta_2``, ``one_minus_beta_1``, ``one_minus_beta_2``)."""
    if c.maximize:
        g = -g
    if c.decays and c.decoupled:
        theta = decay(theta, c.weight_decay, c.learning_rate, theta.fmt)
    elif c.decays:
        g = g + c.weight_decay * theta
    m = lerp(slots["exp_avg"], g, c.one_minus_beta_1)
    # addcmul: β₂·v + (1 − β₂)·(g·g), or ((1 − β₂)·g)·g.
    v = in_either_order(slots["exp_avg_sq"] * c.beta_2 + c.one_minus_beta_2 * (g * g),
                        slots["exp_avg_sq"] * c.beta_2 + (c.one_minus_beta_2 * g) * g)
    return g, theta, m, v


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    g, theta, m, v = moments(c, g, theta, slots)
    new_slots = {"exp_avg": m, "exp_avg_sq": v}
    if c.amsgrad:
        v = maximum(slots["max_exp_avg_sq"], v)
        new_slots["max_exp_avg_sq"] = v
    denominator = sqrt(v) / c.root_of_correction + c.epsilon
    # addcdiv: θ − s·(m / d), or (s·m) / d.
    theta = in_either_order(theta - c.step_size * (m / denominator), theta - (c.step_size * m) / denominator)
    return theta, new_slots


def in_keras(config: dict) -> tuple[str, dict] | str:
    """Keras's Adam with the same betas, ε, AMSGrad and decoupled decay (ε placed otherwise, one step count)."""
    translated = torch_in_keras(config, "adam", decoupled=config["decoupled_weight_decay"])
    if isinstance(translated, str):
        return translated
    rule, keras = translated
    return rule, {**keras, "amsgrad": config["amsgrad"]}


RULE = Rule(
    name="torch-adam",
    dialect=TORCH,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="Adam",  # torch.optim.Adam
    defaults={"amsgrad": False, "decoupled_weight_decay": False},
    capabilities=frozenset({"amsgrad"}),
    explore={"maximize": (False, True), "weight_decay": (0.0, 0.0, 0.01, 0.5)},
    counterpart="adam",
    keras_equivalent=KerasEquivalent(("adam",), in_keras),
    corpus=(
        Golden("torch-adam-basic", "torch.optim.Adam, default betas and eps", {"lr": 0.01}),
        Golden("torch-adam-l2-amsgrad", "torch.optim.Adam with its L2 weight decay (added to the gradient) and "
               "amsgrad after a gradient spike", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
               data="shrinking"),
        Golden("torch-adam-maximize-large-eps", "maximize, and eps 0.1 added after the bias correction",
               {"lr": 0.1, "eps": 0.1, "maximize": True}),
        Golden("torch-adam-float64", "torch.optim.Adam on float64 inputs", {"lr": 0.01}, input_dtype="float64"),
        Golden("torch-adam-float16", "torch.optim.Adam on float16 inputs", {"lr": 0.01, "eps": 1e-4},
               input_dtype="float16"),
    ),
)
