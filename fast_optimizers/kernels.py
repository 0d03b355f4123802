"""The elementwise work of one step, in two interchangeable implementations.

* :func:`numba_available` / the numba kernels: one fused, parallel pass over NumPy
  float32/float64 arrays (reads θ, g, m, v; writes θ, m, v).  The common case (no
  accumulation, clipping, loss scale or amsgrad) runs branch-free in the arrays' own
  precision, in Keras's operation order, so the compiler vectorizes it; the general
  kernel computes each element in float64 and rounds once on store.
* the array-API path (NumPy, torch, CuPy arrays alike, via ``array_api_compat``):
  the same mathematics, chunk by chunk, in place, so temporaries are bounded by the
  chunk size, never the array size.

Both apply, per element and in this order: the gradient transform
``g ← clip((g·gscale + acc)·inv_steps)`` (loss-scale unscaling, the accumulation
mean, clipping by norm as a factor, clipping by value), decoupled weight decay
``θ ← θ − θ·λη``, then the rule's update.
"""

from __future__ import annotations

import math

CHUNK = 1 << 16

try:
    import numba
    import numpy as np

    @numba.njit(inline="always", cache=True)
    def _maximum(a, b):
        """max that propagates NaN, as ``ops.maximum`` on every Keras backend (Python's max does not)."""
        return a if a != a or a >= b else b

    @numba.njit(inline="always", cache=True)
    def _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip):
        """clip((g·gscale + acc)·inv_steps): unscaling, the accumulation mean, clipping by value."""
        gi = float(g[i]) * gscale
        if use_acc:
            gi = (gi + float(acc[i])) * inv_steps
        return min(max(gi, -clip), clip)

    @numba.njit(inline="always", cache=True)
    def _decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2):
        """θ·(1 − λη) in float64, returned; m ← m + (g − m)·c1 and v ← v + (g² − v)·c2 stored in place."""
        th = float(theta[i])
        mi = float(m[i])
        vi = float(v[i])
        m[i] = mi + (gi - mi) * c1
        v[i] = vi + (gi * gi - vi) * c2
        return th - th * wd_lr

    @numba.njit(inline="always", cache=True)
    def _plain_decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2):
        """The same in the arrays' own precision; returns θ·(1 − λη) and the new moments."""
        th = theta[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        m[i] = mi
        v[i] = vi
        return th - th * wd_lr, mi, vi

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _adam_numba(theta, g, m, v, vhat, acc, gscale, inv_steps, use_acc, clip, wd_lr, c1, c2, alpha, eps,
                    amsgrad):
        for i in numba.prange(theta.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip)
            th = _decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2)
            if amsgrad:
                vi = _maximum(float(vhat[i]), float(v[i]))
                vhat[i] = vi
            else:
                vi = float(v[i])
            theta[i] = th - (float(m[i]) * alpha) / (math.sqrt(vi) + eps)

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _nadam_numba(theta, g, m, v, acc, gscale, inv_steps, use_acc, clip, wd_lr, c1, c2, wm, wg, inv_b2, lr,
                     eps):
        for i in numba.prange(theta.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip)
            th = _decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2)
            m_hat = wm * float(m[i]) + wg * gi
            v_hat = float(v[i]) * inv_b2
            theta[i] = th - (m_hat * lr) / (math.sqrt(v_hat) + eps)

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _adamax_numba(theta, g, m, u, acc, gscale, inv_steps, use_acc, clip, wd_lr, c1, beta_2, step_size, eps):
        for i in numba.prange(theta.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip)
            th = float(theta[i])
            th -= th * wd_lr
            mi = float(m[i])
            mi += (gi - mi) * c1
            m[i] = mi
            ui = _maximum(beta_2 * float(u[i]), abs(gi))
            u[i] = ui
            theta[i] = th - (mi * step_size) / (ui + eps)

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _lamb_moments_numba(theta, g, m, v, acc, gscale, inv_steps, use_acc, clip, wd_lr, c1, c2, ib1, ib2, eps):
        """Lamb's first pass: decay θ, update the moments; returns Σθ² and Σr² (r the direction)."""
        weights = 0.0
        directions = 0.0
        for i in numba.prange(theta.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip)
            th = _decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2)
            theta[i] = th
            th = float(theta[i])
            r = (float(m[i]) * ib1) / (math.sqrt(float(v[i]) * ib2) + eps)
            weights += th * th
            directions += r * r
        return weights, directions

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _lamb_apply_numba(theta, m, v, step, ib1, ib2, eps):
        for i in numba.prange(theta.size):
            r = (float(m[i]) * ib1) / (math.sqrt(float(v[i]) * ib2) + eps)
            theta[i] = float(theta[i]) - step * r

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _schedule_free_numba(theta, g, z, v, acc, gscale, inv_steps, use_acc, clip, wd_lr, beta_1, c1, c2, ib2,
                             lr, eps, weight):
        for i in numba.prange(theta.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, clip)
            y = float(theta[i])
            y = float(theta.dtype.type(y - y * wd_lr))
            vi = float(v[i])
            vi += (gi * gi - vi) * c2
            v[i] = vi
            z_old = float(z[i])
            zi = z_old - (lr * gi) / (math.sqrt(float(v[i]) * ib2) + eps)
            z[i] = zi
            zi = float(z[i])
            x = (y - c1 * z_old) / beta_1
            x = (1 - weight) * x + weight * zi
            theta[i] = c1 * zi + beta_1 * x

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _sum_of_squares_numba(g, acc, gscale, inv_steps, use_acc):
        total = 0.0
        for i in numba.prange(g.size):
            gi = _transformed_gradient(g, acc, i, gscale, inv_steps, use_acc, math.inf)
            total += gi * gi
        return total

    def _plain_kernels(cast):
        """Branch-free kernels in the arrays' own precision (SIMD-friendly) for the common case:
        no accumulation, no clipping, no amsgrad, no loss scale."""

        @numba.njit(parallel=True, cache=True, fastmath=False)
        def adam(theta, g, m, v, wd_lr, c1, c2, alpha, eps):
            for i in numba.prange(theta.size):
                gi = g[i]
                th, mi, vi = _plain_decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2)
                theta[i] = th - (mi * alpha) / (cast(math.sqrt(vi)) + eps)

        @numba.njit(parallel=True, cache=True, fastmath=False)
        def nadam(theta, g, m, v, wd_lr, c1, c2, wm, wg, inv_b2, lr, eps):
            for i in numba.prange(theta.size):
                gi = g[i]
                th, mi, vi = _plain_decay_and_moments(theta, m, v, i, gi, wd_lr, c1, c2)
                m_hat = wm * mi + wg * gi
                theta[i] = th - (m_hat * lr) / (cast(math.sqrt(vi * inv_b2)) + eps)

        return adam, nadam

    _PLAIN = {np.dtype(np.float32): _plain_kernels(np.float32), np.dtype(np.float64): _plain_kernels(np.float64)}
    _NUMBA = True
