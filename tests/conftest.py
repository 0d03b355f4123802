import importlib.util
import sys

import pytest

# The command line as a user runs it (`optconf`), from this interpreter.
OPTCONF = [sys.executable, "-m", "optimizer_conformance.conformance.cli"]

# The catalogued upstream bugs (conformance/checks/upstream.py) the installed Keras 3.15 shows in this project's own
# runs of the CI profile, by backend and algorithm: each is an expected failure diagnosed with exactly its id, and
# one that stops showing fails the test as stale (a Keras release that fixes it is noticed).  Keras 3.15's
# ScheduleFreeAdamW recovers x from the updated z on TensorFlow and torch; its torch backend computes float64
# minimum and maximum in float32 (clipping, NonNeg, the warmup factor, an accumulated overwrite_with_gradient).
_DEMOTION = "torch-float64-demotion"
KERAS_UPSTREAM_BUGS = {
    ("tensorflow", "schedule-free-adamw"): {"schedule-free-x-from-updated-z"},
    ("torch", "schedule-free-adamw"): {"schedule-free-x-from-updated-z", _DEMOTION},
    **{("torch", a): {_DEMOTION} for a in ("adam", "adamw", "nadam", "adamax", "lamb")},
}


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
