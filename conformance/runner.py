"""The one runner: what ``optconf check`` and the pytest plugin run on a candidate, and in which order.

A :class:`Plan` names the algorithms, dtypes, profile and check families.  Each family is one entry of
:data:`FAMILIES` (its items, and how it runs and judges them); :func:`iter_outcomes` is one loop over them (the
command line), :func:`plan_items` lists every item, each carrying its case, and :func:`run_item` runs one (the
plugin, one test each).  Every case runs through :func:`run_case`, so whatever the candidate does (raise, hang,
die, report junk) ends as a judged finding or an error, never as a lost run.

Checks, each reported per algorithm and dtype:

``pipeline/<feature>``  the catalogue's features (:mod:`conformance.cases.catalogue`), judged as whole
                        trajectories;
``one-step``            the same trajectories, each step judged from the candidate's own previous state;
``fixtures``            the golden fixtures of the algorithm that carry budgets for the dtype;
``explore``             property-based exploration with hypothesis (:mod:`conformance.checks.explore`);
``scale``               tensors of a million elements and more at kernel boundaries (:mod:`conformance.cases.scale`),
                        every element judged (the ``ci`` and ``deep`` profiles);
``api/<name>``          API and configuration compatibility with Keras (:mod:`conformance.checks.api`), per
                        algorithm.

Imports: the candidates' client, the checks, the cases, the golden fixtures and the data model.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer_conformance.conformance.candidates.client import Worker, parse_candidate
from optimizer_conformance.conformance.cases.catalogue import pipeline_cases
from optimizer_conformance.conformance.cases.scale import scale_cases
from optimizer_conformance.conformance.checks.api import CHECKS as API_CHECKS
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.checks.deviations import Deviation
from optimizer_conformance.conformance.checks.diagnosis import diagnose, diagnose_one_step
from optimizer_conformance.conformance.checks.explore import explore
from optimizer_conformance.conformance.checks.numeric import counter_problem, judge_one_step, judge_trajectory, trace
from optimizer_conformance.conformance.checks.upstream import BY_ID, affecting
from optimizer_conformance.conformance.golden.replay import FIXTURES, expected_fixtures, fixture_cases
from optimizer_conformance.conformance.model import (
    PROFILES,
    CandidateLost,
    Case,
    JudgeError,
    NotApplicable,
    Outcome,
    Profile,
    RunError,
    lacking,
    with_floatx,
)
from optimizer_conformance.conformance.settings import CHECK_FAMILIES, Settings, chosen

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
    own_fixtures: tuple[Path, ...] = ()  # directories of the user's own fixtures, replayed in every dtype they can
    # Where explore keeps hypothesis's example database, a directory per candidate, algorithm and dtype (None: none).
    explore_database: Path | None = None
    # Called with the item about to run and how many items it stands for (conformance.progress.Progress).
    progress: Callable[..., None] = field(default=lambda label, advance=1: None)
    write_failure: Callable[[dict], Path] | None = None
    strict: bool = False  # a known upstream bug of the candidate's library is a failure, not an expected one
    floatx: str = "float32"  # Keras's floatx() the candidate runs under (the dtype of its learning-rate variable)
    lacks: Mapping[str, str] = field(default_factory=dict)  # features the port lacks, with why (model.LACKABLE)

    def pipeline_cases(self, algorithm: str, dtype: str) -> list[Case]:
        """The catalogue's pipeline cases for the plan's algorithms and dtypes (pairwise unless its profile runs
        every combination), run under the plan's ``floatx``."""
        return self._in_floatx(pipeline_cases(algorithm, dtype, self.profile, self.algorithms, self.dtypes))

    def scale_cases(self, algorithm: str, dtype: str) -> list[Case]:
        """The profile's scale case of ``algorithm`` in ``dtype``, if a pairwise run gives it one."""
        return self._in_floatx(scale_cases(algorithm, dtype, self.profile, self.algorithms, self.dtypes))

    def _in_floatx(self, cases: list[Case]) -> list[Case]:
        """``cases`` run under the plan's ``floatx``."""
        return [replace(c, spec=with_floatx(c.spec, self.floatx)) for c in cases]


