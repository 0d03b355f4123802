"""The one catalogue of known deviations from Keras: realistic porting bugs, each with a stable id.

Diagnosis (:mod:`conformance.checks.diagnosis`), the project's mutants (``tests/mutants``) and the NumPy
test port (``tests/numpy_port.py``) all name a deviation by its id.  Where the deviation can be computed,
it is the oracle with one change, made here and nowhere in the oracle itself: a configuration that
computes what the bug computes (decay not scaled by the learning rate is decay ``λ/η``), or a subclass of the
oracle that overrides one of its steps (:class:`StepCountOffset`, :class:`AccumulationSums`,
:class:`ScheduleSeesUpdates`, :class:`EmaMomentumOnFirstStep`, :class:`EmaNotMaintained`).
``deviate(spec)`` gives the deviated spec and oracle, or ``None`` where the spec does not exercise it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from optimizer_conformance.reference import ReferenceOptimizer, Tracked

# -- the oracle, deviated --------------------------------------------------------------------------------


class StepCountOffset(ReferenceOptimizer):
    """The rule's ``t`` off by ``offset`` (``t = iterations + 1 + offset``)."""

    offset = 0

    def update_count(self) -> int:
        return super().update_count() + self.offset


class StepCountPlusOne(StepCountOffset):
    offset = 1


class StepCountMinusOne(StepCountOffset):
    offset = -1


class AccumulationSums(ReferenceOptimizer):
    """The accumulated micro-gradients summed on an update step instead of averaged."""

    def accumulated_gradient(self, g: list[Tracked], accumulator: list[Tracked]) -> list[Tracked]:
        return [x + a for x, a in zip(g, accumulator)]


class EmaNotMaintained(ReferenceOptimizer):
    """``apply`` never updates the moving average (nor overwrites with it): it stays at its zero init."""

    def update_moving_average(self) -> None:
        pass


class ScheduleSeesUpdates(ReferenceOptimizer):
    """The learning-rate schedule evaluated at the real-update count instead of the raw counter."""

    def schedule_counter(self) -> int:
        return self.iterations


class EmaMomentumOnFirstStep(ReferenceOptimizer):
    """The EMA blended with ``μ`` from its zero init on the first step instead of copying the weights."""

    def ema_blend_weight(self) -> Tracked | None:
        return 1 - Tracked.rounded(self.config["ema_momentum"], self.fmt)


Deviated = tuple[dict, Callable[..., ReferenceOptimizer]]


@dataclass(frozen=True)
class Deviation:
    """A known deviation; a diagnosis must match every quantity the candidate reports, under ``renames``
    (the candidate's name of a quantity, the deviated oracle's name), except the slots in ``unmodelled``
    (which the deviation leaves meaningless: an ignored AMSGrad's ``velocity_hat``)."""

    id: str
    description: str
    deviate: Callable[[dict], Deviated | None] | None = None  # None: not computed, so never diagnosed
    renames: dict[str, str] = field(default_factory=dict)
    unmodelled: tuple[str, ...] = ()


# -- how each computable deviation changes a spec ------------------------------------------------------


def _patched(spec: dict, **changes: Any) -> dict:
    return {**spec, "config": {**spec["config"], **changes}}


def _constant_lr(spec: dict) -> float | None:
    lr = spec["config"].get("learning_rate", 0.001)
    return lr if isinstance(lr, float) else None


def _decay_without_lr(spec: dict) -> Deviated | None:
    wd, lr = spec["config"].get("weight_decay"), _constant_lr(spec)
    if not wd or lr is None:
        return None
    return _patched(spec, weight_decay=wd / lr), ReferenceOptimizer


def _legacy_schedule(spec: dict) -> Deviated | None:
    if spec["algorithm"] != "nadam":
        return None
    keep = {k: spec["config"][k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon", "clipnorm",
                                            "global_clipnorm", "clipvalue") if k in spec["config"]}
    extras = [k for k in ("weight_decay", "use_ema", "gradient_accumulation_steps", "loss_scale_factor")
              if spec["config"].get(k)]
    if extras or not isinstance(keep.get("learning_rate", 0.001), float):
        return None
    return {**spec, "algorithm": "nadam-legacy", "config": keep}, ReferenceOptimizer


def _keras3_schedule(spec: dict) -> Deviated | None:
    if spec["algorithm"] != "nadam-legacy":
        return None
    config = {k: v for k, v in spec["config"].items() if k not in ("decay", "name")}
    return {**spec, "algorithm": "nadam", "config": config}, ReferenceOptimizer


