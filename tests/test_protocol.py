"""The typed boundaries: the spec and the worker protocol's messages, the same on both sides."""

import pytest
from optimizer_conformance.conformance.candidates import messages
from optimizer_conformance.conformance.cases.catalogue import CORPUS, pipeline_cases
from optimizer_conformance.conformance.model import PROFILES, RunError, Spec
from optimizer_conformance.reference.rules import ALGORITHMS


def test_every_spec_the_harness_makes_reads_back_as_itself():
    specs = [t.spec() for t in CORPUS if t.steps <= 100]
    specs += [c.spec for a in ALGORITHMS for c in pipeline_cases(a, "float32", PROFILES["quick"])]
    for spec in specs:
        assert Spec.from_json(spec).to_json() == spec


@pytest.mark.parametrize("data, message", [
    ([1, 2], "a spec is a JSON object; got list"),
    ({"algorithm": "adam"}, "spec: missing config, dtype, variables, gradients"),
    ({"algorithm": "adam", "config": {}, "dtype": "float32", "variables": [], "gradients": [], "speed": 9},
     "spec: unknown speed"),
    ({"algorithm": "adam", "config": 0.1, "dtype": "float32", "variables": [], "gradients": []},
     "spec: config must be a dict; got float"),
])
def test_a_malformed_spec_is_one_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        Spec.from_json(data)


def test_the_worker_answers_a_malformed_spec_with_that_error_and_goes_on():
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker

    good = CORPUS[0].spec()
    with Worker(Candidate("optimizer_conformance.fast_optimizers.conformance:NumpyAdapter", "torch")) as worker:
        with pytest.raises(RunError, match="spec: unknown speed"):
            worker.run({**good, "speed": 9})
        assert len(worker.run(good)) == len(good["gradients"])  # a state after each step


def test_messages_name_what_they_carry():
    assert messages.kind_of(messages.run({})) == messages.SPEC
    assert messages.kind_of(messages.api("adam", 1, None)) == messages.API
    assert messages.kind_of(messages.load("keras", None, "eager")) == messages.CANDIDATE
    assert messages.failed("boom") == {messages.ERROR: "boom"}


def test_the_jax_worker_keeps_its_compilations_in_a_cache_the_user_can_move_or_turn_off(monkeypatch, tmp_path):
    from optimizer_conformance.conformance.candidates.client import jax_cache_environment

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("OPTCONF_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    env = jax_cache_environment()
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "optimizer-conformance" / "jax")
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    monkeypatch.setenv("OPTCONF_JAX_CACHE", "off")
    assert jax_cache_environment() == {}
    monkeypatch.delenv("OPTCONF_JAX_CACHE")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert jax_cache_environment() == {}  # the user's own setting is left as it is
