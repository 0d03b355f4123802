"""The human table and the machine-readable JSON report of ``optconf check``."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from typing import TextIO

from optimizer_conformance.conformance.checks import Outcome


def _cell(o: Outcome | None) -> str:
    if o is None:
        return "-"
    if o.error:
        return "ERROR"
    if o.not_applicable:
        return "n/a"
    if o.problems:
        return "FAIL"
    if o.worst is None:
        return "ok" if o.passed else "FAIL"
    cell = f"{o.worst.ratio:.2g}" if o.passed else f"FAIL {o.worst.ratio:.2g}"
    return f"{cell} ({o.cases})" if o.check == "fixtures" else cell


def print_table(outcomes: list[Outcome], out: TextIO) -> None:
    """Per algorithm, one row per check and one column per dtype: the worst ratio, or FAIL."""
    for algorithm in dict.fromkeys(o.algorithm for o in outcomes):
        rows = [o for o in outcomes if o.algorithm == algorithm]
        dtypes = list(dict.fromkeys(o.dtype for o in rows if o.dtype != "api"))
        checks = list(dict.fromkeys(o.check for o in rows if o.dtype != "api"))
        api = [o for o in rows if o.dtype == "api"]
        cell = {(o.check, o.dtype): o for o in rows}
        passed = sum(1 for o in rows if o.passed)
        applicable = sum(1 for o in rows if o.not_applicable is None)
        out.write(f"\n{algorithm}: {passed} of {applicable} checks pass "
                  "(worst |candidate - exact| / budget; pass at <= 1; fixtures: (how many were used))\n")
        if checks:
            out.write(f"  {'check':<34}" + "".join(f" {d:>12}" for d in dtypes) + "\n")
        for check in checks:
            out.write(f"  {check:<34}" + "".join(f" {_cell(cell.get((check, d))):>12}" for d in dtypes) + "\n")
        if api:
            out.write(f"  {'API and config (vs Keras)':<34} {'result':>12}\n")
            for o in api:
                out.write(f"  {o.check:<34} {_cell(o):>12}" + (f"   {o.not_applicable}" if o.not_applicable else "")
                          + "\n")


def print_failures(outcomes: Iterable[Outcome], out: TextIO) -> None:
    for o in outcomes:
        if not o.failed:
            continue
        out.write(f"\nFAIL {o.algorithm} {o.check}" + ("" if o.dtype == "api" else f" [{o.dtype}]"))
        out.write(f" on {o.worst_case}\n" if o.worst_case else "\n")
        if o.error:
            out.write(f"  {o.error}\n")
        for problem in o.problems[:12]:
            out.write(f"  - {problem}\n")
        if len(o.problems) > 12:
            out.write(f"  ... and {len(o.problems) - 12} more (see --json)\n")
        if o.worst is not None and o.worst.ratio > 1:
            w = o.worst
            out.write(f"  quantity   {w.quantity}\n  step       {w.step}\n  element    {w.element}\n"
                      f"  candidate  {w.candidate!r}\n  exact      {w.exact!r}\n"
                      f"  difference {abs(w.candidate - w.exact):.6g}\n  budget     {w.budget:.6g}\n"
                      f"  ratio      {w.ratio:.6g}\n")
        if o.diagnosis:
            out.write(f"  matches a known porting bug: {o.diagnosis}\n")
        if o.example:
            out.write(f"  smallest failing example: {o.example['summary']}\n")
            for other in o.example.get("others", [])[:5]:
                out.write(f"  also found: {other}\n")
            if "fixture" in o.example:
                out.write(f"  written as a fixture: {o.example['fixture']}\n")


def summary_line(outcomes: list[Outcome]) -> str:
    passed = sum(1 for o in outcomes if o.passed)
    failed = sum(1 for o in outcomes if o.failed)
    return f"{passed} passed, {failed} failed, {len(outcomes) - passed - failed} not applicable"


def conformant(outcomes: list[Outcome]) -> bool:
    """Every applicable check passed, and at least one did: a run that judged nothing proves nothing."""
    return any(o.passed for o in outcomes) and not any(o.failed for o in outcomes)


def to_json(outcomes: list[Outcome], candidate: dict, settings: dict) -> dict:
    def finding(f):
        return None if f is None else {"quantity": f.quantity, "step": f.step, "element": f.element,
                                       "candidate": f.candidate, "exact": f.exact, "budget": f.budget,
                                       "ratio": f.ratio if f.ratio != float("inf") else "inf"}

    return {
        "candidate": candidate,
        "settings": settings,
        "platform": {"system": platform.platform(), "python": platform.python_version(),
                     "machine": platform.machine()},
        "conformant": conformant(outcomes),
        "summary": {"passed": sum(o.passed for o in outcomes), "failed": sum(o.failed for o in outcomes),
                    "not_applicable": sum(o.not_applicable is not None for o in outcomes)},
        "checks": [
            {"algorithm": o.algorithm, "check": o.check, "dtype": o.dtype, "passed": o.passed,
             "verdict": "pass" if o.passed else ("fail" if o.failed else "not applicable"), "cases": o.cases,
             "worst": finding(o.worst), "worst_case": o.worst_case, "error": o.error, "diagnosis": o.diagnosis,
             "problems": o.problems, "not_applicable": o.not_applicable,
             "example": None if o.example is None else {k: v for k, v in o.example.items() if k != "spec"}}
            for o in outcomes
        ],
    }


def write_json(path: str, document: dict) -> None:
    from pathlib import Path

    from optimizer_conformance.conformance.generate import write_atomically

    write_atomically(Path(path), json.dumps(document, indent=2) + "\n")
