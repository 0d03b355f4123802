"""Built-in adapters for the real libraries people port from, so they are candidates by their own names:
``optconf check torch.optim:AdamW --compile fused``, ``optconf check optax:adamw --compile jit``.

Each maps Keras's configuration (what the harness asks for: ``get_config()``'s keys) to the library's own
arguments, runs the library as its users do, and reports its state under Keras's quantity names; what the library
does not have (an EMA, gradient accumulation, clipping inside the optimizer, ...) it declares lacking, so those
trajectories are not applicable with the reason.  A library judged against a rule it computes otherwise fails, and
the diagnosis names how (``epsilon-after-bias-correction``, ``step-count-per-variable``, ...).

Imports: the adapter protocol's helpers only; each library is imported by its adapter, in the worker.
"""

from __future__ import annotations

from typing import Any

from optimizer_conformance.conformance.candidates.builtin.optax_transforms import OptaxAdapter, is_optax
from optimizer_conformance.conformance.candidates.builtin.torch_optim import TorchOptimAdapter, is_torch_optimizer


def builtin_adapter(obj: Any, target: str, compile: str) -> Any | None:
    """The built-in adapter for ``obj`` (what ``target`` names), run in ``compile`` mode; None when ``obj`` is no
    library this package knows."""
    if is_torch_optimizer(obj):
        return TorchOptimAdapter(obj, target, compile)
    if is_optax(obj):
        return OptaxAdapter(obj, target, compile)
    return None