def plan_for(settings: Settings, description: dict, **extras: Any) -> Plan:
    """The plan of a run with ``settings`` on a candidate its worker described: what was asked for, else what the
    candidate claims (within the dialect); its floatx, else the candidate's, else float32."""
    return Plan(chosen(settings.algorithms, description["algorithms"], settings.dialect),
                chosen(settings.dtypes, description["dtypes"]), PROFILES[settings.profile], tuple(settings.checks),
                strict=settings.strict, floatx=settings.floatx or description.get("floatx") or "float32",
                lacks=settings.lacks, own_fixtures=tuple(settings.fixtures),
                explore_database=settings.explore_database, **extras)


@dataclass(frozen=True)
class Item:
    """One separately runnable check of a family (:data:`FAMILIES`): ``dtype`` None for an API check; ``case`` the
    trajectory a pipeline or fixture item runs."""

    family: str
    algorithm: str
    dtype: str | None
    check: str  # "api/<name>", "pipeline/<feature>", "fixtures/<name>" or "explore"
    case: Case | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """``<algorithm>/<dtype>/<check>`` (``<algorithm>/api/<name>`` for an API check): the xfail key."""
        return f"{self.algorithm}/{self.check}" if self.dtype is None else f"{self.algorithm}/{self.dtype}/{self.check}"


class Workers:
    """One worker per candidate, backend and compile mode, kept for a session (the plugin's items share them)."""

    def __init__(self) -> None:
        self._workers: dict[tuple, Worker] = {}

    def get(self, settings: Settings) -> Worker:
        """The worker of ``settings``'s candidate, backend and compile mode (made on first use)."""
        key = (settings.candidate, settings.backend, settings.compile)
        if key not in self._workers:
            self._workers[key] = Worker(parse_candidate(settings.candidate, settings.backend, settings.compile),
                                        settings.timeout)
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


def known_deviations(worker: Worker, plan: Plan, dtype: str | None) -> tuple[Deviation, ...]:
    """The deviations a diagnosis tries first: the catalogued upstream bugs the candidate has by the library it runs
    on (none under ``--strict``; a failure they explain is expected), then the conventions its library is known for
    (a built-in adapter's ``conventions``: torch.optim's ε placement), which explain a failure and leave it one."""
    conventions = tuple(BY_ID[i] for i in worker.description.get("conventions", ()) if i in BY_ID)
    # Every dtype's: a run in one dtype holds variables in others (a float16 bias beside float32 weights), and each
    # bug's deviated oracle applies only where the trajectory holds a variable in its dtypes.
    return (() if plan.strict else affecting(worker.description)) + conventions


def expected(known: tuple[Deviation, ...]) -> set[str]:
    """The ids among ``known`` whose failures are expected: the upstream bugs."""
    return {d.id for d in known if d.upstream is not None}


def judge_case(outcome: Outcome, case: Case, states: list[dict], one_step: Outcome | None = None,
               upstream: tuple[Deviation, ...] = ()) -> None:
    """Judge one case's states into its outcome (and the one-step outcome); unjudgeable states are errors.

    A failing case is diagnosed (the first of an outcome always; each, where the candidate's library has
    catalogued upstream bugs, since one it does not explain makes the outcome a plain failure)."""
    ids = expected(upstream)
    try:
        judgement = judge_trajectory(case, states)
    except JudgeError as error:
        outcome.fail(case.label, str(error))
    else:
        before = outcome.worst
        outcome.absorb(judgement.worst, case.label)
        if outcome.worst is not before:
            outcome.trace = trace(case, states, judgement)
        outcome.problems += [counter_problem(case.label, c) for c in judgement.counters[:3]]
        if not judgement.passed and (outcome.diagnosis is None or ids and not outcome.unexplained):
            outcome.explain(diagnose(case.spec, states, upstream), ids)
    if one_step is not None:
        try:
            finding = judge_one_step(case, states)
            if finding is not None:
                one_step.absorb(finding, case.label)
                first_or_all = one_step.diagnosis is None or ids and not one_step.unexplained
                if finding.ratio > 1.0 and upstream and first_or_all:
                    one_step.explain(diagnose_one_step(case, states, upstream), ids)
        except JudgeError as error:
            one_step.fail(case.label, str(error))


def _oracle_for(case: Case) -> Callable[[], object] | None:
    """The oracle's work on ``case``, done while the candidate runs it (a fixture holds its exact states)."""
    return None if case.fixture is not None else (lambda: oracle_states(case.spec))


