"""Keras's six learning-rate schedules evaluated in float64 from their ``get_config()``.

Keras evaluates them in float32; float64 is closer to the exact value, which the
oracle's budgets (derived for a float32 evaluation) accept.
"""

from __future__ import annotations

import math
from typing import Any


def learning_rate(schedule: dict[str, Any], step: int) -> float:
    """The value of a serialized schedule (``{"class_name", "config"}``) at the raw step counter."""
    name, c = schedule["class_name"], schedule["config"]
    s = float(step)
    if name == "ExponentialDecay":
        p = s / c["decay_steps"]
        p = math.floor(p) if c.get("staircase") else p
        return c["initial_learning_rate"] * c["decay_rate"] ** p
    if name == "InverseTimeDecay":
        p = s / c["decay_steps"]
        p = math.floor(p) if c.get("staircase") else p
        return c["initial_learning_rate"] / (1 + c["decay_rate"] * p)
    if name == "PiecewiseConstantDecay":
        boundaries = [int(b) for b in c["boundaries"]]
        return float(c["values"][sum(1 for b in boundaries if step > b)])
    if name == "PolynomialDecay":
        decay_steps = float(c["decay_steps"])
        if c.get("cycle", False):
            decay_steps *= 1.0 if s == 0 else math.ceil(s / decay_steps)
        else:
            s = min(s, decay_steps)
        end = c.get("end_learning_rate", 0.0001)
        return (c["initial_learning_rate"] - end) * (1 - s / decay_steps) ** c.get("power", 1.0) + end
    if name == "CosineDecay":
        alpha, decay_steps = c.get("alpha", 0.0), float(c["decay_steps"])
        target, warmup = c.get("warmup_target"), float(c.get("warmup_steps", 0))

        def decayed(x, start):
            return start * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * x / decay_steps)) + alpha)

        if target is None:
            return decayed(min(s, decay_steps), c["initial_learning_rate"])
        s = min(s, decay_steps + warmup)
        if s < warmup:
            return (target - c["initial_learning_rate"]) * (s / warmup) + c["initial_learning_rate"]
        return decayed(s - warmup, target)
    if name == "CosineDecayRestarts":
        t_mul, m_mul, alpha = c.get("t_mul", 2.0), c.get("m_mul", 1.0), c.get("alpha", 0.0)
        fraction = s / c["first_decay_steps"]
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul))
            fraction = (fraction - (1 - t_mul**restart) / (1 - t_mul)) / t_mul**restart
        cosine = 0.5 * m_mul**restart * (1 + math.cos(math.pi * fraction))
        return c["initial_learning_rate"] * ((1 - alpha) * cosine + alpha)
    raise ValueError(f"learning_rate: unknown schedule class_name {name!r}")
