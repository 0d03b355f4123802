"""What the project knows of a rule besides its mathematics, written once, at the end of the rule's module.

A :class:`Rule` is the rule's mathematics (the functions the pipeline calls) and every fact the rest of the
project needs: its Keras class, its constructor's defaults and checks, the options and features it has, the
attributes Keras keeps its slots in, how the harness exercises it, and the golden trajectories it owns.  Every
registry (the configuration's defaults, the dialects' rule lists, Keras's class names, the features that apply,
the corpus, the fixture schema's enum) is derived from :data:`reference.rules.RULES`: adding a rule is writing
its module.

A :class:`Dialect` is what the rules of one library family share: the constructor arguments of its base class,
the parts of the ``apply`` pipeline it has, where it forms its per-step scalars, and where Keras's base
optimizer keeps its own per-variable state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The parts of Keras 3's ``apply`` (reference.pipeline); a dialect has some of them.  A trajectory that uses a part
# its rule's dialect lacks does not apply to that rule.
PIPELINE_PARTS = ("clipping", "weight-decay", "loss-scale", "accumulation", "ema", "schedules", "none-gradients",
                  "constraints", "overwrite-with-gradient", "loss-scale-optimizer", "sparse-gradients", "non-finite",
                  "mixed-dtypes")

# What a rule may have beyond the common Adam-family shape; the features of the pipeline check that need one apply
# to the rules that have it (conformance.cases.catalogue).
CAPABILITIES = {
    "amsgrad": "the amsgrad option: a running maximum of the velocity",
    "variable-norms": "norms over a whole variable (Lamb's trust ratio): a variable at zero meets its guard",
    "running-max": "a running maximum of |g| (Adamax's norm): Inf and NaN gradients meet the max",
    "warmup": "a learning-rate warmup of its own (schedule-free AdamW's warmup_steps)",
}


@dataclass(frozen=True)
class Dialect:
    """A library family's shared facts: its base class's arguments and which parts of ``apply`` it has."""

    name: str
    base_defaults: Mapping[str, Any]  # arguments every rule of the dialect accepts, with their defaults
    ignored: tuple[str, ...] = ()  # accepted and dropped (Keras 3 ignores ``decay``)
    pipeline: frozenset[str] = frozenset(PIPELINE_PARTS)
    # Per-step scalars formed in the variable's dtype by definition (the legacy TF optimizers), not in floatx.
    coefficients_in_variable_dtype: bool = False
    # Keras attribute -> (slot, the optimizer attribute that switches it on, or None): the base class's state.
    keras_slots: tuple[tuple[str, str, str | None], ...] = ()
    # -- a library whose rules are not Keras classes (torch.optim, optax) --------------------------------------------
    learning_rate_key: str = "learning_rate"  # the constructor's name for the learning rate
    # Keras's argument names (the catalogue's and explore's common language) -> the library's; None: the same.
    own_names: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # The constructor's checks of the dialect's arguments (ValueError naming one); None: Keras's.
    validate: Callable[[dict[str, Any]], None] | None = None
    # Each variable counts its own updates (and keeps its own per-step scalars): one whose gradient is None is
    # skipped whole (torch.optim's per-parameter ``state["step"]``).  Reported as ``step/<variable>``.
    step_per_variable: bool = False
    keras_api: bool = True  # its rules are Keras classes (the API checks compare them with Keras's)
    # -- the same mathematics in Keras's names (reference.rules.translation) -----------------------------------------
    keras_slot_names: Mapping[str, str] = field(default_factory=dict)  # the library's slot -> Keras's
    # A scalar of the rule's state kept per variable (torch's ``mu_product``), where Keras keeps one.
    scalar_per_variable: str | None = None

    def in_own_names(self, config: dict[str, Any]) -> dict[str, Any]:
        """A configuration written with Keras's argument names, in the dialect's own."""
        return dict(config) if self.own_names is None else self.own_names(config)


@dataclass(frozen=True)
class KerasEquivalent:
    """Which Keras rule computes a rule of another library, under which arguments: the same mathematics, so that a
    Keras-style implementation can be run in that library's dialect, and a failure explained by Keras's rule."""

    rules: tuple[str, ...]  # the Keras rules (keras3, tf-legacy) it can be
    # The rule's configuration, every argument given -> (Keras's rule, its configuration), or why none computes it.
    translate: Callable[[dict[str, Any]], tuple[str, dict[str, Any]] | str]
    scalar_names: Mapping[str, str] = field(default_factory=dict)  # Keras rule -> its name of the per-variable scalar


@dataclass(frozen=True)
class Golden:
    """A golden trajectory a rule owns (its fixture ``<name>.json``): the configuration and the name of its data
    (``conformance.cases.inputs``), seeded by the name."""

    name: str
    description: str
    config: Mapping[str, Any]
    data: str = "normal"
    input_dtype: str = "float32"
    steps: int = 12
    shapes: str = "two-variables"


@dataclass(frozen=True)
class Rule:
    """One update rule: its mathematics (see :mod:`reference.rules`) and its facts."""

    name: str  # in specs, fixtures, reports and on the command line
    dialect: Dialect
    # -- the mathematics (reference.rules) ------------------------------------------------------------------------
    slot_names: Callable[..., tuple[str, ...]]
    initial_scalars: Callable[..., dict]
    coefficients: Callable[..., tuple[Any, dict]]
    update: Callable[..., tuple] | None = None  # one element; or
    update_variable: Callable[..., tuple] | None = None  # one whole variable (its elements coupled)
    initial_slot: Callable[..., list] | None = None  # a slot that does not start at zero
    # The coefficients for a variable whose dtype is not the one the scalar state is held in, from that state as
    # advanced this step, cast to the variable's dtype (Keras's Nadam: the product advanced once, in the first
    # variable's dtype); None: the rule has no such state, its coefficients are formed in each dtype alike.
    coefficients_beside: Callable[..., Any] | None = None
    # -- the library's class and constructor ----------------------------------------------------------------------
    keras_class: str | None = None  # the class's name in its library (keras.optimizers.Adam: "Adam")
    defaults: Mapping[str, Any] = field(default_factory=dict)  # beyond the dialect's, as get_config writes them
    aliases: Mapping[str, str] = field(default_factory=dict)  # constructor argument -> its get_config key
    validate: Callable[[dict], None] | None = None  # the constructor's own checks, beyond the dialect's
    weight_decay_required: bool = False  # weight_decay must be a float (AdamW)
    capabilities: frozenset[str] = frozenset()  # from CAPABILITIES
    keras_torch_parallel: bool = False  # Keras's torch backend updates it in _parallel_update_step (all at once)
    # Keras attribute -> (slot, the optimizer attribute that switches it on, or None); and scalar attributes.
    keras_slots: tuple[tuple[str, str, str | None], ...] = ()
    keras_scalars: Mapping[str, str] = field(default_factory=dict)
    # -- how the harness exercises it -----------------------------------------------------------------------------
    pipeline_config: Mapping[str, Any] = field(default_factory=dict)  # added to every pipeline feature's config
    explore: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # rule hyperparameters explore draws from
    counterpart: str | None = None  # the rule a port commonly implements in this one's place
    keras_equivalent: KerasEquivalent | None = None  # a rule of another library: the Keras rule that computes it
    corpus: tuple[Golden, ...] = ()

    def __post_init__(self) -> None:
        if (self.update is None) == (self.update_variable is None):
            raise ValueError(f"rule {self.name}: give exactly one of update and update_variable")
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"rule {self.name}: unknown capabilities {sorted(unknown)}")
        for golden in self.corpus:
            if not golden.name.startswith(f"{self.name}-"):
                raise ValueError(f"rule {self.name}: its fixture {golden.name!r} must be named {self.name}-...")

    @property
    def all_defaults(self) -> dict[str, Any]:
        """Every argument the constructor accepts, with its default (the dialect's, then the rule's)."""
        return {**self.dialect.base_defaults, **self.defaults}

    @property
    def all_keras_slots(self) -> tuple[tuple[str, str, str | None], ...]:
        """Where Keras keeps each per-variable slot: the rule's own, then its base class's."""
        return self.keras_slots + self.dialect.keras_slots


def require_number(config: dict, key: str, *, allow_none: bool = False) -> None:
    """A constructor check: ``config[key]`` is a finite number (or None where allowed), else ``ValueError``."""
    value = config[key]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        accepted = "a finite number or None" if allow_none else "a finite number"
        raise ValueError(f"`{key}` must be {accepted}; got {value!r}")