def run_case(worker: Worker, outcome: Outcome, case: Case, one_step: Outcome | None = None,
             upstream: tuple[Deviation, ...] = (), lacks: Mapping[str, str] = {}) -> None:
    """Run one case on the candidate and judge it; whatever the candidate does ends as a finding or an error; a
    case that uses a feature the port lacks (``lacks``) is not applicable."""
    failure = case.problem or given_up(worker)
    if failure is None:
        try:
            states = _run_unless_lacking(worker, case.spec, lacks, _oracle_for(case))
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


def _run_unless_lacking(worker: Worker, spec: dict, lacks: Mapping[str, str],
                        meanwhile: Callable[[], object] | None = None) -> list[dict]:
    reason = lacking(spec, lacks)
    if reason is not None:
        raise NotApplicable(reason)
    return worker.run(spec, meanwhile=meanwhile)


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


def _directory_name(label: str) -> str:
    """A candidate's label as one directory name (``keras [torch]`` -> ``keras-torch``)."""
    return "-".join("".join(c if c.isalnum() or c in "._" else " " for c in label).split())


def explore_outcome(worker: Worker, algorithm: str, dtype: str, plan: Plan) -> Outcome:
    lost = given_up(worker)
    if lost:
        return Outcome(algorithm, "explore", dtype, cases=1, error=lost)
    upstream = known_deviations(worker, plan, dtype)

    def run(spec: dict) -> list[dict]:
        return _run_unless_lacking(worker, spec, plan.lacks, lambda: oracle_states(spec))

    database = None if plan.explore_database is None else plan.explore_database / _directory_name(
        worker.candidate.label) / algorithm / dtype
    outcome = explore(run, algorithm, dtype, plan.profile, write_failure=plan.write_failure,
                      floatx=plan.floatx, upstream=tuple(d for d in upstream if d.upstream is not None),
                      database=database)
    if outcome.worst is not None and outcome.worst.ratio > 1.0 and outcome.example:
        # The shrunk example is what the report shows: its own diagnosis, not that of an expected failure met on
        # the way (explore records those and goes on).
        outcome.diagnosis = None
        try:  # the shrunk example, run once more, for the diagnosis
            outcome.explain(diagnose(outcome.example["spec"], worker.run(outcome.example["spec"]), upstream),
                            expected(upstream))
        except (RunError, NotApplicable):
            outcome.unexplained = True
    return outcome.close()


# -- the check families ------------------------------------------------------------------------------


class Family:
    """A family of checks: its items for an algorithm (and dtype), and how it runs and judges some of them.

    ``run`` takes every item of one algorithm and dtype (``whole``, the command line) or one item (the plugin);
    ``selected_by`` are the names of ``--checks`` that select it."""

    name: str
    selected_by: tuple[str, ...]
    per_dtype = True

    def items(self, plan: Plan, algorithm: str, dtype: str | None) -> list[Item]:
        raise NotImplementedError

    def run(self, worker: Worker, plan: Plan, items: list[Item], whole: bool) -> Iterator[Outcome]:
        raise NotImplementedError

    def outcomes(self, worker: Worker, plan: Plan, algorithm: str, dtype: str | None) -> Iterator[Outcome]:
        """The whole family for ``algorithm`` in ``dtype``."""
        return self.run(worker, plan, self.items(plan, algorithm, dtype), whole=True)


class Api(Family):
    """``api/<name>``: API and configuration compatibility with Keras, per algorithm."""

    name, selected_by, per_dtype = "api", ("api",), False

    def items(self, plan, algorithm, dtype):
        return [Item(self.name, algorithm, None, f"api/{name}") for name in API_CHECKS]

    def run(self, worker, plan, items, whole):
        if items:
            plan.progress(f"{items[0].algorithm} api", len(items))
            yield from api_outcomes(worker, items[0].algorithm, plan.profile,
                                    [item.check.split("/", 1)[1] for item in items], plan.strict)


