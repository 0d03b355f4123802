"""The engine of ``tf_keras.optimizers.legacy`` optimizers (TF 2.0 semantics): ``apply_gradients`` on
``tf.Variable``."""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import claimed_algorithms, decode_in, resolve, versions
from optimizer_conformance.conformance.model import encode


class LegacyEngine:
    """``tf_keras.optimizers.legacy`` optimizers (TF 2.0 semantics): ``apply_gradients`` on ``tf.Variable``."""

    def __init__(self, target):
        import tensorflow as tf

        self.tf = tf
        self.target = target
        self.obj = resolve(target)

    def describe(self) -> dict:
        return {"name": self.target, "algorithms": list(claimed_algorithms(self.obj)),
                "dtypes": ["float32", "float64", "float16"], "versions": versions(), "backend": "tf_keras",
                "library": "tf_keras"}

    def api_subject(self, algorithm):
        return None, "the API checks compare with Keras 3; tf_keras legacy optimizers have another API"

    def reference_rejects(self, spec: dict) -> str | None:
        """Not Keras-based: every configuration applies (the candidate answers for what it cannot do), but the
        legacy optimizers are given dense gradients here."""
        return "the legacy optimizers are given dense gradients here" if spec.get("sparse_gradients") else None

    def run(self, spec) -> list[dict]:
        tf, dtype = self.tf, spec["dtype"]
        config = dict(spec["config"])
        if "decay" in config:
            config["schedule_decay"] = config.pop("decay")
        config = {k: v for k, v in config.items() if v is not None}
        announce("the constructor")
        opt = self.obj(**config)
        variables = [tf.Variable(decode_in(values, shape, dtype), name=name)
                     for name, shape, values in spec["variables"]]
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
