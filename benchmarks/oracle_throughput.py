"""Oracle throughput: element-steps per second for each rule, budgets included.

    python benchmarks/oracle_throughput.py [--elements 1000] [--steps 20] [--array-elements 1000000] [--json PATH]

Two paths of the oracle: MPFR numbers (``--elements``), and whole arrays in double-double (``arrays=True``,
:mod:`reference.arrays`, ``--array-elements``), each for every rule and a pipeline combination, budgets included.
Peers measured in the same run: the same Adam step on plain Python floats (no budgets, float64 only), on mpmath
``mpf`` numbers at the oracle's precision (no budgets), and as float64 NumPy array operations (no budgets, no
exactness) at the array size, so the ratios say what exactness and budgets cost.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import mpmath
import numpy as np
from optimizer_conformance.reference import DEFAULT_PRECISION, ReferenceOptimizer
from optimizer_conformance.reference.rules import DIALECT_RULES

# Every rule of the Keras family (Keras 3's and the legacy TensorFlow Nadam), AMSGrad, and the whole pipeline.
RULES = {
    **{name: (name, {}) for name in (*DIALECT_RULES["keras3"], *DIALECT_RULES["tf-legacy"])},
    "adam (amsgrad)": ("adam", {"amsgrad": True}),
    "adam + ema + accumulation + clipnorm": (
        "adam", {"use_ema": True, "gradient_accumulation_steps": 2, "clipnorm": 1.0}),
    "adamw + ema + loss scale + global clipnorm": (
        "adamw", {"use_ema": True, "loss_scale_factor": 128.0, "global_clipnorm": 1.0}),
}


def _best_of(fn, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def oracle_rate(algorithm, config, theta, grads, dtype="float32", arrays=False, repeats=3) -> float:
    def go():
        opt = ReferenceOptimizer(algorithm, config, dtype=dtype, arrays=arrays)
        opt.build({"w": theta})
        for g in grads:
            opt.apply([g])
    return theta.size * len(grads) / _best_of(go, repeats)


def numpy_adam_rate(theta, grads) -> float:
    def go():
        lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
        th = theta.astype(np.float64)
        m = np.zeros_like(th)
        v = np.zeros_like(th)
        for t, g in enumerate(grads, start=1):
            g = g.astype(np.float64)
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            th -= m * alpha / (np.sqrt(v) + eps)
    return theta.size * len(grads) / _best_of(go)


def python_float_adam_rate(theta, grads) -> float:
    def go():
        lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
        th = [float(x) for x in theta]
        m = [0.0] * len(th)
        v = [0.0] * len(th)
        for t, g in enumerate(grads, start=1):
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            for i, gi in enumerate(g.tolist()):
                m[i] += (gi - m[i]) * (1 - b1)
                v[i] += (gi * gi - v[i]) * (1 - b2)
                th[i] -= m[i] * alpha / (math.sqrt(v[i]) + eps)
    return theta.size * len(grads) / _best_of(go)


def mpmath_adam_rate(theta, grads) -> float:
    def go():
        with mpmath.workprec(DEFAULT_PRECISION):
            mpf = mpmath.mpf
            lr, b1, b2, eps = mpf(1e-3), mpf(0.9), mpf(0.999), mpf(1e-7)
            th = [mpf(float(x)) for x in theta]
            m = [mpf(0)] * len(th)
            v = [mpf(0)] * len(th)
            for t, g in enumerate(grads, start=1):
                alpha = lr * mpmath.sqrt(1 - b2**t) / (1 - b1**t)
                for i, gi in enumerate(g.tolist()):
                    gi = mpf(gi)
                    m[i] += (gi - m[i]) * (1 - b1)
                    v[i] += (gi * gi - v[i]) * (1 - b2)
                    th[i] -= m[i] * alpha / (mpmath.sqrt(v[i]) + eps)
    return theta.size * len(grads) / _best_of(go, repeats=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--array-elements", type=int, default=1_000_000)
    parser.add_argument("--array-steps", type=int, default=4)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    theta = rng.normal(size=args.elements).astype(np.float32)
    grads = [rng.normal(size=args.elements).astype(np.float32) for _ in range(args.steps)]
    big = rng.normal(size=args.array_elements).astype(np.float32)
    big_grads = [rng.normal(size=args.array_elements).astype(np.float32) for _ in range(args.array_steps)]

    peers = {
        "python floats, Adam, no budget": python_float_adam_rate(theta, grads),
        f"mpmath mpf ({DEFAULT_PRECISION} bits), Adam, no budget": mpmath_adam_rate(theta, grads),
    }
    rows = {name: oracle_rate(alg, cfg, theta, grads) for name, (alg, cfg) in RULES.items()}
    array_rows = {f"arrays: {name}": oracle_rate(alg, cfg, big, big_grads, arrays=True)
                  for name, (alg, cfg) in RULES.items()}
    numpy_peer = {"numpy float64, Adam, no budget": numpy_adam_rate(big, big_grads)}
    mp = peers[f"mpmath mpf ({DEFAULT_PRECISION} bits), Adam, no budget"]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, one core, float32 "
          f"budgets; MPFR ({DEFAULT_PRECISION}-bit values): {args.elements} elements x {args.steps} steps; arrays "
          f"(double-double): {args.array_elements} elements x {args.array_steps} steps")
    print(f"{'implementation':<44} {'element-steps/s':>16} {'x mpmath':>9} {'/ numpy':>8}")
    np_rate = numpy_peer["numpy float64, Adam, no budget"]
    for name, rate in {**rows, **peers, **array_rows, **numpy_peer}.items():
        print(f"{name:<44} {rate:>16,.0f} {rate / mp:>9.2f} {np_rate / rate:>8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"oracle": rows, "arrays": array_rows, "peers": {**peers, **numpy_peer},
                       "elements": args.elements, "steps": args.steps, "array_elements": args.array_elements,
                       "array_steps": args.array_steps}, f, indent=2)


if __name__ == "__main__":
    main()
