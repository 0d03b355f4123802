"""What a profile runs: the pipeline features pairwise over rules and dtypes and each fixture in one of its dtypes
(quick, ci), every combination (deep)."""

from collections import Counter

import pytest
from optimizer_conformance.conformance.cases.catalogue import FEATURES, features_for, judges_the_rule, pipeline_cases
from optimizer_conformance.conformance.golden.format import load
from optimizer_conformance.conformance.golden.replay import FIXTURES, LONG, expected_fixtures, fixture_cases
from optimizer_conformance.conformance.model import PROFILES
from optimizer_conformance.reference.rules import DIALECT_RULES

KERAS3 = list(DIALECT_RULES["keras3"])
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def ran(profile: str, algorithms: list[str], dtypes: list[str]) -> set[tuple[str, str, str]]:
    """(feature, rule, dtype) of every pipeline case a run of ``algorithms`` in ``dtypes`` has."""
    return {(c.label, a, d) for a in algorithms for d in dtypes
            for c in pipeline_cases(a, d, PROFILES[profile], algorithms, dtypes)}


@pytest.mark.parametrize("profile", ["quick", "ci"])
def test_pairwise_covers_every_feature_with_every_rule_and_in_every_dtype(profile):
    cases = ran(profile, KERAS3, DTYPES)
    for rule in KERAS3:
        for feature in features_for(rule):
            dtypes_here = {d for f, a, d in cases if f == feature.name and a == rule}
            if judges_the_rule(feature):  # the rule's own arithmetic: everywhere
                assert dtypes_here == set(DTYPES), (feature.name, rule)
            else:
                assert dtypes_here, f"{feature.name} never runs on {rule}"
    for feature in FEATURES:
        if any(feature in features_for(r) for r in KERAS3):
            assert {d for f, _, d in cases if f == feature.name} == set(DTYPES), feature.name
    # Each rule and dtype gets its share of the pipeline features, and far fewer runs than every combination.
    shares = Counter((a, d) for f, a, d in cases if not judges_the_rule(next(x for x in FEATURES if x.name == f)))
    assert max(shares.values()) - min(shares.values()) <= 3, shares
    assert len(cases) < 0.45 * len(ran("deep", KERAS3, DTYPES))


def test_deep_runs_every_combination_and_one_rule_runs_every_feature_in_every_dtype():
    every = {(f.name, a, d) for a in KERAS3 for d in DTYPES for f in features_for(a)}
    assert ran("deep", KERAS3, DTYPES) == every
    # A port of one rule (--algorithm adam) is checked with every feature in each of its dtypes.
    assert ran("ci", ["adam"], DTYPES) == {(f, a, d) for f, a, d in every if a == "adam"}
    # One dtype: every feature on every rule.
    assert ran("ci", KERAS3, ["float32"]) == {(f, a, d) for f, a, d in every if d == "float32"}



def replays(profile: str, dtypes: list[str]) -> Counter:
    """How often each fixture of the bundled corpus is replayed, by dtype, in a run of every rule in ``dtypes``."""
    return Counter((c.label, d) for a in KERAS3 for d in dtypes
                   for c in fixture_cases(a, d, PROFILES[profile], dtypes=dtypes) if c.problem is None)


def test_ci_replays_each_fixture_once_in_one_of_its_dtypes_and_deep_in_each():
    fixtures = {f.name: f for f in map(load, sorted(FIXTURES.glob("*.json"))) if f.algorithm in KERAS3}
    short = {name for name, f in fixtures.items() if len(f.document["gradients"]) <= LONG}
    ci, deep = replays("ci", DTYPES), replays("deep", DTYPES)
    assert Counter(name for name, _ in ci) == {name: 1 for name in short}  # every fixture, once
    assert all(d in fixtures[name].budget_dtypes for name, d in ci)
    assert set(deep) == {(name, d) for name, f in fixtures.items() for d in f.budget_dtypes if d in DTYPES}
    # float32's fixtures turn between float32 and float64: each dtype gets a fair share.
    float32_input = [name for name in short if fixtures[name].budget_dtypes[0] == "float32"]
    in_float64 = sum((name, "float64") in ci for name in float32_input)
    assert 0.3 < in_float64 / len(float32_input) < 0.7, in_float64
    assert sum(ci.values()) < 0.6 * sum(deep.values())
    # A run of one dtype replays every fixture with budgets for it.
    assert {n for n, _ in replays("ci", ["float64"])} == {n for n in short if "float64" in fixtures[n].budget_dtypes}
    # What the check expects to find follows the same rule.
    for profile in ("ci", "deep"):
        for a in KERAS3:
            for d in DTYPES:
                found = sum(1 for c in fixture_cases(a, d, PROFILES[profile], dtypes=DTYPES) if c.problem is None)
                assert found == expected_fixtures(a, d, PROFILES[profile], DTYPES), (profile, a, d)
