"""One Adam step on a flat float32 vector: the bundled implementation against its peers, in one run.

    python benchmarks/step_speed.py [--sizes 1000000 10000000] [--skip-keras] [--json PATH]

Measured in this run, on this machine: ``fast_optimizers`` (fused numba kernel, array-API path on
NumPy, array-API path on torch CPU tensors), ``torch.optim.Adam`` (foreach and fused), optax's adam
under ``jax.jit`` with donated buffers, Keras 3 on each backend (eager and compiled; each backend in a
subprocess) and the memory-bandwidth floor: the 28 bytes an Adam step must move per element (read θ, g,
m, v; write θ, m, v) at the streaming rate measured by a kernel with the same traffic.  Prints the
median time of each, its ratio to the fastest peer and to the floor, and the bundled implementation's
peak RSS over its state.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

BYTES_PER_ELEMENT = 28


def _median_time(step, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _data(n: int):
    rng = np.random.default_rng(0)
    return rng.normal(size=n).astype(np.float32), (rng.normal(size=n) * 1e-2).astype(np.float32)


def bundled(n: int, repeats: int) -> dict[str, float]:
    import optimizer_conformance.fast_optimizers.kernels as kernels
    from optimizer_conformance.fast_optimizers import Adam

    theta, g = _data(n)
    out = {}
    if kernels.numba_available():
        opt = Adam(learning_rate=1e-3)
        out["fast_optimizers (fused numba)"] = _median_time(lambda: opt.apply([g], [theta]), repeats)
    suits = kernels.numba_suits
    kernels.numba_suits = lambda *a: False
    try:
        opt = Adam(learning_rate=1e-3)
        out["fast_optimizers (array API, NumPy)"] = _median_time(lambda: opt.apply([g], [theta]), repeats)
        try:
            import torch

            tt, tg = torch.tensor(theta), torch.tensor(g)
            opt = Adam(learning_rate=1e-3)
            out["fast_optimizers (array API, torch)"] = _median_time(lambda: opt.apply([tg], [tt]), repeats)
        except ImportError:
            pass
    finally:
        kernels.numba_suits = suits
    return out


def torch_peers(n: int, repeats: int) -> dict[str, float]:
    try:
        import torch
    except ImportError:
        return {}
    theta, g = _data(n)
    out = {}
    for label, kwargs in (("torch.optim.Adam (foreach)", {"foreach": True}), ("torch.optim.Adam (fused)",
                                                                              {"fused": True})):
        p = torch.nn.Parameter(torch.tensor(theta))
        p.grad = torch.tensor(g)
        opt = torch.optim.Adam([p], lr=1e-3, **kwargs)
        out[label] = _median_time(opt.step, repeats)
    return out


def optax_peer(n: int, repeats: int) -> dict[str, float]:
    try:
        import jax
        import optax
    except ImportError:
        return {}
    theta, g = _data(n)
    tx = optax.adam(1e-3)
    params, grads = jax.numpy.asarray(theta), jax.numpy.asarray(g)
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    box = {"p": params, "s": state}

    def run():
        box["p"], box["s"] = step(box["p"], box["s"], grads)
        box["p"].block_until_ready()

    return {"optax.adam (jax.jit, donated)": _median_time(run, repeats)}


def bandwidth_floor(n: int, repeats: int) -> float:
    """Seconds to move 28 bytes per element at the measured streaming rate (4 reads, 3 writes)."""
    a, b = _data(n)
    c, d = np.zeros_like(a), np.zeros_like(b)
    try:
        import numba

        @numba.njit(parallel=True)
        def traffic(a, b, c, d):
            # Adam's traffic and nothing else: four float32 reads, three writes, trivial arithmetic.
            for i in numba.prange(a.size):
                x = a[i] + b[i] + c[i] + d[i]
                a[i] = x
                c[i] = x
                d[i] = x

        return _median_time(lambda: traffic(a, b, c, d), repeats)
    except ImportError:
        return _median_time(lambda: np.add(a, b, out=c), repeats) * BYTES_PER_ELEMENT / 12


KERAS_SNIPPET = r"""
import json, os, sys, time, statistics
import numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
theta = keras.Variable(rng.normal(size=n).astype("float32"))
g = keras.ops.convert_to_tensor((rng.normal(size=n) * 1e-2).astype("float32"))
backend = keras.backend.backend()
out = {}
def timed(step):
    for _ in range(2): step()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
