"""Oracle throughput: element-steps per second for each rule, budgets included.

    python benchmarks/oracle_throughput.py [--elements 1000] [--steps 20] [--json PATH]

Peers measured in the same run: the same Adam step on plain Python floats
(no budgets, float64 only) and on mpmath ``mpf`` numbers at the oracle's
precision (no budgets), so the ratios say what exactness and budgets cost.
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

RULES = {
    "adam": ("adam", {}),
    "adam (amsgrad)": ("adam", {"amsgrad": True}),
    "adamw": ("adamw", {}),
    "nadam": ("nadam", {}),
    "nadam-legacy": ("nadam-legacy", {}),
    "adam + ema + accumulation + clipnorm": (
        "adam", {"use_ema": True, "gradient_accumulation_steps": 2, "clipnorm": 1.0}),
}


def _best_of(fn, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def oracle_rate(algorithm, config, theta, grads, dtype="float32") -> float:
    def go():
        opt = ReferenceOptimizer(algorithm, config, dtype=dtype)
        opt.build({"w": theta})
        for g in grads:
            opt.apply([g])
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
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    theta = rng.normal(size=args.elements).astype(np.float32)
    grads = [rng.normal(size=args.elements).astype(np.float32) for _ in range(args.steps)]

    peers = {
        "python floats, Adam, no budget": python_float_adam_rate(theta, grads),
        f"mpmath mpf ({DEFAULT_PRECISION} bits), Adam, no budget": mpmath_adam_rate(theta, grads),
    }
    rows = {name: oracle_rate(alg, cfg, theta, grads) for name, (alg, cfg) in RULES.items()}
    mp = peers[f"mpmath mpf ({DEFAULT_PRECISION} bits), Adam, no budget"]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, one core, "
          f"{args.elements} elements x {args.steps} steps, float32 budgets, {DEFAULT_PRECISION}-bit values")
    print(f"{'implementation':<44} {'element-steps/s':>16} {'x mpmath':>9}")
    for name, rate in {**rows, **peers}.items():
        print(f"{name:<44} {rate:>16,.0f} {rate / mp:>9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"oracle": rows, "peers": peers, "elements": args.elements, "steps": args.steps}, f, indent=2)


if __name__ == "__main__":
    main()
