"""Fast Keras-compatible Adam, AdamW, Nadam, Adamax, Lamb, schedule-free AdamW and legacy Nadam for NumPy, torch
and CuPy arrays.

    >>> import numpy as np
    >>> from optimizer_conformance.fast_optimizers import Adam
    >>> w = np.ones(4, np.float32)
    >>> opt = Adam(learning_rate=0.01)
    >>> opt.apply([np.full(4, 0.5, np.float32)], [w])     # w is updated in place

Certified by the project's harness: ``optconf check optimizer_conformance.fast_optimizers.conformance:NumpyAdapter``.
"""

from optimizer_conformance.fast_optimizers.functional import State, init, update
from optimizer_conformance.fast_optimizers.loss_scale import LossScaleOptimizer
from optimizer_conformance.fast_optimizers.optimizer import (
                                                          OPTIMIZERS,
                                                          Adam,
                                                          Adamax,
                                                          AdamW,
                                                          Lamb,
                                                          LegacyNadam,
                                                          Nadam,
                                                          ScheduleFreeAdamW,
)

__all__ = ["OPTIMIZERS", "Adam", "Adamax", "AdamW", "Lamb", "LegacyNadam", "LossScaleOptimizer", "Nadam",
           "ScheduleFreeAdamW", "State", "init", "update"]