except ImportError:  # pragma: no cover - numba is optional
    _NUMBA = False


def numba_available() -> bool:
    return _NUMBA


def numba_suits(*arrays) -> bool:
    """The fused kernels take contiguous NumPy float32/float64 arrays of one dtype."""
    if not _NUMBA:
        return False
    first = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.dtype.kind == "f" and a.itemsize in (4, 8)
               and a.flags.c_contiguous for a in arrays if a is not None)


def _plain(acc, gscale, clip, amsgrad=False) -> bool:
    return acc is None and gscale == 1.0 and clip == math.inf and not amsgrad


def adam_numba(theta, g, m, v, vhat, acc, *, gscale, inv_steps, clip, wd_lr, s, amsgrad):
    if _plain(acc, gscale, clip, amsgrad):
        t = theta.dtype.type
        _PLAIN[theta.dtype][0](theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(wd_lr), t(s.c1),
                               t(s.c2), t(s.alpha), t(s.epsilon))
        return
    use_acc = acc is not None
    _adam_numba(theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                (vhat if amsgrad else v).reshape(-1), (acc if use_acc else g).reshape(-1), gscale, inv_steps,
                use_acc, clip, wd_lr, s.c1, s.c2, s.alpha, s.epsilon, amsgrad)


def nadam_numba(theta, g, m, v, acc, *, gscale, inv_steps, clip, wd_lr, s):
    if _plain(acc, gscale, clip):
        t = theta.dtype.type
        _PLAIN[theta.dtype][1](theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(wd_lr), t(s.c1),
                               t(s.c2), t(s.momentum_weight), t(s.gradient_weight), t(s.inverse_bias_2), t(s.lr),
                               t(s.epsilon))
        return
    use_acc = acc is not None
    _nadam_numba(theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), (acc if use_acc else g).reshape(-1),
                 gscale, inv_steps, use_acc, clip, wd_lr, s.c1, s.c2, s.momentum_weight, s.gradient_weight,
                 s.inverse_bias_2, s.lr, s.epsilon)


