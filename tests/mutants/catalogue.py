"""The catalogue itself: one class per porting bug or legitimate variant.

Each bug names its known deviation by id (``deviation``: the harness's catalogue,
``conformance/checks/deviations.py``), so a report's diagnosis can be checked against it.
"""

from __future__ import annotations

import keras
from keras import ops

from tests.mutants.steps import adam_step, adamax_step, advance_product, lamb_step, nadam_step, schedule_free_step


class _AdamStep(keras.optimizers.Adam):
    conformance_algorithms = ("adam",)
    options: dict = {}

    def update_step(self, gradient, variable, learning_rate):
        adam_step(self, gradient, variable, learning_rate, **self.options)


class _AdamWStep(keras.optimizers.AdamW):
    conformance_algorithms = ("adamw",)
    options: dict = {}

    def update_step(self, gradient, variable, learning_rate):
        adam_step(self, gradient, variable, learning_rate, **self.options)


class _NadamStep(keras.optimizers.Nadam):
    conformance_algorithms = ("nadam",)
    schedule_scale = 1.0
    reciprocal = False
    in_parts = False

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        advance_product(self, trainable_variables, self.schedule_scale)
        for g, v in zip(grads, trainable_variables):
            nadam_step(self, g, v, learning_rate, schedule_scale=self.schedule_scale, reciprocal=self.reciprocal,
                       in_parts=self.in_parts)


class _AdamaxStep(keras.optimizers.Adamax):
    conformance_algorithms = ("adamax",)
    options: dict = {}

    def update_step(self, gradient, variable, learning_rate):
        adamax_step(self, gradient, variable, learning_rate, **self.options)


class _LambStep(keras.optimizers.Lamb):
    conformance_algorithms = ("lamb",)
    options: dict = {}

    def update_step(self, gradient, variable, learning_rate):
        lamb_step(self, gradient, variable, learning_rate, **self.options)


class _ScheduleFreeStep(keras.optimizers.ScheduleFreeAdamW):
    conformance_algorithms = ("schedule-free-adamw",)
    options: dict = {}

    def update_step(self, gradient, variable, learning_rate):
        schedule_free_step(self, gradient, variable, learning_rate, **self.options)


# -- rule bugs ---------------------------------------------------------------------------------------

class LambTrustRatioOverGradientNorm(_LambStep):
    """ρ = ‖θ‖ / ‖g‖ (LARS's ratio) instead of ‖θ‖ / ‖r‖."""
    deviation = "lamb-trust-ratio-over-gradient-norm"
    expected_check = "pipeline/basic"
    options = {"ratio_over": "gradient"}


class LambZeroNormUnguarded(_LambStep):
    """ρ = ‖θ‖ / ‖r‖ with no guard: a variable that starts at zero never moves."""
    deviation = "lamb-zero-norm-unguarded"
    expected_check = "pipeline/zero-variable"
    options = {"guarded": False}


class ScheduleFreeWeightOffByOne(_ScheduleFreeStep):
    """x averaged with weight 1/(t + 1) instead of 1/t."""
    deviation = "schedule-free-averaging-weight-off-by-one"
    expected_check = "pipeline/basic"
    options = {"weight_offset": 1}


class ScheduleFreeWarmupOffByOne(_ScheduleFreeStep):
    """The warmup factor min(t/W, 1) from the raw counter (t − 1): the first step does not move."""
    deviation = "schedule-free-warmup-off-by-one"
    expected_check = "pipeline/warmup"
    options = {"warmup_offset": -1}


class ScheduleFreeXFromUpdatedZ(_ScheduleFreeStep):
    """x recovered from the updated z (as Keras 3.15 does on TensorFlow and torch)."""
    deviation = "schedule-free-x-from-updated-z"
    expected_check = "pipeline/basic"
    options = {"x_from_updated_z": True}


class ConstraintBeforeUpdate(keras.optimizers.Adam):
    """Each variable's constraint applied to the weights before the update instead of after it."""
    conformance_algorithms = ("adam",)
    deviation = "constraint-before-update"
    expected_check = "pipeline/constraints"

    def _backend_apply_gradients(self, grads, trainable_variables):
        for v in trainable_variables:
            # Held apart, so that Keras's own apply does not apply it again afterwards.
            if v.constraint is not None:
                v.held_constraint, v.constraint = v.constraint, None
            if getattr(v, "held_constraint", None) is not None:
                v.assign(v.held_constraint(v))
        super()._backend_apply_gradients(grads, trainable_variables)


