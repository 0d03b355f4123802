"""Keras-compatible Adam, AdamW, Nadam, Adamax, Lamb, schedule-free AdamW and the legacy TF Nadam on NumPy, torch
and CuPy arrays.

The pipeline is Keras 3's ``apply`` (``reference/pipeline.py`` states the exact
semantics this mirrors; nothing here imports the oracle, so the harness can catch
a bug in either): loss-scale unscaling, gradient accumulation (mean over
S calls, public ``iterations`` floor-divided, schedules on the raw counter),
clipping, decoupled weight decay, the update, EMA with its first-step rule and
overwrite, the variables' constraints, then the counter (variables marked ``overwrite_with_gradient`` are
assigned their gradient first and take no further part).  The elementwise work runs in one fused pass
(:mod:`fast_optimizers.kernels`) on NumPy float32/float64 arrays when numba is
installed, and chunk by chunk through the array API otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np
from optimizer_conformance.fast_optimizers import keras_rules, kernels, rules
from optimizer_conformance.fast_optimizers.schedules import learning_rate as schedule_value
from optimizer_conformance.fast_optimizers.schedules import validate as validate_schedule
from optimizer_conformance.fast_optimizers.validation import check_gradients, check_variable, is_contiguous


def _namespace(x):
    try:
        import array_api_compat
    except ImportError:  # NumPy alone: NumPy 2 follows the array API in its main namespace
        import numpy

        if isinstance(x, numpy.ndarray):
            return numpy
        raise ImportError(f"{type(x).__name__} arrays need array-api-compat (pip install array-api-compat)") from None
    return array_api_compat.array_namespace(x)


def _contiguous_copy(x):
    """A C-contiguous copy of a NumPy or CuPy array (their ``ascontiguousarray``) or a torch tensor."""
    if hasattr(x, "contiguous"):
        return x.contiguous()
    return importlib.import_module(type(x).__module__.split(".")[0]).ascontiguousarray(x)


class _SerializedSchedule(dict):
    """A schedule in Keras's serialized form, handed over by :meth:`_Optimizer.from_config` (Keras's constructor
    itself takes no dictionaries: its ``from_config`` deserializes them first)."""


KERAS3_KEYS = ("name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
               "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps")


class _Optimizer:
    """The shared pipeline; subclasses fix the rule, its arguments and defaults."""

    algorithm = ""
    slot_names: tuple[str, ...] = ("momentum", "velocity")
    rule_keys: tuple[str, ...] = ("beta_1", "beta_2", "epsilon")
    keras3 = True  # the Keras 3 API (the legacy TF Nadam is configured by the oracle's rules instead)
    weight_decay_required = False  # AdamW: weight_decay must be a float
    product_name: str | None = None  # the name of the momentum product it keeps (Nadam), if any

    def __init__(self, extra: dict[str, Any] | None = None, **config: Any) -> None:
        if self.keras3:
            serialized = isinstance(config["learning_rate"], _SerializedSchedule)  # validated when stored
            keras_rules.validate({**config, "learning_rate": 0.0} if serialized else config, extra or {},
                                 adamw=self.weight_decay_required)
            self._config = dict(config)
            if self._config["name"] is None:
                self._config["name"] = keras_rules.auto_name(type(self).__name__)
            self._config["learning_rate"] = self._stored_learning_rate(config["learning_rate"])
        else:
            self._config = keras_rules.legacy_config({**config, **(extra or {})})
            self._config["learning_rate"] = self._stored_learning_rate(self._config["learning_rate"])
        self.name = self._config["name"]
        self.built = False
        self._raw_iterations = 0
        self._exclude_indices: set[int] = set()
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: str | None = None
        self._product = 1.0
        self._overwrite: set[int] = set()
        self._constraints: dict[int, Callable[[Any], Any]] = {}

    @staticmethod
    def _stored_learning_rate(lr: Any) -> Any:
        """Schedules are kept in Keras's serialized form (evaluated by :mod:`fast_optimizers.schedules`)."""
        if isinstance(lr, dict):
            validate_schedule(lr)  # naming the field that is wrong
            return copy.deepcopy(dict(lr))
        if keras_rules.is_schedule(lr):
            import keras

            return keras.optimizers.schedules.serialize(lr)
        return lr

    # -- configuration --------------------------------------------------------------------------------
    def __getattr__(self, key: str):
        config = self.__dict__.get("_config")
        if config is not None and key in config:
            return config[key]
        raise AttributeError(key)

    def get_config(self) -> dict[str, Any]:
        """Keras's keys in Keras's order; schedules and functions serialized as Keras serializes them."""
        keys = tuple(keras_rules.LEGACY_DEFAULTS) if not self.keras3 else KERAS3_KEYS + self.rule_keys
        config = {k: self._config[k] for k in keys}
        lr = config["learning_rate"]
        if isinstance(lr, dict):
            config["learning_rate"] = copy.deepcopy(lr)
        elif callable(lr):
            config["learning_rate"] = keras_rules.serialize_callable(lr)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _SerializedSchedule(config["learning_rate"])
        return cls(**config)

    @property
    def learning_rate(self) -> float:
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        """Keras's rules: a schedule or a callable replaces anything; a number replaces a number only."""
        if keras_rules.is_schedule(value) or isinstance(value, _SerializedSchedule) or callable(value):
            self._config["learning_rate"] = self._stored_learning_rate(value)
            return
        if isinstance(self._config["learning_rate"], dict):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                            "constructor argument, hence its learning rate is not settable.")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"learning_rate must be a number, a LearningRateSchedule or a callable; got {value!r}")
        self._config["learning_rate"] = float(value)

    def _current_learning_rate(self) -> float:
        lr = self._config["learning_rate"]
        if isinstance(lr, dict):
            return schedule_value(lr, self._raw_iterations)
        if callable(lr):
            return float(lr())
        # Keras holds a float learning rate in a floatx (float32) variable: the rate is that float32 number.
        return float(np.float32(lr))

    @property
    def loss_scale_factor(self) -> float | None:
        return self._config.get("loss_scale_factor")

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: float | None) -> None:
        """Keras's ``LossScaleOptimizer`` clears it on the optimizer it wraps."""
        self._config["loss_scale_factor"] = value

    @property
    def iterations(self) -> int:
        return self._raw_iterations // (self._config.get("gradient_accumulation_steps") or 1)

    @property
    def overwritten(self) -> frozenset[int]:
        """The indices of the variables assigned their gradient (``overwrite_with_gradient``)."""
        return frozenset(self._overwrite)

    # -- state ------------------------------------------------------------------------------------------
    def set_variable_options(self, overwrite_with_gradient: Iterable[int] = (),
                             constraints: dict[int, Callable[[Any], Any]] | None = None) -> None:
        """What Keras reads from its variables, given by index (before ``build``): the variables assigned
        their gradient (``overwrite_with_gradient``: no slots, no update), and a constraint per variable
        (a callable on the array, applied after each update: :mod:`fast_optimizers.constraints`)."""
        if self.built:
            raise ValueError("set_variable_options: call it before build() (the slots depend on it)")
        self._overwrite = set(overwrite_with_gradient)
        self._constraints = dict(constraints or {})

    def build(self, variables: Sequence[Any], names: Sequence[str] | None = None) -> None:
        self._variables = list(variables)
        # torch tensors have a ``name`` attribute that is None.
        self._names = list(names) if names is not None else [getattr(v, "name", None) or f"variable_{i}"
                                                              for i, v in enumerate(variables)]
        if len(self._names) != len(self._variables):
            raise ValueError(f"build: {len(self._names)} names for {len(self._variables)} variables")
        for v, name in zip(self._variables, self._names):
            check_variable(v, name)
        for i in set(self._overwrite) | set(self._constraints):
            if not 0 <= i < len(self._variables):
                raise ValueError(f"set_variable_options: {i} is not a variable index (0 to {len(self._variables) - 1})")
        kept = [None if i in self._overwrite else v for i, v in enumerate(self._variables)]
        self.slots: dict[str, list] = {name: [None if v is None else self._zeros_like(v) for v in kept]
                                       for name in self._slot_names()}
        if self._config.get("use_ema"):
            self.slots["average"] = [None if v is None else self._zeros_like(v) for v in kept]
        if self._config.get("gradient_accumulation_steps"):
            self.slots["gradient_accumulator"] = [self._zeros_like(v) for v in self._variables]
        self.built = True

    def _slot_names(self) -> tuple[str, ...]:
        return self.slot_names

    @staticmethod
    def _zeros_like(v):
        """Zeros of ``v``'s shape and dtype, C-contiguous whatever ``v``'s layout (the kernels flatten slots)."""
        xp = _namespace(v)
        return xp.zeros(v.shape, dtype=v.dtype, device=getattr(v, "device", None))

    def _layout(self) -> list[tuple[str, int | None]]:
        """Keras 3's order of ``optimizer.variables``: the counter, a float learning rate, EMA averages,
        accumulators, then the rule's slots (momentum and velocity, or norm) variable by variable, velocity_hat,
        Nadam's product."""
        n = len(self._variables)
        layout: list[tuple[str, int | None]] = [("iterations", None)]
        if isinstance(self._config["learning_rate"], float):
            layout.append(("learning_rate", None))
        for name in ("average", "gradient_accumulator"):
            if name in self.slots:
                layout += [(name, i) for i in range(n) if self.slots[name][i] is not None]
        for i in range(n):
            layout += [(name, i) for name in self.slot_names if i not in self._overwrite]
        if "velocity_hat" in self.slots:
            layout += [("velocity_hat", i) for i in range(n) if i not in self._overwrite]
        if self.product_name is not None:
            layout.append(("u_product", None))
        return layout

    @property
    def variables(self) -> list:
        """The optimizer's state in Keras 3's order (see :meth:`_layout`)."""
        scalars = {"iterations": self._raw_iterations, "learning_rate": self._config["learning_rate"],
                   "u_product": self._product}
        return [scalars[kind] if i is None else self.slots[kind][i] for kind, i in self._layout()]

    def save_own_variables(self, store: dict) -> None:
        """Keras's store layout: ``store[str(i)]`` holds ``variables[i]``."""
        for i, v in enumerate(self.variables):
            store[str(i)] = v

    def load_own_variables(self, store: dict) -> None:
        layout = self._layout()
        if len(store) != len(layout):
            raise ValueError(f"load_own_variables: the store holds {len(store)} variables, "
                             f"this optimizer {len(layout)}")
        for k, (kind, i) in enumerate(layout):
            value = store[str(k)]
            if kind == "iterations":
                self._raw_iterations = int(value)
            elif kind == "learning_rate":
                self._config["learning_rate"] = float(value)
            elif kind == "u_product":
                self._product = float(value)
            else:
                target = self.slots[kind][i]
                # A Keras store holds NumPy arrays, whatever array type this optimizer works on.
                target[...] = _namespace(target).asarray(value, dtype=target.dtype)

    def exclude_from_weight_decay(self, var_list: Iterable[Any] | None = None,
                                  var_names: Iterable[str] | None = None) -> None:
        """As Keras: variables by identity (resolved when used, so before or after ``build``), names by regex.

        An ``int`` in ``var_list`` is a variable's index (the conformance adapters use it)."""
        self._exclude_indices = {v for v in var_list or () if isinstance(v, int) and not isinstance(v, bool)}
        self._exclude_ids = {id(v) for v in var_list or () if not isinstance(v, int)}
        self._exclude_pattern = "|".join(set(var_names)) if var_names else None

    def _decays(self, i: int) -> bool:
        if self._config.get("weight_decay") is None:
            return False
        if i in self._exclude_indices or id(self._variables[i]) in self._exclude_ids:
            return False
        return self._exclude_pattern is None or re.search(self._exclude_pattern, self._names[i]) is None

    # -- the pipeline -------------------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> int:
        pairs = list(grads_and_vars)
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        self.apply(grads, variables)
        return self.iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if len(grads) == 0:
            return
        if not self.built:
            if trainable_variables is None:
                raise ValueError("apply: pass trainable_variables on the first call, or call build() first")
            self.build(trainable_variables)
        check_gradients(grads, self._variables, self._names)
        active = [i for i, g in enumerate(grads) if g is not None]
        for i in active:  # a variable may have been made read-only since build
            check_variable(self._variables[i], self._names[i])
        if not active:
            raise ValueError("No gradients provided for any variable.")
        c = self._config
        steps = c.get("gradient_accumulation_steps") or 1
        for i in [i for i in active if i in self._overwrite]:
            self._overwrite_with_gradient(i, grads[i], steps)
        active = [i for i in active if i not in self._overwrite]
        if active:
            gscale = 1.0 / c["loss_scale_factor"] if c.get("loss_scale_factor") else 1.0
            if steps > 1 and (self._raw_iterations + 1) % steps != 0:
                for i in active:
                    kernels.accumulate(_namespace(grads[i]), self.slots["gradient_accumulator"][i], grads[i], gscale)
            else:
                self._update(active, grads, gscale, steps)
            self._moving_average()
            for i in active:
                if i in self._constraints:
                    theta = self._variables[i]
                    theta[...] = self._constraints[i](theta)
        self._raw_iterations += 1

    def _overwrite_with_gradient(self, i: int, g, steps: int) -> None:
        """θ ← g; under accumulation the running maximum of the micro-gradients, assigned on update steps."""
        theta = self._variables[i]
        if steps == 1:
            theta[...] = g
            return
        xp = _namespace(theta)
        acc = self.slots["gradient_accumulator"][i]
        acc[...] = xp.maximum(acc, xp.asarray(g, dtype=acc.dtype))
        if (self._raw_iterations + 1) % steps == 0:
            theta[...] = acc
            acc[...] = 0

    def _update(self, active: list[int], grads, gscale: float, steps: int) -> None:
        c = self._config
        accumulators = self.slots.get("gradient_accumulator")
        inv_steps = 1.0 / steps

        def acc(i):
            return accumulators[i] if accumulators is not None else None

        factors = {i: 1.0 for i in active}
        clip = math.inf
        if c.get("clipnorm") and c["clipnorm"] > 0:
            for i in active:
                norm = math.sqrt(kernels.sum_of_squares(_namespace(grads[i]), grads[i], acc(i), gscale=gscale,
                                                        inv_steps=inv_steps))
                factors[i] = c["clipnorm"] / max(norm, c["clipnorm"])
        elif c.get("global_clipnorm") and c["global_clipnorm"] > 0:
            norm = math.sqrt(sum(kernels.sum_of_squares(_namespace(grads[i]), grads[i], acc(i), gscale=gscale,
                                                        inv_steps=inv_steps) for i in active))
            cn = c["global_clipnorm"]
            scale = cn * min(1 / norm, 1 / cn) if norm > 0 else cn * (1 / cn)
            if not math.isfinite(norm):  # Keras adds N − N: every gradient NaN
                scale = math.nan
            factors = {i: scale for i in active}
        elif c.get("clipvalue") and c["clipvalue"] > 0:
            clip = c["clipvalue"]
        lr = self._current_learning_rate()
        scalars = self._scalars(lr, self.iterations + 1)
        for i in active:
            wd_lr = c["weight_decay"] * lr if self._decays(i) else 0.0
            a = acc(i)
            # The clip factor applies to the (averaged) gradient: fold it into the last multiplier.
            g_scale, g_inv = (gscale, inv_steps * factors[i]) if a is not None else (gscale * factors[i], 1.0)
            with self._contiguous(i):
                self._kernel(i, grads[i], a, g_scale, g_inv, clip, wd_lr, scalars)
        if accumulators is not None:
            for a in accumulators:
                a[...] = 0

    @contextlib.contextmanager
    def _contiguous(self, i: int):
        """Variable ``i`` as the kernels take it: a strided or transposed view is updated on a C-contiguous copy
        (the kernels flatten it, and flattening such a view copies), written back where it lies."""
        theta = self._variables[i]
        if is_contiguous(theta):
            yield
            return
        self._variables[i] = _contiguous_copy(theta)
        try:
            yield
            theta[...] = self._variables[i]
        finally:
            self._variables[i] = theta

    def _moving_average(self) -> None:
        c = self._config
        if not c.get("use_ema"):
            return
        weight = None if self.iterations == 0 else 1 - c["ema_momentum"]
        for theta, average in zip(self._variables, self.slots["average"]):
            if average is not None:  # a variable assigned its gradient has no average
                kernels.moving_average(_namespace(theta), average, theta, weight)
        frequency = c.get("ema_overwrite_frequency")
        if frequency and (self.iterations + 1) % frequency == 0:
            self.finalize_variable_values()

    def finalize_variable_values(self, var_list: Sequence[Any] | None = None) -> None:
        if self._config.get("use_ema"):
            for theta, average in zip(var_list or self._variables, self.slots["average"]):
                if average is not None:
                    theta[...] = average

    # -- per rule -----------------------------------------------------------------------------------------
    def _scalars(self, lr: float, t: int):
        raise NotImplementedError

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s) -> None:
        raise NotImplementedError