def _when(key: str, transform: Callable[[dict], dict], oracle=ReferenceOptimizer) -> Callable[[dict], Deviated | None]:
    def deviate(spec: dict) -> Deviated | None:
        return (transform(spec), oracle) if spec["config"].get(key) else None
    return deviate


def _oracle(oracle: Callable[..., ReferenceOptimizer], spec: dict) -> Deviated:
    return spec, oracle


def _without_exclusions(spec: dict) -> Deviated | None:
    return ({**spec, "exclude": {}}, ReferenceOptimizer) if spec.get("exclude") and \
        spec["config"].get("weight_decay") else None


DEVIATIONS: tuple[Deviation, ...] = (
    # -- the rules ---------------------------------------------------------------------------------------
    Deviation("step-count-plus-one", "step count off by one (t = iterations + 2)", partial(_oracle, StepCountPlusOne)),
    Deviation("step-count-minus-one", "step count off by one (t = iterations)", partial(_oracle, StepCountMinusOne)),
    Deviation("epsilon-inside-sqrt", "epsilon inside the square root (θ −= α·m / √(v + ε))"),
    Deviation("epsilon-after-bias-correction", "the PyTorch/optax epsilon placement (θ −= η·m̂ / (√v̂ + ε))"),
    Deviation("missing-bias-correction", "no bias correction (α = η)"),
    Deviation("velocity-weight-is-beta", "the velocity blended with β₂ instead of 1 − β₂"),
    Deviation("amsgrad-ignored", "amsgrad ignored (velocity used instead of its running max)",
              _when("amsgrad", lambda s: _patched(s, amsgrad=False)), unmodelled=("velocity_hat",)),
    Deviation("amsgrad-max-of-corrected-velocity", "optax's AMSGrad: the max of the bias-corrected velocity"),
    Deviation("legacy-schedule-in-nadam", "the legacy TF schedule 0.96^(0.004 t) in Keras 3 Nadam", _legacy_schedule,
              renames={"u_product": "momentum_cache"}),
    Deviation("keras3-schedule-in-legacy-nadam", "the Keras 3 schedule 0.96^t in the legacy Nadam", _keras3_schedule,
              renames={"momentum_cache": "u_product"}),
    Deviation("stale-momentum-product", "Nadam's momentum product advanced after the variables were updated"),
    # -- the pipeline ------------------------------------------------------------------------------------
    Deviation("accumulation-sums", "gradient accumulation sums the micro-gradients instead of averaging them",
              _when("gradient_accumulation_steps", lambda s: s, AccumulationSums)),
    Deviation("clipping-before-averaging", "each accumulated micro-gradient clipped, the mean left unclipped"),
    Deviation("weight-decay-not-scaled-by-learning-rate", "weight decay not scaled by the learning rate (θ −= λθ)",
              _decay_without_lr),
    Deviation("weight-decay-after-update", "weight decay applied to the updated weights"),
    Deviation("weight-decay-ignores-exclusions", "exclude_from_weight_decay accepted and forgotten",
              _without_exclusions),
    Deviation("loss-scale-not-undone", "the loss scale is not undone (gradients not divided by loss_scale_factor)",
              _when("loss_scale_factor", lambda s: _patched(s, loss_scale_factor=None))),
    Deviation("per-variable-clipping", "per-variable clipping instead of global clipping",
              _when("global_clipnorm", lambda s: _patched(s, global_clipnorm=None,
                                                          clipnorm=s["config"]["global_clipnorm"]))),
    Deviation("ema-momentum-on-first-step", "EMA momentum applied on the first step (the average should start as a "
              "copy)", _when("use_ema", lambda s: s, EmaMomentumOnFirstStep)),
    Deviation("ema-never-overwrites", "ema_overwrite_frequency and finalize_variable_values do nothing"),
    Deviation("ema-not-maintained", "use_ema accepted but apply() never updates the moving average (as Keras 3.0.0 "
              "and 3.0.1 on the JAX and torch backends)", _when("use_ema", lambda s: s, EmaNotMaintained)),
    Deviation("schedule-fed-real-updates", "the learning-rate schedule fed real updates instead of the raw iteration "
              "counter", _when("gradient_accumulation_steps", lambda s: s, ScheduleSeesUpdates)),
)

BY_ID: dict[str, Deviation] = {d.id: d for d in DEVIATIONS}
assert len(BY_ID) == len(DEVIATIONS), "duplicate deviation ids"


def describe(deviation_id: str) -> str:
    """``[id] description`` of a known deviation."""
    return f"[{deviation_id}] {BY_ID[deviation_id].description}"