class Pipeline(Family):
    """``pipeline/<feature>``: the catalogue's features as whole trajectories; and ``one-step``: each of their steps
    judged from the candidate's own previous state (one outcome per dtype, or ``one-step (<feature>)`` per item)."""

    name, selected_by = "pipeline", ("pipeline", "one-step")

    def items(self, plan, algorithm, dtype):
        return [Item(self.name, algorithm, dtype, c.check, c) for c in plan.pipeline_cases(algorithm, dtype)]

    def run(self, worker, plan, items, whole):
        if not items:
            return
        algorithm, dtype = items[0].algorithm, items[0].dtype
        one_step = Outcome(algorithm, "one-step", dtype) if "one-step" in plan.checks and whole else None
        for item in items:
            plan.progress(f"{algorithm} {dtype} {item.check}")
            outcome = Outcome(algorithm, item.check, dtype)
            own_step = one_step
            if "one-step" in plan.checks and not whole:
                own_step = Outcome(algorithm, f"one-step ({item.case.label})", dtype)
            run_case(worker, outcome, item.case, own_step, known_deviations(worker, plan, dtype), plan.lacks)
            if "pipeline" in plan.checks:
                yield outcome.close()
            if own_step is not None and not whole:
                yield own_step.close()
        if one_step is not None:
            yield one_step.close()


class Fixtures(Family):
    """``fixtures``: the golden fixtures of the algorithm with budgets for the dtype (one outcome per dtype, or
    ``fixtures/<name>`` per item)."""

    name, selected_by = "fixtures", ("fixtures",)

    def items(self, plan, algorithm, dtype):
        return self._items(plan, algorithm, dtype, self._bundled(plan, algorithm, dtype))

    def _bundled(self, plan: Plan, algorithm: str, dtype: str | None) -> list[Case]:
        """The bundled corpus's cases, pairwise over the run's dtypes."""
        return fixture_cases(algorithm, dtype, plan.profile, plan.fixture_directory, plan.dtypes)

    def _items(self, plan: Plan, algorithm: str, dtype: str | None, bundled: list[Case]) -> list[Item]:
        """The bundled cases, then one's own fixtures (regressions: each in every dtype it has budgets for)."""
        own = [c for directory in plan.own_fixtures for c in fixture_cases(algorithm, dtype, plan.profile, directory)]
        return [Item(self.name, algorithm, dtype, f"fixtures/{c.label}", c) for c in bundled + own]

    def outcomes(self, worker, plan, algorithm, dtype):
        bundled = self._bundled(plan, algorithm, dtype)
        expected = expected_fixtures(algorithm, dtype, plan.profile, plan.dtypes)
        if not bundled and expected:
            yield Outcome(algorithm, "fixtures", dtype, cases=1,
                          error=f"no fixture found in {plan.fixture_directory}; the corpus has {expected} for "
                                f"{algorithm} with {dtype} budgets (is the package installed with its fixtures?)")
        yield from self.run(worker, plan, self._items(plan, algorithm, dtype, bundled), whole=True)

    def run(self, worker, plan, items, whole):
        if not items:
            return
        algorithm, dtype = items[0].algorithm, items[0].dtype
        outcome = Outcome(algorithm, "fixtures", dtype) if whole else None
        for item in items:
            plan.progress(f"{algorithm} {dtype} {item.check}")
            own = outcome or Outcome(algorithm, item.check, dtype)
            run_case(worker, own, item.case, None, known_deviations(worker, plan, dtype), plan.lacks)
            if not whole:
                yield own.close()
        if outcome is not None:
            yield outcome.close()


class Explore(Family):
    """``explore``: property-based exploration with hypothesis (:mod:`conformance.checks.explore`)."""

    name, selected_by = "explore", ("explore",)

    def items(self, plan, algorithm, dtype):
        return [Item(self.name, algorithm, dtype, "explore")]

    def run(self, worker, plan, items, whole):
        for item in items:
            plan.progress(f"{item.algorithm} {item.dtype} explore")
            yield explore_outcome(worker, item.algorithm, item.dtype, plan)


class Scale(Family):
    """``scale``: one trajectory of tensors of a million elements and more, every element judged (the oracle runs
    on whole arrays: :mod:`reference.arrays`)."""

    name, selected_by = "scale", ("scale",)

    def items(self, plan, algorithm, dtype):
        return [Item(self.name, algorithm, dtype, c.check, c) for c in plan.scale_cases(algorithm, dtype)]

    def run(self, worker, plan, items, whole):
        for item in items:
            plan.progress(f"{item.algorithm} {item.dtype} scale")
            outcome = Outcome(item.algorithm, item.check, item.dtype)
            run_case(worker, outcome, item.case, None, known_deviations(worker, plan, item.dtype), plan.lacks)
            yield outcome.close()


