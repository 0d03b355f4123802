"""Name the known porting bug a failure matches, when one does.

Each known bug is written as the oracle with one deviation: a configuration that computes what the
bug computes (summing accumulated gradients is averaging them with a loss scale of ``1/S``), or one
of the oracle's diagnostic ``variants``.  A failing trajectory is replayed through each; when the
candidate's weights lie inside the budgets of a deviated oracle at every step, the report says which
bug it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from optimizer_conformance.conformance.trajectory import compare, oracle_states


def _patched(spec: dict, **changes) -> dict:
    out = dict(spec)
    out["config"] = {**spec["config"], **changes}
    return out


def _constant_lr(spec) -> float | None:
    lr = spec["config"].get("learning_rate", 0.001)
    return lr if isinstance(lr, float) else None


def _sum_not_mean(spec):
    steps = spec["config"].get("gradient_accumulation_steps")
    if not steps:
        return None
    scale = spec["config"].get("loss_scale_factor") or 1.0
    return _patched(spec, loss_scale_factor=scale / steps)


def _decay_without_lr(spec):
    wd, lr = spec["config"].get("weight_decay"), _constant_lr(spec)
    if not wd or lr is None:
        return None
    return _patched(spec, weight_decay=wd / lr)


def _legacy_schedule(spec):
    if spec["algorithm"] != "nadam":
        return None
    keep = {k: spec["config"][k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon", "clipnorm",
                                            "global_clipnorm", "clipvalue") if k in spec["config"]}
    extras = [k for k in ("weight_decay", "use_ema", "gradient_accumulation_steps", "loss_scale_factor")
              if spec["config"].get(k)]
    if extras or not isinstance(keep.get("learning_rate", 0.001), float):
        return None
    return {**spec, "algorithm": "nadam-legacy", "config": keep}


def _keras3_schedule(spec):
    if spec["algorithm"] != "nadam-legacy":
        return None
    config = {k: v for k, v in spec["config"].items() if k not in ("decay", "name")}
    return {**spec, "algorithm": "nadam", "config": config}


def _variant(name, value=True):
    def make(spec):
        return {**spec, "variants": {name: value}}
    return make


def _when(key, transform):
    def make(spec):
        return transform(spec) if spec["config"].get(key) else None
    return make


KNOWN_BUGS: list[tuple[str, Callable[[dict], dict | None]]] = [
    ("step count off by one (t = iterations + 2)", _variant("step_offset", 1)),
    ("step count off by one (t = iterations)", _variant("step_offset", -1)),
    ("gradient accumulation sums the micro-gradients instead of averaging them", _sum_not_mean),
    ("weight decay not scaled by the learning rate (θ −= λθ)", _decay_without_lr),
    ("the loss scale is not undone (gradients not divided by loss_scale_factor)",
     _when("loss_scale_factor", lambda s: _patched(s, loss_scale_factor=None))),
    ("amsgrad ignored (velocity used instead of its running max)",
     _when("amsgrad", lambda s: _patched(s, amsgrad=False))),
    ("per-variable clipping instead of global clipping",
     _when("global_clipnorm", lambda s: _patched(s, global_clipnorm=None, clipnorm=s["config"]["global_clipnorm"]))),
    ("the legacy TF schedule 0.96^(0.004 t) in Keras 3 Nadam", _legacy_schedule),
    ("the Keras 3 schedule 0.96^t in the legacy Nadam", _keras3_schedule),
    ("EMA momentum applied on the first step (the average should start as a copy)",
     _when("use_ema", _variant("ema_momentum_on_first_step"))),
    ("the learning-rate schedule fed real updates instead of the raw iteration counter",
     _when("gradient_accumulation_steps", _variant("schedule_sees_updates"))),
]


def diagnose(case, states: list[dict]) -> str | None:
    """The known bug whose deviated oracle the candidate matches on this trajectory, if any."""
    for name, transform in KNOWN_BUGS:
        try:
            deviated = transform(case.spec)
            if deviated is None:
                continue
            # The weights are what a bug changes observably; a deviated oracle need not keep the same
            # slots (summing is averaging a scaled gradient, but the accumulator then holds scaled values).
            weights = [{q: v for q, v in s.items() if q.startswith("variables/")} for s in states]
            expected = oracle_states(deviated, variants=deviated.get("variants"))
            if _unbounded(expected) > _unbounded(oracle_states(case.spec)):
                continue  # a deviation that leaves weights unconstrained (t = 0, say) would match anything
            findings = compare(expected, weights)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue
        # Matching the deviated oracle at every step of every quantity the oracle also has.
        if findings and max(f.ratio for f in findings) <= 1.0:
            return name
    return None


def _unbounded(states) -> int:
    return sum(int(np.sum(~np.isfinite(q.budget))) for state in states for name, q in state.items()
               if name.startswith("variables/"))
