"""L2-regularised logistic regression: standardisation, Newton (IRLS) fit, probabilities.

The fit minimises  sum_i s_i * logloss(y_i, b0 + z_i . w) + l2 / 2 * |w|^2  over the
intercept b0 (not penalised) and the weights w of standardised features z = (x - mean) /
scale (scikit-learn's LogisticRegression with C = 1 / l2 on z). Newton steps solve the
(f+1)-square Hessian by Cholesky, halving the step until the objective decreases; the
loops run in a fixed order, so a fit is bit-for-bit deterministic.
"""

import numpy as np

from binance_cluster.kernels._jit import jit


@jit
def standardise_stats(x):
    """(mean, scale) of every column; scale is the population std, or 1 for a constant column."""
    n, f = x.shape
    mean = np.zeros(f)
    for i in range(n):
        for j in range(f):
            mean[j] += x[i, j]
    for j in range(f):
        mean[j] /= n
    var = np.zeros(f)
    for i in range(n):
        for j in range(f):
            d = x[i, j] - mean[j]
            var[j] += d * d
    scale = np.ones(f)
    for j in range(f):
        v = var[j] / n
        if v > 0.0:
            scale[j] = np.sqrt(v)
    return mean, scale


@jit
def standardise(x, mean, scale):
    """(x - mean) / scale, a new C-contiguous array."""
    n, f = x.shape
    z = np.empty((n, f))
    for i in range(n):
        for j in range(f):
            z[i, j] = (x[i, j] - mean[j]) / scale[j]
    return z


@jit
def _softplus(v):
    if v > 0.0:
        return v + np.log1p(np.exp(-v))
    return np.log1p(np.exp(v))


@jit
def _sigmoid(v):
    if v >= 0.0:
        return 1.0 / (1.0 + np.exp(-v))
    e = np.exp(v)
    return e / (1.0 + e)


@jit
def _objective(x, mean, scale, y, s, b0, w, l2):
    n, f = x.shape
    total = 0.0
    for i in range(n):
        eta = b0
        for j in range(f):
            eta += (x[i, j] - mean[j]) / scale[j] * w[j]
        total += s[i] * (_softplus(eta) - y[i] * eta)
    pen = 0.0
    for j in range(f):
        pen += w[j] * w[j]
    return total + 0.5 * l2 * pen


@jit
def _cholesky_solve(h, g):
    """Solve h x = g for a symmetric positive definite h (lower triangle used)."""
    m = g.shape[0]
    low = np.zeros((m, m))
    for j in range(m):
        d = h[j, j]
        for k in range(j):
            d -= low[j, k] * low[j, k]
        if d <= 0.0:
            d = 1e-300
        low[j, j] = np.sqrt(d)
        for i in range(j + 1, m):
            v = h[i, j]
            for k in range(j):
                v -= low[i, k] * low[j, k]
            low[i, j] = v / low[j, j]
    u = np.empty(m)
    for i in range(m):
        v = g[i]
        for k in range(i):
            v -= low[i, k] * u[k]
        u[i] = v / low[i, i]
    x = np.empty(m)
    for i in range(m - 1, -1, -1):
        v = u[i]
        for k in range(i + 1, m):
            v -= low[k, i] * x[k]
        x[i] = v / low[i, i]
    return x


@jit
def fit_newton(x, mean, scale, y, s, l2, max_iter, tol):
    """(w float64[f], b0, iterations, converged) minimising the objective above.

    x: raw features [n, f], standardised row by row with mean and scale (no standardised
    copy is held: a worker's memory); y: 0/1 as float64; s: sample weights.
    """
    n, f = x.shape
    m = f + 1
    theta = np.zeros(m)        # theta[0] = b0, theta[1:] = w
    a = np.empty(m)
    grad = np.empty(m)
    hess = np.empty((m, m))
    value = _objective(x, mean, scale, y, s, 0.0, theta[1:], l2)
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        grad[:] = 0.0
        hess[:, :] = 0.0
        for i in range(n):
            a[0] = 1.0
            eta = theta[0]
            for j in range(f):
                zj = (x[i, j] - mean[j]) / scale[j]
                a[j + 1] = zj
                eta += zj * theta[j + 1]
            p = _sigmoid(eta)
            r = s[i] * (p - y[i])
            c = s[i] * p * (1.0 - p)
            for j in range(m):
                grad[j] += r * a[j]
                cj = c * a[j]
                row = hess[j]
                for k in range(j + 1):
                    row[k] += cj * a[k]
        for j in range(1, m):
            grad[j] += l2 * theta[j]
            hess[j, j] += l2
        step = _cholesky_solve(hess, grad)
        t = 1.0
        new = np.empty(m)
        new_value = value
        for _ in range(60):
            for j in range(m):
                new[j] = theta[j] - t * step[j]
            new_value = _objective(x, mean, scale, y, s, new[0], new[1:], l2)
            if new_value <= value:
                break
            t *= 0.5
        biggest = 0.0
        size = 1.0
        for j in range(m):
            biggest = max(biggest, abs(new[j] - theta[j]))
            size = max(size, abs(new[j]))
        theta[:] = new
        value = new_value
        if biggest <= tol * size:
            converged = True
            break
    return theta[1:].copy(), theta[0], it, converged


@jit
def predict_standardised(x, mean, scale, w, b0):
    """Probability of class 1 for every row of raw features x [n, f]."""
    n, f = x.shape
    out = np.empty(n)
    for i in range(n):
        eta = b0
        for j in range(f):
            eta += (x[i, j] - mean[j]) / scale[j] * w[j]
        out[i] = _sigmoid(eta)
    return out
