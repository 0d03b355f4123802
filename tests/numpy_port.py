"""A small NumPy port of Keras Adam/Nadam that computes in one dtype, with switchable porting bugs.

It follows Keras's operation order, so with no bug switched on it must sit
inside the oracle's budgets; every bug must take it outside.  Bugs are named by their ids in the harness's
catalogue of known deviations (``conformance/checks/deviations.py``).
"""

from __future__ import annotations

import numpy as np

BUGS = (
    "epsilon-inside-sqrt",
    "step-count-plus-one",
    "amsgrad-ignored",
    "weight-decay-not-scaled-by-learning-rate",
    "weight-decay-after-update",
    "legacy-schedule-in-nadam",
    "ema-momentum-on-first-step",
    "accumulation-sums",
    "velocity-weight-is-beta",
)


def run_port(algorithm, config, theta0, grads, dtype, bug=None):
    assert bug is None or bug in BUGS
    d = np.dtype(dtype)
    f = lambda x: d.type(x)  # noqa: E731
    lr, b1, b2, eps = f(np.float32(config.get("learning_rate", 0.001))), config.get("beta_1", 0.9), \
        config.get("beta_2", 0.999), config.get("epsilon", 1e-7)
    wd = config.get("weight_decay")
    amsgrad = config.get("amsgrad", False)
    steps = config.get("gradient_accumulation_steps") or 1
    use_ema, mu = config.get("use_ema", False), config.get("ema_momentum", 0.99)
    theta = np.array(theta0, dtype=d)
    m, v, vhat, avg, acc = (np.zeros_like(theta) for _ in range(5))
    u_product = f(1.0)
    states = []
    for k, g in enumerate(grads):
        g = np.array(g, dtype=d)
        update = (k + 1) % steps == 0
        if steps > 1 and not update:
            acc = acc + g
        else:
            if steps > 1:
                g = (g + acc) if bug == "accumulation-sums" else (g + acc) / f(steps)
                acc = np.zeros_like(acc)
            if wd is not None and bug != "weight-decay-after-update":
                theta = theta - theta * f(wd) * (f(1.0) if bug == "weight-decay-not-scaled-by-learning-rate" else lr)
            t = f(k // steps + 1 + (1 if bug == "step-count-plus-one" else 0))
            if algorithm in ("adam", "adamw"):
                alpha = lr * np.sqrt(f(1) - np.power(f(b2), t)) / (f(1) - np.power(f(b1), t))
                m = m + (g - m) * f(1 - b1)
                c2 = f(b2) if bug == "velocity-weight-is-beta" else f(1 - b2)
                v = v + (g * g - v) * c2
                if amsgrad and bug != "amsgrad-ignored":
                    vhat = np.maximum(vhat, v)
                    vv = vhat
                else:
                    vv = v
                if bug == "epsilon-inside-sqrt":
                    theta = theta - (m * alpha) / np.sqrt(vv + f(eps))
                else:
                    theta = theta - (m * alpha) / (np.sqrt(vv) + f(eps))
            else:
                power = (lambda s: np.power(f(0.96), f(0.004) * s)) if bug == "legacy-schedule-in-nadam" \
                    else (lambda s: np.power(f(0.96), s))
                u_t = f(b1) * (f(1) - f(0.5) * power(t))
                u_t1 = f(b1) * (f(1) - f(0.5) * power(t + f(1)))
                u_product = u_product * u_t
                up1 = u_product * u_t1
                m = m + (g - m) * (f(1) - f(b1))
                v = v + (g * g - v) * (f(1) - f(b2))
                m_hat = (u_t1 * m) / (f(1) - up1) + ((f(1) - u_t) * g) / (f(1) - u_product)
                v_hat = v / (f(1) - np.power(f(b2), t))
                theta = theta - (m_hat * lr) / (np.sqrt(v_hat) + f(eps))
            if wd is not None and bug == "weight-decay-after-update":
                theta = theta - theta * f(wd) * lr
        if use_ema:
            first = (k // steps) == 0 and bug != "ema-momentum-on-first-step"
            momentum = f(0.0) if first else f(mu)
            avg = momentum * avg + (f(1) - momentum) * theta
        state = {"variables/w": theta.copy(), "momentum/w": m.copy(), "velocity/w": v.copy()}
        if use_ema:
            state["average/w"] = avg.copy()
        if amsgrad:
            state["velocity_hat/w"] = vhat.copy()
        if algorithm == "nadam":
            state["u_product"] = np.array([u_product])
        states.append(state)
    return states
