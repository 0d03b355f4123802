r"""AdamW as optax defines it (``optax.adamw``): :mod:`reference.rules.optax_adam` with ``add_decayed_weights``
between the Adam scaling and the learning rate, default ``λ = 10⁻⁴``::

    u = m̂ / (√(v̂ + ε_root) + ε) + λ·θ ,   θ_k = θ + (−η)·u
"""

from dataclasses import replace
from functools import partial

from optimizer_conformance.reference.rules import optax_adam
from optimizer_conformance.reference.rules.descriptor import Golden, KerasEquivalent
from optimizer_conformance.reference.rules.dialects import optax_in_keras

RULE = replace(
    optax_adam.RULE,
    name="optax-adamw",
    keras_class="adamw",  # optax.adamw
    defaults={"nesterov": False, "weight_decay": 1e-4},
    explore={"eps_root": (0.0, 0.0, 1e-8), "nesterov": (False, True), "weight_decay": (1e-4, 0.01, 0.5)},
    pipeline_config={"weight_decay": 0.05},  # the pipeline's features see the decay at a visible strength
    counterpart="adamw",
    keras_equivalent=KerasEquivalent(("adamw",), partial(optax_in_keras, rule="adamw")),
    corpus=(
        Golden("optax-adamw-basic", "optax.adamw, default weight decay 1e-4", {"learning_rate": 0.01}),
        Golden("optax-adamw-large-weight-decay", "weight decay 0.5 added to the update, scaled by the rate with it",
               {"learning_rate": 0.1, "weight_decay": 0.5}),
        Golden("optax-adamw-float16", "optax.adamw on float16 inputs", {"learning_rate": 0.01, "eps": 1e-4,
                                                                        "weight_decay": 0.1}, input_dtype="float16"),
    ),
)
