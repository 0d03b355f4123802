r"""Keras's ``LossScaleOptimizer``: dynamic loss scaling around an inner optimizer (mixed precision).

The wrapper holds a scale ``s`` (a float32 variable, ``initial_scale`` = 2¹⁵ by default) and a counter
``c`` of finite steps (an int variable).  Given the *scaled* gradients ``g`` of one ``apply``::

    some element of some g non-finite (NaN or ±Inf):
        c ← 0,  s ← s · 0.5                  (the step is skipped: nothing of the inner optimizer moves,
                                              not its iterations, accumulators, average or slots)
    otherwise:
        inner.apply(g / s)                   (``None`` gradients and those of variables assigned their
                                              gradient, ``overwrite_with_gradient``, stay as they are)
        c = G − 1:  c ← 0,  s ← s · 2        (G = ``dynamic_growth_steps``)
        else:       c ← c + 1

``s`` is read before it changes.  ``g / s`` follows Keras's type promotion: a float16 or bfloat16 gradient
divided by the float32 scale is a float32 quotient, cast back to the variable's dtype by the inner optimizer
(twice rounded; exact while ``s`` is a power of two and the quotient stays normal).  The inner optimizer's
``loss_scale_factor`` is cleared (Keras does so: the gradients would be unscaled twice).  ``iterations`` is
the inner optimizer's: skipped steps do not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optimizer_conformance.reference.arrays import each
from optimizer_conformance.reference.formats import FLOAT32, FloatFormat
from optimizer_conformance.reference.tracked import Tracked

OPTIONS = ("initial_scale", "dynamic_growth_steps")
DEFAULTS = {"initial_scale": 2.0**15, "dynamic_growth_steps": 2000}


def normalize(options: dict[str, Any]) -> dict[str, Any]:
    """``LossScaleOptimizer``'s own arguments with Keras's defaults; anything else is refused by name."""
    if not isinstance(options, dict):
        raise ValueError(f"loss_scale_optimizer: expected a dict of {', '.join(OPTIONS)}; got {options!r}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"loss_scale_optimizer: unknown option {unknown[0]!r}; accepted: {', '.join(OPTIONS)}")
    out = {**DEFAULTS, **options}
    scale = out["initial_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale < math.inf):
        raise ValueError(f"loss_scale_optimizer.initial_scale: expected a positive finite number; got {scale!r}")
    steps = out["dynamic_growth_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"loss_scale_optimizer.dynamic_growth_steps: expected an integer >= 1; got {steps!r}")
    return {"initial_scale": float(scale), "dynamic_growth_steps": steps}


def all_finite(grads: list[Any]) -> bool:
    """Keras's ``check_finite``: every element of every gradient that is not ``None`` is finite."""
    return all(bool(np.all(np.isfinite(np.asarray(g, dtype=np.float64)))) for g in grads if g is not None)


@dataclass
class DynamicLossScale:
    """The wrapper's state: the scale ``s`` (float32) and the counter ``c`` of finite steps since it changed."""

    initial_scale: float
    dynamic_growth_steps: int
    scale: Tracked = field(init=False)
    step_counter: int = 0

    def __post_init__(self) -> None:
        self.scale = Tracked.rounded(self.initial_scale, FLOAT32)

    def unscale(self, g: list[Tracked], fmt: FloatFormat) -> list[Tracked]:
        """``g / s`` in the promoted dtype (float64, or float32 for narrower gradients), then in ``fmt``."""
        quotient_fmt = fmt if fmt.precision >= FLOAT32.precision else FLOAT32
        s = self.scale.to(quotient_fmt)
        return each(lambda x: (x.to(quotient_fmt) / s).to(fmt), g)

    def after_finite_step(self) -> None:
        """Growth: doubled after ``G`` consecutive finite steps."""
        if self.step_counter == self.dynamic_growth_steps - 1:
            self.step_counter = 0
            self.scale = self._scaled(2)
        else:
            self.step_counter += 1

    def after_non_finite_step(self) -> None:
        """Back-off: the step skipped, the scale halved, the counter reset."""
        self.step_counter = 0
        self.scale = self._scaled(0.5)

    def _scaled(self, factor: float) -> Tracked:
        # float32 arithmetic on the variable: exact for a power of two until it overflows or goes subnormal.
        return Tracked.rounded(FLOAT32.round(self.scale.value * factor), FLOAT32)

    def restore(self, scale: float, step_counter: int) -> None:
        """Continue from a state a candidate holds."""
        self.scale = Tracked.rounded(scale, FLOAT32)
        self.step_counter = int(step_counter)
