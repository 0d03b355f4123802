"""Optimizer configurations in Keras's ``get_config()`` form, validated as Keras validates them.

An oracle run is described by the same dictionary a Keras user already has:
``keras.optimizers.Adam(...).get_config()``.  Missing keys take Keras's
defaults; every rule Keras enforces in its constructor is enforced here, with
``ValueError`` naming the argument and what it accepts.
"""

from __future__ import annotations

import math
from typing import Any

from optimizer_conformance.reference.schedules import LearningRateSchedule, deserialize

BASE_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.001,
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}

ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"name": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "adamw": {
        "name": "adamw",
        "weight_decay": 0.004,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    },
    "nadam": {"name": "nadam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    # tf_keras.optimizers.legacy.Nadam: its get_config writes the schedule decay as "decay".
    "nadam-legacy": {
        "name": "Nadam",
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "decay": 0.004,
    },
    "adamax": {"name": "adamax", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "lamb": {"name": "lamb", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "schedule-free-adamw": {"name": "schedule_free_adam_w", "learning_rate": 0.0025, "beta_1": 0.9, "beta_2": 0.999,
                            "epsilon": 1e-8, "warmup_steps": 0},
}

# The legacy optimizer has none of Keras 3's pipeline extras.
LEGACY_KEYS = {"learning_rate", "clipnorm", "global_clipnorm", "clipvalue", "name", "beta_1", "beta_2",
               "epsilon", "decay"}

ALGORITHMS = tuple(ALGORITHM_DEFAULTS)


def _number(config: dict, key: str, *, allow_none: bool = False) -> None:
    value = config[key]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        accepted = "a finite number or None" if allow_none else "a finite number"
        raise ValueError(f"`{key}` must be {accepted}; got {value!r}")


def normalize(algorithm: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration: Keras's defaults completed with ``config``, validated.

    ``learning_rate`` may be a float, a schedule (a
    :class:`~reference.schedules.LearningRateSchedule` or its Keras
    serialization) or a callable taking no argument.
    """
    if algorithm not in ALGORITHM_DEFAULTS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}; got {algorithm!r}")
    config = dict(config or {})
    config.pop("decay", None) if algorithm != "nadam-legacy" else None
    if algorithm == "nadam-legacy":
        if "schedule_decay" in config:
            config["decay"] = config.pop("schedule_decay")
        unknown = set(config) - LEGACY_KEYS
        full = {**{k: BASE_DEFAULTS[k] for k in ("learning_rate", "clipnorm", "global_clipnorm", "clipvalue")},
                **ALGORITHM_DEFAULTS[algorithm]}
    else:
        full = {**BASE_DEFAULTS, **ALGORITHM_DEFAULTS[algorithm]}
        unknown = set(config) - set(full)
    if unknown:
        raise ValueError(f"Argument(s) not recognized: {sorted(unknown)} (accepted: {sorted(full)})")
    full.update(config)
    _validate(algorithm, full)
    return full


def _validate(algorithm: str, c: dict[str, Any]) -> None:
    lr = c["learning_rate"]
    if isinstance(lr, dict):
        c["learning_rate"] = deserialize(lr)
    elif not isinstance(lr, (LearningRateSchedule, float)) and not callable(lr):
        raise ValueError(
            "`learning_rate` must be a float, a LearningRateSchedule (or its serialization) "
            f"or a callable; got {lr!r}"
        )
    for key in ("beta_1", "beta_2", "epsilon"):
        _number(c, key)
    if algorithm == "nadam-legacy":
        _number(c, "decay")
        if c["epsilon"] == 0:
            # tf_keras legacy: `epsilon or backend.epsilon()`.
            c["epsilon"] = 1e-7
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        _number(c, key, allow_none=True)
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if c[k] is not None]
    if len(clips) > 1:
        raise ValueError(
            "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; "
            f"got {', '.join(f'{k}={c[k]!r}' for k in clips)}"
        )
    if algorithm == "nadam-legacy":
        return
    if "warmup_steps" in c:
        _number(c, "warmup_steps")
    if algorithm == "adamw" and c["weight_decay"] is None:
        raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
    _number(c, "weight_decay", allow_none=True)
    _number(c, "loss_scale_factor", allow_none=True)
    if not isinstance(c["amsgrad"] if "amsgrad" in c else False, bool):
        raise ValueError(f"`amsgrad` must be a bool; got {c['amsgrad']!r}")
    steps = c["gradient_accumulation_steps"]
    if steps:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(
                f"`gradient_accumulation_steps` must be an integer >= 2. Received: "
                f"gradient_accumulation_steps={steps!r}"
            )
    if c["use_ema"]:
        _number(c, "ema_momentum")
        if not 0 <= c["ema_momentum"] <= 1:
            raise ValueError(
                f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={c['ema_momentum']!r}"
            )
        freq = c["ema_overwrite_frequency"]
        if freq and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
            raise ValueError(
                "`ema_overwrite_frequency` must be an integer >= 1 or None. "
                f"Received: ema_overwrite_frequency={freq!r}"
            )


def get_config(algorithm: str, config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as Keras's ``get_config()`` writes it (schedules serialized)."""
    out = dict(config)
    lr = out["learning_rate"]
    if isinstance(lr, LearningRateSchedule):
        out["learning_rate"] = lr.serialize()
    return out