def adamax_numba(theta, g, m, u, acc, *, gscale, inv_steps, clip, wd_lr, s):
    use_acc = acc is not None
    _adamax_numba(theta.reshape(-1), g.reshape(-1), m.reshape(-1), u.reshape(-1), (acc if use_acc else g).reshape(-1),
                  gscale, inv_steps, use_acc, clip, wd_lr, s.c1, s.beta_2, s.step_size, s.epsilon)


def lamb_numba(theta, g, m, v, acc, *, gscale, inv_steps, clip, wd_lr, s, trust_ratio):
    use_acc = acc is not None
    flat = theta.reshape(-1), m.reshape(-1), v.reshape(-1)
    weights, directions = _lamb_moments_numba(flat[0], g.reshape(-1), flat[1], flat[2],
                                              (acc if use_acc else g).reshape(-1), gscale, inv_steps, use_acc,
                                              clip, wd_lr, s.c1, s.c2, s.inverse_bias_1, s.inverse_bias_2, s.epsilon)
    step = trust_ratio(weights, directions) * s.lr
    _lamb_apply_numba(*flat, step, s.inverse_bias_1, s.inverse_bias_2, s.epsilon)


def schedule_free_numba(theta, g, z, v, acc, *, gscale, inv_steps, clip, wd_lr, s):
    use_acc = acc is not None
    _schedule_free_numba(theta.reshape(-1), g.reshape(-1), z.reshape(-1), v.reshape(-1),
                         (acc if use_acc else g).reshape(-1), gscale, inv_steps, use_acc, clip, wd_lr, s.beta_1, s.c1,
                         s.c2, s.inverse_bias_2, s.lr, s.epsilon, s.weight)


def sum_of_squares(xp, g, acc, *, gscale, inv_steps) -> float:
    """Σ ((g·gscale + acc)·inv_steps)² in float64."""
    if numba_suits(g, acc):
        use_acc = acc is not None
        return float(_sum_of_squares_numba(g.reshape(-1), (acc if use_acc else g).reshape(-1), gscale, inv_steps,
                                           use_acc))
    total = 0.0
    for sl in _chunks(_size(g)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, math.inf)
        total += float(xp.sum(xp.astype(gc, xp.float64) ** 2))
    return total


# -- the array-API path --------------------------------------------------------------------------------

def _size(x) -> int:
    return math.prod(x.shape)


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield slice(start, min(n, start + CHUNK))


def _flat(x):
    return x.reshape(-1) if hasattr(x, "reshape") else x


def _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip):
    gc = _flat(g)[sl] * gscale
    if acc is not None:
        gc = (gc + _flat(acc)[sl]) * inv_steps
    if clip != math.inf:
        gc = xp.clip(gc, -clip, clip)
    return gc


def adam_xp(xp, theta, g, m, v, vhat, acc, *, gscale, inv_steps, clip, wd_lr, s, amsgrad):
    th, mf, vf = _flat(theta), _flat(m), _flat(v)
    vh = _flat(vhat) if amsgrad else None
    for sl in _chunks(_size(theta)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip)
        if wd_lr:
            th[sl] -= th[sl] * wd_lr
        mf[sl] += (gc - mf[sl]) * s.c1
        vf[sl] += (gc * gc - vf[sl]) * s.c2
        if amsgrad:
            vh[sl] = xp.maximum(vh[sl], vf[sl])
            denominator = xp.sqrt(vh[sl]) + s.epsilon
        else:
            denominator = xp.sqrt(vf[sl]) + s.epsilon
        th[sl] -= (mf[sl] * s.alpha) / denominator


