"""The oracle: Keras 3 Adam, AdamW, Nadam and the legacy TensorFlow Nadam, exactly, with error budgets.

    >>> from optimizer_conformance.reference import run
    >>> opt = run("adam", {"learning_rate": 0.01}, {"w": [1.0, -2.0]}, [[[0.5, -0.25]]])
    >>> q = opt.state()["variables/w"]
    >>> q.exact, q.budget  # exact values and the float32 budget of each

See :mod:`reference.pipeline` for the order of operations and
:mod:`reference.tracked` for how budgets are derived.
"""

from optimizer_conformance.reference.config import ALGORITHMS, get_config, normalize
from optimizer_conformance.reference.formats import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    FORMATS,
    FloatFormat,
    get_format,
)
from optimizer_conformance.reference.pipeline import DEFAULT_PRECISION, Quantity, ReferenceOptimizer, run
from optimizer_conformance.reference.tracked import Tracked

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "BFLOAT16",
    "DEFAULT_PRECISION",
    "FLOAT16",
    "FLOAT32",
    "FLOAT64",
    "FORMATS",
    "FloatFormat",
    "Quantity",
    "ReferenceOptimizer",
    "Tracked",
    "get_config",
    "get_format",
    "normalize",
    "run",
]
