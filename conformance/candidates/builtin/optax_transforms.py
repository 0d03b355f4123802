"""optax's adam, adamw, adamax and amsgrad as candidates by their own names (``optax:adamw``).

Keras's configuration in optax's arguments: ``learning_rate``, ``b1``, ``b2``, ``eps``; Keras's decoupled weight
decay is ``optax.adamw``'s ``weight_decay``, a variable excluded from it is ``False`` in its ``mask``.  optax has no
``None`` gradient: a missing one is zeros, as an optax user passes it.  The modes (``--compile``): ``eager``, and
``jit`` (``jax.jit`` of the transformation's ``update``).  The state is the transformation's: ``mu`` is Keras's
momentum, ``nu`` its velocity (Adamax's norm), ``nu_max`` its velocity_hat, ``count`` its iterations.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from optimizer_conformance.conformance.candidates.builtin.common import (
    excluded_from_decay,
    in_dialect,
    require_mode,
    training_loop_lacks,
)

# optax's function -> the rules it computes, and whether it is AMSGrad.
FUNCTIONS = {"adam": ("adam", "optax-adam"), "adamw": ("adamw", "optax-adamw"), "adamax": ("adamax",),
             "amsgrad": ("adam",), "nadam": ("optax-nadam",)}
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
    function = obj.func if isinstance(obj, functools.partial) else obj
    return callable(obj) and (getattr(function, "__module__", "") or "").startswith("optax") \
        and optax_name(obj) in FUNCTIONS


def optax_name(obj: Any) -> str:
    """optax's name of the function (``optax.nadam`` is ``functools.partial(optax.adam, nesterov=True)``)."""
    if isinstance(obj, functools.partial):
        base = getattr(obj.func, "__name__", "")
        return {"adam": "nadam", "adamw": "nadamw"}.get(base, base) if obj.keywords.get("nesterov") else base
    return getattr(obj, "__name__", "")


class OptaxAdapter:
    """An optax gradient transformation, run as optax users run it, behind the adapter protocol."""

    def __init__(self, function: Any, target: str, compile: str) -> None:
        import jax
        import optax

        require_mode(compile, MODES, target)
        self.jax, self.optax, self.function, self.mode = jax, optax, function, compile
        self.name = optax_name(function)
        self.algorithms = FUNCTIONS[self.name]
        self.dtypes = ("float32", "float64", "float16", "bfloat16")
        self.floatx = "float64"  # a float learning rate is a Python float, rounded where it meets a variable
        self.conformance_lacks = training_loop_lacks("optax")
        # Where optax computes otherwise than Keras (tried first, and together, by a diagnosis).
        self.conformance_conventions = CONVENTIONS.get(self.name, ())

    def cannot_run(self, algorithm: str, config: dict[str, Any]) -> str | None:
        if in_dialect(algorithm, "optax"):
            return None
        name = self.name
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
        self.own = in_dialect(algorithm, "optax")
        if self.own:  # the configuration is in optax's own arguments already
            self._transform(config)
            return
        arguments: dict[str, Any] = {"learning_rate": config["learning_rate"], "b1": config["beta_1"],
                                     "b2": config["beta_2"], "eps": config["epsilon"]}
        if self.name in DECAYS:
            arguments["weight_decay"] = config.get("weight_decay") or 0.0
            arguments["mask"] = [not out for out in excluded_from_decay(self.names, exclude)]
        self._transform(arguments)

    def _transform(self, arguments: dict[str, Any]) -> None:
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
        # The optax dialect reports optax's own names; Keras's rules, Keras's.
        first, second = ("mu", "nu") if self.own else ("momentum", SECOND_MOMENT.get(self.name,
                                                                                         "velocity"))
        out: dict[str, Any] = {"iterations": int(moments.count)}
        for i, name in enumerate(self.names):
            out[f"variables/{name}"] = _numpy(self.params[i])
            out[f"{first}/{name}"] = _numpy(moments.mu[i])
            out[f"{second}/{name}"] = _numpy(moments.nu[i])
            if hasattr(moments, "nu_max"):
                out[f"velocity_hat/{name}"] = _numpy(moments.nu_max[i])
        return out


def _is_moments(node: Any) -> bool:
    return hasattr(node, "mu") and hasattr(node, "nu") and hasattr(node, "count")


def _numpy(array: Any) -> np.ndarray:
    return np.asarray(array).astype(np.float64)

