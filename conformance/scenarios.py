"""Trajectories that exercise every rule and pipeline feature, shared by the agreement tests."""

from __future__ import annotations

import numpy as np
from optimizer_conformance.conformance.inputs import centered, spread
from optimizer_conformance.conformance.trajectory import make_spec
from optimizer_conformance.reference.formats import numpy_dtype


def _data(seed: int, shapes, steps: int, *, spike: bool = False, magnitudes=(-13, 3)):
    rng = np.random.default_rng(seed)
    variables = [(name, centered(rng, shape, 1)) for name, shape in shapes]
    grads = []
    for k in range(steps):
        step = []
        for _, shape in shapes:
            g = spread(rng, shape, *magnitudes)
            if spike:
                g = np.ldexp(g, 5 if k == 1 else -3)
            step.append(g)
        grads.append(step)
    return variables, grads


SHAPES = [("kernel", (3, 4)), ("bias", (5,))]

SCENARIOS = {
    "adam": ("adam", {"learning_rate": 0.01}, {}),
    "adam-defaults": ("adam", {}, {}),
    "adam-amsgrad-spike": ("adam", {"learning_rate": 0.01, "amsgrad": True}, {"spike": True}),
    "adam-large-epsilon": ("adam", {"learning_rate": 0.1, "epsilon": 0.1}, {}),
    "adamw-exclude-bias": ("adamw", {"learning_rate": 0.05, "weight_decay": 0.1}, {"exclude": {"var_names": ["bias"]}}),
    "nadam": ("nadam", {"learning_rate": 0.01}, {}),
    "nadam-weight-decay": ("nadam", {"learning_rate": 0.02, "weight_decay": 0.05}, {}),
    "adam-clipnorm-loss-scale": ("adam", {"learning_rate": 0.01, "clipnorm": 0.5, "loss_scale_factor": 128.0}, {}),
    "adam-global-clipnorm": ("adam", {"learning_rate": 0.01, "global_clipnorm": 1.0}, {}),
    "nadam-clipvalue": ("nadam", {"learning_rate": 0.01, "clipvalue": 0.05}, {}),
    "adam-accumulation-ema-exponential": (
        "adam",
        {
            "learning_rate": {"class_name": "ExponentialDecay",
                              "config": {"initial_learning_rate": 0.01, "decay_steps": 3, "decay_rate": 0.5}},
            "gradient_accumulation_steps": 3,
            "use_ema": True,
            "ema_momentum": 0.9,
        },
        {"steps": 12},
    ),
    "adamw-cosine-warmup-ema-overwrite": (
        "adamw",
        {
            "learning_rate": {"class_name": "CosineDecay",
                              "config": {"initial_learning_rate": 0.001, "decay_steps": 6,
                                         "warmup_target": 0.02, "warmup_steps": 3, "alpha": 0.1}},
            "use_ema": True,
            "ema_overwrite_frequency": 4,
        },
        {"steps": 10, "finalize": True},
    ),
    "nadam-accumulation-piecewise": (
        "nadam",
        {
            "learning_rate": {"class_name": "PiecewiseConstantDecay",
                              "config": {"boundaries": [2, 5], "values": [0.01, 0.005, 0.001]}},
            "gradient_accumulation_steps": 2,
        },
        {"steps": 10},
    ),
    "adam-polynomial-cycle": (
        "adam",
        {"learning_rate": {"class_name": "PolynomialDecay",
                           "config": {"initial_learning_rate": 0.01, "decay_steps": 3, "power": 2.0, "cycle": True}}},
        {"steps": 8},
    ),
    "adam-inverse-time-staircase": (
        "adam",
        {"learning_rate": {"class_name": "InverseTimeDecay",
                           "config": {"initial_learning_rate": 0.01, "decay_steps": 2, "decay_rate": 0.5,
                                      "staircase": True}}},
        {"steps": 8},
    ),
    "adam-cosine-restarts": (
        "adam",
        {"learning_rate": {"class_name": "CosineDecayRestarts",
                           "config": {"initial_learning_rate": 0.01, "first_decay_steps": 2, "m_mul": 0.5}}},
        {"steps": 10},
    ),
    "adam-none-gradients": ("adam", {"learning_rate": 0.01, "use_ema": True}, {"none": True}),
}


def spec(name: str, dtype: str, *, compile: str = "eager") -> dict:
    algorithm, config, options = SCENARIOS[name]
    steps = options.get("steps", 6)
    variables, grads = _data(sum(map(ord, name)), SHAPES, steps, spike=options.get("spike", False))
    if options.get("none"):
        for k in range(1, steps, 2):
            grads[k][1] = None
    held = numpy_dtype(dtype)
    variables = [(n, np.asarray(a).astype(held).astype(np.float64)) for n, a in variables]
    grads = [[None if g is None else np.asarray(g).astype(held).astype(np.float64) for g in step] for step in grads]
    return make_spec(algorithm, config, dtype, variables, grads, exclude=options.get("exclude"),
                     compile=compile, finalize=options.get("finalize", False))
