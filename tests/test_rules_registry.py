"""One place per rule: every registry of rules is derived from the descriptors in ``reference/rules``."""

import ast
import json
from pathlib import Path

import pytest
from optimizer_conformance.conformance.cases.catalogue import CORPUS, features_for
from optimizer_conformance.conformance.settings import DIALECTS
from optimizer_conformance.fast_optimizers.optimizer import OPTIMIZERS
from optimizer_conformance.reference import normalize
from optimizer_conformance.reference.rules import ALGORITHMS, ALL, KERAS_CLASSES, RULES
from optimizer_conformance.reference.rules.descriptor import CAPABILITIES, Golden, Rule

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "conformance" / "schemas" / "fixture-1.schema.json"


def test_the_fixture_schema_names_exactly_the_rules_and_their_dialects():
    properties = json.loads(SCHEMA.read_text())["properties"]
    assert properties["algorithm"]["enum"] == list(ALGORITHMS)
    assert set(properties["dialect"]["enum"]) == set(DIALECTS)


def test_every_rule_owns_golden_trajectories_in_its_dtypes():
    names = {t.name for t in CORPUS}
    for rule in ALL:
        assert rule.corpus, f"{rule.name} owns no golden trajectory"
        assert {g.name for g in rule.corpus} <= names
        assert "float32" in {g.input_dtype for g in rule.corpus}


def test_registries_are_derived_from_the_rules():
    assert tuple(RULES) == ALGORITHMS == tuple(rule.name for rule in ALL)
    assert sorted(a for rules in DIALECTS.values() for a in rules) == sorted(ALGORITHMS)
    assert set(KERAS_CLASSES) == {rule.name for rule in ALL if rule.dialect.name == "keras3"}
    # The bundled implementation is independent of the oracle's code, with its own table: every rule of the
    # dialects whose optimizers are Keras classes (torch's are torch.optim's own: its builtin candidate runs them).
    assert set(OPTIMIZERS) == {rule.name for rule in ALL if rule.dialect.keras_api}
    for rule in ALL:
        if rule.dialect.keras_api:
            assert normalize(rule.name)["name"] == rule.defaults["name"]
        assert features_for(rule.name), rule.name


def test_each_keras_equivalent_names_keras_rules_and_its_dialect_keras_slots():
    """A rule of another library names the Keras rules that compute it (never its own dialect's), its default
    arguments translate to one of them or say why not, and its dialect names Keras's slots."""
    from optimizer_conformance.reference.rules import translation

    for rule in ALL:
        if rule.keras_equivalent is None:
            continue
        assert rule.dialect.keras_api is False and rule.dialect.keras_slot_names, rule.name
        assert all(RULES[k].dialect.keras_api for k in rule.keras_equivalent.rules), rule.name
        translated = translation.keras_spec({"algorithm": rule.name, "config": {}})
        assert isinstance(translated, str) or translated["algorithm"] in rule.keras_equivalent.rules


def test_a_descriptor_refuses_what_it_cannot_mean():
    adam = RULES["adam"]
    with pytest.raises(ValueError, match="exactly one of update and update_variable"):
        Rule(name="x", dialect=adam.dialect, slot_names=adam.slot_names, initial_scalars=adam.initial_scalars,
             coefficients=adam.coefficients)
    with pytest.raises(ValueError, match="unknown capabilities"):
        Rule(name="x", dialect=adam.dialect, slot_names=adam.slot_names, initial_scalars=adam.initial_scalars,
             coefficients=adam.coefficients, update=adam.update, capabilities=frozenset({"telepathy"}))
    with pytest.raises(ValueError, match="must be named x-"):
        Rule(name="x", dialect=adam.dialect, slot_names=adam.slot_names, initial_scalars=adam.initial_scalars,
             coefficients=adam.coefficients, update=adam.update, corpus=(Golden("y-basic", "", {}),))
    assert set(CAPABILITIES) >= {c for rule in ALL for c in rule.capabilities}


HARNESS = [ROOT / "conformance", ROOT / "reference"]


def _name_branches(path: Path) -> list[str]:
    """Comparisons of something with a rule's name (``algorithm == "adamw"``, ``x in ("adam", "adamw")``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            constants = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
            if any(value in RULES for value in constants):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_branch_on_a_rule_name_outside_the_rules_modules():
    paths = [p for folder in HARNESS for p in folder.rglob("*.py") if "rules" not in p.parts]
    assert [hit for path in paths for hit in _name_branches(path)] == []
