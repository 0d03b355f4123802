"""The update rules, one module each, each ending with its :class:`~reference.rules.descriptor.Rule`.

A rule is a small set of pure functions in the style of optax's ``init``/``update`` pairs, and the
pipeline (:mod:`reference.pipeline`) is written once around them, as Keras writes ``apply`` once in
its base optimizer and only ``update_step`` per rule:

* ``slot_names(hp)``: the per-element slots, named as Keras names them (``momentum``, ``velocity``, ...);
* ``initial_scalars(fmt)``: the rule's scalar state before the first step (Nadam's momentum product);
* optionally ``initial_slot(name, theta)``: a slot's first value where it is not zero (schedule-free
  AdamW's ``z`` starts as a copy of the variable);
* ``coefficients(hp, lr, step, fmt, scalars)``: the per-step scalars (bias corrections, schedules),
  computed once per step, and the advanced scalar state: ``(coefficients, scalars)``;
* ``update(c, g, theta, slots)``: one element of one variable and its slots: ``(theta, slots)``;
  or, for a rule that couples the elements of a variable (Lamb's trust ratio), ``update_variable(c, g,
  theta, slots)`` on the variable's lists of elements, its ``slots`` a list per name.

Each module's ``RULE`` holds those functions with the rule's other facts (:mod:`reference.rules.descriptor`);
:data:`ALL` lists them, and every registry of rules in the project is derived from it.
"""

from __future__ import annotations

from typing import Any, Protocol

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules import (
    adam,
    adamax,
    adamw,
    lamb,
    nadam,
    nadam_legacy,
    optax_adam,
    optax_adamw,
    optax_nadam,
    schedule_free_adamw,
    torch_adam,
    torch_adamw,
    torch_nadam,
)
from optimizer_conformance.reference.rules.descriptor import Golden, Rule
from optimizer_conformance.reference.rules.dialects import DIALECTS
from optimizer_conformance.reference.tracked import Tracked


class ElementRule(Protocol):
    """What the pipeline needs of an update rule that updates one element at a time."""

    def slot_names(self, hp: dict[str, Any]) -> tuple[str, ...]: ...

    def initial_scalars(self, fmt: FloatFormat) -> dict[str, Tracked]: ...

    def coefficients(self, hp: dict[str, Any], lr: Tracked, step: int, fmt: FloatFormat,
                     scalars: dict[str, Tracked]) -> tuple[Any, dict[str, Tracked]]: ...

    def update(self, c: Any, g: Tracked, theta: Tracked,
               slots: dict[str, Tracked]) -> tuple[Tracked, dict[str, Tracked]]: ...


class VariableRule(Protocol):
    """A rule whose update couples the elements of a variable: the pipeline hands it a whole variable."""

    def slot_names(self, hp: dict[str, Any]) -> tuple[str, ...]: ...

    def initial_scalars(self, fmt: FloatFormat) -> dict[str, Tracked]: ...

    def coefficients(self, hp: dict[str, Any], lr: Tracked, step: int, fmt: FloatFormat,
                     scalars: dict[str, Tracked]) -> tuple[Any, dict[str, Tracked]]: ...

    def update_variable(self, c: Any, g: list[Tracked], theta: list[Tracked], slots: dict[str, list[Tracked]]
                        ) -> tuple[list[Tracked], dict[str, list[Tracked]]]: ...


# The rules, in the order reports list them.  Every registry of rules derives from this tuple.
ALL: tuple[Rule, ...] = (adam.RULE, adamw.RULE, nadam.RULE, nadam_legacy.RULE, adamax.RULE, lamb.RULE,
                         schedule_free_adamw.RULE, torch_adam.RULE, torch_adamw.RULE, torch_nadam.RULE,
                         optax_adam.RULE, optax_adamw.RULE, optax_nadam.RULE)
RULES: dict[str, Rule] = {rule.name: rule for rule in ALL}
ALGORITHMS: tuple[str, ...] = tuple(RULES)
DIALECT_RULES: dict[str, tuple[str, ...]] = {
    dialect.name: tuple(rule.name for rule in ALL if rule.dialect is dialect) for dialect in DIALECTS}

# The rules that are Keras 3 classes, and the class's name in keras.optimizers.
KERAS_CLASSES: dict[str, str] = {rule.name: rule.keras_class for rule in ALL
                                 if rule.dialect.name == "keras3" and rule.keras_class}
# Where Keras 3 keeps each rule's state: (attribute, slot, the attribute that switches it on), and scalar attributes.
KERAS_SLOTS: tuple[tuple[str, str, str | None], ...] = tuple(dict.fromkeys(
    entry for rule in ALL if rule.dialect.name == "keras3" for entry in rule.all_keras_slots))
KERAS_SCALARS: dict[str, str] = {attribute: name for rule in ALL for attribute, name in rule.keras_scalars.items()}


def rule_for(algorithm: str) -> Rule:
    """The rule named ``algorithm``; ``ValueError`` naming the accepted ones otherwise."""
    try:
        return RULES[algorithm]
    except (KeyError, TypeError):
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}; got {algorithm!r}") from None


__all__ = ["ALGORITHMS", "ALL", "DIALECT_RULES", "KERAS_CLASSES", "KERAS_SCALARS", "KERAS_SLOTS", "RULES",
           "ElementRule", "Golden", "Rule", "VariableRule", "rule_for"]
