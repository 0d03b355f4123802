"""The one report of a run, for ``optconf check`` and the pytest plugin alike: the table, the failures, the
summary line, and the JSON document (format ``optimizer-conformance-report`` version 1, described by
``conformance/schemas/report-1.schema.json``).

Imports: the data model, the catalogue of known deviations and the atomic file writer.
"""

from __future__ import annotations

import io
import json
import math
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from optimizer_conformance.conformance import files
from optimizer_conformance.conformance.checks.upstream import describe, is_other_dialect, is_upstream
from optimizer_conformance.conformance.model import Outcome

FORMAT = "optimizer-conformance-report"
FORMAT_VERSION = 1


def ratio_text(ratio: float) -> str:
    """Two significant digits, more where two would round onto 1: a passing ratio never reads as 1, nor a failing
    one (0.99999999998 is not printed as 1 next to "pass at <= 1")."""
    if not math.isfinite(ratio):
        return str(ratio)
    if ratio == 1.0:
        return "1.0"
    for digits in range(2, 18):
        text = f"{ratio:.{digits}g}"
        if float(text) != 1.0:
            return text
    return repr(ratio)


def _cell(o: Outcome | None) -> str:
    if o is None:
        return "-"
    if o.error:
        return "ERROR"
    if o.not_applicable:
        return "n/a"
    if o.known_upstream_bug:
        return "UPSTREAM" if o.worst is None else f"UPSTREAM {ratio_text(o.worst.ratio)}"
    if o.worst is None:
        return "ok" if o.passed else "FAIL"
    cell = ratio_text(o.worst.ratio) if o.passed else f"FAIL {ratio_text(o.worst.ratio)}"
    return f"{cell} ({o.cases})" if o.check == "fixtures" else cell


def print_table(outcomes: list[Outcome], out: TextIO) -> None:
    """Per algorithm, one row per check and one column per dtype: the worst ratio, or FAIL."""
    for algorithm in dict.fromkeys(o.algorithm for o in outcomes):
        rows = [o for o in outcomes if o.algorithm == algorithm]
        dtypes = list(dict.fromkeys(o.dtype for o in rows if o.dtype is not None))
        checks = list(dict.fromkeys(o.check for o in rows if o.dtype is not None))
        api = [o for o in rows if o.dtype is None]
        cell = {(o.check, o.dtype): o for o in rows}
        passed = sum(1 for o in rows if o.passed)
        applicable = sum(1 for o in rows if o.not_applicable is None)
        upstream = sum(1 for o in rows if o.known_upstream_bug)
        known = f", {upstream} known upstream bug{'s' if upstream != 1 else ''}" if upstream else ""
        out.write(f"\n{algorithm}: {passed} of {applicable} checks pass{known} "
                  "(worst |candidate - exact| / budget; pass at <= 1; fixtures: the number judged in brackets)\n")
        # Column widths from the content: a long ratio or check name never runs into the next column.
        cells = {(check, d): _cell(cell.get((check, d))) for check in checks for d in dtypes}
        api_cells = {o.check: _cell(o) for o in api}
        name_width = max([len(c) for c in [*checks, *api_cells, "API and config (vs Keras)"]])
        widths = {d: max([len(d), *(len(cells[check, d]) for check in checks)]) for d in dtypes}
        if checks:
            out.write(f"  {'check':<{name_width}}" + "".join(f"  {d:>{widths[d]}}" for d in dtypes) + "\n")
        for check in checks:
            out.write(f"  {check:<{name_width}}" + "".join(f"  {cells[check, d]:>{widths[d]}}" for d in dtypes) + "\n")
        if api:
            result_width = max(len("result"), *(len(c) for c in api_cells.values()))
            out.write(f"  {'API and config (vs Keras)':<{name_width}}  {'result':>{result_width}}\n")
            for o in api:
                out.write(f"  {o.check:<{name_width}}  {api_cells[o.check]:>{result_width}}"
                          + (f"   {o.not_applicable}" if o.not_applicable else "") + "\n")


