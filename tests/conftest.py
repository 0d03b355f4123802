import importlib.util
import os
import sys

import pytest

# Each test's `optconf check` starts from nothing: explore's database of saved failures (which a user's next run
# replays first) would carry one test's failures into another's.  The test of the database names its own.
os.environ.setdefault("OPTCONF_EXPLORE_DATABASE", "none")

# The command line as a user runs it (`optconf`), from this interpreter.
OPTCONF = [sys.executable, "-m", "optimizer_conformance.conformance.cli"]

# The catalogued upstream bugs (conformance/checks/upstream.py) the installed Keras 3.15 shows in this project's own
# runs of real Keras, by backend: each is an expected failure diagnosed with exactly its id, and one that stops
# showing fails the test as stale (a Keras release that fixes it is noticed).  Every backend forms a float16 or
# bfloat16 variable's bias corrections in its own dtype; TensorFlow and torch hold float64 hyperparameters in
# float32 and recover schedule-free AdamW's x from the new z; torch computes float64 minimum, maximum and the
# weight-decay factor in float32, and resets its gradient accumulators by multiplying them by 0 (explore's Inf
# micro-gradients); TensorFlow squares the slices of a sparse gradient's duplicate rows apart.
SCHEDULE_FREE = "schedule-free-x-from-updated-z"
_LOW, _F64 = "low-precision-coefficients-in-variable-dtype", "float64-hyperparameters-via-float32"
KERAS_UPSTREAM_BUGS = {
    "tensorflow": {_LOW, _F64, SCHEDULE_FREE, "tf-sparse-duplicate-rows-squared-apart"},
    "jax": {_LOW},
    "torch": {_LOW, _F64, SCHEDULE_FREE, "torch-float64-demotion", "torch-float64-weight-decay-factor-in-float32",
              "torch-parallel-update-in-first-dtype", "torch-accumulator-reset-by-multiplying"},
}


def expected_upstream_bugs(backend: str, algorithms) -> set[str]:
    """What a run of ``algorithms`` on ``backend`` must show: schedule-free's own bug only where it runs."""
    return {b for b in KERAS_UPSTREAM_BUGS[backend] if b != SCHEDULE_FREE or "schedule-free-adamw" in algorithms}


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def requires(*modules: str):
    missing = _missing(*modules)
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (not installed)")


@pytest.fixture(autouse=True)
def high_precision_expectations():
    """Closed-form expectations computed in tests need more than gmpy2's default 53 bits."""
    import gmpy2

    with gmpy2.context(gmpy2.get_context(), precision=256):
        yield


# The longest tests (real Keras over every check, minutes each) start first, so that the two workers of
# `pytest -n 2` finish together instead of one of them running the last of them alone.
LONGEST_FIRST = ("test_real_keras_is_conformant_with_the_ci_profile", "test_real_keras_replays_every_keras3_fixture")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not item.name.startswith(LONGEST_FIRST))
