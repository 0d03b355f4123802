"""torch.optim's Adam, AdamW, NAdam and Adamax as candidates by their own names (``torch.optim:AdamW``).

Keras's configuration in torch's arguments: ``lr``, ``betas``, ``eps``, ``amsgrad``; Keras's decoupled weight
decay is torch's ``AdamW`` decay (``decoupled_weight_decay=True`` for ``Adam`` and ``NAdam``), and a variable
excluded from it goes in a parameter group of its own with ``weight_decay=0``; Keras 3's Nadam schedule
``0.96ᵗ`` is ``NAdam(momentum_decay=1)``, the legacy one ``0.96^(0.004 t)`` its default.  A ``None`` gradient is
``param.grad = None``: torch skips that parameter, its own step count included.  The modes (``--compile``) are
torch's implementations: ``eager`` the for-loop one (``foreach=False``), ``foreach``, and ``fused`` (Adam and
AdamW).  The state is read from ``optimizer.state``: ``exp_avg`` is Keras's momentum, ``exp_avg_sq`` its velocity,
``max_exp_avg_sq`` its velocity_hat, ``exp_inf`` Adamax's norm, ``mu_product`` Nadam's momentum product.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from optimizer_conformance.conformance.candidates.builtin.common import (
    excluded_from_decay,
    in_dialect,
    require_mode,
    training_loop_lacks,
)

# torch.optim's class -> the rules it computes (under the arguments below).
CLASSES = {"Adam": ("adam", "torch-adam"), "AdamW": ("adamw", "torch-adamw"),
           "NAdam": ("nadam", "nadam-legacy", "torch-nadam"), "Adamax": ("adamax",)}
# NAdam's momentum_decay ψ for each Nadam rule (μ_t = β₁·(1 − ½·0.96^(ψ·t))), and the quantity its product is.
MOMENTUM_DECAY = {"nadam": lambda config: 1.0, "nadam-legacy": lambda config: config["decay"]}
PRODUCT = {"nadam": "u_product", "nadam-legacy": "momentum_cache"}
# torch's state entry -> Keras's slot name.
SLOTS = {"exp_avg": "momentum", "exp_avg_sq": "velocity", "max_exp_avg_sq": "velocity_hat", "exp_inf": "norm"}
CONVENTIONS = {"Adam": ("epsilon-after-bias-correction", "step-count-per-variable"),
               "AdamW": ("epsilon-after-bias-correction", "step-count-per-variable"),
               "NAdam": ("momentum-product-in-float32", "step-count-per-variable"),
               "Adamax": ("adamax-epsilon-inside-max", "step-count-per-variable")}
MODES = {"eager": "the for-loop implementation, foreach=False", "foreach": "foreach=True",
         "fused": "fused=True (Adam, AdamW)"}


def is_torch_optimizer(obj: Any) -> bool:
    """One of the torch.optim classes this adapter knows (or a subclass of one)."""
    if not isinstance(obj, type) or not any(c.__module__.startswith("torch.optim") for c in obj.__mro__):
        return False
    return _known_base(obj) is not None


def _known_base(cls: type) -> str | None:
    return next((c.__name__ for c in cls.__mro__ if c.__module__.startswith("torch.optim") and c.__name__ in CLASSES),
                None)


class TorchOptimAdapter:
    """A torch.optim class, run as PyTorch users run it, behind the adapter protocol."""

    def __init__(self, cls: type, target: str, compile: str) -> None:
        import torch

        self.arguments = inspect.signature(cls.__init__).parameters
        if compile == "fused" and "fused" not in self.arguments:
            raise ValueError(f"--compile 'fused' is not a mode of {target}: torch {torch.__version__} has no fused "
                             f"{cls.__name__}; accepted: eager, foreach")
        require_mode(compile, MODES, target)
        self.torch, self.cls, self.mode, self.base = torch, cls, compile, _known_base(cls)
        self.algorithms = CLASSES[self.base]
        self.dtypes = ("float32", "float64", "float16", "bfloat16")
        self.floatx = "float64"  # a float learning rate is a Python float, rounded where it meets a variable
        self.conformance_lacks = training_loop_lacks("torch.optim")
        # Where torch.optim computes otherwise than Keras (tried first, and together, by a diagnosis).
        self.conformance_conventions = CONVENTIONS.get(self.base, ())

    def cannot_run(self, algorithm: str, config: dict[str, Any]) -> str | None:
        if in_dialect(algorithm, "torch"):
            return None
        if config.get("weight_decay") and "decoupled_weight_decay" not in self.arguments and self.base != "AdamW":
            return (f"torch.optim.{self.cls.__name__}'s weight_decay is an L2 penalty added to the gradient, not "
                    "Keras's decoupled decay, and it has no decoupled_weight_decay")
        return None

    def _tensor(self, array: np.ndarray, dtype: str):
        # NumPy has no bfloat16 of its own: through float32, exactly (the values are bfloat16 numbers).
        return self.torch.from_numpy(np.asarray(array, dtype=np.float32 if dtype == "bfloat16" else array.dtype)
                                     .copy()).to(getattr(self.torch, dtype))

    def start(self, algorithm, config, variables, dtype, exclude):
        self.algorithm, self.dtype = algorithm, dtype
        self.names = [name for name, _ in variables]
        self.params = [self.torch.nn.Parameter(self._tensor(array, dtype)) for _, array in variables]
        if in_dialect(algorithm, "torch"):  # the configuration is in torch's own arguments already
            arguments = {key: tuple(value) if key == "betas" else value for key, value in config.items()}
            self.opt = self.cls(self.params, **arguments, **self._mode())
            self.steps = 0
            return
        arguments: dict[str, Any] = {"lr": config["learning_rate"], "betas": (config["beta_1"], config["beta_2"]),
                                     "eps": config["epsilon"]}
        if "amsgrad" in self.arguments:
            arguments["amsgrad"] = bool(config.get("amsgrad"))
        if algorithm in MOMENTUM_DECAY:
            arguments["momentum_decay"] = MOMENTUM_DECAY[algorithm](config)
        decay = config.get("weight_decay") or 0.0
        if decay and "decoupled_weight_decay" in self.arguments:
            arguments["decoupled_weight_decay"] = True
        arguments.update(self._mode())
        excluded = excluded_from_decay(self.names, exclude)
        groups = [{"params": [p for p, out in zip(self.params, excluded) if out == skip],
                   "weight_decay": 0.0 if skip else decay} for skip in (False, True)]
        self.opt = self.cls([g for g in groups if g["params"]], **arguments)
        self.steps = 0

    def _mode(self) -> dict[str, bool]:
        return {"fused": True} if self.mode == "fused" else {"foreach": self.mode == "foreach"}

    def apply(self, grads):
        for p, g in zip(self.params, grads):
            p.grad = None if g is None else self._tensor(g, self.dtype)
        self.opt.step()
        self.steps += 1

    def _numpy(self, tensor) -> np.ndarray:
        return tensor.detach().to(self.torch.float64).numpy()

    def state(self):
        if in_dialect(self.algorithm, "torch"):
            return self._own_state()
        out: dict[str, Any] = {"iterations": self.steps}
        for name, p in zip(self.names, self.params):
            out[f"variables/{name}"] = self._numpy(p)
            for entry, slot in SLOTS.items():
                value = self.opt.state.get(p, {}).get(entry)
                if value is not None:
                    out[f"{slot}/{name}"] = self._numpy(value)
        if self.algorithm in PRODUCT:  # per parameter in torch, the same for all while none skips a step
            product = next((s["mu_product"] for s in self.opt.state.values() if "mu_product" in s), None)
            out[PRODUCT[self.algorithm]] = np.float64(1.0) if product is None else self._numpy(product)
        return out

    def _own_state(self) -> dict[str, Any]:
        """The state in torch's own names (the torch dialect): each parameter's entries and its ``step``."""
        out: dict[str, Any] = {"iterations": self.steps}
        for name, p in zip(self.names, self.params):
            out[f"variables/{name}"] = self._numpy(p)
            entries = self.opt.state.get(p, {})
            for entry in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if entry in entries:
                    out[f"{entry}/{name}"] = self._numpy(entries[entry])
            out[f"step/{name}"] = float(entries["step"]) if "step" in entries else 0.0
            if self.base == "NAdam":
                product = entries.get("mu_product")
                out[f"mu_product/{name}"] = 1.0 if product is None else self._numpy(product)
        return out

