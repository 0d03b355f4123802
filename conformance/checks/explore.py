"""Hypothesis strategies over whole trajectories, and the ``explore`` check built on them.

A drawn case is an algorithm's configuration over the whole sensible range of every hyperparameter
(large learning rates, epsilons and weight decays included: that is where porting bugs show), any
combination of pipeline features, one to three variables of small shapes, gradient magnitudes over
the dtype's range, and one to a dozen steps.  Each example is labelled (``hypothesis.event``) with
the features it turned on, and ``hypothesis.target`` steers the search towards the worst budget
ratio.  A failure is shrunk to the smallest case that still fails.

The check is given a function that runs a spec on the candidate (the runner's worker), so it never
imports the candidates' client.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, event, given, reject, settings, target
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from optimizer_conformance.conformance.cases.catalogue import constraint, other_dtype, schedule
from optimizer_conformance.conformance.cases.inputs import MAGNITUDES, centered, held, spread
from optimizer_conformance.conformance.checks.deviations import Deviation
from optimizer_conformance.conformance.checks.diagnosis import diagnose
from optimizer_conformance.conformance.checks.numeric import judge_trajectory
from optimizer_conformance.conformance.files import write_atomically
from optimizer_conformance.conformance.model import (
    CandidateLost,
    Case,
    Finding,
    JudgeError,
    NotApplicable,
    Outcome,
    Profile,
    RunError,
    describe_spec,
    make_spec,
    with_floatx,
)
from optimizer_conformance.reference.rules import RULES


def _log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(np.log10(low), np.log10(high)).map(lambda x: float(f"{10 ** x:.3g}"))


def _schedules() -> st.SearchStrategy[dict]:
    serialized = schedule
    lr0 = _log_uniform(1e-4, 0.5)
    steps = st.integers(1, 5)
    return st.one_of(
        st.builds(lambda a, s, r: serialized("ExponentialDecay", initial_learning_rate=a, decay_steps=s, decay_rate=r),
                  lr0, steps, st.floats(0.1, 0.99).map(lambda x: round(x, 3))),
        st.builds(lambda a, s: serialized("CosineDecay", initial_learning_rate=a, decay_steps=s), lr0, steps),
        st.builds(lambda a, s: serialized("InverseTimeDecay", initial_learning_rate=a, decay_steps=s, decay_rate=0.5),
                  lr0, steps),
        st.builds(lambda a, b: serialized("PiecewiseConstantDecay", boundaries=[b], values=[a, a / 4]), lr0,
                  st.integers(0, 4)),
    )


@st.composite
def configs(draw, algorithm: str) -> dict:
    rule = RULES[algorithm]
    parts = rule.dialect.pipeline
    config: dict = {
        "learning_rate": draw(st.one_of(_log_uniform(1e-4, 1.0), _schedules()) if "schedules" in parts
                              else _log_uniform(1e-4, 1.0)),
        "beta_1": draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]) | st.floats(0.0, 0.999).map(lambda x: round(x, 4))),
        "beta_2": draw(st.sampled_from([0.5, 0.9, 0.999]) | st.floats(0.5, 0.9999).map(lambda x: round(x, 5))),
        "epsilon": draw(_log_uniform(1e-8, 1.0)),
    }
    clip = draw(st.sampled_from([None, "clipnorm", "global_clipnorm", "clipvalue"])) if "clipping" in parts else None
    if clip:
        config[clip] = draw(_log_uniform(1e-3, 10.0))
    if "amsgrad" in rule.capabilities:
        config["amsgrad"] = draw(st.booleans())
    if "weight-decay" in parts and (rule.weight_decay_required or draw(st.booleans())):
        config["weight_decay"] = draw(_log_uniform(1e-4, 1.0))
    if "loss-scale" in parts and draw(st.booleans()):
        config["loss_scale_factor"] = float(2 ** draw(st.integers(-4, 12)))
    if "accumulation" in parts and draw(st.booleans()):
        config["gradient_accumulation_steps"] = draw(st.integers(2, 4))
    for key, values in rule.explore.items():
        config[key] = draw(st.sampled_from(values))
    if "ema" in parts and draw(st.booleans()):
        config["use_ema"] = True
        config["ema_momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
        config["ema_overwrite_frequency"] = draw(st.none() | st.integers(1, 4))
    return rule.dialect.in_own_names(config)


@st.composite
def trajectories(draw, algorithm: str, dtype: str, max_steps: int) -> dict:
    config = draw(configs(algorithm))
    shapes = draw(st.lists(st.sampled_from([(), (1,), (3,), (2, 2), (2, 3)]), min_size=1, max_size=3))
    steps = draw(st.integers(1, max_steps))
    parts = RULES[algorithm].dialect.pipeline
    # Sometimes the last of several variables in a dtype of its own (a float16 bias beside float32 weights), its
    # values and gradients inside both dtypes' ranges.  Not with a LossScaleOptimizer, constraints or an
    # overwritten variable: their mixed-dtype arithmetic in Keras is not yet compared (README).
    own_dtype = other_dtype(dtype) if "mixed-dtypes" in parts and len(shapes) > 1 \
        and draw(st.integers(0, 3)) == 0 else None
    low, high = MAGNITUDES[dtype]
    if own_dtype is not None:
        low, high = max(low, MAGNITUDES[own_dtype][0]), min(high, MAGNITUDES[own_dtype][1])
    # Unscaling g / s with a loss_scale_factor s = 2⁻ᵏ makes every gradient k binades larger: the range is lowered
    # by as much, so that a square stays inside the dtype (an overflowed norm is not modelled: NaN/Inf).
    scale = config.get("loss_scale_factor")
    high = max(low, high - max(0, round(-math.log2(scale)))) if scale else high
    center = draw(st.integers(low, high))
    width = draw(st.integers(0, 6))  # binary exponents either side of the center
    seed = draw(st.integers(0, 2**16))
    # None gradients on an accumulation update step: Keras's TF and torch backends reset the missing
    # variable's accumulator, the JAX backend keeps it (a divergence between Keras backends, README).
    none_gradients = (draw(st.booleans()) if "none-gradients" in parts and len(shapes) > 1
                      and not config.get("gradient_accumulation_steps") else False)
    rng = np.random.default_rng(seed)
    names = [f"v{i}" for i in range(len(shapes))]
    dtypes = [dtype] * (len(shapes) - 1) + [own_dtype or dtype]
    variables = [(n, held(centered(rng, s), d)) for n, s, d in zip(names, shapes, dtypes)]
    grads = []
    for k in range(steps):
        # Inside the dtype's range: in float16 a larger gradient's square overflows (not modelled: NaN/Inf).
        step = [held(spread(rng, s, max(low, center - width), min(high, center + width) + 1), d)
                for s, d in zip(shapes, dtypes)]
        if none_gradients and k % 2 == 1:
            step[-1] = None
        grads.append(step)
    exclude = {}
    if "weight-decay" in parts and config.get("weight_decay") and len(shapes) > 1 and draw(st.booleans()):
        exclude = {"var_names": ["v1"]}
    finalize = bool(config.get("use_ema")) and draw(st.booleans())
    options = draw(variable_options(shapes)) if {"constraints", "overwrite-with-gradient"} <= parts \
        and own_dtype is None else {}
    wrapper = draw(loss_scale_optimizers(config, dtype)) if "loss-scale-optimizer" in parts \
        and own_dtype is None else None
    if wrapper is not None:
        options["loss_scale_optimizer"], scale_bits, non_finite = wrapper
        config.pop("loss_scale_factor", None)  # Keras's wrapper clears it
        grads = [[g if g is None else np.ldexp(g, scale_bits) for g in step] for step in grads]
    else:
        # Sometimes Inf and NaN carried by IEEE arithmetic, without a wrapper to skip them.
        non_finite = draw(_non_finite_steps()) if "non-finite" in parts and draw(st.integers(0, 5)) == 0 else {}
        if non_finite:
            options.pop("constraints", None)
    for k, value in non_finite.items():
        if k < steps and grads[k][0] is not None:
            flat = grads[k][0].reshape(-1).copy()
            flat[k % flat.size] = value
            grads[k][0] = flat.reshape(grads[k][0].shape)
    if config.get("use_ema") and (config.get("ema_overwrite_frequency") or finalize):
        # Keras 3.15 on TensorFlow and JAX crashes writing the EMA into the weights when a variable has
        # overwrite_with_gradient (it has no average); torch and base_optimizer.py skip it (README).
        options.pop("overwrite_with_gradient", None)
    if options.get("overwrite_with_gradient") and exclude:
        # Keras 3.15 on torch raises when weight decay is left with no variable to decay (an empty
        # torch._foreach_mul_): the overwritten variable and the excluded one would be all there is (README).
        exclude = {}
    for feature in ("amsgrad", "weight_decay", "loss_scale_factor", "gradient_accumulation_steps", "use_ema",
                    "clipnorm", "global_clipnorm", "clipvalue"):
        if config.get(feature):
            event(f"feature: {feature}")
    learning_rate = config[RULES[algorithm].dialect.learning_rate_key]
    if isinstance(learning_rate, dict):
        event(f"schedule: {learning_rate['class_name']}")
    if own_dtype is not None:
        options["variable_dtypes"] = {len(shapes) - 1: own_dtype}
    for option in options:
        event(f"feature: {option}")
    if any(g is not None and not np.all(np.isfinite(g)) for step in grads for g in step):
        event("feature: non-finite gradients")
    return make_spec(algorithm, config, dtype, variables, grads, exclude=exclude, finalize=finalize, **options)


@st.composite
def variable_options(draw, shapes: list[tuple[int, ...]]) -> dict:
    """Sometimes a constraint on a variable with an axis, sometimes the first of several variables assigned its
    gradient (``overwrite_with_gradient``)."""
    options: dict = {}
    with_axis = [i for i, s in enumerate(shapes) if s]
    if with_axis and draw(st.integers(0, 2)) == 0:
        limit = draw(_log_uniform(0.1, 10.0))
        options["constraints"] = {draw(st.sampled_from(with_axis)): draw(st.sampled_from([
            constraint("NonNeg"), constraint("MaxNorm", max_value=limit, axis=0), constraint("UnitNorm", axis=0),
            constraint("MinMaxNorm", min_value=limit / 4, max_value=limit, rate=0.5, axis=0)]))}
    if len(shapes) > 1 and draw(st.integers(0, 3)) == 0:
        options["overwrite_with_gradient"] = [0]
    return options


@st.composite
def loss_scale_optimizers(draw, config: dict, dtype: str) -> tuple[dict, int, dict[int, float]] | None:
    """Sometimes a ``LossScaleOptimizer`` around the optimizer: its arguments, the binary exponent the gradients
    are scaled by (the initial scale's), and the steps whose first gradient holds a non-finite element.
    Not with accumulation of float16 or bfloat16 gradients, where Keras 3.15 raises on TensorFlow and JAX."""
    if draw(st.integers(0, 3)) != 0:
        return None
    if config.get("gradient_accumulation_steps") and dtype in ("float16", "bfloat16"):
        return None
    bits = draw(st.integers(0, 10))
    return ({"initial_scale": float(2**bits), "dynamic_growth_steps": draw(st.integers(1, 3))}, bits,
            draw(_non_finite_steps()))


def _non_finite_steps() -> st.SearchStrategy[dict[int, float]]:
    """Up to three steps whose first gradient holds a non-finite element, and which."""
    return st.dictionaries(st.integers(0, 7), st.sampled_from([np.inf, -np.inf, np.nan]), max_size=3)


class _Failure(AssertionError):
    """One failing example: its spec and what was wrong (a finding, or an error message)."""

    def __init__(self, spec: dict, what: Finding | str) -> None:
        super().__init__(str(what))
        self.spec, self.what = spec, what

    @property
    def severity(self) -> float:
        return float("inf") if isinstance(self.what, str) else self.what.ratio


class _Lost(BaseException):
    """The candidate hung or died: exploring on would repeat the deadline at every example and every shrink.

    A ``BaseException``, so hypothesis lets it through instead of shrinking on it.
    """

    def __init__(self, failure: _Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _failures(error: BaseException) -> list[_Failure]:
    """Every :class:`_Failure` in what hypothesis raised (an ``ExceptionGroup`` when it found several)."""
    if isinstance(error, _Failure):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        return [f for e in error.exceptions for f in _failures(e)]
    return []


def explore(run: Callable[[dict], list[dict]], algorithm: str, dtype: str, profile: Profile, *,
            write_failure: Callable[[dict], Path] | None = None, floatx: str = "float32",
            upstream: tuple[Deviation, ...] = (), database: Path | None = None) -> Outcome:
    """Run hypothesis against the candidate (``run(spec)`` gives its states); the outcome carries the worst
    shrunk failing example, written as a fixture by ``write_failure`` when given.

    A failing example that ``upstream`` (the catalogued bugs of the library the candidate runs on) explains is an
    expected failure: recorded as such and explored past, neither shrunk nor targeted, so the search goes on for
    a failure they do not explain (and does not spend its time shrinking a known one).

    ``database``: a directory of this candidate's, algorithm's and dtype's earlier shrunk failures (one spec a
    file), replayed first, as hypothesis replays its example database, before the search goes on: this run's
    failures are added to it, and a saved one that now passes is removed.  (Hypothesis's own database cannot be used
    with the derandomized profiles, whose draws are the same on every run.)"""
    outcome = Outcome(algorithm, "explore", dtype)
    ids = {d.id for d in upstream}
    saved = _saved_failures(database)
    passed: set[str] = set()

    def check(spec: dict, drawn: bool = True) -> None:
        """One trajectory, judged; raises ``_Failure`` (``_Lost``); ``drawn``: inside hypothesis (its events,
        targets and rejections), else a saved failure replayed."""
        key = spec_key(spec)
        spec = with_floatx(spec, floatx)
        outcome.cases += 1
        try:
            states = run(spec)
        except NotApplicable as reason:
            if len(outcome.skipped) < 3:
                outcome.skip("hypothesis example", str(reason))
            if drawn:
                reject()  # the reference itself cannot run this draw
            return
        except CandidateLost as error:
            raise _Lost(_Failure(spec, str(error))) from None
        except RunError as error:
            raise _Failure(spec, f"the candidate raised {error}") from None
        try:
            judgement = judge_trajectory(Case("explore", algorithm, dtype, spec, "hypothesis example"), states)
        except JudgeError as error:
            raise _Failure(spec, str(error)) from None
        outcome.absorb(judgement.worst, "hypothesis example")
        if not judgement.passed and upstream:
            known = diagnose(spec, states, upstream, only_first=True)
            if known is not None:
                if drawn:
                    event(f"known upstream bug: {known}")
                outcome.explain(known, ids)
                return
        if drawn:
            target(min(judgement.worst.ratio, 1e30), label="worst budget ratio")
        if not judgement.passed:
            raise _Failure(spec, judgement.headline)
        passed.add(key)

    @settings(max_examples=profile.explore_examples, deadline=None, database=None,
              derandomize=profile.name != "deep", print_blob=False,
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @given(trajectories(algorithm, dtype, max_steps=max(4, profile.steps)))
    def property_(spec):
        check(spec)

    failures: list[_Failure] = []
    lost_on_a_saved_one = False
    for spec in saved.values():  # the saved failures first, then the search goes on for others
        try:
            check(spec, drawn=False)
        except _Lost as lost:
            failures.append(lost.failure)
            lost_on_a_saved_one = True
            break
        except _Failure as failure:
            failures.append(failure)
    try:
        if not lost_on_a_saved_one:  # a candidate that hangs or dies would do it at every draw
            property_()
    except _Lost as lost:
        failures.append(lost.failure)
    except Unsatisfiable:
        if not outcome.skipped:
            outcome.error = "exploration could not run: hypothesis found no example to draw"
    except Exception as error:  # noqa: BLE001 - whatever hypothesis raises ends as this check's verdict
        found = _failures(error)
        failures += [f for f in found if spec_key(f.spec) not in {spec_key(g.spec) for g in failures}]
        if not found:
            outcome.error = f"exploration could not run: {type(error).__name__}: {error}"
    if failures:
        worst = max(failures, key=lambda f: f.severity)
        outcome.example = {"spec": worst.spec, "summary": describe_spec(worst.spec)}
        if len(failures) > 1:
            outcome.example["others"] = [str(f.what).splitlines()[0] for f in failures if f is not worst]
        outcome.worst_case = "shrunk example"
        if isinstance(worst.what, str):
            outcome.error = worst.what
        else:
            outcome.worst = worst.what
        if write_failure is not None:
            outcome.example["fixture"] = str(write_failure(worst.spec))
    if database is not None:
        _keep_failures(database, saved, passed, [f.spec for f in failures])
    return outcome


def spec_key(spec: dict) -> str:
    """A spec's name in the database: a digest of its canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _saved_failures(database: Path | None) -> dict[str, dict]:
    """The specs saved in ``database`` by their key (a file that is not a spec is ignored, never trusted)."""
    if database is None or not database.is_dir():
        return {}
    saved = {}
    for path in sorted(database.glob("*.json")):
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(spec, dict) and path.stem == spec_key(spec):
            saved[path.stem] = spec
    return saved


def _keep_failures(database: Path, saved: dict[str, dict], passed: set[str], failed: list[dict]) -> None:
    """Save this run's failures; forget the saved ones that passed."""
    for spec in failed:
        write_atomically(database / f"{spec_key(spec)}.json", json.dumps(spec))
    for key in saved.keys() & passed:
        (database / f"{key}.json").unlink(missing_ok=True)
