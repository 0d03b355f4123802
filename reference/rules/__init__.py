"""The update rules, one module each, every one a :class:`Rule`.

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
"""

from __future__ import annotations

from typing import Any, Protocol

from optimizer_conformance.reference.formats import FloatFormat
from optimizer_conformance.reference.rules import adam, adamax, adamw, lamb, nadam, nadam_legacy, schedule_free_adamw
from optimizer_conformance.reference.tracked import Tracked


class Rule(Protocol):
    """What the pipeline needs of an update rule (each rule module satisfies it)."""

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


RULES: dict[str, Rule | VariableRule] = {
    "adam": adam,
    "adamw": adamw,
    "nadam": nadam,
    "nadam-legacy": nadam_legacy,
    "adamax": adamax,
    "lamb": lamb,
    "schedule-free-adamw": schedule_free_adamw,
}

__all__ = ["RULES", "Rule", "VariableRule", "adam", "adamax", "adamw", "lamb", "nadam", "nadam_legacy",
           "schedule_free_adamw"]
