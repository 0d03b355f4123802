import importlib.util
import sys

import pytest

# The command line as a user runs it (`optconf`), from this interpreter.
OPTCONF = [sys.executable, "-m", "optimizer_conformance.conformance.cli"]


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
