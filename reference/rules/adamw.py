r"""AdamW as Keras 3 defines it (``keras.optimizers.AdamW``).

Keras's AdamW is :mod:`reference.rules.adam` plus the decoupled weight decay
that every Keras 3 optimizer applies before its update (made mandatory here,
default ``λ = 0.004``; see :mod:`reference.weight_decay`)::

    θ ← θ·(1 − λ·η_t)                         before the update, same η_t
    α_t = η · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
    m_t = m + (g − m)·(1 − β₁)
    v_t = v + (g² − v)·(1 − β₂)
    θ_t = θ − (m_t · α_t) / (√v_t + ε̂)
"""

from dataclasses import replace

from optimizer_conformance.reference.rules import adam
from optimizer_conformance.reference.rules.adam import Coefficients, coefficients, initial_scalars, slot_names, update
from optimizer_conformance.reference.rules.descriptor import Golden

RULE = replace(
    adam.RULE,
    name="adamw",
    keras_class="AdamW",
    defaults={"name": "adamw", "weight_decay": 0.004, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
              "amsgrad": False},
    weight_decay_required=True,
    pipeline_config={"weight_decay": 0.05},  # the pipeline's features see the decay at a visible strength
    corpus=(
        Golden("adamw-basic", "Keras 3 AdamW, default weight decay 0.004", {"learning_rate": 0.01}),
        Golden("adamw-large-weight-decay", "weight decay 0.5 at learning rate 0.1: decay scaled by the learning rate",
               {"learning_rate": 0.1, "weight_decay": 0.5}),
        Golden("adamw-float16", "AdamW on float16 inputs", {"learning_rate": 0.01, "weight_decay": 0.1},
               input_dtype="float16"),
    ),
)

__all__ = ["RULE", "Coefficients", "coefficients", "initial_scalars", "slot_names", "update"]
