"""The library families whose rules the oracle defines, each with what its base optimizer class has."""

from __future__ import annotations

from optimizer_conformance.reference.rules.descriptor import Dialect

KERAS3 = Dialect(
    name="keras3",
    base_defaults={
        "learning_rate": 0.001,
        "weight_decay": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
        "loss_scale_factor": None,
        "gradient_accumulation_steps": None,
    },
    ignored=("decay",),  # keras.optimizers.Optimizer warns that it is no longer supported and drops it
    keras_slots=(("_model_variables_moving_average", "average", "use_ema"),
                 ("_accumulated_gradients", "gradient_accumulator", "gradient_accumulation_steps")),
)

# tf_keras.optimizers.legacy (OptimizerV2): clipping and a float learning rate, none of Keras 3's other pipeline
# parts; it forms its per-step scalars in the variable's dtype by definition.  (Its own loss-scale wrapper is not
# modelled.)
TF_LEGACY = Dialect(
    name="tf-legacy",
    base_defaults={"learning_rate": 0.001, "clipnorm": None, "global_clipnorm": None, "clipvalue": None},
    pipeline=frozenset({"clipping"}),
    coefficients_in_variable_dtype=True,
)

DIALECTS = (KERAS3, TF_LEGACY)
