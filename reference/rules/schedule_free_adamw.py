r"""Schedule-free AdamW as Keras 3 defines it (``keras.optimizers.ScheduleFreeAdamW``, Defazio et al. 2024).

The variable holds ``y``, the point where gradients are taken; the ``momentum`` slot holds ``z``, the
base sequence, which starts as a copy of the variable; the averaged sequence ``x`` is not stored but
recovered from ``y`` and ``z``.  With ``t`` the 1-based count of real updates and ``w = 1/t``::

    η_t   = η · min(t / warmup_steps, 1)                 (η when warmup_steps is 0)
    v_t   = v + (g² − v)·(1 − β₂)
    z_t   = z − (η_t·g) / (√(v_t / (1 − β₂ᵗ)) + ε)
    x     = (y − (1 − β₁)·z) / β₁                        from the old z
    x_t   = (1 − w)·x + w·z_t
    y_t   = (1 − β₁)·z_t + β₁·x_t

Decoupled weight decay (the pipeline's, before this step) acts on ``y``.  Keras casts ``β₁``, ``β₂`` and
``ε`` to the variable's dtype first and forms ``1 − β`` there, as written here; its torch backend returns
the warmup factor ``min(t/W, 1.0)`` in ``floatx`` for float64 variables (the Python ``1.0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer_conformance.reference.arrays import copy, zeros_like
from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, Rule, require_number
from optimizer_conformance.reference.rules.dialects import KERAS3
from optimizer_conformance.reference.tracked import Tracked, lerp, minimum, power, sqrt, through_floatx


@dataclass(frozen=True)
class Coefficients:
    learning_rate: Tracked  # η_t, the warmup applied
    beta_1: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    one_minus_beta_2_power: Tracked
    epsilon: Tracked
    weight: Tracked  # w = 1/t, the averaging weight of z_t in x_t
    one_minus_weight: Tracked


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("momentum", "velocity")


def initial_slot(name: str, theta: Any) -> Any:
    """``z`` starts as a copy of the variable; ``v`` at zero."""
    return copy(theta) if name == "momentum" else zeros_like(theta)


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def averaging_weight(step: int, fmt: FloatFormat) -> Tracked:
    """``w = 1/t``: x_t is the uniform average of z_1 … z_t."""
    return 1 / Tracked.count(step, fmt)


def warmup_factor(step: int, warmup_steps: float, fmt: FloatFormat) -> Tracked:
    """``min(t / W, 1)``, the factor of the learning rate during warmup (held in floatx on Keras's torch backend:
    the budget covers it)."""
    return through_floatx(minimum(Tracked.count(step, fmt) / Tracked.rounded(warmup_steps, fmt),
                                  Tracked.exact(1, fmt)))


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    t = Tracked.count(step, fmt)
    if hp["warmup_steps"] > 0:
        lr = lr * warmup_factor(step, hp["warmup_steps"], fmt)
    beta_1, beta_2 = Tracked.rounded(hp["beta_1"], fmt), Tracked.rounded(hp["beta_2"], fmt)
    weight = averaging_weight(step, fmt)
    c = Coefficients(
        learning_rate=lr,
        beta_1=beta_1,
        one_minus_beta_1=1 - beta_1,
        one_minus_beta_2=1 - beta_2,
        one_minus_beta_2_power=1 - power(beta_2, t),
        epsilon=Tracked.rounded(hp["epsilon"], fmt),
        weight=weight,
        one_minus_weight=1 - weight,
    )
    return c, scalars


def base_step(c: Coefficients, g: Tracked, slots: dict[str, Tracked]) -> dict[str, Tracked]:
    """The new ``z`` (``momentum``) and ``v`` (``velocity``) of one element: an Adam step on ``z``."""
    v = lerp(slots["velocity"], g * g, c.one_minus_beta_2)
    z = slots["momentum"] - (c.learning_rate * g) / (sqrt(v / c.one_minus_beta_2_power) + c.epsilon)
    return {"momentum": z, "velocity": v}


def averaged_point(c: Coefficients, theta: Tracked, z_old: Tracked, z: Tracked) -> Tracked:
    """``x_t = (1 − w)·x + w·z_t`` with ``x = (y − (1 − β₁)·z_old) / β₁`` recovered from the variable."""
    x = (theta - c.one_minus_beta_1 * z_old) / c.beta_1
    return c.one_minus_weight * x + c.weight * z


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    new = base_step(c, g, slots)
    z = new["momentum"]
    x = averaged_point(c, theta, slots["momentum"], z)
    return c.one_minus_beta_1 * z + c.beta_1 * x, new


def _validate(config: dict) -> None:
    require_number(config, "warmup_steps")


RULE = Rule(
    name="schedule-free-adamw",
    dialect=KERAS3,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    initial_slot=initial_slot,
    keras_class="ScheduleFreeAdamW",
    defaults={"name": "schedule_free_adam_w", "learning_rate": 0.0025, "beta_1": 0.9, "beta_2": 0.999,
              "epsilon": 1e-8, "warmup_steps": 0},
    validate=_validate,
    capabilities=frozenset({"warmup"}),
    keras_slots=(("_momentums", "momentum", None), ("_velocities", "velocity", None)),
    explore={"warmup_steps": (0, 1, 3)},
    corpus=(
        Golden("schedule-free-adamw-basic", "Keras 3 ScheduleFreeAdamW: z starts as the weights, x averages z with "
               "weight 1/t, the weights hold y", {"learning_rate": 0.01}),
        Golden("schedule-free-adamw-warmup", "ScheduleFreeAdamW with warmup_steps 4 and large betas' complements",
               {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.75, "warmup_steps": 4}),
        Golden("schedule-free-adamw-float16", "ScheduleFreeAdamW on float16 inputs", {"learning_rate": 0.01},
               input_dtype="float16"),
    ),
)
