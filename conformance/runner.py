"""The one runner: what ``optconf check`` and the pytest plugin run on a candidate, and in which order.

A :class:`Plan` names the algorithms, dtypes, profile and check families.  :func:`iter_outcomes` runs it
whole (the command line); :func:`plan_items` lists it as separate items and :func:`run_item` runs one
(the plugin, one test each).  Both run every case through :func:`run_case`, so whatever the candidate
does (raise, hang, die, report junk) ends as a judged finding or an error, never as a lost run.

Checks, each reported per algorithm and dtype:

``pipeline/<feature>``  the catalogue's features (:mod:`conformance.cases.catalogue`), judged as whole
                        trajectories;
``one-step``            the same trajectories, each step judged from the candidate's own previous state;
``fixtures``            the golden fixtures of the algorithm that carry budgets for the dtype;
``explore``             property-based exploration with hypothesis (:mod:`conformance.checks.explore`);
``api/<name>``          API and configuration compatibility with Keras (:mod:`conformance.checks.api`), per
                        algorithm.

Imports: the candidates' client, the checks, the cases, the golden fixtures and the data model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from optimizer_conformance.conformance.candidates.client import DEFAULT_TIMEOUT, Worker, parse_candidate
from optimizer_conformance.conformance.cases.catalogue import pipeline_cases
from optimizer_conformance.conformance.checks.api import CHECKS as API_CHECKS
from optimizer_conformance.conformance.checks.deviations import Deviation
from optimizer_conformance.conformance.checks.diagnosis import diagnose, diagnose_one_step
from optimizer_conformance.conformance.checks.explore import explore
from optimizer_conformance.conformance.checks.numeric import counter_problem, judge_one_step, judge_trajectory
from optimizer_conformance.conformance.checks.upstream import affecting
from optimizer_conformance.conformance.golden.replay import FIXTURES, expected_fixtures, fixture_cases
from optimizer_conformance.conformance.model import (
    CandidateLost,
    Case,
    JudgeError,
    NotApplicable,
    Outcome,
    Profile,
    RunError,
    with_floatx,
)
from optimizer_conformance.conformance.settings import CHECK_FAMILIES

# After this many requests in a row whose candidate hung or died, the rest are reported without running them:
# a candidate that hangs on every call would otherwise hold the run for hours.
LOST_IN_A_ROW = 3


@dataclass(frozen=True)
class Plan:
    algorithms: list[str]
    dtypes: list[str]
    profile: Profile
    checks: tuple[str, ...] = CHECK_FAMILIES
    fixture_directory: Path = FIXTURES
    progress: Callable[[str], None] = field(default=lambda label: None)
    write_failure: Callable[[dict], Path] | None = None
    strict: bool = False  # a known upstream bug of the candidate's library is a failure, not an expected one
    floatx: str = "float32"  # Keras's floatx() the candidate runs under (the dtype of its learning-rate variable)

    def pipeline_cases(self, algorithm: str, dtype: str) -> list[Case]:
        """The catalogue's pipeline cases, run under the plan's ``floatx``."""
        return [replace(c, spec=with_floatx(c.spec, self.floatx))
                for c in pipeline_cases(algorithm, dtype, self.profile)]


@dataclass(frozen=True)
class Item:
    """One separately runnable check: ``dtype`` None for an API check; ``label`` the case of a pipeline or
    fixture item."""

    algorithm: str
    dtype: str | None
    check: str  # "api/<name>", "pipeline/<feature>", "fixtures/<name>" or "explore"

    @property
    def key(self) -> str:
        """``<algorithm>/<dtype>/<check>`` (``<algorithm>/api/<name>`` for an API check): the xfail key."""
        return f"{self.algorithm}/{self.check}" if self.dtype is None else f"{self.algorithm}/{self.dtype}/{self.check}"


class Workers:
    """One worker per candidate, backend and compile mode, kept for a session (the plugin's items share them)."""

    def __init__(self) -> None:
        self._workers: dict[tuple, Worker] = {}

    def get(self, candidate: str, backend: str | None = None, compile: str = "eager",
            timeout: float = DEFAULT_TIMEOUT) -> Worker:
        key = (candidate, backend, compile)
        if key not in self._workers:
            self._workers[key] = Worker(parse_candidate(candidate, backend, compile), timeout)
        return self._workers[key]

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()


# -- one case ------------------------------------------------------------------------------------------


def given_up(worker: Worker) -> str | None:
    """Why the candidate is no longer called (it was lost too many times in a row), or None."""
    if worker.lost_in_a_row < LOST_IN_A_ROW:
        return None
    return f"not run: the candidate was lost in {worker.lost_in_a_row} requests in a row (last: {worker.last_loss})"


def upstream_bugs(worker: Worker, plan: Plan, dtype: str | None) -> tuple[Deviation, ...]:
    """The catalogued upstream bugs the candidate has by the library it runs on (none under ``--strict``)."""
    return () if plan.strict else affecting(worker.description, dtype)


def judge_case(outcome: Outcome, case: Case, states: list[dict], one_step: Outcome | None = None,
               upstream: tuple[Deviation, ...] = ()) -> None:
    """Judge one case's states into its outcome (and the one-step outcome); unjudgeable states are errors.

    A failing case is diagnosed (the first of an outcome always; each, where the candidate's library has
    catalogued upstream bugs, since one it does not explain makes the outcome a plain failure)."""
    ids = {d.id for d in upstream}
    try:
        judgement = judge_trajectory(case, states)
    except JudgeError as error:
        outcome.fail(case.label, str(error))
    else:
        outcome.absorb(judgement.worst, case.label)
        outcome.problems += [counter_problem(case.label, c) for c in judgement.counters[:3]]
        if not judgement.passed and (outcome.diagnosis is None or ids and not outcome.unexplained):
            outcome.explain(diagnose(case.spec, states, upstream), ids)
    if one_step is not None:
        try:
            finding = judge_one_step(case, states)
            if finding is not None:
                one_step.absorb(finding, case.label)
                if finding.ratio > 1.0 and ids and not one_step.unexplained:
                    one_step.explain(diagnose_one_step(case, states, upstream), ids)
        except JudgeError as error:
            one_step.fail(case.label, str(error))


def run_case(worker: Worker, outcome: Outcome, case: Case, one_step: Outcome | None = None,
             upstream: tuple[Deviation, ...] = ()) -> None:
    """Run one case on the candidate and judge it; whatever the candidate does ends as a finding or an error."""
    failure = case.problem or given_up(worker)
    if failure is None:
        try:
            states = worker.run(case.spec)
        except NotApplicable as reason:
            for o in (outcome, one_step):
                if o is not None:
                    o.skip(case.label, str(reason))
            return
        except RunError as error:
            failure = str(error) if isinstance(error, CandidateLost) else f"the candidate raised {error}"
    if failure is not None:
        for o in (outcome, one_step):
            if o is not None:
                o.fail(case.label, failure)
        return
    judge_case(outcome, case, states, one_step, upstream)


def api_outcomes(worker: Worker, algorithm: str, profile: Profile, checks: list[str] | None = None,
                 strict: bool = False) -> list[Outcome]:
    """The API checks of one algorithm, run in the worker (:mod:`conformance.checks.api`).

    A check whose candidate hangs or kills the worker fails with what happened; the rest run in a new worker.
    Under ``strict`` a known upstream bug is a failure.
    """
    remaining = list(checks or API_CHECKS)
    outcomes: list[Outcome] = []
    while remaining:
        try:
            outcomes += [Outcome.from_json(o) for o in worker.api(algorithm, profile.api_examples, remaining)]
            break
        except RunError as error:
            current = error.call[len("api/"):] if error.call.startswith("api/") else remaining[0]
            current = current if current in remaining else remaining[0]
            lost = Outcome(algorithm, f"api/{current}", None)
            lost.fail(current, str(error))
            outcomes.append(lost)
            remaining = remaining[remaining.index(current) + 1:]
    reasons = {o.not_applicable for o in outcomes}
    if len(outcomes) > 1 and len(reasons) == 1 and None not in reasons:
        # Not one of them applies, for the same reason: one row says it.
        return [Outcome(algorithm, "api/*", None, not_applicable=reasons.pop())]
    if strict:
        for o in outcomes:
            o.upstream = None
    return [o.close() for o in outcomes]


def explore_outcome(worker: Worker, algorithm: str, dtype: str, plan: Plan) -> Outcome:
    lost = given_up(worker)
    if lost:
        return Outcome(algorithm, "explore", dtype, cases=1, error=lost)
    outcome = explore(worker.run, algorithm, dtype, plan.profile, write_failure=plan.write_failure,
                      floatx=plan.floatx)
    if outcome.worst is not None and outcome.worst.ratio > 1.0 and outcome.example:
        upstream = upstream_bugs(worker, plan, dtype)
        try:  # the shrunk example, run once more, for the diagnosis
            outcome.explain(diagnose(outcome.example["spec"], worker.run(outcome.example["spec"]), upstream),
                            {d.id for d in upstream})
        except (RunError, NotApplicable):
            outcome.unexplained = True
    return outcome.close()


# -- a whole plan (the command line) -------------------------------------------------------------------


def _missing_fixtures(algorithm: str, dtype: str, plan: Plan, expected: int) -> Outcome:
    return Outcome(algorithm, "fixtures", dtype, cases=1,
                   error=f"no fixture found in {plan.fixture_directory}; the corpus has {expected} for {algorithm} "
                         f"with {dtype} budgets (is the package installed with its fixtures?)")


def iter_outcomes(worker: Worker, plan: Plan) -> Iterator[Outcome]:
    """Each outcome as soon as it is decided (so an interrupted run still reports what finished)."""
    for algorithm in plan.algorithms:
        if "api" in plan.checks:
            plan.progress(f"{algorithm} api")
            yield from api_outcomes(worker, algorithm, plan.profile, strict=plan.strict)
        for dtype in plan.dtypes:
            cases = []
            if "pipeline" in plan.checks or "one-step" in plan.checks:
                cases += plan.pipeline_cases(algorithm, dtype)
            by_check: dict[str, Outcome] = {}
            if "fixtures" in plan.checks:
                found = fixture_cases(algorithm, dtype, plan.profile, plan.fixture_directory)
                expected = expected_fixtures(algorithm, dtype, plan.profile)
                if not found and expected:
                    by_check["fixtures"] = _missing_fixtures(algorithm, dtype, plan, expected)
                cases += found
            one_step = Outcome(algorithm, "one-step", dtype) if "one-step" in plan.checks else None
            for case in cases:
                plan.progress(f"{algorithm} {dtype} {case.check} {case.label}")
                outcome = by_check.setdefault(case.check, Outcome(algorithm, case.check, dtype))
                run_case(worker, outcome, case, one_step if case.check.startswith("pipeline/") else None,
                         upstream_bugs(worker, plan, dtype))
            for o in by_check.values():
                if "pipeline" in plan.checks or not o.check.startswith("pipeline/"):
                    yield o.close()
            if one_step is not None:
                yield one_step.close()
            if "explore" in plan.checks:
                plan.progress(f"{algorithm} {dtype} explore")
                yield explore_outcome(worker, algorithm, dtype, plan)


def run_plan(worker: Worker, plan: Plan) -> list[Outcome]:
    return list(iter_outcomes(worker, plan))


# -- item by item (the plugin) -------------------------------------------------------------------------


def plan_items(plan: Plan) -> list[Item]:
    """Every check of the plan as a separately runnable item, in the order :func:`iter_outcomes` runs them."""
    items = []
    for algorithm in plan.algorithms:
        if "api" in plan.checks:
            items += [Item(algorithm, None, f"api/{name}") for name in API_CHECKS]
        for dtype in plan.dtypes:
            if "pipeline" in plan.checks or "one-step" in plan.checks:
                items += [Item(algorithm, dtype, c.check) for c in pipeline_cases(algorithm, dtype, plan.profile)]
            if "fixtures" in plan.checks:
                items += [Item(algorithm, dtype, f"fixtures/{c.label}")
                          for c in fixture_cases(algorithm, dtype, plan.profile, plan.fixture_directory)]
            if "explore" in plan.checks:
                items.append(Item(algorithm, dtype, "explore"))
    return items


def run_item(worker: Worker, plan: Plan, item: Item) -> list[Outcome]:
    """The outcomes of one item: a pipeline item also gives its one-step outcome (``one-step (<feature>)``)."""
    if item.dtype is None:
        return api_outcomes(worker, item.algorithm, plan.profile, [item.check.split("/", 1)[1]], plan.strict)
    if item.check == "explore":
        return [explore_outcome(worker, item.algorithm, item.dtype, plan)]
    family, label = item.check.split("/", 1)
    if family == "pipeline":
        cases = plan.pipeline_cases(item.algorithm, item.dtype)
    else:
        cases = fixture_cases(item.algorithm, item.dtype, plan.profile, plan.fixture_directory)
    case = next(c for c in cases if c.label == label)
    outcome = Outcome(item.algorithm, item.check, item.dtype)
    one_step = None
    if family == "pipeline" and "one-step" in plan.checks:
        one_step = Outcome(item.algorithm, f"one-step ({label})", item.dtype)
    run_case(worker, outcome, case, one_step, upstream_bugs(worker, plan, item.dtype))
    outcomes = [outcome.close()] if family == "fixtures" or "pipeline" in plan.checks else []
    return outcomes + ([one_step.close()] if one_step is not None else [])
