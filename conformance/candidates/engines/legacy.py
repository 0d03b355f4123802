"""The engine of ``tf_keras.optimizers.legacy`` optimizers (TF 2.0 semantics): ``apply_gradients`` on
``tf.Variable``."""

from __future__ import annotations

import inspect

from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import claimed_algorithms, decode_in, resolve, versions
from optimizer_conformance.conformance.candidates.engines.keras2 import tf_variables
from optimizer_conformance.conformance.model import encode
from optimizer_conformance.reference.rules import RULES

# What OptimizerV2 takes beyond its subclasses' own arguments.
LEGACY_KWARGS = {"clipnorm", "global_clipnorm", "clipvalue", "lr", "decay", "name"}


class LegacyEngine:
    """``tf_keras.optimizers.legacy`` optimizers (TF 2.0 semantics): ``apply_gradients`` on ``tf.Variable``."""

    def __init__(self, target):
        import tensorflow as tf

        self.tf = tf
        self.target = target
        self.obj = resolve(target)
        self.accepted = self._accepted()  # read once: every spec asks

    def describe(self) -> dict:
        return {"name": self.target, "algorithms": list(claimed_algorithms(self.obj)),
                "dtypes": ["float32", "float64", "float16"], "versions": versions(), "backend": "tf_keras",
                "library": "tf_keras"}

    def api_subject(self, algorithm):
        return None, "the API checks compare with Keras 3; tf_keras legacy optimizers have another API"

    def reference_rejects(self, spec: dict) -> str | None:
        """What the legacy optimizers (OptimizerV2) do not have: an argument their constructor does not take (EMA,
        weight decay, accumulation, loss_scale_factor), Keras 3's LossScaleOptimizer and overwrite_with_gradient,
        exclusions from a decay they do not have; and they are given dense gradients here."""
        if spec.get("sparse_gradients"):
            return "the legacy optimizers are given dense gradients here"
        if spec.get("variable_dtypes"):
            return "the legacy optimizers are given variables of one dtype here"
        accepted = self.accepted
        defaults = RULES[spec["algorithm"]].all_defaults  # a full get_config() names every Keras 3 argument
        unknown = sorted(k for k, v in spec["config"].items()
                         if k not in accepted and v not in (None, False) and v != defaults.get(k))
        if unknown:
            return f"tf_keras's legacy optimizers take no {', '.join(unknown)}"
        for entry in ("loss_scale_optimizer", "overwrite_with_gradient", "exclude"):
            if spec.get(entry):
                return f"tf_keras's legacy optimizers have no {entry}"
        return None

    def _accepted(self) -> set[str]:
        """The constructor's arguments: named by any ``__init__`` of its classes (a subclass may take ``**kwargs``
        and pass them on), and OptimizerV2's own keyword arguments."""
        named = {name for cls in getattr(self.obj, "__mro__", (type(self.obj),))
                 for name, p in inspect.signature(cls.__init__).parameters.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} if isinstance(self.obj, type) else set()
        return named | LEGACY_KWARGS

    def run(self, spec) -> list[dict]:
        tf, dtype = self.tf, spec["dtype"]
        config = dict(spec["config"])
        if "decay" in config:
            config["schedule_decay"] = config.pop("decay")
        accepted = self.accepted
        config = {k: v for k, v in config.items() if v is not None and k in accepted}  # Keras 3's defaults dropped
        if isinstance(config.get("learning_rate"), dict):  # a serialized schedule: tf_keras makes it
            import tf_keras

            config["learning_rate"] = tf_keras.optimizers.schedules.deserialize(config["learning_rate"])
        announce("the constructor")
        opt = self.obj(**config)
        variables = tf_variables(spec, dtype)
        labels = [name for name, _, _ in spec["variables"]]
        states = []
        for k, step in enumerate(spec["gradients"], start=1):
            pairs = [(tf.constant(decode_in(g, v.shape, dtype)), v) for g, v in zip(step, variables) if g is not None]
            announce("apply_gradients", k)
            opt.apply_gradients(pairs)
            out = {f"variables/{label}": encode(v.numpy()) for label, v in zip(labels, variables)}
            for slot, key in (("momentum", "m"), ("velocity", "v")):
                for label, v in zip(labels, variables):
                    try:
                        out[f"{slot}/{label}"] = encode(opt.get_slot(v, key).numpy())
                    except (KeyError, ValueError):
                        pass
            for w in opt.weights:
                if "momentum_cache" in w.name:
                    out["momentum_cache"] = encode(w.numpy())
            out["iterations"] = [float(int(opt.iterations.numpy())).hex()]
            states.append(out)
        return states
