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

from optimizer_conformance.reference.rules.adam import Coefficients, coefficients, initial_scalars, slot_names, update

__all__ = ["Coefficients", "coefficients", "initial_scalars", "slot_names", "update"]
