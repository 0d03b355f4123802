"""The few lines that plug this port into optimizer-conformance (its adapter protocol)."""

import numpy as np

from numpy_adam_port.optimizer import Adam


class Adapter:
    algorithms = ("adam",)
    dtypes = ("float32",)

    def start(self, algorithm, config, variables, dtype, exclude):
        self.names = [name for name, _ in variables]
        self.params = [np.array(v, dtype=dtype) for _, v in variables]
        self.opt = Adam(config["learning_rate"], config["beta_1"], config["beta_2"], config["epsilon"],
                        config["amsgrad"])
        self.opt.build(self.params)

    def apply(self, grads):
        self.opt.apply(grads, self.params)

    def state(self):
        out = {"iterations": self.opt.iterations}
        for i, name in enumerate(self.names):
            out[f"variables/{name}"] = self.params[i]
            out[f"momentum/{name}"] = self.opt.m[i]
            out[f"velocity/{name}"] = self.opt.v[i]
            if self.opt.amsgrad:
                out[f"velocity_hat/{name}"] = self.opt.v_hat[i]
        return out