class OverwrittenVariableDecayed(keras.optimizers.Adam):
    """A variable assigned its gradient (overwrite_with_gradient) then decayed like the others."""
    conformance_algorithms = ("adam",)
    deviation = "overwritten-variable-decayed"
    expected_check = "pipeline/overwrite-with-gradient"

    def _overwrite_variables_directly_with_gradients(self, grads, variables):
        kept = super()._overwrite_variables_directly_with_gradients(grads, variables)
        if self.weight_decay:
            lr = ops.cast(self.learning_rate, "float32")
            for v in variables:
                if getattr(v, "overwrite_with_gradient", False):
                    v.assign(v - v * ops.cast(lr * self.weight_decay, v.dtype))
        return kept


class _LossScaleNotHalved(keras.optimizers.LossScaleOptimizer):
    def _stateful_handle_non_finite_grads(self):
        self.step_counter.assign(0)


class LossScaleNotHalved(keras.optimizers.Adam):
    """Its LossScaleOptimizer skips a step with an Inf or NaN gradient but keeps the scale."""
    conformance_algorithms = ("adam",)
    conformance_loss_scale_optimizer = _LossScaleNotHalved
    deviation = "loss-scale-not-halved"
    expected_check = "pipeline/dynamic-loss-scale"


class _NonFiniteStepApplied(keras.optimizers.LossScaleOptimizer):
    def check_finite(self, grads):
        return ops.convert_to_tensor(True)


class NonFiniteStepApplied(keras.optimizers.Adam):
    """Its LossScaleOptimizer never finds a gradient non-finite: the step with an Inf is applied."""
    conformance_algorithms = ("adam",)
    conformance_loss_scale_optimizer = _NonFiniteStepApplied
    deviation = "non-finite-step-applied"
    expected_check = "pipeline/dynamic-loss-scale"


class _GrowthCountedOnSkippedSteps(keras.optimizers.LossScaleOptimizer):
    def _stateful_handle_non_finite_grads(self):
        self.dynamic_scale.assign(self.dynamic_scale * 0.5)
        _count_finite_step(self)


class GrowthCountedOnSkippedSteps(keras.optimizers.Adam):
    """Its LossScaleOptimizer halves the scale on a skipped step but counts the step towards doubling it."""
    conformance_algorithms = ("adam",)
    conformance_loss_scale_optimizer = _GrowthCountedOnSkippedSteps
    deviation = "growth-counted-on-skipped-steps"
    expected_check = "pipeline/dynamic-loss-scale"


def _count_finite_step(wrapper) -> None:
    ops.cond(ops.equal(wrapper.step_counter, wrapper.dynamic_growth_steps - 1),
             lambda: (wrapper.step_counter.assign(0), wrapper.dynamic_scale.assign(wrapper.dynamic_scale * 2.0))
             and None,
             lambda: wrapper.step_counter.assign_add(1) and None)


class _UnscaledByReciprocal(keras.optimizers.LossScaleOptimizer):
    def _stateful_handle_finite_grads(self, grads, trainable_variables):
        reciprocal = ops.divide(1.0, self.dynamic_scale)  # g · (1/s): the same numbers while s is a power of 2
        unscaled = [g if g is None else ops.multiply(g, reciprocal) for g in grads]
        self.inner_optimizer.apply(unscaled, trainable_variables=trainable_variables)
        _count_finite_step(self)


class LossScaleByReciprocal(keras.optimizers.Adam):
    """Legitimate: its LossScaleOptimizer multiplies by the reciprocal of the scale."""
    conformance_algorithms = ("adam",)
    conformance_loss_scale_optimizer = _UnscaledByReciprocal


class AdamaxEpsilonInsideMax(_AdamaxStep):
    """torch.optim.Adamax's placement of ε: u = max(β₂·u, |g| + ε), θ −= η·m / ((1 − β₁ᵗ)·u)."""
    deviation = "adamax-epsilon-inside-max"
    expected_check = "pipeline/large-hyperparameters"
    options = {"epsilon_inside_max": True}


