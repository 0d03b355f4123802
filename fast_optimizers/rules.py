"""Per-step scalars of each rule, computed once per step in float64.

The elementwise work (see :mod:`fast_optimizers.kernels`) receives these as
plain floats; forming them in float64 (``1 − β``, ``β^t``, the bias
corrections, Nadam's schedule) is one of the evaluation orders the oracle's
budgets allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AdamScalars:
    c1: float      # 1 − β₁
    c2: float      # 1 − β₂
    alpha: float   # η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)
    epsilon: float


def adam(lr: float, beta_1: float, beta_2: float, epsilon: float, t: int) -> AdamScalars:
    """θ ← θ − α·m/(√v + ε̂), α = η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)."""
    alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return AdamScalars(1 - beta_1, 1 - beta_2, alpha, epsilon)


@dataclass(frozen=True)
class AdamaxScalars:
    c1: float         # 1 − β₁
    beta_2: float
    step_size: float  # η/(1 − β₁ᵗ)
    epsilon: float


def adamax(lr: float, beta_1: float, beta_2: float, epsilon: float, t: int) -> AdamaxScalars:
    """u ← max(β₂·u, |g|); θ ← θ − η/(1 − β₁ᵗ)·m/(u + ε)."""
    return AdamaxScalars(1 - beta_1, beta_2, lr / (1 - beta_1**t), epsilon)


@dataclass(frozen=True)
class LambScalars:
    c1: float              # 1 − β₁
    c2: float              # 1 − β₂
    inverse_bias_1: float  # 1 / (1 − β₁ᵗ)
    inverse_bias_2: float  # 1 / (1 − β₂ᵗ)
    lr: float
    epsilon: float


def lamb(lr: float, beta_1: float, beta_2: float, epsilon: float, t: int) -> LambScalars:
    """r = m̂/(√v̂ + ε); θ ← θ − (ρ·η)·r with ρ = ‖θ‖/‖r‖ (1 if either is 0), per variable."""
    return LambScalars(1 - beta_1, 1 - beta_2, 1 / (1 - beta_1**t), 1 / (1 - beta_2**t), lr, epsilon)


def trust_ratio(sum_sq_weights: float, sum_sq_direction: float) -> float:
    """‖θ‖/‖r‖ from the sums of squares, 1 when either is zero (Keras guards the division)."""
    if sum_sq_weights > 0 and sum_sq_direction > 0:
        return math.sqrt(sum_sq_weights) / math.sqrt(sum_sq_direction)
    return 1.0


@dataclass(frozen=True)
class ScheduleFreeScalars:
    beta_1: float
    c1: float              # 1 − β₁
    c2: float              # 1 − β₂
    inverse_bias_2: float  # 1 / (1 − β₂ᵗ)
    lr: float              # η·min(t / warmup_steps, 1)
    epsilon: float
    weight: float          # 1/t


def schedule_free(lr: float, beta_1: float, beta_2: float, epsilon: float, warmup_steps: float,
                  t: int) -> ScheduleFreeScalars:
    """z ← z − η_t·g/(√v̂ + ε); x = (y − (1 − β₁)z_old)/β₁; x ← (1 − 1/t)x + z/t; y = (1 − β₁)z + β₁x."""
    if warmup_steps > 0:
        lr = lr * min(t / warmup_steps, 1.0)
    return ScheduleFreeScalars(beta_1, 1 - beta_1, 1 - beta_2, 1 / (1 - beta_2**t), lr, epsilon, 1 / t)


@dataclass(frozen=True)
class NadamScalars:
    c1: float              # 1 − β₁
    c2: float              # 1 − β₂
    momentum_weight: float  # u_{t+1} / (1 − Π_{t+1})
    gradient_weight: float  # (1 − u_t) / (1 − Π_t)
    inverse_bias_2: float   # 1 / (1 − β₂ᵗ)
    lr: float
    epsilon: float
    product: float          # Π_t, the state to keep


def _nadam(lr, beta_1, beta_2, epsilon, t, product, exponent_scale) -> NadamScalars:
    def schedule(s):
        return beta_1 * (1 - 0.5 * 0.96 ** (exponent_scale * s))

    u_t, u_next = schedule(t), schedule(t + 1)
    product_t = product * u_t
    return NadamScalars(1 - beta_1, 1 - beta_2, u_next / (1 - product_t * u_next), (1 - u_t) / (1 - product_t),
                        1 / (1 - beta_2**t), lr, epsilon, product_t)


def nadam(lr, beta_1, beta_2, epsilon, t, product) -> NadamScalars:
    """Keras 3: u_t = β₁(1 − ½·0.96ᵗ); m̂ = u_{t+1}m/(1 − Π_{t+1}) + (1 − u_t)g/(1 − Π_t)."""
    return _nadam(lr, beta_1, beta_2, epsilon, t, product, 1.0)


def nadam_legacy(lr, beta_1, beta_2, epsilon, t, product, schedule_decay=0.004) -> NadamScalars:
    """TF 2.0: μ_t = β₁(1 − ½·0.96^(ψt)); the same m̂ as Keras 3 with the slower schedule."""
    return _nadam(lr, beta_1, beta_2, epsilon, t, product, schedule_decay)
