r"""NAdam as optax defines it (``optax.nadam``): :mod:`reference.rules.optax_adam` with ``nesterov=True``, Dozat's
look-ahead over bias-corrected moments without a momentum schedule::

    m̂ = b₁·m_k / (1 − b₁ᵏ⁺¹) + (1 − b₁)·g / (1 − b₁ᵏ) ,   θ_k = θ + (−η)·m̂ / (√(v̂ + ε_root) + ε)
"""

from dataclasses import replace

from optimizer_conformance.reference.rules import optax_adam
from optimizer_conformance.reference.rules.descriptor import Golden

RULE = replace(
    optax_adam.RULE,
    name="optax-nadam",
    keras_class="nadam",  # optax.nadam
    defaults={"nesterov": True},
    explore={"eps_root": (0.0, 0.0, 1e-8, 0.01)},
    counterpart="nadam",
    keras_equivalent=None,  # Nesterov's look-ahead over bias-corrected moments: no Keras optimizer computes it
    corpus=(
        Golden("optax-nadam-basic", "optax.nadam, default b1, b2 and eps", {"learning_rate": 0.01}),
        Golden("optax-nadam-float64", "optax.nadam on float64 inputs", {"learning_rate": 0.01},
               input_dtype="float64"),
    ),
)
