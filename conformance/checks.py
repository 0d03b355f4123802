"""The checks of ``optconf check``: what is run on a candidate, and how each result is judged.

Every check runs trajectories (specs) on the candidate and judges them two ways:

* **trajectory**: every quantity at every step against the oracle run from the initial inputs;
* **one-step**: every step against the oracle restarted from the candidate's *own* previous state
  (so an error shows at the step that made it, with that step's budget alone).

Checks, each reported per algorithm and dtype:

``pipeline/<feature>``  generated trajectories for one rule or pipeline feature (and the
                        combinations that interact): basic, large hyperparameters, amsgrad, loss
                        scaling, accumulation, the clippings, weight decay and its exclusion, EMA,
                        overwrite and finalize, ``None`` gradients, each schedule;
``one-step``            the one-step judgement of all of them;
``fixtures``            the golden fixtures of the algorithm that carry budgets for the dtype;
``explore``             property-based exploration with hypothesis (:mod:`conformance.strategies`);
``api/<name>``          API and configuration compatibility with Keras (:mod:`conformance.api`), per
                        algorithm (the column ``api``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from optimizer_conformance.conformance.candidates import CandidateLost, RunError
from optimizer_conformance.conformance.inputs import centered, generator, held, spread
from optimizer_conformance.conformance.trajectory import (
    Finding,
    JudgeError,
    decode,
    make_spec,
    oracle_states,
    worst_finding,
)
from optimizer_conformance.reference import ReferenceOptimizer

# The corpus as installed: package data of optimizer_conformance.fixtures (the repository's fixtures/ folder).
FIXTURES = Path(str(resources.files("optimizer_conformance.fixtures")))


@dataclass(frozen=True)
class Profile:
    name: str
    steps: int
    explore_examples: int
    long_fixtures: bool
    api_examples: int = 60


PROFILES = {
    "quick": Profile("quick", 3, 5, False, 20),
    "ci": Profile("ci", 6, 20, False, 60),
    "deep": Profile("deep", 16, 300, True, 500),
}


@dataclass
class Case:
    check: str
    algorithm: str
    dtype: str
    spec: dict | None
    label: str
    fixture: Any = None  # the loaded fixture, for the fixtures check
    problem: str | None = None  # why the case cannot run (a damaged fixture): an error row


@dataclass
class Outcome:
    algorithm: str
    check: str
    dtype: str
    cases: int = 0
    worst: Finding | None = None
    worst_case: str = ""
    error: str | None = None
    diagnosis: str | None = None
    example: dict | None = None
    problems: list[str] = field(default_factory=list)  # the API checks' findings
    not_applicable: str | None = None

    @property
    def judged(self) -> bool:
        """Whether anything was compared: a numeric check needs a finding, an API check a case."""
        return self.worst is not None or (self.check.startswith("api/") and self.cases > 0)

    @property
    def passed(self) -> bool:
        """Earned only: applicable, judged, no error or problem, every ratio within budget."""
        return (self.not_applicable is None and self.error is None and not self.problems and self.judged
                and (self.worst is None or self.worst.ratio <= 1.0))

    @property
    def failed(self) -> bool:
        return self.not_applicable is None and not self.passed

    def close(self) -> Outcome:
        """A check that ran and judged nothing is an error, never a silent pass."""
        if self.not_applicable is None and self.error is None and not self.problems and not self.judged:
            self.error = "nothing was judged: the candidate's states held nothing to compare"
        return self

    def absorb(self, finding: Finding | None, case: str) -> None:
        self.cases += 1
        if finding is not None and (self.worst is None or finding.ratio > self.worst.ratio):
            self.worst, self.worst_case = finding, case


# -- generated trajectories ------------------------------------------------------------------------------

SHAPES = (("kernel", (3, 4)), ("bias", (4,)))
# Gradient magnitudes as binary exponents (conformance.inputs).
MAGNITUDES = {"float16": (-10, 3), "bfloat16": (-10, 3), "float32": (-13, 3), "float64": (-13, 3)}


def _schedule(class_name: str, **config: Any) -> dict:
    return {"module": "keras.optimizers.schedules", "class_name": class_name, "config": config,
            "registered_name": None}


# feature -> (config patch, options); options: data, exclude, finalize, none, min_steps
FEATURES: dict[str, tuple[dict, dict]] = {
    "basic": ({}, {}),
    "large-hyperparameters": ({"learning_rate": 0.25, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 0.5}, {}),
    "amsgrad": ({"amsgrad": True}, {"data": "shrinking", "min_steps": 5}),
    "loss-scale": ({"loss_scale_factor": 64.0}, {}),
    "accumulation": ({"gradient_accumulation_steps": 3, "epsilon": 0.1}, {"min_steps": 7}),
    "accumulation-clipnorm": ({"gradient_accumulation_steps": 2, "clipnorm": 0.05}, {"min_steps": 5}),
    "accumulation-schedule": ({"gradient_accumulation_steps": 2, "learning_rate": _schedule(
        "PiecewiseConstantDecay", boundaries=[0, 2], values=[0.2, 0.05, 0.01])}, {"min_steps": 6}),
    "accumulation-ema": ({"gradient_accumulation_steps": 2, "use_ema": True, "ema_momentum": 0.5},
                         {"min_steps": 5}),
    "clipnorm": ({"clipnorm": 0.05}, {}),
    "global-clipnorm": ({"global_clipnorm": 0.05}, {}),
    "clipvalue": ({"clipvalue": 0.05}, {}),
    "weight-decay": ({"weight_decay": 0.5, "learning_rate": 0.1}, {}),
    "weight-decay-exclusion": ({"weight_decay": 0.5, "learning_rate": 0.1},
                               {"exclude": {"var_names": ["bia"], "var_list": [0]}, "shapes": (
                                   ("kernel", (3, 4)), ("bias", (4,)), ("scale", (2,)))}),
    "ema": ({"use_ema": True, "ema_momentum": 0.5}, {}),
    "ema-overwrite-finalize": ({"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 2},
                               {"finalize": True}),
    "none-gradients": ({}, {"none": True}),
    "schedule-exponential": ({"learning_rate": _schedule("ExponentialDecay", initial_learning_rate=0.05,
                                                         decay_steps=2, decay_rate=0.5)}, {}),
    "schedule-piecewise": ({"learning_rate": _schedule("PiecewiseConstantDecay", boundaries=[1, 3],
                                                       values=[0.1, 0.01, 0.001])}, {}),
    "schedule-polynomial": ({"learning_rate": _schedule("PolynomialDecay", initial_learning_rate=0.05,
                                                        decay_steps=3, power=2.0, cycle=True)}, {}),
    "schedule-inverse-time": ({"learning_rate": _schedule("InverseTimeDecay", initial_learning_rate=0.05,
                                                          decay_steps=2, decay_rate=1.0)}, {}),
    "schedule-cosine-warmup": ({"learning_rate": _schedule("CosineDecay", initial_learning_rate=0.001,
                                                           decay_steps=4, alpha=0.1, warmup_target=0.05,
                                                           warmup_steps=2)}, {}),
    "schedule-cosine-restarts": ({"learning_rate": _schedule("CosineDecayRestarts", initial_learning_rate=0.05,
                                                             first_decay_steps=2, m_mul=0.5)}, {}),
}

LEGACY_FEATURES = ("basic", "large-hyperparameters", "clipnorm", "global-clipnorm", "clipvalue")
ADAM_ONLY = ("amsgrad",)


def features_for(algorithm: str) -> list[str]:
    if algorithm == "nadam-legacy":
        return list(LEGACY_FEATURES)
    names = [f for f in FEATURES if algorithm in ("adam", "adamw") or f not in ADAM_ONLY]
    return names


def _inputs(name: str, dtype: str, steps: int, options: dict):
    rng = generator(f"{name}/{dtype}")
    shapes = options.get("shapes", SHAPES)
    low, high = MAGNITUDES[dtype]
    variables = [(n, held(centered(rng, s, 1), dtype)) for n, s in shapes]
    grads = []
    for k in range(steps):
        step = []
        for _, s in shapes:
            g = spread(rng, s, low, high)
            if options.get("data") == "shrinking":
                g = np.ldexp(g, 4 if k == 1 else -4)
            step.append(held(g, dtype))
        if options.get("none") and k % 2 == 1:
            step[-1] = None
        grads.append(step)
    return variables, grads


def pipeline_cases(algorithm: str, dtype: str, profile: Profile) -> list[Case]:
    cases = []
    for feature in features_for(algorithm):
        patch, options = FEATURES[feature]
        config = {"learning_rate": 0.01, **patch}
        if algorithm == "adamw":
            config.setdefault("weight_decay", 0.05)
        steps = max(profile.steps, options.get("min_steps", 0))
        variables, grads = _inputs(f"{algorithm}/{feature}", dtype, steps, options)
        spec = make_spec(algorithm, config, dtype, variables, grads, exclude=options.get("exclude"),
                         finalize=options.get("finalize", False))
        cases.append(Case(f"pipeline/{feature}", algorithm, dtype, spec, feature))
    return cases


def fixture_cases(algorithm: str, dtype: str, profile: Profile, directory: Path = FIXTURES) -> list[Case]:
    """A case per fixture of ``algorithm`` with budgets for ``dtype``; a damaged one is a case with a problem."""
    from optimizer_conformance.conformance.fixture_format import FixtureError
    from optimizer_conformance.conformance.replay import spec_for, verify_against_oracle

    cases = []
    for path in sorted(directory.glob("*.json")):
        try:
            fixture = _load(path)
        except FixtureError as error:
            cases.append(Case("fixtures", algorithm, dtype, None, path.stem, problem=str(error)))
            continue
        if fixture.algorithm != algorithm or dtype not in fixture.budget_dtypes:
            continue
        if not profile.long_fixtures and len(fixture.document["gradients"]) > 100:
            continue
        # A hash proves only that the file is as written: a value or budget edited and re-hashed would pass.
        # Every fixture is re-derived from its own inputs by the oracle before it judges anything.
        problem = verify_against_oracle(fixture)
        if problem is not None:
            cases.append(Case("fixtures", algorithm, dtype, None, fixture.name, problem=problem))
            continue
        cases.append(Case("fixtures", algorithm, dtype, spec_for(fixture, dtype), fixture.name, fixture=fixture))
    return cases


_LOADED: dict[tuple[Path, int, int], Any] = {}


def _load(path: Path):
    """A fixture loaded once per process and content (the corpus is read for every algorithm and dtype)."""
    from optimizer_conformance.conformance.fixture_format import FixtureError, load

    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        try:
            _LOADED[key] = load(path)
        except FixtureError as error:
            _LOADED[key] = error
    if isinstance(_LOADED[key], FixtureError):
        raise _LOADED[key]
    return _LOADED[key]


def expected_fixtures(algorithm: str, dtype: str, profile: Profile) -> int:
    """How many fixtures of the bundled corpus the fixtures check of ``algorithm`` in ``dtype`` should find."""
    from optimizer_conformance.conformance.corpus import CORPUS
    from optimizer_conformance.conformance.generate import WIDER

    return sum(1 for e in CORPUS if e.algorithm == algorithm and dtype in WIDER[e.input_dtype]
               and (profile.long_fixtures or e.steps <= 100))


# -- judging ---------------------------------------------------------------------------------------------

def judge_trajectory(case: Case, states: list[dict]) -> Finding:
    """The worst finding over every quantity at every step; :class:`JudgeError` when the states are unjudgeable."""
    if case.fixture is not None:
        from optimizer_conformance.conformance.replay import judge

        findings = judge(case.fixture, case.dtype, states)
    else:
        from optimizer_conformance.conformance.trajectory import compare

        findings = compare(oracle_states(case.spec), states) + _iterations_findings(case.spec, states)
    return max(findings, key=lambda f: f.ratio)


def _iterations_findings(spec: dict, states: list[dict]) -> list[Finding]:
    steps = spec.get("config", {}).get("gradient_accumulation_steps") or 1
    out = []
    for k, state in enumerate(states[: len(spec["gradients"])], start=1):
        if "iterations" in state:
            got = decode(state["iterations"], (-1,))[0]
            want = k // steps
            out.append(Finding("iterations", k, 0, 0.0 if got == want else float("inf"), float(got), float(want),
                               0.0))
    return out


def judge_one_step(case: Case, states: list[dict]) -> Finding | None:
    """Each step from the candidate's own previous state: the state must hold every slot the rule needs.

    Judging stops at a state holding non-finite values (the oracle cannot restart from it; the trajectory
    check judges them): ``None`` when that is the first state.
    """
    spec = case.spec
    variables = [(name, decode(values, shape)) for name, shape, values in spec["variables"]]
    worst = None
    for k in range(1, len(spec["gradients"])):
        opt = ReferenceOptimizer(spec["algorithm"], spec["config"], dtype=spec["dtype"])
        opt.build(variables)
        if spec.get("exclude"):
            opt.exclude_from_weight_decay(**spec["exclude"])
        shapes = {q: v.shape for q, v in opt.state().items()}
        needed = sorted(set(shapes) - {"iterations"})
        missing = [q for q in needed if q not in states[k - 1]]
        if missing:
            raise JudgeError(f"one-step restarts the oracle from the candidate's own state after each step and needs "
                             f"{', '.join(needed)}; the candidate reported {_names(states[k - 1])} (missing "
                             f"{', '.join(missing)}). Report them, or leave one-step out (--checks)")
        previous = {}
        for q in needed:
            flat = decode(states[k - 1][q], (-1,))
            if flat.size != int(np.prod(shapes[q])):
                raise JudgeError(f"{q} after step {k}: the candidate reported {flat.size} elements, expected "
                                 f"{int(np.prod(shapes[q]))} (shape {tuple(shapes[q])})")
            previous[q] = flat.reshape(shapes[q])
        if not all(np.isfinite(v).all() for v in previous.values()):
            break
        opt.restore(previous, k)
        grads = [None if g is None else decode(g, shape)
                 for g, (_, shape, _) in zip(spec["gradients"][k], spec["variables"])]
        opt.apply(grads)
        exact = opt.state()
        for quantity, values in states[k].items():
            if quantity not in exact or quantity == "iterations":
                continue
            q = exact[quantity]
            finding = worst_finding(quantity, k + 1, decode(values, (-1,)), q.exact, q.budget)
            if worst is None or finding.ratio > worst.ratio:
                worst = finding
    if worst is None and len(spec["gradients"]) < 2:
        raise JudgeError("one-step needs a trajectory of at least two steps")
    return worst


def _names(state: dict) -> str:
    return ", ".join(sorted(state)) or "nothing"


def api_outcomes(worker, algorithm: str, profile: Profile, checks: list[str] | None = None) -> list[Outcome]:
    """The API checks of one algorithm, run in the worker (:mod:`conformance.api`), as outcomes.

    A check whose candidate hangs or kills the worker fails with what happened; the rest run in a new worker.
    """
    from optimizer_conformance.conformance.api import CHECKS

    remaining = list(checks or CHECKS)
    results: list[dict] = []
    while remaining:
        try:
            results += worker.api(algorithm, profile.api_examples, remaining)
            break
        except RunError as error:
            current = error.call[len("api/"):] if error.call.startswith("api/") else remaining[0]
            current = current if current in remaining else remaining[0]
            results.append({"check": f"api/{current}", "cases": 1, "problems": [], "not_applicable": None,
                            "finding": None, "example": None, "error": str(error)})
            remaining = remaining[remaining.index(current) + 1:]
    outcomes = []
    for r in results:
        o = Outcome(algorithm, r["check"], "api", cases=r["cases"], problems=list(r["problems"]),
                    not_applicable=r["not_applicable"], error=r.get("error"))
        f = r["finding"]
        if f is not None:
            o.worst = Finding(f["quantity"], f["step"], f["element"], f["ratio"], f["candidate"], f["exact"],
                              f["budget"])
            o.worst_case = f["case"]
        if r["example"]:
            o.example = {"summary": r["example"]}
        outcomes.append(o)
    reasons = {o.not_applicable for o in outcomes}
    if len(outcomes) > 1 and len(reasons) == 1 and None not in reasons:
        # Not one of them applies, for the same reason: one row says it.
        return [Outcome(algorithm, "api/*", "api", not_applicable=reasons.pop())]
    return outcomes


# -- running -------------------------------------------------------------------------------------------

# After this many requests in a row whose candidate hung or died, the rest are reported without running them:
# a candidate that hangs on every call would otherwise hold the run for hours.
LOST_IN_A_ROW = 3


@dataclass
class Plan:
    algorithms: list[str]
    dtypes: list[str]
    profile: Profile
    checks: tuple[str, ...] = ("pipeline", "one-step", "fixtures", "explore", "api")
    fixture_directory: Path = FIXTURES
    progress: Callable[[str], None] = field(default=lambda label: None)
    write_failure: Callable[[dict], Path] | None = None


def given_up(worker) -> str | None:
    """Why the candidate is no longer called (it was lost too many times in a row), or None."""
    if worker.lost_in_a_row < LOST_IN_A_ROW:
        return None
    return f"not run: the candidate was lost in {worker.lost_in_a_row} requests in a row (last: {worker.last_loss})"


def judge_case(outcome: Outcome, case: Case, states: list[dict], one_step: Outcome | None = None) -> None:
    """Judge one case's states into its outcome (and the one-step outcome); unjudgeable states are errors."""
    try:
        finding = judge_trajectory(case, states)
    except JudgeError as error:
        outcome.cases += 1
        outcome.error = outcome.error or f"{case.label}: {error}"
    else:
        outcome.absorb(finding, case.label)
        if finding.ratio > 1.0 and outcome.diagnosis is None:
            from optimizer_conformance.conformance.diagnosis import diagnose

            outcome.diagnosis = diagnose(case, states)
    if one_step is not None:
        try:
            finding = judge_one_step(case, states)
            if finding is not None:
                one_step.absorb(finding, case.label)
        except JudgeError as error:
            one_step.cases += 1
            one_step.error = one_step.error or f"{case.label}: {error}"


