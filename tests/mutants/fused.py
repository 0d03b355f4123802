"""Fused kernels that go wrong only on large tensors: the scale check's proof of sensitivity.

:class:`BlockedAdam` is the bundled Adam launched block by block over each variable, as a GPU kernel runs thread
blocks of :data:`BLOCK` elements (honest: it passes every check).  Each mutant breaks one thing a real fused kernel
gets wrong, and only where a variable has more than one block, so the small trajectories of the other checks never
see it:

* :class:`TailDropped`: the launch covers whole blocks only; the tail of a length that is not a multiple of the block
  is never updated (a grid of ``n // BLOCK`` blocks);
* :class:`BoundaryTwice`: each block runs one element past its end, so the first element of the next is updated twice;
* :class:`StaleBlockScalar`: blocks after the first read the step's scalars (the bias corrections) from the previous
  step: a per-block cache refreshed by the first block only;
* :class:`DenseLayoutAssumed`: the gradient's memory is read as if it were dense (a raw data pointer without
  ``.contiguous()``): right for every contiguous gradient, wrong for a strided view.

Each is an adapter (:mod:`conformance.candidates.protocol`) of Adam in float32 and float64.
"""

from __future__ import annotations

import numpy as np
from optimizer_conformance.fast_optimizers import kernels
from optimizer_conformance.fast_optimizers.conformance import NumpyAdapter
from optimizer_conformance.fast_optimizers.optimizer import Adam

BLOCK = 1024


class BlockedAdam(Adam):
    """The bundled Adam, each variable's update launched block by block (honest)."""

    def blocks(self, n: int) -> list[tuple[int, int]]:
        return [(lo, min(n, lo + BLOCK)) for lo in range(0, n, BLOCK)]

    def block_scalars(self, block: int, scalars):
        return scalars

    def gradient(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(-1)

    def _kernel(self, i, g, acc, gscale, inv_steps, clip, wd_lr, s):
        amsgrad = self._config["amsgrad"]
        theta, m, v = (x.reshape(-1) for x in (self._variables[i], self.slots["momentum"][i],
                                                self.slots["velocity"][i]))
        vhat = self.slots["velocity_hat"][i].reshape(-1) if amsgrad else None
        flat_g, flat_acc = self.gradient(g), None if acc is None else acc.reshape(-1)
        for block, (lo, hi) in enumerate(self.blocks(theta.size)):
            part = slice(lo, hi)
            kernels.adam_xp(np, theta[part], flat_g[part], m[part], v[part], None if vhat is None else vhat[part],
                            None if flat_acc is None else flat_acc[part], gscale=gscale, inv_steps=inv_steps,
                            clip=clip, wd_lr=wd_lr, s=self.block_scalars(block, s), amsgrad=amsgrad)


class _TailDropped(BlockedAdam):
    def blocks(self, n):
        return super().blocks(n) if n <= BLOCK else [(lo, lo + BLOCK) for lo in range(0, n - BLOCK + 1, BLOCK)]


class _BoundaryTwice(BlockedAdam):
    def blocks(self, n):
        return [(lo, min(n, hi + 1)) for lo, hi in super().blocks(n)]


class _StaleBlockScalar(BlockedAdam):
    _current = _previous = None

    def block_scalars(self, block, scalars):
        if scalars is not self._current:  # a new step: the first block refreshes the cache, the others read it
            self._previous, self._current = self._current, scalars
        return scalars if block == 0 or self._previous is None else self._previous


class _DenseLayoutAssumed(BlockedAdam):
    def gradient(self, g):
        return np.lib.stride_tricks.as_strided(g, shape=(g.size,), strides=(g.itemsize,))


class _Adapter(NumpyAdapter):
    algorithms = ("adam",)
    dtypes = ("float32", "float64")
    kernel: type[BlockedAdam] = BlockedAdam

    def build_optimizer(self, algorithm, config):
        return self.kernel.from_config(dict(config))


class Blocked(_Adapter):
    kernel = BlockedAdam


class TailDropped(_Adapter):
    kernel = _TailDropped


class BoundaryTwice(_Adapter):
    kernel = _BoundaryTwice


class StaleBlockScalar(_Adapter):
    kernel = _StaleBlockScalar


class DenseLayoutAssumed(_Adapter):
    kernel = _DenseLayoutAssumed


MUTANTS = ("TailDropped", "BoundaryTwice", "StaleBlockScalar", "DenseLayoutAssumed")
