"""``optconf upstream``: which catalogued upstream bugs the installed libraries have, in seconds.

Each entry of :mod:`conformance.checks.upstream` has its smallest reproduction, a trajectory spec.  It is run on
real Keras on each installed backend (in the compile mode the entry needs) and judged twice: against the
specification and against the entry's deviated oracle.  *present*: it fails the specification where the deviated
oracle holds it; *absent*: it follows the specification.  Each answer is set beside what the catalogue says of the
installed release, so an entry that a new release fixed (or one that reaches further than catalogued) shows.

Imports: the candidates' client, the catalogue of upstream bugs and the comparison with the oracle.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from optimizer_conformance.conformance.candidates.client import BACKENDS, CandidateError, Worker, parse_candidate
from optimizer_conformance.conformance.checks.compare import compare, oracle_states
from optimizer_conformance.conformance.checks.deviations import Deviation
from optimizer_conformance.conformance.checks.diagnosis import composed
from optimizer_conformance.conformance.checks.upstream import REPRODUCTIONS, UPSTREAM_BUGS, affecting
from optimizer_conformance.conformance.model import NotApplicable, RunError, first_line
from optimizer_conformance.reference import ReferenceOptimizer


@dataclass(frozen=True)
class Probe:
    """One entry's reproduction on one backend: ``status`` present, absent, differs, not applicable or not
    installed; ``catalogued``: whether the catalogue says the installed release has it there."""

    bug: str
    backend: str
    status: str
    catalogued: bool
    detail: str = ""
    release: str = ""

    @property
    def agrees(self) -> bool:
        """The catalogue and the measurement say the same (what cannot be measured disagrees with nothing)."""
        if self.status == "present":
            return self.catalogued
        if self.status == "absent":
            return not self.catalogued
        return True

    def line(self) -> str:
        note = ""
        if not self.agrees:
            note = ("   <- catalogued as affected: the entry is stale for this release" if self.catalogued
                    else "   <- not catalogued for this release: widen the entry")
        detail = f" ({self.detail})" if self.detail else ""
        return f"  {self.bug:<44} {self.backend:<11} {self.status}{detail}{note}"


def installed_backends() -> list[str]:
    if importlib.util.find_spec("keras") is None:
        return []
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def probe(backends: list[str] | None = None, timeout: float = 120.0) -> list[Probe]:
    """Every entry's reproduction on every backend asked for (default: every installed one)."""
    installed = installed_backends()
    probes = []
    for backend in backends or list(BACKENDS):
        if backend not in installed:
            probes += [Probe(bug.id, backend, "not installed", False) for bug in UPSTREAM_BUGS]
            continue
        workers: dict[tuple[str, str], Worker] = {}
        try:
            for bug in UPSTREAM_BUGS:
                probes.append(_probe_on(bug, backend, workers, timeout))
        finally:
            for worker in workers.values():
                worker.close()
    return probes


def _probe_on(bug: Deviation, backend: str, workers: dict, timeout: float) -> Probe:
    spec = REPRODUCTIONS[bug.id]
    compile, candidate = spec.get("compile", "eager"), bug.upstream.candidate
    if compile == "function" and backend != "tensorflow" or compile == "jit" and backend != "jax":
        return Probe(bug.id, backend, "not applicable", False, f"no {compile} mode on {backend}")
    if candidate != "keras" and backend != "tensorflow":
        return Probe(bug.id, backend, "not applicable", False, f"{candidate} runs on TensorFlow")
    try:
        if (candidate, compile) not in workers:
            workers[candidate, compile] = Worker(parse_candidate(candidate, backend, compile), timeout)
        worker = workers[candidate, compile]
    except CandidateError as error:
        return Probe(bug.id, backend, "not installed", False, str(error).splitlines()[0])
    return _probe_one(bug, spec, worker, compile)


def _probe_one(bug: Deviation, spec: dict, worker: Worker, compile: str) -> Probe:
    """Present when the specification fails and the bug explains it (with the other catalogued bugs this release
    has on this backend, where they meet in the reproduction); absent when the specification holds, or the other
    bugs alone explain it."""
    described = worker.description
    backend, library = described["backend"], described.get("library")
    version = described.get("versions", {}).get(library or "", "?")
    catalogued = bug.upstream.affects(library, version, backend, compile)
    shown = worker.candidate.backend
    try:
        states = worker.run(spec)
    except NotApplicable as reason:
        return Probe(bug.id, shown, "not applicable", catalogued, str(reason), version)
    except RunError as error:
        return Probe(bug.id, shown, "raised", catalogued, first_line(error, 120), version)
    worst = _worst(spec, states, None)
    if worst <= 1.0:
        return Probe(bug.id, shown, "absent", catalogued, "", version)
    others = tuple(b for b in affecting(described, spec["dtype"]) if b.id != bug.id)
    together = (bug,) + tuple(d for d in composed((bug,) + others) if bug.id in d.id.split(" + "))
    if any(_worst(spec, states, d) <= 1.0 for d in others + composed(others)):
        return Probe(bug.id, shown, "absent", catalogued, "the release's other bugs explain the case", version)
    if any(_worst(spec, states, d) <= 1.0 for d in together):
        return Probe(bug.id, shown, "present", catalogued, f"ratio {worst:.3g}", version)
    return Probe(bug.id, shown, "differs", catalogued, f"ratio {worst:.3g}, not explained by the catalogue", version)


def _worst(spec: dict, states: list[dict], deviation: Deviation | None) -> float:
    deviated = (spec, ReferenceOptimizer) if deviation is None else deviation.deviate(spec)
    if deviated is None:
        return float("inf")
    try:
        return max((f.ratio for f in compare(oracle_states(deviated[0], oracle=deviated[1]), states)), default=0.0)
    except (ValueError, ArithmeticError):
        return float("inf")


def render(probes: list[Probe]) -> str:
    releases = sorted({p.release for p in probes if p.release})
    lines = [f"known upstream bugs, measured on the installed libraries ({', '.join(releases) or 'not installed'}):"]
    lines += [p.line() for p in probes]
    stale = [p for p in probes if not p.agrees]
    lines.append(f"{sum(p.status == 'present' for p in probes)} present, {len(stale)} where the catalogue and "
                 "the measurement disagree")
    return "\n".join(lines)
