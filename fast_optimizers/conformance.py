"""Adapters that let the project's harness certify this implementation (see ``conformance/candidates/protocol.py``).

    optconf check optimizer_conformance.fast_optimizers.conformance:NumpyAdapter
    optconf check optimizer_conformance.fast_optimizers.conformance:TorchAdapter
    optconf check optimizer_conformance.fast_optimizers.conformance:TorchCudaAdapter   (a GPU: torch CUDA tensors)
    optconf check optimizer_conformance.fast_optimizers.conformance:CupyAdapter        (a GPU: CuPy arrays)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer_conformance.fast_optimizers.constraints import from_config
from optimizer_conformance.fast_optimizers.loss_scale import LossScaleOptimizer
from optimizer_conformance.fast_optimizers.optimizer import OPTIMIZERS


class NumpyAdapter:
    algorithms = tuple(OPTIMIZERS)
    dtypes = ("float32", "float64")

    def optimizer_class(self, algorithm: str):
        """The Keras-API class the API checks compare with Keras (``optconf check ... --checks api``)."""
        return OPTIMIZERS[algorithm]

    def loss_scale_optimizer_class(self):
        """The Keras-API ``LossScaleOptimizer`` the API checks compare with Keras's."""
        return LossScaleOptimizer

    def to_array(self, x: np.ndarray, dtype: str):
        return np.array(x, dtype=dtype)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def given(self, x: np.ndarray, dtype: str):
        """The caller's array itself, as a user hands the port its own arrays (a view stays a view, updated in
        place), where it is of the port's array type and ``dtype``; else a copy in them."""
        return x if isinstance(x, np.ndarray) and x.dtype == np.dtype(dtype) else self.to_array(x, dtype)

    def build_optimizer(self, algorithm: str, config: dict[str, Any]):
        """The optimizer of ``algorithm`` from its Keras ``get_config()``."""
        return OPTIMIZERS[algorithm].from_config(dict(config))

    def start(self, algorithm: str, config: dict[str, Any], variables, dtype: str, exclude: dict) -> None:
        self.optimizer = self.build_optimizer(algorithm, config)
        self.names = [name for name, _ in variables]
        self.dtype = dtype
        self.params = [self.given(v, dtype) for _, v in variables]
        self.optimizer.build(self.params, names=self.names)
        self.exclude = exclude
        self._exclude(exclude)
        self.loss_scale: LossScaleOptimizer | None = None

    def _exclude(self, exclude: dict) -> None:
        if exclude:
            self.optimizer.exclude_from_weight_decay(var_list=exclude.get("var_list"),
                                                     var_names=exclude.get("var_names"))

    def set_variable_options(self, overwrite_with_gradient: list[int], constraints: dict[int, dict]) -> None:
        """Rebuilds the optimizer with Keras's per-variable options (called after ``start``)."""
        self.optimizer = self.build_optimizer(self.optimizer.algorithm, self.optimizer.get_config())
        self.optimizer.set_variable_options(overwrite_with_gradient,
                                            {i: from_config(c) for i, c in constraints.items()})
        self.optimizer.build(self.params, names=self.names)
        self._exclude(self.exclude)

    def set_loss_scale_optimizer(self, initial_scale: float, dynamic_growth_steps: int) -> None:
        """Wraps the optimizer in a dynamic loss scale (called after ``start``)."""
        self.loss_scale = LossScaleOptimizer(self.optimizer, initial_scale, dynamic_growth_steps)

    def apply(self, grads) -> None:
        target = self.loss_scale or self.optimizer
        target.apply([None if g is None else self.given(g, self.dtype) for g in grads], self.params)

    def finalize(self) -> None:
        self.optimizer.finalize_variable_values()

    def state(self) -> dict[str, Any]:
        labels = [n if self.names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(self.names)]
        out: dict[str, Any] = {f"variables/{label}": self.to_numpy(p) for label, p in zip(labels, self.params)}
        for slot, values in self.optimizer.slots.items():
            for label, value in zip(labels, values):
                if value is not None:
                    out[f"{slot}/{label}"] = self.to_numpy(value)
        if self.optimizer.product_name is not None:
            out[self.optimizer.product_name] = np.array(self.optimizer._product)
        if self.loss_scale is not None:
            out["dynamic_scale"] = np.array(self.loss_scale.dynamic_scale)
            out["step_counter"] = np.array(self.loss_scale.step_counter)
        out["iterations"] = self.optimizer.iterations
        return out


class TorchAdapter(NumpyAdapter):
    """The same implementation on torch CPU tensors (the array-API path)."""

    device = "cpu"

    def optimizer_class(self, algorithm: str):
        """The Keras-API class the API checks compare with Keras (``optconf check ... --checks api``)."""
        return OPTIMIZERS[algorithm]

    def to_array(self, x: np.ndarray, dtype: str):
        import torch

        return torch.tensor(np.asarray(x), dtype=getattr(torch, dtype), device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

    def given(self, x: np.ndarray, dtype: str):
        """A tensor over the caller's NumPy array's memory, its strides kept (a view stays a view)."""
        import torch

        return torch.from_numpy(x) if x.dtype == np.dtype(dtype) else self.to_array(x, dtype)


class TorchCudaAdapter(TorchAdapter):
    """The same implementation on torch CUDA tensors (where a GPU is): the array-API path in device memory."""

    device = "cuda"

    def given(self, x: np.ndarray, dtype: str):
        """Device memory cannot be a view of the caller's host array: a copy on the GPU."""
        return self.to_array(x, dtype)


class CupyAdapter(NumpyAdapter):
    """The same implementation on CuPy arrays (where a GPU is): the array-API path in device memory."""

    def to_array(self, x: np.ndarray, dtype: str):
        import cupy

        return cupy.asarray(np.asarray(x), dtype=dtype)

    def to_numpy(self, x) -> np.ndarray:
        import cupy

        return cupy.asnumpy(x) if isinstance(x, cupy.ndarray) else np.asarray(x)

    def given(self, x: np.ndarray, dtype: str):
        """Device memory cannot be a view of the caller's host array: a copy on the GPU."""
        return self.to_array(x, dtype)
