"""The human table and the machine-readable JSON report of ``optconf check``."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from typing import TextIO

from conformance.checks import Outcome


def _where(o: Outcome) -> str:
    if o.error:
        return "error"
    if o.worst is None:
        return "n/a" if o.cases else "-"
    w = o.worst
    return f"{w.quantity} step {w.step} [{w.element}] ({o.worst_case})"


def _result(o: Outcome) -> str:
    if o.error:
        return "ERROR"
    if o.worst is None:
        return "n/a"
    return "pass" if o.passed else "FAIL"


def print_table(outcomes: list[Outcome], out: TextIO) -> None:
    for algorithm in dict.fromkeys(o.algorithm for o in outcomes):
        rows = [o for o in outcomes if o.algorithm == algorithm]
        out.write(f"\n{algorithm}\n")
        out.write(f"  {'check':<34} {'dtype':<9} {'result':<6} {'worst ratio':>11}  where\n")
        for o in rows:
            ratio = "" if o.worst is None else f"{o.worst.ratio:.3g}"
            out.write(f"  {o.check:<34} {o.dtype:<9} {_result(o):<6} {ratio:>11}  {_where(o)}\n")


def print_failures(outcomes: Iterable[Outcome], out: TextIO) -> None:
    for o in outcomes:
        if o.passed:
            continue
        out.write(f"\nFAIL {o.algorithm} {o.check} [{o.dtype}]")
        out.write(f" on {o.worst_case}\n" if o.worst_case else "\n")
        if o.error:
            out.write(f"  {o.error}\n")
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
            if "fixture" in o.example:
                out.write(f"  written as a fixture: {o.example['fixture']}\n")


def summary_line(outcomes: list[Outcome]) -> str:
    failed = sum(1 for o in outcomes if not o.passed)
    skipped = sum(1 for o in outcomes if o.passed and o.worst is None)
    return f"{len(outcomes) - failed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


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
        "conformant": all(o.passed for o in outcomes),
        "checks": [
            {"algorithm": o.algorithm, "check": o.check, "dtype": o.dtype, "passed": o.passed, "cases": o.cases,
             "worst": finding(o.worst), "worst_case": o.worst_case, "error": o.error, "diagnosis": o.diagnosis,
             "example": None if o.example is None else {k: v for k, v in o.example.items() if k != "spec"}}
            for o in outcomes
        ],
    }


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