class AdamaxMissingBiasCorrection(_AdamaxStep):
    """θ −= η·m / (u + ε): the bias correction 1 − β₁ᵗ left out."""
    deviation = "adamax-missing-bias-correction"
    expected_check = "pipeline/basic"
    options = {"bias_correction": False}


class AdamaxMaxWithoutAbsoluteValue(_AdamaxStep):
    """u = max(β₂·u, g): the norm of the signed gradient."""
    deviation = "adamax-max-without-absolute-value"
    expected_check = "pipeline/basic"
    options = {"absolute": False}


class AdamaxMaxDropsNan(_AdamaxStep):
    """u = fmax(β₂·u, |g|): a NaN gradient leaves u finite (C's fmax, Python's max)."""
    deviation = "adamax-max-drops-nan"
    expected_check = "pipeline/non-finite-gradients"
    options = {"max_drops_nan": True}


class EpsilonInsideSqrt(_AdamStep):
    """θ −= α·m / √(v + ε)"""
    deviation = "epsilon-inside-sqrt"
    expected_check = "pipeline/large-hyperparameters"
    options = {"epsilon_inside_sqrt": True}


class EpsilonAfterBiasCorrection(_AdamStep):
    """The PyTorch/optax convention: θ −= η·m̂ / (√v̂ + ε)."""
    deviation = "epsilon-after-bias-correction"
    expected_check = "pipeline/large-hyperparameters"
    options = {"epsilon_after_correction": True}


class StepOffByOne(_AdamStep):
    """t = iterations + 2 in the bias corrections."""
    deviation = "step-count-plus-one"
    expected_check = "pipeline/basic"
    options = {"step_offset": 2}


class StepCountPerVariable(_AdamStep):
    """torch.optim's step count per parameter: a variable skipped for a None gradient keeps its own count."""
    deviation = "step-count-per-variable"
    expected_check = "pipeline/none-gradients"

    def update_step(self, gradient, variable, learning_rate):
        counts = self.__dict__.setdefault("_own_counts", {})  # past Keras's attribute tracking; eager only
        index = self._get_variable_index(variable)
        counts[index] = counts.get(index, 0) + 1
        adam_step(self, gradient, variable, learning_rate, step=counts[index])


class MissingGradientAsZero(keras.optimizers.Adam):
    """A None gradient taken as zeros (optax's convention): the variable's moments decay and it moves."""
    deviation = "missing-gradient-as-zero"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/none-gradients"

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        return super().apply([ops.zeros_like(v) if g is None else g for g, v in zip(grads, variables)],
                             trainable_variables)


class MissingBiasCorrection(_AdamStep):
    """α = η."""
    deviation = "missing-bias-correction"
    expected_check = "pipeline/basic"
    options = {"bias_correction": False}


class VelocityWeightIsBeta(_AdamStep):
    """v ← v + (g² − v)·β₂ instead of (1 − β₂)."""
    deviation = "velocity-weight-is-beta"
    expected_check = "pipeline/basic"

    def update_step(self, gradient, variable, learning_rate):
        adam_step(self, gradient, variable, learning_rate, velocity_weight=self.beta_2)


class AmsgradIgnored(_AdamStep):
    """amsgrad=True accepted, the running max never used."""
    deviation = "amsgrad-ignored"
    expected_check = "pipeline/amsgrad"
    options = {"amsgrad": "ignored"}


class AmsgradMaxOfCorrectedVelocity(_AdamStep):
    """optax's amsgrad: the max of the bias-corrected velocity."""
    deviation = "amsgrad-max-of-corrected-velocity"
    expected_check = "pipeline/amsgrad"
    options = {"amsgrad": "corrected"}


class LegacyScheduleInNadam(_NadamStep):
    """Keras 3 Nadam with the TF 2.0 schedule 0.96^(0.004 t)."""
    deviation = "legacy-schedule-in-nadam"
    expected_check = "pipeline/basic"
    schedule_scale = 0.004