opt = keras.optimizers.Adam(1e-3); opt.build([theta])
out[f"Keras {backend} apply (eager)"] = timed(lambda: opt.apply([g], [theta]))
if backend == "tensorflow":
    import tensorflow as tf
    for label, jit in (("tf.function", False), ("jit_compile", True)):
        opt = keras.optimizers.Adam(1e-3); opt.build([theta])
        f = tf.function(lambda: opt.apply([g], [theta]), jit_compile=jit)
        out[f"Keras tensorflow apply ({label})"] = timed(lambda: f())
if backend == "jax":
    import jax
    opt = keras.optimizers.Adam(1e-3); opt.build([theta])
    step = jax.jit(opt.stateless_apply, donate_argnums=(0, 2))
    box = {"o": [v.value for v in opt.variables], "p": [theta.value]}
    def run():
        box["p"], box["o"] = step(box["o"], [g], box["p"])
        box["p"][0].block_until_ready()
    out["Keras jax jit(stateless_apply), donated"] = timed(run)
print(json.dumps(out))
"""


def keras_peers(n: int, repeats: int) -> dict[str, float]:
    out = {}
    for backend in ("tensorflow", "jax", "torch"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run([sys.executable, "-c", KERAS_SNIPPET, str(n), str(repeats)], capture_output=True,
                              text=True, env=env, timeout=1800)
        if proc.returncode == 0:
            out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            print(f"# Keras on {backend} could not run: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return out


RSS_SNIPPET = r"""
import os, sys, tracemalloc, numpy as np
from optimizer_conformance.fast_optimizers import Adam
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = int(sys.argv[1])
small = np.ones(1024, np.float32)
Adam(learning_rate=1e-3).apply([small.copy()], [small])   # imports and kernel compilation
before = rss()
rng = np.random.default_rng(0)
theta = rng.normal(size=n).astype(np.float32); g = rng.normal(size=n).astype(np.float32)
opt = Adam(learning_rate=1e-3)
opt.apply([g], [theta])
tracemalloc.start()
for _ in range(5): opt.apply([g], [theta])
scratch = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(rss() - before, scratch)
"""


def peak_rss(n: int) -> dict[str, float]:
    """Resident memory the optimizer's arrays add, and the peak of allocations during a step."""
    proc = subprocess.run([sys.executable, "-c", RSS_SNIPPET, str(n)], capture_output=True, text=True, timeout=600)
    growth, scratch = (int(x) for x in proc.stdout.split())
    return {"state_bytes": 4 * n * 4, "rss_growth_bytes": growth, "step_peak_allocation_bytes": scratch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "sizes": {}}
    for n in args.sizes:
        repeats = 21 if n <= 2_000_000 else 7
        times = {**bundled(n, repeats), **torch_peers(n, repeats), **optax_peer(n, repeats)}
        if not args.skip_keras:
            times.update(keras_peers(n, repeats))
        floor = bandwidth_floor(n, repeats)
        peers = {k: v for k, v in times.items() if not k.startswith("fast_optimizers")}
        fastest = min(peers.values()) if peers else float("nan")
        fastest_name = min(peers, key=peers.get) if peers else "-"
        print(f"\n{n:,} float32 elements ({report['machine']}); floor {floor * 1e3:.2f} ms "
              f"({BYTES_PER_ELEMENT * n / floor / 1e9:.1f} GB/s); fastest peer: {fastest_name}")
        print(f"{'implementation':<44} {'ms':>9} {'x fastest peer':>15} {'x floor':>8}")
        for name, t in sorted(times.items(), key=lambda kv: kv[1]):
            print(f"{name:<44} {t * 1e3:>9.2f} {t / fastest:>15.2f} {t / floor:>8.2f}")
        rss = peak_rss(n)
        print(f"fast_optimizers: resident memory grows by {rss['rss_growth_bytes'] / 2**20:.1f} MiB for "
              f"{rss['state_bytes'] / 2**20:.1f} MiB of state (θ, g, m, v); peak allocation during a step "
              f"{rss['step_peak_allocation_bytes'] / 2**10:.1f} KiB")
        report["sizes"][n] = {"seconds": times, "floor_seconds": floor, "fastest_peer": fastest_name, **rss}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
