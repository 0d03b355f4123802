"""The adapter protocol: how a port that is not a Keras-style optimizer plugs into the harness.

Write a class with these members and point ``optconf check`` at it
(``optconf check mypackage.conformance:MyAdapter``)::

    class MyAdapter:
        algorithms = ("adam", "adamw")          # what the port implements
        dtypes = ("float32",)                   # what it computes in

        def start(self, algorithm, config, variables, dtype, exclude):
            # config: the Keras get_config() dict; variables: [(name, numpy array)] already in `dtype`;
            # exclude: {"var_list": [indices], "var_names": [regexes]} for weight decay
            self.opt = my_port.Adam(lr=config["learning_rate"], ...)
            self.params = [p.copy() for _, p in variables]

        def apply(self, grads):                 # one numpy array (or None) per variable
            self.opt.step(self.params, grads)

        def state(self):                        # whatever the port exposes, named as Keras names it
            return {"variables/kernel": self.params[0], "momentum/kernel": self.opt.m[0],
                    "iterations": self.opt.t}

        def finalize(self):                     # optional: finalize_variable_values()
            ...

In the ``scale`` check (``ci`` and ``deep`` profiles: a million elements and more) the variables and gradients come
as NumPy views with an offset and a stride on every axis: update a variable where it lies (or copy it into your
port's own arrays), never writing between its elements.

Optional, for the API/config checks (``api/...``: signature, ``get_config``, state layout, resume from a
Keras checkpoint, ...), which need the port's Keras-API class::

        def optimizer_class(self, algorithm):   # the class a user would construct, Keras-style
            return my_port.keras_api.Adam
        def to_array(self, array, dtype):       # a NumPy array to the port's array type (model variables)
            return my_port.asarray(array, dtype)
        def to_numpy(self, x):                  # and back
            return np.asarray(x)
        def loss_scale_optimizer_class(self):   # optional: the port's Keras-API LossScaleOptimizer
            return my_port.keras_api.LossScaleOptimizer

Without them the API checks are reported as n/a, with the reason (``api/loss-scale-optimizer`` without the
last).  A Keras-style class names its wrapper in a class attribute, ``conformance_loss_scale_optimizer``.

Optional, for the trajectories whose variables carry options (``pipeline/constraints``,
``pipeline/overwrite-with-gradient``, ...); called after ``start``::

        def set_variable_options(self, overwrite_with_gradient, constraints):
            # overwrite_with_gradient: [indices] of variables assigned their gradient (Keras's
            # `variable.overwrite_with_gradient = True`); constraints: {index: serialized
            # keras.constraints object ({"class_name": "MaxNorm", "config": {...}})}
            ...

Without it those trajectories are reported as n/a, with the reason.

Optional, for the trajectories wrapped in Keras's ``LossScaleOptimizer`` (``pipeline/dynamic-loss-scale``, ...);
called after ``start`` (and ``set_variable_options``)::

        def set_loss_scale_optimizer(self, initial_scale, dynamic_growth_steps):
            # from now on apply() gets scaled gradients (some non-finite): skip a step with a non-finite
            # gradient and halve the scale, else unscale, apply and count towards doubling it.
            # Report "dynamic_scale" and "step_counter" in state().
            ...

Without it those trajectories are reported as n/a, with the reason.

Optional: ``floatx = "float64"`` (default float32): the ``floatx`` the port holds its learning rate in, as
Keras's ``keras.config.floatx()``; the trajectories then run under it (a float learning rate is that number).
A Keras-style class says it as ``conformance_floatx``.

Optional: ``conformance_lacks = {"use_ema": "why"}``: features the port does not have (the configuration's
switches and the spec's options); the trajectories that use one are not applicable to it, with that reason.
And ``cannot_run(algorithm, config)``: why the port cannot run one configuration of a rule it has (a string), or
None (torch.optim's Adamax has no decoupled weight decay, say).

Quantity names: ``variables/<name>``, ``momentum/<name>``, ``velocity/<name>``, ``norm/<name>`` (Adamax),
``velocity_hat/<name>``, ``average/<name>``, ``gradient_accumulator/<name>``, ``u_product``,
``momentum_cache``, ``dynamic_scale``, ``step_counter``, ``iterations``.  Report what the port has; the harness
checks what it gets, and the one-step check (from the port's own state) runs when every slot the rule needs is reported.

:class:`PortAdapter` states the required members as a type; :func:`is_adapter` is how the worker tells an
adapter from a Keras-style optimizer.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PortAdapter(Protocol):
    algorithms: tuple[str, ...]
    dtypes: tuple[str, ...]

    def start(self, algorithm: str, config: dict[str, Any], variables: list[tuple[str, np.ndarray]], dtype: str,
              exclude: dict[str, Any]) -> None: ...

    def apply(self, grads: list[np.ndarray | None]) -> None: ...

    def state(self) -> dict[str, Any]: ...


REQUIRED = ("algorithms", "start", "apply", "state")
# For the API checks: the port's Keras-API class and its array conversions.
FOR_API_CHECKS = ("optimizer_class", "to_array", "to_numpy")


def is_adapter(obj: Any) -> bool:
    """Whether ``obj`` (a class or an instance) has every member an adapter needs."""
    return all(hasattr(obj, name) for name in REQUIRED)