class StaleMomentumProduct(_NadamStep):
    """The product Π advanced after the variables were updated: they see Π_{t−1}."""
    deviation = "stale-momentum-product"
    expected_check = "pipeline/basic"

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        for g, v in zip(grads, trainable_variables):
            nadam_step(self, g, v, learning_rate)
        advance_product(self, trainable_variables)


def _legacy_nadam():
    try:
        import tf_keras
    except ImportError:
        return None

    class Keras3ScheduleInLegacyNadam(tf_keras.optimizers.legacy.Nadam):
        """The legacy Nadam with Keras 3's schedule 0.96^t."""
        deviation = "keras3-schedule-in-legacy-nadam"
        conformance_algorithms = ("nadam-legacy",)
        expected_check = "pipeline/basic"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._initial_decay = 1.0

    Keras3ScheduleInLegacyNadam.__module__ = __name__
    return Keras3ScheduleInLegacyNadam


Keras3ScheduleInLegacyNadam = _legacy_nadam()


# -- pipeline bugs -----------------------------------------------------------------------------------

class WeightDecayNotScaledByLearningRate(keras.optimizers.AdamW):
    """θ −= λ·θ."""
    deviation = "weight-decay-not-scaled-by-learning-rate"
    conformance_algorithms = ("adamw",)
    expected_check = "pipeline/weight-decay"

    def _apply_weight_decay(self, variables):
        for v in variables:
            if self._use_weight_decay(v):
                v.assign(v - v * ops.cast(self.weight_decay, v.dtype))


class WeightDecayAfterUpdate(keras.optimizers.AdamW):
    """Decay applied to the updated weights."""
    deviation = "weight-decay-after-update"
    conformance_algorithms = ("adamw",)
    expected_check = "pipeline/weight-decay"

    def _apply_weight_decay(self, variables):
        pass

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        if self._use_weight_decay(variable):
            lr, wd = ops.cast(learning_rate, variable.dtype), ops.cast(self.weight_decay, variable.dtype)
            variable.assign(variable - variable * wd * lr)


class WeightDecayIgnoresExclusions(keras.optimizers.AdamW):
    """exclude_from_weight_decay accepted and forgotten."""
    deviation = "weight-decay-ignores-exclusions"
    conformance_algorithms = ("adamw",)
    expected_check = "pipeline/weight-decay-exclusion"

    def _use_weight_decay(self, variable):
        return True


class EmaMomentumOnFirstStep(keras.optimizers.Adam):
    """The average blended from its zero init on the first step instead of copying the weights."""
    deviation = "ema-momentum-on-first-step"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/ema"

    def _update_model_variables_moving_average(self, trainable_variables):
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                mu = ops.cast(self.ema_momentum, var.dtype)
                average.assign(mu * average + (1 - mu) * var)


class EmaNeverOverwrites(keras.optimizers.Adam):
    """ema_overwrite_frequency and finalize_variable_values do nothing."""
    deviation = "ema-never-overwrites"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/ema-overwrite-finalize"

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        pass


class _EagerAccumulation(keras.optimizers.Adam):
    """Keras's accumulation path written out eagerly, with hooks for the bugs."""
    conformance_algorithms = ("adam",)
    clip_micro_gradients = False
    average = True

    def _backend_apply_gradients(self, grads, trainable_variables):
        steps = self.gradient_accumulation_steps
        if not steps:
            return super()._backend_apply_gradients(grads, trainable_variables)
        acc = [self._accumulated_gradients[self._get_variable_index(v)] for v in trainable_variables]
        if self.clip_micro_gradients:
            grads = self._clip_gradients(grads)
        if (int(ops.convert_to_numpy(self._iterations)) + 1) % steps == 0:
            grads = [(g + a) / steps if self.average else g + a for g, a in zip(grads, acc)]
            if not self.clip_micro_gradients:
                grads = self._clip_gradients(grads)
            self._apply_weight_decay(trainable_variables)
            self._backend_update_step(grads, trainable_variables, self.learning_rate)
            self._backend_reset_gradient_accumulators()
        else:
            self._backend_increment_gradient_accumulators(grads, acc)
        if self.use_ema:
            self._update_model_variables_moving_average(self._trainable_variables)


