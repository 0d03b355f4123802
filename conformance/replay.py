"""Replay fixtures: turn a fixture into runnable specs and judge a candidate's states against it."""

from __future__ import annotations

from optimizer_conformance.conformance.fixture_format import Fixture
from optimizer_conformance.conformance.trajectory import (
    Finding,
    JudgeError,
    check_coverage,
    decode,
    make_spec,
    worst_finding,
)

_VERIFIED: dict[tuple[str, str], str | None] = {}


def verify_against_oracle(fixture: Fixture) -> str | None:
    """Why ``fixture`` cannot be trusted (its first value or budget the oracle does not reproduce), or None.

    Re-derived once per file and content in a process: the fixtures check never judges against a file it
    has not re-derived, so a value or budget edited and re-hashed cannot make a candidate pass.
    """
    from optimizer_conformance.conformance.generate import rederive

    key = (fixture.path, fixture.document["sha256"])
    if key not in _VERIFIED:
        _VERIFIED[key] = rederive(fixture)
    return _VERIFIED[key]


def spec_for(fixture: Fixture, dtype: str, compile: str = "eager") -> dict:
    """A :mod:`conformance.worker` spec that replays ``fixture`` in ``dtype``."""
    if dtype not in fixture.budget_dtypes:
        raise ValueError(f"{fixture.path}: no budgets for {dtype}; it has {fixture.budget_dtypes}")
    doc = fixture.document
    return make_spec(fixture.algorithm, fixture.config, dtype, fixture.variables(), fixture.gradients(),
                     exclude=doc["exclude_from_weight_decay"], compile=compile, finalize=doc["finalize"])


def judge(fixture: Fixture, dtype: str, states: list[dict[str, list[str]]]) -> list[Finding]:
    """The worst ratio of every quantity the candidate reports, at every state (``iterations`` exactly)."""
    doc = fixture.document
    if len(states) != len(doc["states"]):
        raise JudgeError(f"{fixture.path}: candidate recorded {len(states)} states, the fixture {len(doc['states'])}")
    findings = []
    for k, (expected, got) in enumerate(zip(doc["states"], states)):
        check_coverage(got, [*expected["exact"], "iterations"], k + 1)
        for quantity, values in got.items():
            candidate = decode(values, (-1,))
            if quantity == "iterations":
                if candidate.size != 1:
                    raise JudgeError(f"iterations after step {k + 1}: {candidate.size} values, expected one")
                ok = candidate[0] == expected["iterations"]
                findings.append(Finding("iterations", k + 1, 0, 0.0 if ok else float("inf"),
                                        float(candidate[0]), float(expected["iterations"]), 0.0))
                continue
            findings.append(worst_finding(quantity, k + 1, candidate, fixture.exact(k, quantity),
                                          fixture.budget(k, quantity, dtype)))
    return findings
