"""What the built-in adapters share: the features an optimizer library leaves to the training loop, Keras's
weight-decay exclusions, the modes a library runs in."""

from __future__ import annotations

import re
from typing import Any

# Keras's apply() does these; torch.optim and optax leave them to the training loop (clip_grad_norm_,
# optax.chain(clip_by_global_norm(...)), an EMA of their own, ...), or have no such thing.
TRAINING_LOOP = ("use_ema", "ema_overwrite_frequency", "gradient_accumulation_steps", "clipnorm", "global_clipnorm",
                 "clipvalue", "loss_scale_factor", "learning_rate_schedule", "loss_scale_optimizer", "constraints",
                 "overwrite_with_gradient", "sparse_gradients")


def training_loop_lacks(library: str) -> dict[str, str]:
    """``conformance_lacks`` for a library whose optimizers are the update rule and weight decay alone."""
    return {feature: f"{library}'s optimizers leave it to the training loop (not part of the optimizer)"
            for feature in TRAINING_LOOP}


def excluded_from_decay(names: list[str], exclude: dict[str, Any]) -> list[bool]:
    """Keras's ``exclude_from_weight_decay``: a variable listed by index, or whose name a pattern searches."""
    indices = set(exclude.get("var_list") or ())
    patterns = [re.compile(p) for p in exclude.get("var_names") or ()]
    return [i in indices or any(p.search(name) for p in patterns) for i, name in enumerate(names)]


def require_mode(compile: str, modes: dict[str, str], target: str) -> None:
    """``compile`` must be one of the library's ``modes`` (mode -> what it runs)."""
    if compile not in modes:
        accepted = ", ".join(f"{m} ({what})" for m, what in modes.items())
        raise ValueError(f"--compile {compile!r} is not a mode of {target}; accepted: {accepted}")


def in_dialect(algorithm: str, dialect: str) -> bool:
    """Whether ``algorithm`` is one of ``dialect``'s own rules (torch's, optax's), not Keras's run through the library
    (its configuration and state are then in the library's own names)."""
    from optimizer_conformance.reference.rules import RULES

    return RULES[algorithm].dialect.name == dialect
