"""Adam as Keras computes it: θ ← θ − α·m/(√v + ε̂), α = η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)."""

from __future__ import annotations

import numpy as np


class Adam:
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, beta_1, beta_2
        self.epsilon, self.amsgrad = epsilon, amsgrad
        self.iterations = 0

    def build(self, params):
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.v_hat = [np.zeros_like(p) for p in params]

    def apply(self, grads, params):
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        for p, g, m, v, v_hat in zip(params, grads, self.m, self.v, self.v_hat):
            if g is None:
                continue
            m += (g - m) * (1 - self.beta_1)
            v += (g * g - v) * (1 - self.beta_2)
            if self.amsgrad:
                np.maximum(v_hat, v, out=v_hat)
                v = v_hat
            p -= (m * p.dtype.type(alpha)) / (np.sqrt(v) + p.dtype.type(self.epsilon))
        self.iterations += 1
