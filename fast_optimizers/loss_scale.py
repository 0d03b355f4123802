"""Dynamic loss scaling around any optimizer of this package, as Keras's ``LossScaleOptimizer`` does it.

    >>> opt = LossScaleOptimizer(Adam(learning_rate=0.01))
    >>> loss = opt.scale_loss(loss)              # ... gradients of the scaled loss ...
    >>> opt.apply(grads, variables)              # a step with Inf/NaN is skipped and halves the scale

A step whose gradients are all finite is applied to the gradients divided by the scale; after
``dynamic_growth_steps`` such steps in a row the scale doubles.  A step with any non-finite gradient
changes nothing but the scale (halved) and the count of finite steps (reset).  The scale is a float32
number, as Keras keeps it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optimizer_conformance.fast_optimizers.keras_rules import auto_name


def _all_finite(grads: Sequence[Any]) -> bool:
    for g in grads:
        if g is None:
            continue
        if hasattr(g, "isfinite"):  # torch tensors
            if not bool(g.isfinite().all()):
                return False
        elif not bool(np.all(np.isfinite(np.asarray(g)))):
            return False
    return True


_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                  "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None}


class LossScaleOptimizer:
    """``inner_optimizer`` with a dynamic loss scale; ``iterations``, the learning rate and the slots are the
    inner optimizer's.  A drop-in for Keras's class: the same arguments, configuration, ``variables`` order
    (its own unused counter and learning rate, ``step_counter``, ``dynamic_scale``, then the inner
    optimizer's) and checkpoint store."""

    def __init__(self, inner_optimizer: Any, initial_scale: float = 2.0**15, dynamic_growth_steps: int = 2000,
                 name: str | None = None, **kwargs: Any) -> None:
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer: dynamic=False is not supported; set loss_scale_factor on the "
                             "inner optimizer instead")
        for key, default in _BASE_DEFAULTS.items():  # Keras accepts its old config's defaults, nothing else
            if key in kwargs and kwargs.pop(key) != default:
                raise ValueError(f"LossScaleOptimizer does not support {key}: set it on the inner optimizer")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments: {', '.join(kwargs)}")
        if isinstance(initial_scale, bool) or not isinstance(initial_scale, (int, float)) \
                or not 0 < initial_scale < math.inf:
            raise ValueError(f"initial_scale: expected a positive finite number; got {initial_scale!r}")
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, int) \
                or dynamic_growth_steps < 1:
            raise ValueError(f"dynamic_growth_steps: expected an integer >= 1; got {dynamic_growth_steps!r}")
        self.inner_optimizer = inner_optimizer
        # Keras clears it: the gradients would otherwise be unscaled twice.
        inner_optimizer.loss_scale_factor = None
        self.initial_scale = initial_scale
        self.dynamic_growth_steps = dynamic_growth_steps
        self.name = name if name is not None else auto_name(type(self).__name__)
        self.dynamic_scale = np.float32(initial_scale)
        self.step_counter = 0
        self.built = False

    @property
    def iterations(self) -> int:
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self) -> float:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.inner_optimizer.learning_rate = value

    def build(self, variables: Sequence[Any], names: Sequence[str] | None = None) -> None:
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(variables, names=names)
        self.built = True

    @property
    def variables(self) -> list:
        """Keras's order: the wrapper's own (unused) counter and learning rate, ``step_counter`` and
        ``dynamic_scale``, then the inner optimizer's variables."""
        own = [np.array(0, np.int64), np.array(0.0, np.float32), np.array(self.step_counter, np.int64),
               np.array(self.dynamic_scale, np.float32)]
        return own + list(self.inner_optimizer.variables)

    def save_own_variables(self, store: dict) -> None:
        for i, v in enumerate(self.variables):
            store[str(i)] = v

    def load_own_variables(self, store: dict) -> None:
        if len(store) < 4:
            raise ValueError(f"load_own_variables: the store holds {len(store)} variables; a LossScaleOptimizer's "
                             "own four come first")
        self.step_counter = int(np.asarray(store["2"]))
        self.dynamic_scale = np.float32(np.asarray(store["3"]))
        self.inner_optimizer.load_own_variables({str(int(k) - 4): v for k, v in store.items() if int(k) >= 4})

    def scale_loss(self, loss: Any) -> Any:
        return loss * float(self.dynamic_scale)

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if not _all_finite(grads):
            self.step_counter = 0
            self.dynamic_scale = np.float32(self.dynamic_scale * np.float32(0.5))
            return
        overwrite = self.inner_optimizer.overwritten
        scale = float(self.dynamic_scale)
        unscaled = [g if g is None or i in overwrite else self._divided(g, scale) for i, g in enumerate(grads)]
        self.inner_optimizer.apply(unscaled, trainable_variables)
        if self.step_counter == self.dynamic_growth_steps - 1:
            self.step_counter = 0
            self.dynamic_scale = np.float32(self.dynamic_scale * np.float32(2.0))
        else:
            self.step_counter += 1

    @staticmethod
    def _divided(g: Any, scale: float) -> Any:
        if isinstance(g, np.ndarray):
            return (g / np.float32(scale)).astype(g.dtype)
        return g / scale  # torch, CuPy: in the gradient's dtype

    def finalize_variable_values(self, var_list: Sequence[Any] | None = None) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict[str, Any]:
        """Keras's keys; the inner optimizer serialized as Keras serializes an object (module, class, config)."""
        inner = self.inner_optimizer
        return {"name": self.name,
                "inner_optimizer": {"module": type(inner).__module__, "class_name": type(inner).__name__,
                                    "config": inner.get_config(), "registered_name": None},
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        config = dict(config)
        serialized = config.pop("inner_optimizer")
        inner_cls = getattr(importlib.import_module(serialized["module"]), serialized["class_name"])
        return cls(inner_cls.from_config(serialized["config"]), **config)
