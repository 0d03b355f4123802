"""Update steps of each rule written out with switches, so each mutant changes one thing."""

from __future__ import annotations

from keras import ops


def _dense(gradient):
    """Row slices (tf.IndexedSlices, BCOO) as a dense tensor: these steps use Python operators, which Keras's
    sparse types do not all take (Keras's own rules stay on ops, which densify where a dense slot meets them)."""
    if hasattr(gradient, "indices") and not hasattr(gradient, "todense"):
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return gradient.todense() if hasattr(gradient, "todense") else gradient


def adam_step(opt, gradient, variable, learning_rate, *, epsilon_inside_sqrt=False, epsilon_after_correction=False,
              step_offset=1, amsgrad="raw", bias_correction=True, velocity_weight=None, weighted_form=False,
              in_float64=False, reciprocal=False, step_size_dtype=None, step=None):
    dtype = "float64" if in_float64 else variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(_dense(gradient), dtype)
    t = ops.cast(opt.iterations + step_offset if step is None else step, dtype)
    b1, b2 = opt.beta_1, opt.beta_2
    m_var = opt._momentums[opt._get_variable_index(variable)]
    v_var = opt._velocities[opt._get_variable_index(variable)]
    m, v = ops.cast(m_var, dtype), ops.cast(v_var, dtype)
    c1, c2 = 1 - b1, (1 - b2 if velocity_weight is None else velocity_weight)
    if weighted_form:
        m = m * b1 + g * c1
        v = v * b2 + ops.square(g) * c2
    else:
        m = m + (g - m) * c1
        v = v + (ops.square(g) - v) * c2
    p1 = ops.power(ops.cast(b1, dtype), t)
    p2 = ops.power(ops.cast(b2, dtype), t)
    if opt.amsgrad and amsgrad != "ignored":
        vh_var = opt._velocity_hats[opt._get_variable_index(variable)]
        vh = ops.cast(vh_var, dtype)
        vh = ops.maximum(vh, v / (1 - p2)) if amsgrad == "corrected" else ops.maximum(vh, v)
        vh_var.assign(ops.cast(vh, variable.dtype))
        v_used = vh * (1 - p2) if amsgrad == "corrected" else vh
    else:
        v_used = v
    eps = opt.epsilon
    if epsilon_after_correction:
        step = lr / (1 - p1) * m / (ops.sqrt(v_used / (1 - p2)) + eps)
    else:
        alpha = lr * ops.sqrt(1 - p2) / (1 - p1) if bias_correction else lr
        if step_size_dtype is not None:  # formed in another dtype, then cast back
            s1 = ops.power(ops.cast(b1, step_size_dtype), ops.cast(t, step_size_dtype))
            s2 = ops.power(ops.cast(b2, step_size_dtype), ops.cast(t, step_size_dtype))
            alpha = ops.cast(ops.cast(lr, step_size_dtype) * ops.sqrt(1 - s2) / (1 - s1), dtype)
        denominator = ops.sqrt(v_used + eps) if epsilon_inside_sqrt else ops.sqrt(v_used) + eps
        step = m * alpha * (1 / denominator) if reciprocal else (m * alpha) / denominator
    m_var.assign(ops.cast(m, variable.dtype))
    v_var.assign(ops.cast(v, variable.dtype))
    variable.assign(ops.cast(ops.cast(variable, dtype) - step, variable.dtype))


def adamax_step(opt, gradient, variable, learning_rate, *, epsilon_inside_max=False, step_size_first=False,
                max_drops_nan=False, bias_correction=True, absolute=True):
    dtype = variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(_dense(gradient), dtype)
    t = ops.cast(opt.iterations + 1, dtype)
    m = opt._m[opt._get_variable_index(variable)]
    u = opt._u[opt._get_variable_index(variable)]
    if step_size_first:
        step_size = ops.cast(ops.cast(learning_rate, "float64") / (1 - ops.power(ops.cast(opt.beta_1, "float64"),
                                                                                  ops.cast(t, "float64"))), dtype)
        m_new = m * opt.beta_1 + g * (1 - opt.beta_1)
        u_new = ops.maximum(u * opt.beta_2, ops.abs(g))
        step = (m_new * step_size) / (u_new + opt.epsilon)
    else:
        correction = 1 - ops.power(ops.cast(opt.beta_1, dtype), t) if bias_correction else 1.0
        m_new = m + (g - m) * (1 - opt.beta_1)
        if epsilon_inside_max:
            u_new = ops.maximum(u * opt.beta_2, ops.abs(g) + opt.epsilon)
            step = (lr * m_new) / (correction * u_new)
        else:
            u_new = ops.maximum(u * opt.beta_2, ops.abs(g) if absolute else g)
            if max_drops_nan:  # fmax: the other operand where one is NaN
                u_new = ops.where(ops.isnan(ops.abs(g)), u * opt.beta_2, u_new)
            step = (lr * m_new) / (correction * (u_new + opt.epsilon))
    m.assign(m_new)
    u.assign(u_new)
    variable.assign(variable - step)


