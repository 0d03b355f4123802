"""The mutation catalogue: realistic porting bugs, and legitimate variants, as Keras optimizer subclasses.

Each class carries ``conformance_algorithms`` (what it claims to implement) and ``expected_check``
(the check of ``optconf check`` that must catch it; ``None`` for a legitimate variant, which must
pass everything).  They override Keras 3's generic update path, so they are run on the TensorFlow
or JAX backend (the torch backend replaces ``update_step`` with a fused multi-tensor step).
``API_BUGS`` compute the right numbers but are not drop-in replacements (``api/...`` checks).
"""

from tests.mutants.api_bugs import API_BUGS
from tests.mutants.catalogue import BUGS, LEGITIMATE

__all__ = ["API_BUGS", "BUGS", "LEGITIMATE"]