def print_failures(outcomes: Iterable[Outcome], out: TextIO) -> None:
    """Every failure, then every expected failure (a known upstream bug), with what diverged."""
    outcomes = list(outcomes)
    for o in [o for o in outcomes if o.failed] + [o for o in outcomes if o.known_upstream_bug]:
        head = "KNOWN UPSTREAM BUG" if o.known_upstream_bug else "FAIL"
        out.write(f"\n{head} {o.algorithm} {o.check}" + ("" if o.dtype is None else f" [{o.dtype}]"))
        out.write(f" on {o.worst_case}\n" if o.worst_case else "\n")
        if o.error:
            out.write(f"  {o.error}\n")
        diverged = o.worst is not None and o.worst.ratio > 1
        if diverged:
            w = o.worst
            out.write(f"  quantity   {w.quantity}\n  step       {w.step}\n  element    {w.element}\n"
                      f"  candidate  {w.candidate!r}\n  exact      {w.exact!r}\n"
                      f"  difference {abs(w.candidate - w.exact):.6g}\n  budget     {w.budget:.6g}\n"
                      f"  ratio      {ratio_text(w.ratio)}\n")
        for problem in o.problems[:12]:
            out.write(f"  - {problem}\n")
        if len(o.problems) > 12:
            out.write(f"  ... and {len(o.problems) - 12} more (see --json)\n")
        if o.known_upstream_bug:
            out.write(f"  known upstream bug {describe(o.upstream)}: expected in this release (--strict: a failure)\n")
        elif o.diagnosis and is_upstream(o.diagnosis):
            out.write(f"  matches a known upstream bug: {describe(o.diagnosis)}\n")
        elif o.diagnosis and is_other_dialect(o.diagnosis):
            out.write(f"  computes another library's rule: {describe(o.diagnosis)}\n")
        elif o.diagnosis:
            out.write(f"  matches a known porting bug: {describe(o.diagnosis)}\n")
        elif diverged and o.check == "scale":
            out.write("  matches none of the library's catalogued bugs; a failure only tensors this large show is a\n"
                      "  kernel's (its tail, chunks or layout); the other checks try every known porting bug\n")
        elif diverged and o.dtype is not None and not o.check.startswith("one-step"):
            out.write("  matches no known porting bug of the catalogue (every reported quantity compared)\n")
        if o.example:
            out.write(f"  smallest failing example: {o.example['summary']}\n")
            for other in o.example.get("others", [])[:5]:
                out.write(f"  also found: {other}\n")
            if "fixture" in o.example:
                out.write(f"  written as a fixture: {o.example['fixture']}\n")


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {"passed": sum(o.passed for o in outcomes), "failed": sum(o.failed for o in outcomes),
            "known_upstream_bugs": sum(o.known_upstream_bug for o in outcomes),
            "not_applicable": sum(o.not_applicable is not None for o in outcomes)}


def summary_line(outcomes: list[Outcome]) -> str:
    n = counts(outcomes)
    upstream = n["known_upstream_bugs"]
    known = f"{upstream} known upstream bug{'s' if upstream != 1 else ''}, " if upstream else ""
    return f"{n['passed']} passed, {n['failed']} failed, {known}{n['not_applicable']} not applicable"


def conformant(outcomes: list[Outcome]) -> bool:
    """Every applicable check passed (or failed only as a known upstream bug of the library the candidate runs
    on), and at least one passed: a run that judged nothing proves nothing."""
    return any(o.passed for o in outcomes) and not any(o.failed for o in outcomes)


def failures_text(outcomes: Iterable[Outcome]) -> str:
    out = io.StringIO()
    print_failures(outcomes, out)
    return out.getvalue().strip()


def print_durations(outcomes: list[Outcome], out: TextIO, count: int) -> None:
    """The ``count`` slowest checks (all with 0), slowest first, as pytest's ``--durations``."""
    timed = sorted((o for o in outcomes if o.duration is not None), key=lambda o: -o.duration)
    shown = timed[:count] if count else timed
    title = "slowest checks" if count else "durations"
    print(f"\n{title} ({len(shown)} of {len(timed)}):", file=out)
    for o in shown:
        where = o.algorithm if o.dtype is None else f"{o.algorithm} [{o.dtype}]"
        print(f"  {o.duration:8.2f}s  {o.check:<40} {where}", file=out)


def render(outcomes: list[Outcome], out: TextIO) -> None:
    """The table, then every failure with what diverged."""
    print_table(outcomes, out)
    print_failures(outcomes, out)


def to_json(outcomes: list[Outcome], candidate: dict, settings: dict, timing: dict | None = None) -> dict:
    """The report as a JSON document (see the schema); ``timing``: where the run's time went."""
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "candidate": candidate,
        "settings": settings,
        "platform": {"system": platform.platform(), "python": platform.python_version(),
                     "machine": platform.machine()},
        "conformant": conformant(outcomes),
        "summary": counts(outcomes),
        "checks": [o.to_json() for o in outcomes],
    }
    if timing is not None:
        document["timing"] = {key: round(value, 3) for key, value in timing.items()}
    return document


def schema() -> dict:
    return files.schema("report-1")


def write_json(path: str | Path, document: dict) -> None:
    files.write_atomically(Path(path), json.dumps(document, indent=2) + "\n")


@dataclass
class Report:
    """The outcomes of a run, with their verdict and their text (what the plugin's ``optconf`` fixture returns)."""

    outcomes: list[Outcome]

    @property
    def conformant(self) -> bool:
        return conformant(self.outcomes)

    @property
    def text(self) -> str:
        out = io.StringIO()
        render(self.outcomes, out)
        out.write(summary_line(self.outcomes) + "\n")
        return out.getvalue()
