"""Ports that form one quantity in float32 for float64 variables: each must fail the float64 check that exercises it
(the float64 budgets model float64 rounding only).  Keras subclasses, run on JAX, whose Keras computes float64 in
float64 throughout."""

from __future__ import annotations

import keras
from keras import ops

from tests.mutants.steps import adam_step


class BiasCorrectionInFloat32(keras.optimizers.Adam):
    """The step size η·√(1 − β₂ᵗ) / (1 − β₁ᵗ) formed in float32, then widened."""

    conformance_algorithms = ("adam",)
    expected_check = "pipeline/basic"

    def update_step(self, gradient, variable, learning_rate):
        adam_step(self, gradient, variable, learning_rate, step_size_dtype="float32")


class ClippingScaleInFloat32(keras.optimizers.Adam):
    """The global clipping scale c·min(1/N, 1/c) formed in float32, then widened."""

    conformance_algorithms = ("adam",)
    expected_check = "pipeline/global-clipnorm"

    def _clip_gradients(self, grads):
        if not self.global_clipnorm:
            return super()._clip_gradients(grads)
        total = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
        scale = ops.cast(ops.minimum(ops.cast(self.global_clipnorm / total, "float32"), 1.0), grads[0].dtype)
        return [g * scale for g in grads]


class WeightDecayFactorInFloat32(keras.optimizers.AdamW):
    """The weight-decay factor 1 − η·λ formed in float32, then widened."""

    conformance_algorithms = ("adamw",)
    expected_check = "pipeline/weight-decay"

    def _apply_weight_decay(self, variables):
        for v in variables:
            if self._use_weight_decay(v):
                factor = 1 - ops.cast(self.learning_rate, "float32") * ops.cast(self.weight_decay, "float32")
                v.assign(v * ops.cast(factor, v.dtype))


PRECISION_BUGS = [BiasCorrectionInFloat32, ClippingScaleInFloat32, WeightDecayFactorInFloat32]