class Adam(_Optimizer):
    """``keras.optimizers.Adam``: θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)·m/(√v + ε̂)."""

    algorithm = "adam"
    rule_keys = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(kwargs, **{k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")})

    def _slot_names(self):
        return ("momentum", "velocity", "velocity_hat") if self._config["amsgrad"] else ("momentum", "velocity")

    def _scalars(self, lr, t):
        c = self._config
        return rules.adam(lr, c["beta_1"], c["beta_2"], c["epsilon"], t)

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        theta, m, v = self._variables[i], self.slots["momentum"][i], self.slots["velocity"][i]
        amsgrad = self._config["amsgrad"]
        vhat = self.slots["velocity_hat"][i] if amsgrad else None
        if kernels.numba_suits(theta, g, m, v, vhat, acc):
            kernels.adam_numba(theta, g, m, v, vhat, acc, gscale=gscale, inv_steps=inv_steps, clip=clip,
                               wd_lr=wd_lr, s=s, amsgrad=amsgrad)
        else:
            kernels.adam_xp(_namespace(theta), theta, g, m, v, vhat, acc, gscale=gscale, inv_steps=inv_steps,
                            clip=clip, wd_lr=wd_lr, s=s, amsgrad=amsgrad)


class AdamW(Adam):
    """``keras.optimizers.AdamW``: Adam with decoupled weight decay θ ← θ − θ·λη (default λ = 0.004)."""

    algorithm = "adamw"
    weight_decay_required = True

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        arguments = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        _Optimizer.__init__(self, kwargs, **arguments)


class Nadam(_Optimizer):
    """``keras.optimizers.Nadam``: momentum schedule u_t = β₁(1 − ½·0.96ᵗ) with its running product."""

    algorithm = "nadam"
    product_name = "u_product"
    exponent_scale = 1.0

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        super().__init__(kwargs, **{k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")})

    def _scalars(self, lr, t):
        c = self._config
        s = rules.nadam(lr, c["beta_1"], c["beta_2"], c["epsilon"], t, self._product)
        self._product = s.product
        return s

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        theta, m, v = self._variables[i], self.slots["momentum"][i], self.slots["velocity"][i]
        if kernels.numba_suits(theta, g, m, v, acc):
            kernels.nadam_numba(theta, g, m, v, acc, gscale=gscale, inv_steps=inv_steps, clip=clip, wd_lr=wd_lr, s=s)
        else:
            kernels.nadam_xp(_namespace(theta), theta, g, m, v, acc, gscale=gscale, inv_steps=inv_steps, clip=clip,
                             wd_lr=wd_lr, s=s)


class Adamax(_Optimizer):
    """``keras.optimizers.Adamax``: u ← max(β₂·u, |g|), θ ← θ − η/(1 − β₁ᵗ)·m/(u + ε)."""

    algorithm = "adamax"
    slot_names = ("momentum", "norm")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        super().__init__(kwargs, **{k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")})

    def _scalars(self, lr, t):
        c = self._config
        return rules.adamax(lr, c["beta_1"], c["beta_2"], c["epsilon"], t)

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        theta, m, u = self._variables[i], self.slots["momentum"][i], self.slots["norm"][i]
        kernel = kernels.adamax_numba if kernels.numba_suits(theta, g, m, u, acc) else \
            partial(kernels.adamax_xp, _namespace(theta))
        kernel(theta, g, m, u, acc, gscale=gscale, inv_steps=inv_steps, clip=clip, wd_lr=wd_lr, s=s)


class Lamb(_Optimizer):
    """``keras.optimizers.Lamb``: r = m̂/(√v̂ + ε), θ ← θ − (ρ·η)·r, ρ = ‖θ‖/‖r‖ per variable (1 if either is 0)."""

    algorithm = "lamb"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        super().__init__(kwargs, **{k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")})

    def _scalars(self, lr, t):
        c = self._config
        return rules.lamb(lr, c["beta_1"], c["beta_2"], c["epsilon"], t)

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        theta, m, v = self._variables[i], self.slots["momentum"][i], self.slots["velocity"][i]
        kernel = kernels.lamb_numba if kernels.numba_suits(theta, g, m, v, acc) else \
            partial(kernels.lamb_xp, _namespace(theta))
        kernel(theta, g, m, v, acc, gscale=gscale, inv_steps=inv_steps, clip=clip, wd_lr=wd_lr, s=s,
               trust_ratio=rules.trust_ratio)


class ScheduleFreeAdamW(_Optimizer):
    """``keras.optimizers.ScheduleFreeAdamW``: an Adam step on z (which starts as a copy of the variable), the
    variable y = (1 − β₁)z + β₁x with x the running average of z (weight 1/t), recovered from y and the old z."""

    algorithm = "schedule-free-adamw"
    rule_keys = ("beta_1", "beta_2", "epsilon", "warmup_steps")

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(kwargs, **{k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")})

    def build(self, variables: Sequence[Any], names: Sequence[str] | None = None) -> None:
        super().build(variables, names)
        for z, theta in zip(self.slots["momentum"], self._variables):
            if z is not None:
                z[...] = theta

    def _scalars(self, lr, t):
        c = self._config
        return rules.schedule_free(lr, c["beta_1"], c["beta_2"], c["epsilon"], c["warmup_steps"], t)

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        theta, z, v = self._variables[i], self.slots["momentum"][i], self.slots["velocity"][i]
        kernel = kernels.schedule_free_numba if kernels.numba_suits(theta, g, z, v, acc) else \
            partial(kernels.schedule_free_xp, _namespace(theta))
        kernel(theta, g, z, v, acc, gscale=gscale, inv_steps=inv_steps, clip=clip, wd_lr=wd_lr, s=s)


class LegacyNadam(Nadam):
    """``tf_keras.optimizers.legacy.Nadam`` (TF 2.0): μ_t = β₁(1 − ½·0.96^(0.004 t))."""

    algorithm = "nadam-legacy"
    product_name = "momentum_cache"
    keras3 = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="Nadam",
                 schedule_decay=0.004, clipnorm=None, clipvalue=None, global_clipnorm=None, **kwargs):
        decay = kwargs.pop("decay", schedule_decay)
        _Optimizer.__init__(self, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                            name=name, decay=decay, clipnorm=clipnorm, clipvalue=clipvalue,
                            global_clipnorm=global_clipnorm, **kwargs)

    def _scalars(self, lr, t):
        c = self._config
        s = rules.nadam_legacy(lr, c["beta_1"], c["beta_2"], c["epsilon"], t, self._product, c["decay"])
        self._product = s.product
        return s


OPTIMIZERS: dict[str, Callable[..., _Optimizer]] = {
    "adam": Adam, "adamw": AdamW, "nadam": Nadam, "nadam-legacy": LegacyNadam, "adamax": Adamax,
    "lamb": Lamb, "schedule-free-adamw": ScheduleFreeAdamW,
}