class AccumulationSums(_EagerAccumulation):
    """The accumulated gradients summed, not averaged."""
    deviation = "accumulation-sums"
    expected_check = "pipeline/accumulation"
    average = False


class ClippingBeforeAveraging(_EagerAccumulation):
    """Each micro-gradient clipped, the mean left unclipped."""
    deviation = "clipping-before-averaging"
    expected_check = "pipeline/accumulation-clipnorm"
    clip_micro_gradients = True


class PerVariableClipping(keras.optimizers.Adam):
    """global_clipnorm applied to each tensor on its own."""
    deviation = "per-variable-clipping"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/global-clipnorm"

    def _clip_gradients(self, grads):
        if self.global_clipnorm:
            c = self.global_clipnorm
            return [g * c / ops.maximum(ops.sqrt(ops.sum(ops.square(g))), c) for g in grads]
        return super()._clip_gradients(grads)


class GlobalClipPerDtypeGroup(keras.optimizers.Adam):
    """global_clipnorm over each dtype's variables apart (a mixed-precision port that clips each group by its own
    norm): TensorFlow's own Keras raises there, which a port works around so."""
    deviation = "global-clip-per-dtype-group"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/mixed-dtypes-global-clipnorm"

    def _clip_gradients(self, grads):
        if not self.global_clipnorm:
            return super()._clip_gradients(grads)
        c, out = self.global_clipnorm, list(grads)
        for dtype in dict.fromkeys(g.dtype for g in grads if g is not None):
            members = [i for i, g in enumerate(grads) if g is not None and g.dtype == dtype]
            total = ops.sqrt(sum(ops.sum(ops.square(grads[i])) for i in members))
            scale = c * ops.minimum(1.0 / total, 1.0 / c) + (total - total)
            for i in members:
                out[i] = grads[i] * ops.cast(scale, grads[i].dtype)
        return out


class GlobalClipKeepsNonFiniteNorm(keras.optimizers.Adam):
    """Global clipping by c·min(1/N, 1/c) without Keras's + (N − N): an Inf norm zeroes every gradient."""
    deviation = "global-clip-keeps-non-finite-norm"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/non-finite-gradients-global-clipnorm"

    def _clip_gradients(self, grads):
        if self.global_clipnorm:
            c = self.global_clipnorm
            total = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads if g is not None))
            scale = c * ops.minimum(1.0 / total, 1.0 / c)  # a zero norm gives 1/0 = Inf: scale 1
            return [g if g is None else g * ops.cast(scale, g.dtype) for g in grads]
        return super()._clip_gradients(grads)


class NonFiniteGradientsZeroed(keras.optimizers.Adam):
    """NaN and Inf gradient elements replaced by 0 before the update (a port that sanitizes its gradients)."""
    deviation = "non-finite-gradients-zeroed"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/non-finite-gradients"

    def apply(self, grads, trainable_variables=None):
        grads = [g if g is None else ops.where(ops.isfinite(g), g, ops.zeros_like(g)) for g in grads]
        return super().apply(grads, trainable_variables)


class SparseUpdateLazy(keras.optimizers.Adam):
    """Row slices update only their rows (LazyAdam): untouched rows' moments do not decay, their weights stay."""
    deviation = "sparse-update-lazy"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/sparse-gradients"

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        kept = [self._momentums[index], self._velocities[index], variable]
        before = [tf.identity(v) for v in kept]
        super().update_step(tf.convert_to_tensor(gradient), variable, learning_rate)
        rows = tf.reshape(tf.cast(gradient.indices, "int64"), [-1, 1])
        touched = tf.scatter_nd(rows, tf.ones(tf.shape(rows)[:1]), tf.cast(tf.shape(variable)[:1], "int64"))
        touched = tf.reshape(touched > 0, [-1] + [1] * (len(variable.shape) - 1))
        for v, old in zip(kept, before):
            v.assign(tf.where(touched, tf.identity(v), old))


class LossScaleNotUndone(keras.optimizers.Adam):
    """loss_scale_factor accepted, the gradients never divided by it."""
    deviation = "loss-scale-not-undone"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/loss-scale"

    def apply(self, grads, trainable_variables=None):
        scale, self.loss_scale_factor = self.loss_scale_factor, None
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self.loss_scale_factor = scale


