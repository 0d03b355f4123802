r"""Adam as optax defines it (``optax.adam``: ``scale_by_adam`` then ``scale_by_learning_rate``, and
``apply_updates``), ``eps_root`` and ``nesterov`` included.

With ``k`` the transformation's count after this step (one for all parameters)::

    m_k = (1 − b₁)·g + b₁·m ,   v_k = (1 − b₂)·g² + b₂·v              ``mu``, ``nu``
    m̂   = m_k / (1 − b₁ᵏ)
          nesterov: b₁·m_k / (1 − b₁ᵏ⁺¹) + (1 − b₁)·g / (1 − b₁ᵏ)
    v̂   = v_k / (1 − b₂ᵏ)
    u   = m̂ / (√(v̂ + ε_root) + ε)
    u  ← u + λ·θ                                                      adamw only (``add_decayed_weights``)
    θ_k = θ + (−η)·u

optax forms ``1 − bᵏ`` in JAX's default float (float32, or float64 with x64) and casts it to the moment's dtype,
and multiplies by ``−η`` in the parameter's dtype.  The state is optax's: ``mu``, ``nu`` and ``count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules.descriptor import Golden, KerasEquivalent, Rule
from optimizer_conformance.reference.rules.dialects import OPTAX, optax_in_keras
from optimizer_conformance.reference.tracked import Tracked, lerp, power, sqrt


@dataclass(frozen=True)
class Coefficients:
    beta_1: Tracked
    one_minus_beta_1: Tracked
    one_minus_beta_2: Tracked
    correction_1: Tracked  # 1 − b₁ᵏ
    next_correction_1: Tracked  # 1 − b₁ᵏ⁺¹ (nesterov)
    correction_2: Tracked  # 1 − b₂ᵏ
    epsilon: Tracked
    epsilon_root: Tracked
    learning_rate: Tracked
    weight_decay: Tracked
    nesterov: bool
    decays: bool


def slot_names(hp: dict) -> tuple[str, ...]:
    return ("mu", "nu")


def initial_scalars(fmt: FloatFormat) -> dict[str, Tracked]:
    return {}


def coefficients(hp: dict, lr: Tracked, step: int, fmt: FloatFormat, scalars: dict):
    beta_1 = Tracked.rounded(hp["b1"], fmt)
    beta_2 = Tracked.rounded(hp["b2"], fmt)
    weight_decay = hp.get("weight_decay", 0.0)
    c = Coefficients(
        beta_1=beta_1,
        one_minus_beta_1=1 - beta_1,
        one_minus_beta_2=1 - beta_2,
        correction_1=1 - power(beta_1, Tracked.count(step, fmt)),
        next_correction_1=1 - power(beta_1, Tracked.count(step + 1, fmt)),
        correction_2=1 - power(beta_2, Tracked.count(step, fmt)),
        epsilon=Tracked.rounded(hp["eps"], fmt),
        epsilon_root=Tracked.rounded(hp["eps_root"], fmt),
        learning_rate=lr,
        weight_decay=Tracked.rounded(weight_decay, fmt),
        nesterov=hp["nesterov"],
        decays=weight_decay != 0,
    )
    return c, scalars


def update(c: Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
    m = lerp(slots["mu"], g, c.one_minus_beta_1)
    v = lerp(slots["nu"], g * g, c.one_minus_beta_2)
    if c.nesterov:
        m_hat = c.beta_1 * (m / c.next_correction_1) + c.one_minus_beta_1 * (g / c.correction_1)
    else:
        m_hat = m / c.correction_1
    u = m_hat / (sqrt(v / c.correction_2 + c.epsilon_root) + c.epsilon)
    if c.decays:
        u = u + c.weight_decay * theta
    return theta - u * c.learning_rate, {"mu": m, "nu": v}


RULE = Rule(
    name="optax-adam",
    dialect=OPTAX,
    slot_names=slot_names,
    initial_scalars=initial_scalars,
    coefficients=coefficients,
    update=update,
    keras_class="adam",  # optax.adam
    defaults={"nesterov": False},
    explore={"eps_root": (0.0, 0.0, 1e-8, 0.01), "nesterov": (False, True)},
    counterpart="adam",
    keras_equivalent=KerasEquivalent(("adam",), partial(optax_in_keras, rule="adam")),
    corpus=(
        Golden("optax-adam-basic", "optax.adam, default b1, b2 and eps", {"learning_rate": 0.01}),
        Golden("optax-adam-eps-root-nesterov", "eps_root 0.01 inside the root, with Nesterov momentum",
               {"learning_rate": 0.1, "eps_root": 0.01, "eps": 0.001, "nesterov": True}),
        Golden("optax-adam-float64", "optax.adam on float64 inputs", {"learning_rate": 0.01}, input_dtype="float64"),
        Golden("optax-adam-bfloat16", "optax.adam on bfloat16 inputs", {"learning_rate": 0.015625, "eps": 0.001},
               input_dtype="bfloat16"),
    ),
)
