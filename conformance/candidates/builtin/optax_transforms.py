"""optax's adam, adamw, adamax and amsgrad as candidates by their own names (``optax:adamw``).

Keras's configuration in optax's arguments: ``learning_rate``, ``b1``, ``b2``, ``eps``; Keras's decoupled weight
decay is ``optax.adamw``'s ``weight_decay``, a variable excluded from it is ``False`` in its ``mask``.  optax has no
``None`` gradient: a missing one is zeros, as an optax user passes it.  The modes (``--compile``): ``eager``, and
``jit`` (``jax.jit`` of the transformation's ``update``).  The state is the transformation's: ``mu`` is Keras's
momentum, ``nu`` its velocity (Adamax's norm), ``nu_max`` its velocity_hat, ``count`` its iterations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer_conformance.conformance.candidates.builtin.common import (
    excluded_from_decay,
    require_mode,
    training_loop_lacks,
)

# optax's function -> the rules it computes, and whether it is AMSGrad.
FUNCTIONS = {"adam": ("adam",), "adamw": ("adamw",), "adamax": ("adamax",), "amsgrad": ("adam",)}
AMSGRAD = {"amsgrad"}
DECAYS = {"adamw"}  # the functions that take a weight decay
SECOND_MOMENT = {"adamax": "norm"}  # Keras's name of nu, where it is not the velocity
MODES = {"eager": "update called as it is", "jit": "jax.jit of update"}
CONVENTIONS = {"adam": ("epsilon-after-bias-correction", "missing-gradient-as-zero"),
               "adamw": ("epsilon-after-bias-correction", "missing-gradient-as-zero"),
               "amsgrad": ("epsilon-after-bias-correction", "amsgrad-max-of-corrected-velocity",
                           "missing-gradient-as-zero"),
               "adamax": ("adamax-epsilon-inside-max", "missing-gradient-as-zero")}


def is_optax(obj: Any) -> bool:
    """One of the optax functions this adapter knows."""
    return callable(obj) and (getattr(obj, "__module__", "") or "").startswith("optax") \
        and getattr(obj, "__name__", "") in FUNCTIONS


class OptaxAdapter:
    """An optax gradient transformation, run as optax users run it, behind the adapter protocol."""

    def __init__(self, function: Any, target: str, compile: str) -> None:
        import jax
        import optax

        require_mode(compile, MODES, target)
        self.jax, self.optax, self.function, self.mode = jax, optax, function, compile
        self.algorithms = FUNCTIONS[function.__name__]
        self.dtypes = ("float32", "float64", "float16", "bfloat16")
        self.floatx = "float64"  # a float learning rate is a Python float, rounded where it meets a variable
        self.conformance_lacks = training_loop_lacks("optax")
        # Where optax computes otherwise than Keras (tried first, and together, by a diagnosis).
        self.conformance_conventions = CONVENTIONS.get(function.__name__, ())

    def cannot_run(self, algorithm: str, config: dict[str, Any]) -> str | None:
        name = self.function.__name__
        if bool(config.get("amsgrad")) != (name in AMSGRAD):
            return (f"optax.{name} is {'AMSGrad' if name in AMSGRAD else 'Adam without AMSGrad'}: "
                    f"amsgrad={bool(config.get('amsgrad'))} is optax.{'amsgrad' if config.get('amsgrad') else 'adam'}")
        if config.get("weight_decay") and name not in DECAYS:
            return f"optax.{name} takes no weight decay (optax.adamw does, or chaining add_decayed_weights)"
        return None

    def start(self, algorithm, config, variables, dtype, exclude):
        jnp = self.jax.numpy
        self.names = [name for name, _ in variables]
        self.params = [jnp.asarray(array) for _, array in variables]
        arguments: dict[str, Any] = {"learning_rate": config["learning_rate"], "b1": config["beta_1"],
                                     "b2": config["beta_2"], "eps": config["epsilon"]}
        if self.function.__name__ in DECAYS:
            arguments["weight_decay"] = config.get("weight_decay") or 0.0
            arguments["mask"] = [not out for out in excluded_from_decay(self.names, exclude)]
        self.transformation = self.function(**arguments)
        self.opt_state = self.transformation.init(self.params)
        update = self.transformation.update
        self.update = self.jax.jit(update) if self.mode == "jit" else update

    def apply(self, grads):
        jnp = self.jax.numpy
        grads = [jnp.zeros_like(p) if g is None else jnp.asarray(g) for p, g in zip(self.params, grads)]
        updates, self.opt_state = self.update(grads, self.opt_state, self.params)
        self.params = self.optax.apply_updates(self.params, updates)

    def state(self):
        moments = next(s for s in self.jax.tree_util.tree_leaves(self.opt_state, is_leaf=_is_moments)
                       if _is_moments(s))
        second = SECOND_MOMENT.get(self.function.__name__, "velocity")
        out: dict[str, Any] = {"iterations": int(moments.count)}
        for i, name in enumerate(self.names):
            out[f"variables/{name}"] = _numpy(self.params[i])
            out[f"momentum/{name}"] = _numpy(moments.mu[i])
            out[f"{second}/{name}"] = _numpy(moments.nu[i])
            if hasattr(moments, "nu_max"):
                out[f"velocity_hat/{name}"] = _numpy(moments.nu_max[i])
        return out


def _is_moments(node: Any) -> bool:
    return hasattr(node, "mu") and hasattr(node, "nu") and hasattr(node, "count")


def _numpy(array: Any) -> np.ndarray:
    return np.asarray(array).astype(np.float64)
