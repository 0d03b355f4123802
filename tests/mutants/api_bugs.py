"""API-level porting bugs: the numbers are right, the optimizer is not a drop-in replacement."""

from __future__ import annotations

import keras


class WrongDefaultEpsilon(keras.optimizers.Adam):
    """epsilon=1e-8 (PyTorch's default) instead of Keras's 1e-7."""
    conformance_algorithms = ("adam",)
    expected_check = "api/signature"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)


class MissingConfigKey(keras.optimizers.Adam):
    """get_config() forgets amsgrad."""
    conformance_algorithms = ("adam",)
    expected_check = "api/get-config"

    def get_config(self):
        config = super().get_config()
        del config["amsgrad"]
        return config


class ConfigValueNotRestored(keras.optimizers.AdamW):
    """from_config() drops the EMA momentum (the default comes back)."""
    conformance_algorithms = ("adamw",)
    expected_check = "api/from-config"

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config.pop("ema_momentum", None)
        return super().from_config(config, custom_objects)


class StateLayoutOutOfOrder(keras.optimizers.Adam):
    """``variables`` (so the saved store) lists each velocity before its momentum."""
    conformance_algorithms = ("adam",)
    expected_check = "api/state-layout"

    @property
    def variables(self):
        out = list(self._variables)
        for m, v in zip(getattr(self, "_momentums", []), getattr(self, "_velocities", [])):
            i = next(k for k, x in enumerate(out) if x is m)
            j = next(k for k, x in enumerate(out) if x is v)
            out[i], out[j] = out[j], out[i]
        return out


class UnknownArgumentsIgnored(keras.optimizers.Nadam):
    """Unknown constructor arguments (a typo such as ``lr=``) are silently dropped."""
    conformance_algorithms = ("nadam",)
    expected_check = "api/invalid-arguments"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)


class ScheduleOverwrittenBySetter(keras.optimizers.Adam):
    """Setting a float learning rate silently replaces a schedule (Keras raises TypeError)."""
    conformance_algorithms = ("adam",)
    expected_check = "api/learning-rate-setter"

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, float) and isinstance(self._learning_rate,
                                                   keras.optimizers.schedules.LearningRateSchedule):
            self._learning_rate = lambda: value
            return
        keras.optimizers.Adam.learning_rate.fset(self, value)


class _CheckpointWithoutStepCounter(keras.optimizers.LossScaleOptimizer):
    @property
    def variables(self):
        return [v for v in super().variables if v is not self.step_counter]


class WrapperCheckpointLosesStepCounter(keras.optimizers.Adam):
    """Its LossScaleOptimizer leaves ``step_counter`` out of ``variables``: a resumed run doubles the scale late."""
    conformance_algorithms = ("adam",)
    conformance_loss_scale_optimizer = _CheckpointWithoutStepCounter
    expected_check = "api/loss-scale-optimizer"


class _ConfigWithoutGrowthSteps(keras.optimizers.LossScaleOptimizer):
    def get_config(self):
        config = super().get_config()
        del config["dynamic_growth_steps"]
        return config


class WrapperConfigLosesGrowthSteps(keras.optimizers.AdamW):
    """Its LossScaleOptimizer's config forgets ``dynamic_growth_steps`` (a reloaded model grows every 2000)."""
    conformance_algorithms = ("adamw",)
    conformance_loss_scale_optimizer = _ConfigWithoutGrowthSteps
    expected_check = "api/loss-scale-optimizer"


API_BUGS = [WrongDefaultEpsilon, MissingConfigKey, ConfigValueNotRestored, StateLayoutOutOfOrder,
            UnknownArgumentsIgnored, ScheduleOverwrittenBySetter, WrapperCheckpointLosesStepCounter,
            WrapperConfigLosesGrowthSteps]