# The families, in the order a run goes through them (per algorithm: the API, then per dtype the rest).
FAMILIES: dict[str, Family] = {f.name: f for f in (Api(), Pipeline(), Fixtures(), Explore(), Scale())}
assert {name for f in FAMILIES.values() for name in f.selected_by} == set(CHECK_FAMILIES)


def selected(plan: Plan) -> list[Family]:
    """The families ``plan.checks`` selects."""
    return [f for f in FAMILIES.values() if set(f.selected_by) & set(plan.checks)]


# -- the runner: one loop ----------------------------------------------------------------------------------


def _timed(outcomes: Iterator[Outcome]) -> Iterator[Outcome]:
    """Each outcome with its duration: the wall time since the previous one of its family was decided (unless it
    comes timed: the API checks are timed one by one in the worker)."""
    started = time.perf_counter()
    for outcome in outcomes:
        now = time.perf_counter()
        if outcome.duration is None:
            outcome.duration = now - started
        started = now
        yield outcome


def units(plan: Plan) -> list[tuple[Family, str, str | None]]:
    """The plan's units of work, in order: each algorithm's API checks, then per dtype each selected family."""
    return [(family, algorithm, dtype) for algorithm in plan.algorithms for dtype in (None, *plan.dtypes)
            for family in selected(plan) if family.per_dtype == (dtype is not None)]


def iter_outcomes(workers: Worker | Sequence[Worker], plan: Plan) -> Iterator[Outcome]:
    """Each outcome as soon as it is decided, in the plan's order (so an interrupted run still reports what
    finished).

    With several workers (each a process of the same candidate), as many units (:func:`units`) run at once, one per
    worker, each in a thread of the host that also does its oracle's work and judgement: a framework's eager
    dispatch is one core's work, so two workers on two cores halve a run.  A unit's outcomes come when the whole
    unit is done."""
    pool = [workers] if isinstance(workers, Worker) else list(workers)
    if len(pool) == 1:
        for family, algorithm, dtype in units(plan):
            yield from _timed(family.outcomes(pool[0], plan, algorithm, dtype))
        return
    free: queue.SimpleQueue[Worker] = queue.SimpleQueue()
    for worker in pool:
        free.put(worker)
    stopped = threading.Event()

    def run_unit(family: Family, algorithm: str, dtype: str | None) -> list[Outcome]:
        if stopped.is_set():
            return []
        worker = free.get()
        try:
            return list(_timed(family.outcomes(worker, plan, algorithm, dtype)))
        finally:
            free.put(worker)

    executor = ThreadPoolExecutor(len(pool), thread_name_prefix="optconf-unit")
    try:
        futures = [executor.submit(run_unit, *unit) for unit in units(plan)]
        for future in futures:
            yield from future.result()
    finally:
        stopped.set()
        executor.shutdown(wait=False, cancel_futures=True)


def run_plan(workers: Worker | Sequence[Worker], plan: Plan) -> list[Outcome]:
    return list(iter_outcomes(workers, plan))


def plan_items(plan: Plan) -> list[Item]:
    """Every check of the plan as a separately runnable item, in the order :func:`iter_outcomes` reports them."""
    return [item for family, algorithm, dtype in units(plan) for item in family.items(plan, algorithm, dtype)]


def find_item(plan: Plan, algorithm: str, dtype: str | None, check: str) -> Item:
    """The plan's item of ``check`` (``pipeline/basic``, ``api/signature``, ...) for ``algorithm`` in ``dtype``."""
    for item in plan_items(replace(plan, algorithms=[algorithm], dtypes=[dtype] if dtype else [])):
        if item.dtype == dtype and item.check == check:
            return item
    raise ValueError(f"the plan has no check {check!r} for {algorithm} in {dtype}")


def run_item(worker: Worker, plan: Plan, item: Item) -> list[Outcome]:
    """The outcomes of one item: a pipeline item also gives its one-step outcome (``one-step (<feature>)``)."""
    return list(_timed(FAMILIES[item.family].run(worker, plan, [item], whole=False)))
