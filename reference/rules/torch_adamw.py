r"""AdamW as torch.optim defines it (``torch.optim.AdamW``): :mod:`reference.rules.torch_adam` with its decoupled
weight decay, default ``λ = 0.01``, applied to the parameter before the moments::

    θ ← θ·(1 − η·λ)
    m_t = m + (g − m)·(1 − β₁) ,   v_t = β₂·v + (1 − β₂)·g²
    θ_t = θ − (η / (1 − β₁ᵗ)) · m_t / (√v_t / √(1 − β₂ᵗ) + ε)
"""

from dataclasses import replace

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules import torch_adam
from optimizer_conformance.reference.rules.descriptor import Golden, KerasEquivalent
from optimizer_conformance.reference.rules.dialects import torch_in_keras
from optimizer_conformance.reference.tracked import Tracked


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    """Adam's, its decay always decoupled (AdamW takes no ``decoupled_weight_decay`` argument)."""
    return torch_adam.coefficients({**hp, "decoupled_weight_decay": True}, lr, step, fmt, scalars)


def in_keras(config: dict) -> tuple[str, dict] | str:
    """Keras's AdamW with the same betas, ε, AMSGrad and weight decay (a float, as AdamW requires)."""
    translated = torch_in_keras(config, "adamw", decoupled=True)
    if isinstance(translated, str):
        return translated
    rule, keras = translated
    return rule, {**keras, "weight_decay": config["weight_decay"], "amsgrad": config["amsgrad"]}


RULE = replace(
    torch_adam.RULE,
    name="torch-adamw",
    keras_class="AdamW",  # torch.optim.AdamW
    coefficients=coefficients,
    defaults={"weight_decay": 0.01, "amsgrad": False},
    explore={"maximize": (False, True), "weight_decay": (0.0, 0.01, 0.1, 0.5)},
    pipeline_config={"weight_decay": 0.05},  # the pipeline's features see the decay at a visible strength
    counterpart="adamw",
    keras_equivalent=KerasEquivalent(("adamw",), in_keras),
    corpus=(
        Golden("torch-adamw-basic", "torch.optim.AdamW, default weight decay 0.01", {"lr": 0.01}),
        Golden("torch-adamw-large-weight-decay", "weight decay 0.5 at lr 0.1, with amsgrad",
               {"lr": 0.1, "weight_decay": 0.5, "amsgrad": True}),
        Golden("torch-adamw-bfloat16", "torch.optim.AdamW on bfloat16 inputs", {"lr": 0.015625, "eps": 0.001},
               input_dtype="bfloat16"),
    ),
)
