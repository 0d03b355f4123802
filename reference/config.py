"""Optimizer configurations in Keras's ``get_config()`` form, validated as Keras validates them.

An oracle run is described by the same dictionary a Keras user already has:
``keras.optimizers.Adam(...).get_config()``.  Missing keys take Keras's
defaults (each rule's, :mod:`reference.rules`); every rule Keras enforces in its constructor is enforced here, with
``ValueError`` naming the argument and what it accepts.
"""

from __future__ import annotations

from typing import Any

from optimizer_conformance.reference.rules import ALGORITHMS, Rule, rule_for
from optimizer_conformance.reference.rules.descriptor import require_number
from optimizer_conformance.reference.schedules import LearningRateSchedule, deserialize


def normalize(algorithm: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration: the rule's defaults (:mod:`reference.rules`) completed with ``config``, validated.

    ``learning_rate`` may be a float, a schedule (a
    :class:`~reference.schedules.LearningRateSchedule` or its Keras
    serialization) or a callable taking no argument, where the rule's dialect has schedules.
    """
    rule = rule_for(algorithm)
    config = dict(config or {})
    for key in rule.dialect.ignored:
        config.pop(key, None)
    for alias, key in rule.aliases.items():
        if alias in config:
            config[key] = config.pop(alias)
    full = rule.all_defaults
    unknown = set(config) - set(full)
    if unknown:
        raise ValueError(f"Argument(s) not recognized: {sorted(unknown)} (accepted: {sorted(full)})")
    full.update(config)
    if rule.dialect.validate is not None:  # a library of its own (torch.optim): its constructor's checks
        rule.dialect.validate(full)
        if rule.validate is not None:
            rule.validate(full)
        return full
    _validate(rule, full)
    return full


def _validate(rule: Rule, c: dict[str, Any]) -> None:
    lr = c["learning_rate"]
    if isinstance(lr, dict):
        c["learning_rate"] = deserialize(lr)
    elif not isinstance(lr, (LearningRateSchedule, float)) and not callable(lr):
        raise ValueError(
            "`learning_rate` must be a float, a LearningRateSchedule (or its serialization) "
            f"or a callable; got {lr!r}"
        )
    if "schedules" not in rule.dialect.pipeline and not isinstance(c["learning_rate"], float):
        raise ValueError(f"learning_rate: {rule.name} ({rule.dialect.name}) takes a float only")
    for key in ("beta_1", "beta_2", "epsilon"):
        require_number(c, key)
    if rule.validate is not None:
        rule.validate(c)
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        require_number(c, key, allow_none=True)
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if c[k] is not None]
    if len(clips) > 1:
        raise ValueError(
            "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; "
            f"got {', '.join(f'{k}={c[k]!r}' for k in clips)}"
        )
    if rule.weight_decay_required and c["weight_decay"] is None:
        raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
    for key in ("weight_decay", "loss_scale_factor"):
        if key in c:
            require_number(c, key, allow_none=True)
    if not isinstance(c.get("amsgrad", False), bool):
        raise ValueError(f"`amsgrad` must be a bool; got {c['amsgrad']!r}")
    steps = c.get("gradient_accumulation_steps")
    if steps:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(
                f"`gradient_accumulation_steps` must be an integer >= 2. Received: "
                f"gradient_accumulation_steps={steps!r}"
            )
    if c.get("use_ema"):
        require_number(c, "ema_momentum")
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
    key = rule_for(algorithm).dialect.learning_rate_key
    if isinstance(out[key], LearningRateSchedule):
        out[key] = out[key].serialize()
    return out


__all__ = ["ALGORITHMS", "get_config", "normalize"]