class ScheduleFedRealUpdates(keras.optimizers.Adam):
    """The schedule evaluated at ⌊iterations / S⌋ instead of the raw counter."""
    deviation = "schedule-fed-real-updates"
    conformance_algorithms = ("adam",)
    expected_check = "pipeline/accumulation-schedule"

    def _get_current_learning_rate(self):
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()


# -- legitimate variants -----------------------------------------------------------------------------

class ComputedInFloat64(_AdamStep):
    """Every step computed in float64 and rounded to the variable's dtype."""
    expected_check = None
    options = {"in_float64": True}


class WeightedMomentForm(_AdamStep):
    """β·m + (1 − β)·g instead of m + (g − m)·(1 − β)."""
    expected_check = None
    options = {"weighted_form": True}


class ReciprocalDivision(_AdamStep):
    """The final division done as multiplication by the reciprocal (as XLA rewrites it)."""
    expected_check = None
    options = {"reciprocal": True}


class WeightedMomentFormAdamW(_AdamWStep):
    """AdamW with the weighted moment form."""
    expected_check = None
    options = {"weighted_form": True}


class LambNormsInFloat64(_LambStep):
    """Lamb with the two norms summed in float64, and the guard written with logical_and."""
    expected_check = None
    options = {"norms_in_float64": True}


class ScheduleFreeInFloat64(_ScheduleFreeStep):
    """Schedule-free AdamW computed in float64 and rounded to the variable's dtype."""
    expected_check = None
    options = {"in_float64": True}


class AdamaxStepSizeFirst(_AdamaxStep):
    """Adamax with η/(1 − β₁ᵗ) formed first, in float64, and the weighted moment form."""
    expected_check = None
    options = {"step_size_first": True}


class NadamWrittenOut(_NadamStep):
    """Nadam with the product advanced as Π·u_t and the division as a reciprocal multiply."""
    expected_check = None
    reciprocal = True


BUGS = [c for c in (
    EpsilonInsideSqrt, EpsilonAfterBiasCorrection, StepOffByOne, MissingBiasCorrection, VelocityWeightIsBeta,
    AmsgradIgnored, AmsgradMaxOfCorrectedVelocity, LegacyScheduleInNadam, StaleMomentumProduct,
    Keras3ScheduleInLegacyNadam, WeightDecayNotScaledByLearningRate, WeightDecayAfterUpdate,
    WeightDecayIgnoresExclusions, EmaMomentumOnFirstStep, EmaNeverOverwrites, AccumulationSums,
    ClippingBeforeAveraging, PerVariableClipping, LossScaleNotUndone, ScheduleFedRealUpdates,
    AdamaxMissingBiasCorrection, AdamaxMaxWithoutAbsoluteValue,
    AdamaxEpsilonInsideMax, LambTrustRatioOverGradientNorm, LambZeroNormUnguarded, ScheduleFreeWeightOffByOne,
    ScheduleFreeWarmupOffByOne,
    ScheduleFreeXFromUpdatedZ, ConstraintBeforeUpdate, OverwrittenVariableDecayed, LossScaleNotHalved,
    NonFiniteStepApplied, GrowthCountedOnSkippedSteps, AdamaxMaxDropsNan, GlobalClipKeepsNonFiniteNorm,
    GlobalClipPerDtypeGroup,
    NonFiniteGradientsZeroed, SparseUpdateLazy, StepCountPerVariable, MissingGradientAsZero,
) if c is not None]

class NadamInTwoSubtractions(_NadamStep):
    """torch.optim's NAdam order: θ − (g/d)·η(1 − u_t)/(1 − Π_t), then − (m/d)·η·u_{t+1}/(1 − Π_{t+1})."""
    expected_check = None
    in_parts = True


LEGITIMATE = [
    NadamInTwoSubtractions, ComputedInFloat64, WeightedMomentForm, ReciprocalDivision, WeightedMomentFormAdamW,
    NadamWrittenOut, AdamaxStepSizeFirst, LambNormsInFloat64, ScheduleFreeInFloat64, LossScaleByReciprocal,
]
