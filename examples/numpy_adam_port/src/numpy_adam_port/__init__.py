"""A small NumPy port of Keras 3's Adam update rule (no pipeline extras)."""

from numpy_adam_port.optimizer import Adam

__all__ = ["Adam"]
