"""Keras's six learning-rate schedules, from their ``get_config()`` serialization, evaluated in float32 as
Keras evaluates them (its schedules compute in the dtype of their initial learning rate: float32)."""

from __future__ import annotations

from typing import Any

import numpy as np

f32 = np.float32

# The configuration keys each schedule needs (the others have Keras's defaults).
REQUIRED = {
    "ExponentialDecay": ("initial_learning_rate", "decay_steps", "decay_rate"),
    "InverseTimeDecay": ("initial_learning_rate", "decay_steps", "decay_rate"),
    "PiecewiseConstantDecay": ("boundaries", "values"),
    "PolynomialDecay": ("initial_learning_rate", "decay_steps"),
    "CosineDecay": ("initial_learning_rate", "decay_steps"),
    "CosineDecayRestarts": ("initial_learning_rate", "first_decay_steps"),
}


def validate(schedule: Any) -> None:
    """A serialized schedule this module can evaluate; ``ValueError`` naming the field otherwise."""
    if not isinstance(schedule, dict) or not isinstance(schedule.get("config"), dict):
        raise ValueError(f"learning_rate: a serialized schedule is a dict with 'class_name' and 'config'; got "
                         f"{schedule!r}")
    name, config = schedule.get("class_name"), schedule["config"]
    if name not in REQUIRED:
        raise ValueError(f"learning_rate.class_name: {name!r} is not a Keras schedule; accepted: "
                         f"{', '.join(REQUIRED)}")
    for key in REQUIRED[name]:
        if key not in config:
            raise ValueError(f"learning_rate.config.{key}: missing for {name}")
    if name == "PiecewiseConstantDecay" and len(config["values"]) != len(config["boundaries"]) + 1:
        raise ValueError("learning_rate.config.values: PiecewiseConstantDecay needs one value more than boundaries")


def learning_rate(schedule: dict[str, Any], step: int) -> float:
    """The value of a serialized schedule (``{"class_name", "config"}``) at the raw step counter."""
    name, c = schedule["class_name"], schedule["config"]
    s = f32(step)
    lr0 = f32(c.get("initial_learning_rate", 0.0))
    if name == "ExponentialDecay":
        p = s / f32(c["decay_steps"])
        p = np.floor(p) if c.get("staircase") else p
        return float(lr0 * np.power(f32(c["decay_rate"]), p))
    if name == "InverseTimeDecay":
        p = s / f32(c["decay_steps"])
        p = np.floor(p) if c.get("staircase") else p
        return float(lr0 / (f32(1) + f32(c["decay_rate"]) * p))
    if name == "PiecewiseConstantDecay":
        boundaries = [int(b) for b in c["boundaries"]]
        return float(f32(c["values"][sum(1 for b in boundaries if step > b)]))
    if name == "PolynomialDecay":
        decay_steps = f32(c["decay_steps"])
        if c.get("cycle", False):
            decay_steps = decay_steps * (f32(1) if s == 0 else np.ceil(s / decay_steps))
        else:
            s = min(s, decay_steps)
        end = f32(c.get("end_learning_rate", 0.0001))
        return float((lr0 - end) * np.power(f32(1) - s / decay_steps, f32(c.get("power", 1.0))) + end)
    if name == "CosineDecay":
        alpha, decay_steps = f32(c.get("alpha", 0.0)), f32(c["decay_steps"])
        target, warmup = c.get("warmup_target"), f32(c.get("warmup_steps", 0))

        def decayed(x, start):
            cosine = f32(0.5) * (f32(1) + np.cos(f32(np.pi) * x / decay_steps))
            return start * ((f32(1) - alpha) * cosine + alpha)

        if target is None:
            return float(decayed(min(s, decay_steps), lr0))
        target = f32(target)
        s = min(s, decay_steps + warmup)
        if s < warmup:
            return float((target - lr0) * (s / warmup) + lr0)
        return float(decayed(s - warmup, target))
    if name == "CosineDecayRestarts":
        t_mul, m_mul, alpha = f32(c.get("t_mul", 2.0)), f32(c.get("m_mul", 1.0)), f32(c.get("alpha", 0.0))
        fraction = s / f32(c["first_decay_steps"])
        if t_mul == 1:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            restart = np.floor(np.log(f32(1) - fraction * (f32(1) - t_mul)) / np.log(t_mul))
            fraction = (fraction - (f32(1) - np.power(t_mul, restart)) / (f32(1) - t_mul)) / np.power(t_mul, restart)
        cosine = f32(0.5) * np.power(m_mul, restart) * (f32(1) + np.cos(f32(np.pi) * fraction))
        return float(lr0 * ((f32(1) - alpha) * cosine + alpha))
    raise ValueError(f"learning_rate.class_name: {name!r} is not a Keras schedule; accepted: {', '.join(REQUIRED)}")
