"""The rules Keras 3's optimizer constructors enforce, and nothing more, so that this package accepts and
rejects exactly the arguments Keras does (``optconf check ... --checks api`` holds it to that).

Keras checks few things when an optimizer is made; the rest (a string ``beta_1``, say) fails later, in
the first step.  The comparisons below are written as Keras writes them, so a value that makes Keras's
comparison raise (a string step count: ``TypeError``) raises the same exception here.
"""

from __future__ import annotations

import collections
import math
import re
import warnings
from typing import Any

from optimizer_conformance.fast_optimizers.schedules import validate as validate_schedule

_NAME_COUNTS: collections.Counter = collections.Counter()


def auto_name(class_name: str) -> str:
    """Keras's rule for ``name=None``: the snake-cased class name, made unique (``adam``, ``adam_1``, ...)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    count = _NAME_COUNTS[name]
    _NAME_COUNTS[name] += 1
    return name if count == 0 else f"{name}_{count}"


def is_schedule(value: Any) -> bool:
    """A Keras ``LearningRateSchedule`` (checked by class, so Keras need not be imported here)."""
    return any(c.__name__ == "LearningRateSchedule" and c.__module__.startswith("keras")
               for c in type(value).__mro__)


def validate(config: dict[str, Any], extra: dict[str, Any], adamw: bool = False) -> None:
    """Raise as Keras's constructor raises on ``config`` (the named arguments) and ``extra`` (``**kwargs``)."""
    extra = dict(extra)
    if extra.pop("decay", None) is not None:
        warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=3)
    if extra:
        raise ValueError(f"Argument(s) not recognized: {extra}")
    steps = config["gradient_accumulation_steps"]
    if steps and not steps >= 2:
        raise ValueError(f"`gradient_accumulation_steps` must be an integer >= 2. Received: "
                         f"gradient_accumulation_steps={steps}")
    if config["use_ema"]:
        momentum, frequency = config["ema_momentum"], config["ema_overwrite_frequency"]
        if momentum > 1 or momentum < 0:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={momentum}")
        if frequency and (not isinstance(frequency, int) or frequency < 1):
            raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                             f"ema_overwrite_frequency={frequency}")
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if config[k] is not None]
    if len(clips) > 1:
        raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                         + ", ".join(f"{k}={config[k]}" for k in clips))
    lr = config["learning_rate"]
    if not is_schedule(lr) and not callable(lr) and not isinstance(lr, float):
        raise ValueError("Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a "
                         f"callable (that takes in the current iteration value and returns the corresponding "
                         f"learning rate value). Received instead: learning_rate={lr}")
    if adamw and config["weight_decay"] is None:
        raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")


def serialize_callable(fn: Any) -> dict[str, Any]:
    """How Keras's ``get_config()`` writes a plain function learning rate."""
    return {"module": "builtins", "class_name": "function", "config": getattr(fn, "__name__", repr(fn)),
            "registered_name": "function"}


# tf_keras.optimizers.legacy.Nadam: its arguments and defaults (its get_config writes the schedule decay as
# "decay"), and the checks its constructor makes.
LEGACY_DEFAULTS: dict[str, Any] = {"name": "Nadam", "learning_rate": 0.001, "decay": 0.004, "beta_1": 0.9,
                                   "beta_2": 0.999, "epsilon": 1e-7, "clipnorm": None, "global_clipnorm": None,
                                   "clipvalue": None}


def legacy_config(config: dict[str, Any]) -> dict[str, Any]:
    """The legacy Nadam's full configuration, validated as tf_keras validates it."""
    config = dict(config)
    if "schedule_decay" in config:
        config["decay"] = config.pop("schedule_decay")
    unknown = set(config) - set(LEGACY_DEFAULTS)
    if unknown:
        raise ValueError(f"Argument(s) not recognized: {sorted(unknown)} (accepted: {sorted(LEGACY_DEFAULTS)})")
    full = {**LEGACY_DEFAULTS, **config}
    for key in ("beta_1", "beta_2", "epsilon", "decay"):
        _finite(key, full[key])
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        if full[key] is not None:
            _finite(key, full[key])
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if full[k] is not None]
    if len(clips) > 1:
        raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; got "
                         + ", ".join(f"{k}={full[k]!r}" for k in clips))
    lr = full["learning_rate"]
    if isinstance(lr, dict):
        validate_schedule(lr)
    elif isinstance(lr, bool) or not (isinstance(lr, float) or callable(lr) or is_schedule(lr)):
        raise ValueError(f"`learning_rate` must be a float, a schedule (or its serialization) or a callable; "
                         f"got {lr!r}")
    if full["epsilon"] == 0:
        full["epsilon"] = 1e-7  # tf_keras legacy: `epsilon or backend.epsilon()`
    return full


def _finite(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{key}` must be a finite number; got {value!r}")