def lamb_step(opt, gradient, variable, learning_rate, *, ratio_over="direction", guarded=True, norms_in_float64=False):
    dtype = variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(_dense(gradient), dtype)
    t = ops.cast(opt.iterations + 1, dtype)
    m = opt._momentums[opt._get_variable_index(variable)]
    v = opt._velocities[opt._get_variable_index(variable)]
    m.assign(m + (g - m) * (1 - opt.beta_1))
    v.assign(v + (ops.square(g) - v) * (1 - opt.beta_2))
    m_hat = m / (1 - ops.power(ops.cast(opt.beta_1, dtype), t))
    v_hat = v / (1 - ops.power(ops.cast(opt.beta_2, dtype), t))
    r = m_hat / (ops.sqrt(v_hat) + opt.epsilon)
    other = r if ratio_over == "direction" else g
    if norms_in_float64:
        w_norm = ops.sqrt(ops.sum(ops.square(ops.cast(variable, "float64"))))
        o_norm = ops.sqrt(ops.sum(ops.square(ops.cast(other, "float64"))))
    else:
        w_norm, o_norm = ops.sqrt(ops.sum(ops.square(variable))), ops.sqrt(ops.sum(ops.square(other)))
    ratio = w_norm / o_norm
    if guarded:
        ratio = ops.where(ops.logical_and(w_norm > 0, o_norm > 0), ratio, ops.ones_like(ratio))
    variable.assign(variable - ops.cast(ratio, dtype) * lr * r)


def schedule_free_step(opt, gradient, variable, learning_rate, *, weight_offset=0, x_from_updated_z=False,
                       in_float64=False, warmup_offset=0):
    dtype = "float64" if in_float64 else variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(_dense(gradient), dtype)
    t = ops.cast(opt.iterations + 1, dtype)
    b1, b2, eps = (ops.cast(x, dtype) for x in (opt.beta_1, opt.beta_2, opt.epsilon))
    if opt.warmup_steps > 0:
        lr = lr * ops.minimum((t + warmup_offset) / ops.cast(opt.warmup_steps, dtype), ops.cast(1.0, dtype))
    z_var = opt._momentums[opt._get_variable_index(variable)]
    v_var = opt._velocities[opt._get_variable_index(variable)]
    z_old, v, y = ops.cast(z_var, dtype), ops.cast(v_var, dtype), ops.cast(variable, dtype)
    v = v + (ops.square(g) - v) * (1 - b2)
    z = z_old - (lr * g) / (ops.sqrt(v / (1 - ops.power(b2, t))) + eps)
    x = (y - (1 - b1) * (z if x_from_updated_z else z_old)) / b1
    w = 1.0 / (t + weight_offset)
    x = (1 - w) * x + w * z
    v_var.assign(ops.cast(v, variable.dtype))
    z_var.assign(ops.cast(z, variable.dtype))
    variable.assign(ops.cast((1 - b1) * z + b1 * x, variable.dtype))


def nadam_schedule(beta_1, t, decay_exponent_scale):
    return beta_1 * (1.0 - 0.5 * ops.power(ops.cast(0.96, t.dtype), t * decay_exponent_scale))


def nadam_step(opt, gradient, variable, learning_rate, *, schedule_scale=1.0, reciprocal=False, in_parts=False):
    dtype = variable.dtype
    # The per-step scalars formed in the wider of the variable's dtype and float32, each cast once to the
    # variable's (the specification's; Keras forms a float16 variable's in float16: an upstream bug).
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype
    lr = ops.cast(learning_rate, wide)
    g = ops.cast(_dense(gradient), dtype)
    t = ops.cast(opt.iterations + 1, wide)
    b1, b2 = ops.cast(opt.beta_1, wide), ops.cast(opt.beta_2, wide)
    u_t = nadam_schedule(b1, t, schedule_scale)
    u_next = nadam_schedule(b1, t + 1, schedule_scale)
    product = ops.cast(opt._u_product, wide)
    product_next = product * u_next
    gradient_step, momentum_step = lr * (1 - u_t) / (1 - product), lr * u_next / (1 - product_next)
    lr, u_t, u_next, rest, rest_next, gradient_step, momentum_step, correction, one_minus_b1, one_minus_b2 = (
        ops.cast(x, dtype) for x in (lr, u_t, u_next, 1 - product, 1 - product_next, gradient_step, momentum_step,
                                     1 - ops.power(b2, t), 1 - b1, 1 - b2))
    m_var = opt._momentums[opt._get_variable_index(variable)]
    v_var = opt._velocities[opt._get_variable_index(variable)]
    m_var.assign(m_var + (g - m_var) * one_minus_b1)
    v_var.assign(v_var + (ops.square(g) - v_var) * one_minus_b2)
    m_hat = u_next * m_var / rest_next + (1 - u_t) * g / rest
    v_hat = v_var / correction
    denominator = ops.sqrt(v_hat) + opt.epsilon
    if in_parts:  # torch.optim's NAdam: two subtractions, each of a quotient times its step size
        variable.assign(variable - (g / denominator) * gradient_step)
        variable.assign(variable - (m_var / denominator) * momentum_step)
        return
    step = m_hat * lr * (1 / denominator) if reciprocal else m_hat * lr / denominator
    variable.assign(variable - step)


def advance_product(opt, variables, schedule_scale=1.0):
    dtype = opt._u_product.dtype
    t = ops.cast(opt.iterations + 1, dtype)
    opt._u_product.assign(opt._u_product * nadam_schedule(ops.cast(opt.beta_1, dtype), t, schedule_scale))