def run_case(worker, outcome: Outcome, case: Case, one_step: Outcome | None = None) -> None:
    """Run one case on the candidate and judge it; whatever the candidate does ends as a finding or an error."""
    failure = case.problem or given_up(worker)
    if failure is None:
        try:
            states = worker.run(case.spec)
        except RunError as error:
            failure = str(error) if isinstance(error, CandidateLost) else f"the candidate raised {error}"
    if failure is not None:
        for o in (outcome, one_step):
            if o is not None:
                o.cases += 1
                o.error = o.error or f"{case.label}: {failure}"
        return
    judge_case(outcome, case, states, one_step)


def iter_outcomes(worker, plan: Plan) -> Iterator[Outcome]:
    """Each outcome as soon as it is decided (so an interrupted run still reports what finished)."""
    for algorithm in plan.algorithms:
        if "api" in plan.checks:
            plan.progress(f"{algorithm} api")
            for o in api_outcomes(worker, algorithm, plan.profile):
                yield o.close()
        for dtype in plan.dtypes:
            cases = []
            if "pipeline" in plan.checks or "one-step" in plan.checks:
                cases += pipeline_cases(algorithm, dtype, plan.profile)
            by_check: dict[str, Outcome] = {}
            if "fixtures" in plan.checks:
                found = fixture_cases(algorithm, dtype, plan.profile, plan.fixture_directory)
                expected = expected_fixtures(algorithm, dtype, plan.profile)
                if not found and expected:
                    by_check["fixtures"] = Outcome(
                        algorithm, "fixtures", dtype, cases=1,
                        error=f"no fixture found in {plan.fixture_directory}; the corpus has {expected} for "
                              f"{algorithm} with {dtype} budgets (is the package installed with its fixtures?)")
                cases += found
            one_step = Outcome(algorithm, "one-step", dtype) if "one-step" in plan.checks else None
            for case in cases:
                plan.progress(f"{algorithm} {dtype} {case.check} {case.label}")
                outcome = by_check.setdefault(case.check, Outcome(algorithm, case.check, dtype))
                run_case(worker, outcome, case, one_step if case.check.startswith("pipeline/") else None)
            for o in by_check.values():
                if "pipeline" in plan.checks or not o.check.startswith("pipeline/"):
                    yield o.close()
            if one_step is not None:
                yield one_step.close()
            if "explore" in plan.checks:
                from optimizer_conformance.conformance.strategies import explore

                plan.progress(f"{algorithm} {dtype} explore")
                if given_up(worker):
                    yield Outcome(algorithm, "explore", dtype, cases=1, error=given_up(worker))
                else:
                    yield explore(worker, algorithm, dtype, plan.profile, write_failure=plan.write_failure).close()


def run_plan(worker, plan: Plan) -> list[Outcome]:
    return list(iter_outcomes(worker, plan))
