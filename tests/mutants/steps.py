"""Adam and Nadam update steps written out with switches, so each mutant changes one thing."""

from __future__ import annotations

from keras import ops


def adam_step(opt, gradient, variable, learning_rate, *, epsilon_inside_sqrt=False, epsilon_after_correction=False,
              step_offset=1, amsgrad="raw", bias_correction=True, velocity_weight=None, weighted_form=False,
              in_float64=False, reciprocal=False):
    dtype = "float64" if in_float64 else variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(gradient, dtype)
    t = ops.cast(opt.iterations + step_offset, dtype)
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
        denominator = ops.sqrt(v_used + eps) if epsilon_inside_sqrt else ops.sqrt(v_used) + eps
        step = m * alpha * (1 / denominator) if reciprocal else (m * alpha) / denominator
    m_var.assign(ops.cast(m, variable.dtype))
    v_var.assign(ops.cast(v, variable.dtype))
    variable.assign(ops.cast(ops.cast(variable, dtype) - step, variable.dtype))


def nadam_schedule(beta_1, t, decay_exponent_scale):
    return beta_1 * (1.0 - 0.5 * ops.power(ops.cast(0.96, t.dtype), t * decay_exponent_scale))


def nadam_step(opt, gradient, variable, learning_rate, *, schedule_scale=1.0, reciprocal=False):
    dtype = variable.dtype
    lr = ops.cast(learning_rate, dtype)
    g = ops.cast(gradient, dtype)
    t = ops.cast(opt.iterations + 1, dtype)
    b1, b2 = ops.cast(opt.beta_1, dtype), ops.cast(opt.beta_2, dtype)
    u_t = nadam_schedule(b1, t, schedule_scale)
    u_next = nadam_schedule(b1, t + 1, schedule_scale)
    product = ops.cast(opt._u_product, dtype)
    product_next = product * u_next
    m_var = opt._momentums[opt._get_variable_index(variable)]
    v_var = opt._velocities[opt._get_variable_index(variable)]
    m_var.assign(m_var + (g - m_var) * (1 - b1))
    v_var.assign(v_var + (ops.square(g) - v_var) * (1 - b2))
    m_hat = u_next * m_var / (1 - product_next) + (1 - u_t) * g / (1 - product)
    v_hat = v_var / (1 - ops.power(b2, t))
    denominator = ops.sqrt(v_hat) + opt.epsilon
    step = m_hat * lr * (1 / denominator) if reciprocal else m_hat * lr / denominator
    variable.assign(variable - step)


def advance_product(opt, variables, schedule_scale=1.0):
    dtype = opt._u_product.dtype
    t = ops.cast(opt.iterations + 1, dtype)
    opt._u_product.assign(opt._u_product * nadam_schedule(ops.cast(opt.beta_1, dtype), t, schedule_scale))
