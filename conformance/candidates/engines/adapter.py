"""The engine of adapters: a port that is not a Keras-style optimizer (:mod:`conformance.candidates.protocol`)."""

from __future__ import annotations

import numpy as np
from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import (
    StridedViews,
    as_float64,
    declared_lack,
    declared_lacks,
    decode_in,
    resolve,
    versions,
)
from optimizer_conformance.conformance.candidates.protocol import PortAdapter
from optimizer_conformance.conformance.checks.api.bridge import Subject
from optimizer_conformance.conformance.model import encode, spec_floatx, variable_options
from optimizer_conformance.reference.config import get_config, normalize
from optimizer_conformance.reference.formats import get_format, numpy_dtype
from optimizer_conformance.reference.rules import RULES


class AdapterEngine:
    """An adapter class or instance (:mod:`conformance.candidates.protocol`)."""

    def __init__(self, target, obj=None):
        self.target = target
        self.obj = resolve(target) if obj is None else obj  # obj: a built-in adapter of a real library

    def _instance(self) -> PortAdapter:
        return self.obj() if isinstance(self.obj, type) else self.obj

    def describe(self) -> dict:
        inst = self._instance()
        declared_lacks(inst)  # a misspelt feature is an error at load, never a silent nothing
        return {"name": self.target, "algorithms": list(inst.algorithms),
                "dtypes": list(getattr(inst, "dtypes", ("float32",))), "versions": versions(), "backend": "adapter",
                "floatx": getattr(inst, "floatx", "float32"),
                "conventions": list(getattr(inst, "conformance_conventions", ()))}

    def api_subject(self, algorithm) -> tuple[Subject | None, str | None]:
        inst = self._instance()
        if not hasattr(inst, "optimizer_class"):
            return None, ("the adapter names no Keras-API class: give it optimizer_class(algorithm), "
                          "to_array(array, dtype) and to_numpy(x) (see conformance/candidates/protocol.py)")
        cls = inst.optimizer_class(algorithm)
        wrapper = inst.loss_scale_optimizer_class() if hasattr(inst, "loss_scale_optimizer_class") else None
        return Subject(self.target, cls, lambda kwargs: cls(**kwargs), lambda a, name, dtype: inst.to_array(a, dtype),
                       lambda x: np.asarray(inst.to_numpy(x)), inst.to_array, wrapper), None

    def reference_rejects(self, spec: dict) -> str | None:
        """Not Keras-based: every configuration applies (the candidate answers for what it cannot do), but
        variables with options need an adapter that can be told them."""
        lacking = declared_lack(self._instance(), spec)
        if lacking:
            return lacking
        if hasattr(self._instance(), "cannot_run"):
            config = get_config(spec["algorithm"], normalize(spec["algorithm"], spec["config"]))
            reason = self._instance().cannot_run(spec["algorithm"], config)
            if reason:
                return reason
        declared = getattr(self._instance(), "floatx", "float32")
        if spec_floatx(spec) != declared and not self._held_exactly(spec):
            return (f"the trajectory holds its learning rate in floatx {spec_floatx(spec)}; the adapter declares "
                    f"floatx {declared}")
        if spec.get("variable_dtypes"):
            return ("the adapter protocol gives one dtype per trajectory: variables of several dtypes "
                    "(pipeline/mixed-dtypes*) are for Keras-style classes")
        options = variable_options(spec)
        if options and not hasattr(self._instance(), "set_variable_options"):
            return (f"the trajectory's variables carry {' and '.join(options)}, and the adapter has no "
                    "set_variable_options (see conformance/candidates/protocol.py)")
        if spec.get("sparse_gradients"):
            return ("the adapter protocol gives dense gradients: row slices (pipeline/sparse-gradients) are for "
                    "Keras-style classes")
        if spec.get("loss_scale_optimizer") and not hasattr(self._instance(), "set_loss_scale_optimizer"):
            return ("the trajectory wraps the optimizer in a LossScaleOptimizer, and the adapter has no "
                    "set_loss_scale_optimizer (see conformance/candidates/protocol.py)")
        return None

    def _held_exactly(self, spec: dict) -> bool:
        """Whether the port, holding its learning rate in a wider floatx than the trajectory's, can be given the
        trajectory's rate exactly: a float rate rounded to the trajectory's floatx first (a schedule cannot be)."""
        declared = getattr(self._instance(), "floatx", "float32")
        narrower = get_format(spec_floatx(spec)).precision < get_format(declared).precision
        return narrower and not isinstance(spec["config"].get(_learning_rate_key(spec), 0.001), dict)

    def run(self, spec) -> list[dict]:
        dtype = spec["dtype"]
        inst = self._instance()
        variables = [(name, decode_in(values, shape, dtype)) for name, shape, values in spec["variables"]]
        views = StridedViews() if spec.get("strided_views") else None
        if views is not None:  # NumPy arrays have views: the port is given them (and may keep and update them)
            variables = [(name, views.variable(name, v)) for name, v in variables]
        # An adapter gets the full get_config() dictionary, Keras's defaults filled in.
        config = get_config(spec["algorithm"], normalize(spec["algorithm"], spec["config"]))
        if self._held_exactly(spec):  # the trajectory's floatx number, which the port's wider floatx holds exactly
            key = _learning_rate_key(spec)
            config[key] = float(np.asarray(config[key]).astype(numpy_dtype(spec_floatx(spec))))
        options = variable_options(spec)
        announce("start")
        inst.start(spec["algorithm"], config, variables, dtype, spec.get("exclude") or {})
        if options:
            announce("set_variable_options")
            inst.set_variable_options(options.get("overwrite_with_gradient", []),
                                      {int(i): c for i, c in options.get("constraints", {}).items()})
        if spec.get("loss_scale_optimizer"):
            announce("set_loss_scale_optimizer")
            inst.set_loss_scale_optimizer(**spec["loss_scale_optimizer"])
        states = []

        def snapshot(step):
            announce("state", step)
            state = inst.state()
            if not isinstance(state, dict):
                raise TypeError(f"state() returned {type(state).__name__}, not a dict of quantity name to array")
            return {str(k): encode(as_float64(k, v)) for k, v in state.items()}

        for k, step in enumerate(spec["gradients"], start=1):
            grads = [None if g is None else decode_in(g, shape, dtype)
                     for g, (_, shape, _) in zip(step, spec["variables"])]
            if views is not None:
                grads = [views.gradient(g) for g in grads]
            announce("apply", k)
            inst.apply(grads)
            if views is not None:
                views.check(f"apply at step {k}")
            states.append(snapshot(k))
        if spec.get("finalize"):
            if hasattr(inst, "finalize"):
                announce("finalize")
                inst.finalize()
            states.append(snapshot(len(spec["gradients"]) + 1))
        return states


def _learning_rate_key(spec: dict) -> str:
    """The spec's rule's name for its learning rate (``lr`` in the torch dialect)."""
    return RULES[spec["algorithm"]].dialect.learning_rate_key
