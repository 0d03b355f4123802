"""Adapters that let the project's harness certify this implementation (see ``conformance/candidates/protocol.py``).

    optconf check optimizer_conformance.fast_optimizers.conformance:NumpyAdapter
    optconf check optimizer_conformance.fast_optimizers.conformance:TorchAdapter
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer_conformance.fast_optimizers.optimizer import OPTIMIZERS


class NumpyAdapter:
    algorithms = ("adam", "adamw", "nadam", "nadam-legacy")
    dtypes = ("float32", "float64")

    def optimizer_class(self, algorithm: str):
        """The Keras-API class the API checks compare with Keras (``optconf check ... --checks api``)."""
        return OPTIMIZERS[algorithm]

    def to_array(self, x: np.ndarray, dtype: str):
        return np.array(x, dtype=dtype)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def start(self, algorithm: str, config: dict[str, Any], variables, dtype: str, exclude: dict) -> None:
        config = dict(config)
        if algorithm == "nadam-legacy" and "decay" in config:
            config["schedule_decay"] = config.pop("decay")
        self.optimizer = OPTIMIZERS[algorithm].from_config(config)
        self.names = [name for name, _ in variables]
        self.dtype = dtype
        self.params = [self.to_array(v, dtype) for _, v in variables]
        self.optimizer.build(self.params, names=self.names)
        if exclude:
            self.optimizer.exclude_from_weight_decay(var_list=exclude.get("var_list"),
                                                     var_names=exclude.get("var_names"))

    def apply(self, grads) -> None:
        self.optimizer.apply([None if g is None else self.to_array(g, self.dtype) for g in grads], self.params)

    def finalize(self) -> None:
        self.optimizer.finalize_variable_values()

    def state(self) -> dict[str, Any]:
        labels = [n if self.names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(self.names)]
        out: dict[str, Any] = {f"variables/{label}": self.to_numpy(p) for label, p in zip(labels, self.params)}
        for slot, values in self.optimizer.slots.items():
            for label, value in zip(labels, values):
                out[f"{slot}/{label}"] = self.to_numpy(value)
        if self.optimizer.algorithm == "nadam":
            out["u_product"] = np.array(self.optimizer._product)
        elif self.optimizer.algorithm == "nadam-legacy":
            out["momentum_cache"] = np.array(self.optimizer._product)
        out["iterations"] = self.optimizer.iterations
        return out


class TorchAdapter(NumpyAdapter):
    """The same implementation on torch CPU tensors (the array-API path)."""

    def optimizer_class(self, algorithm: str):
        """The Keras-API class the API checks compare with Keras (``optconf check ... --checks api``)."""
        return OPTIMIZERS[algorithm]

    def to_array(self, x: np.ndarray, dtype: str):
        import torch

        return torch.tensor(np.asarray(x), dtype=getattr(torch, dtype))

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
