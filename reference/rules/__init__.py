"""The update rules, one module each.

Every rule is a pair of pure functions in the style of optax:

* ``coefficients(hp, lr, step, fmt, scalars)`` computes the per-step scalars
  (bias corrections, schedules) once, and advances the rule's scalar state
  (Nadam's momentum product), returning ``(coefficients, scalars)``;
* ``update(c, g, theta, slots)`` updates one element of one variable and
  its slots, returning ``(theta, slots)``.

``slot_names(hp)`` lists the per-element slots, named as Keras names them,
and ``initial_scalars(fmt)`` the rule's scalar state.
"""

from optimizer_conformance.reference.rules import adam, adamw, nadam, nadam_legacy

RULES = {
    "adam": adam,
    "adamw": adamw,
    "nadam": nadam,
    "nadam-legacy": nadam_legacy,
}

__all__ = ["RULES", "adam", "adamw", "nadam", "nadam_legacy"]
