"""A rule of another library (torch.optim's, optax's) run as the Keras rule that computes the same mathematics.

A Keras-style implementation (real Keras, a port of Keras's Adam, the bundled one) can then be checked in another
library's dialect: the spec goes to it in Keras's terms (:func:`keras_spec`, from the rule's
:class:`~reference.rules.descriptor.KerasEquivalent`) and its states come back in the dialect's names
(:func:`from_keras`), where the dialect keeps per variable what Keras keeps once (torch's ``step`` and
``mu_product``: Keras's one count and one product, for every variable).  :func:`to_keras` is the way back, for a
diagnosis that asks whether a failure is Keras's rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optimizer_conformance.reference.rules import RULES


def keras_rules(algorithm: str) -> tuple[str, ...]:
    """The Keras rules that can compute ``algorithm`` (none for a Keras rule itself, or one with no equivalent)."""
    equivalent = RULES[algorithm].keras_equivalent
    return equivalent.rules if equivalent is not None else ()


def reachable(claimed: Iterable[str]) -> list[str]:
    """What an implementation of the ``claimed`` rules computes: those, then every rule of another library that one
    of them computes under some arguments."""
    claimed = list(claimed)
    return claimed + [name for name in RULES if name not in claimed and set(keras_rules(name)) & set(claimed)]


def keras_spec(spec: dict) -> dict | str:
    """``spec`` as the Keras rule computing its rule takes it, or why no Keras optimizer computes it."""
    rule = RULES[spec["algorithm"]]
    if rule.keras_equivalent is None:
        return f"no Keras optimizer computes {rule.name}"
    translated = rule.keras_equivalent.translate({**rule.all_defaults, **spec["config"]})
    if isinstance(translated, str):
        return translated
    algorithm, config = translated
    return {**spec, "algorithm": algorithm, "config": config}


def from_keras(state: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """A state in Keras's names (an implementation of the Keras rule) in ``algorithm``'s dialect's names."""
    dialect = RULES[algorithm].dialect
    own = {keras: name for name, keras in dialect.keras_slot_names.items()}
    variables = [q.split("/", 1)[1] for q in state if q.startswith("variables/")]
    out: dict[str, Any] = {}
    for quantity, value in state.items():
        slot, sep, variable = quantity.partition("/")
        if sep and slot in own:
            out[f"{own[slot]}/{variable}"] = value
        elif not sep and quantity != "iterations" and dialect.scalar_per_variable:
            out.update({f"{dialect.scalar_per_variable}/{v}": value for v in variables})
        else:
            out[quantity] = value
    if dialect.step_per_variable and "iterations" in state:
        out.update({f"step/{v}": state["iterations"] for v in variables})
    return out


def to_keras(state: dict[str, Any], algorithm: str, keras_algorithm: str) -> dict[str, Any] | None:
    """A state in ``algorithm``'s dialect's names in the names of ``keras_algorithm``'s, or None where one Keras
    optimizer could not hold it: variables at different step counts, or with different momentum products."""
    rule = RULES[algorithm]
    dialect = rule.dialect
    out: dict[str, Any] = {}
    kept: dict[str, list] = {}
    for quantity, value in state.items():
        slot, sep, variable = quantity.partition("/")
        if sep and slot in dialect.keras_slot_names:
            out[f"{dialect.keras_slot_names[slot]}/{variable}"] = value
        elif sep and ((slot == "step" and dialect.step_per_variable) or slot == dialect.scalar_per_variable):
            kept.setdefault(slot, []).append(value)
        else:
            out[quantity] = value
    if any(step != state.get("iterations") for step in kept.get("step", ())):
        return None
    scalars = kept.get(dialect.scalar_per_variable or "", [])
    if scalars:
        if any(scalar != scalars[0] for scalar in scalars):
            return None
        out[rule.keras_equivalent.scalar_names[keras_algorithm]] = scalars[0]
    return out