def nadam_xp(xp, theta, g, m, v, acc, *, gscale, inv_steps, clip, wd_lr, s):
    th, mf, vf = _flat(theta), _flat(m), _flat(v)
    for sl in _chunks(_size(theta)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip)
        if wd_lr:
            th[sl] -= th[sl] * wd_lr
        mf[sl] += (gc - mf[sl]) * s.c1
        vf[sl] += (gc * gc - vf[sl]) * s.c2
        m_hat = mf[sl] * s.momentum_weight + gc * s.gradient_weight
        th[sl] -= (m_hat * s.lr) / (xp.sqrt(vf[sl] * s.inverse_bias_2) + s.epsilon)


def adamax_xp(xp, theta, g, m, u, acc, *, gscale, inv_steps, clip, wd_lr, s):
    th, mf, uf = _flat(theta), _flat(m), _flat(u)
    for sl in _chunks(_size(theta)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip)
        if wd_lr:
            th[sl] -= th[sl] * wd_lr
        mf[sl] += (gc - mf[sl]) * s.c1
        uf[sl] = xp.maximum(uf[sl] * s.beta_2, xp.abs(gc))
        th[sl] -= (mf[sl] * s.step_size) / (uf[sl] + s.epsilon)


def lamb_xp(xp, theta, g, m, v, acc, *, gscale, inv_steps, clip, wd_lr, s, trust_ratio):
    th, mf, vf = _flat(theta), _flat(m), _flat(v)

    def direction(sl):
        return (mf[sl] * s.inverse_bias_1) / (xp.sqrt(vf[sl] * s.inverse_bias_2) + s.epsilon)

    weights = directions = 0.0
    for sl in _chunks(_size(theta)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip)
        if wd_lr:
            th[sl] -= th[sl] * wd_lr
        mf[sl] += (gc - mf[sl]) * s.c1
        vf[sl] += (gc * gc - vf[sl]) * s.c2
        weights += float(xp.sum(xp.astype(th[sl], xp.float64) ** 2))
        directions += float(xp.sum(xp.astype(direction(sl), xp.float64) ** 2))
    step = trust_ratio(weights, directions) * s.lr
    for sl in _chunks(_size(theta)):
        th[sl] -= direction(sl) * step


def schedule_free_xp(xp, theta, g, z, v, acc, *, gscale, inv_steps, clip, wd_lr, s):
    th, zf, vf = _flat(theta), _flat(z), _flat(v)
    for sl in _chunks(_size(theta)):
        gc = _gradient_chunk(xp, g, acc, sl, gscale, inv_steps, clip)
        if wd_lr:
            th[sl] -= th[sl] * wd_lr
        vf[sl] += (gc * gc - vf[sl]) * s.c2
        z_old = zf[sl] * 1  # a copy: the slice is a view
        zf[sl] -= (gc * s.lr) / (xp.sqrt(vf[sl] * s.inverse_bias_2) + s.epsilon)
        x = (th[sl] - z_old * s.c1) / s.beta_1
        x = x * (1 - s.weight) + zf[sl] * s.weight
        th[sl] = zf[sl] * s.c1 + x * s.beta_1


def accumulate(xp, acc, g, gscale):
    a = _flat(acc)
    for sl in _chunks(_size(acc)):
        a[sl] += _flat(g)[sl] * gscale


def moving_average(xp, average, theta, weight):
    """avg ← avg + (θ − avg)·weight (weight = 1 − μ; ``None``: copy θ)."""
    a, th = _flat(average), _flat(theta)
    for sl in _chunks(_size(theta)):
        if weight is None:
            a[sl] = th[sl]
        else:
            a[sl] += (th[sl] - a[sl]) * weight
