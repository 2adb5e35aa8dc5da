"""Histogram gradient-boosted trees for binary log-loss: binning, training and prediction.

The algorithm follows scikit-learn's HistGradientBoostingClassifier:

- Binning: per feature, the distinct values of (a seeded sample of at most BIN_SAMPLE_ROWS of)
  the training rows; with at most `max_bins` of them the bin edges are the midpoints between
  neighbours, otherwise the quantiles at k / max_bins (k = 1 .. max_bins - 1, numpy's
  "averaged_inverted_cdf" method, as scikit-learn), duplicates dropped. A value x falls in
  bin b = number of edges < x, so `x <= edges[b]` exactly when its bin is <= b. Inputs must
  be finite, and each feature's sample comes sorted (the wrapper checks and sorts: numpy's
  sort is several times faster than numba's).
- Boosting starts from the log-odds of the weighted base rate. Each round computes
  gradient w * (p - y) and hessian w * p * (1 - p), grows one tree best-first (the leaf whose
  best split has the largest gain is split next) and adds learning_rate * leaf value.
- A node's histogram holds (sum gradient, sum hessian, count) per feature and bin; of two
  siblings only the smaller is built from its rows, the other is parent minus smaller.
- Split gain GL^2/(HL+l2) + GR^2/(HR+l2) - G^2/(H+l2) over every bin boundary; a split needs
  gain > 0, at least `min_samples_leaf` rows and MIN_HESSIAN hessian on each side; a node
  with fewer than 2 * min_samples_leaf rows, at depth `max_depth` (max_depth < 0: none), or
  once the tree has `max_leaves` leaves, stays a leaf. Leaf value -G / (H + l2).
- Row subsampling draws exactly floor(subsample * n + 0.5) rows per round, without
  replacement, with a splitmix64 generator seeded by `seed` (which also picks the rows for
  the bin edges): the same inputs and seed give the same model bit for bit (every loop
  runs in a fixed order).

Trees are stored flat, nodes of every tree in one set of arrays with global indices:
`feature` (-1 at a leaf), `threshold` (go left when x <= threshold), `left`, `right`,
`value` (leaf output, learning rate included), `gain`, `count`; tree t's root is node
`tree_start[t]`.
"""

from __future__ import annotations

import math

import numpy as np

from binance_cluster.kernels._jit import jit

BIN_SAMPLE_ROWS = 200_000   # rows used to find bin edges (as scikit-learn's subsample)
BIN_LOOKUP_CELLS = 2048     # cells of the table that starts each bin search
MIN_HESSIAN = 1e-3          # least hessian sum on each side of a split (scikit-learn's default)
PROB_EPS = 1e-15            # base rate clipped to [eps, 1 - eps] before its log-odds


# ---------------------------------------------------------------- random numbers


@jit
def _next_u64(state):
    """splitmix64: the next 64-bit draw; advances state[0]."""
    z = state[0] + np.uint64(0x9E3779B97F4A7C15)
    state[0] = z
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def _uniform(state):
    """A uniform draw in [0, 1) with 53 random bits."""
    return float(_next_u64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@jit
def _sample_rows(n, k, state, out):
    """Writes k distinct rows of range(n), ascending, into out[:k] (selection sampling)."""
    need = k
    j = 0
    for i in range(n):
        if need == 0:
            break
        if _uniform(state) * (n - i) < need:
            out[j] = i
            j += 1
            need -= 1


# ---------------------------------------------------------------- binning


@jit
def bin_sample_rows(n, seed):
    """The rows whose values set the bin edges: all n, or BIN_SAMPLE_ROWS drawn with `seed`."""
    if n <= BIN_SAMPLE_ROWS:
        return np.arange(n)
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed) ^ np.uint64(0x5DEECE66D)
    rows = np.empty(BIN_SAMPLE_ROWS, dtype=np.int64)
    _sample_rows(n, BIN_SAMPLE_ROWS, state, rows)
    return rows


@jit
def feature_edges(col, max_bins):
    """Bin edges of one feature from its sampled values `col`, sorted ascending."""
    m = col.shape[0]
    distinct = np.empty(m)
    nd = 0
    for i in range(m):
        if nd == 0 or col[i] != distinct[nd - 1]:
            distinct[nd] = col[i]
            nd += 1
    edges = np.empty(max(nd - 1, max_bins - 1))
    pos = 0
    if nd <= max_bins:
        for i in range(nd - 1):
            edges[pos] = 0.5 * (distinct[i] + distinct[i + 1])
            pos += 1
    else:
        for k in range(1, max_bins):
            # the k / max_bins quantile, "averaged inverted cdf" (numpy's method name)
            j = (m * k) // max_bins
            if (m * k) % max_bins == 0:
                e = 0.5 * (col[j - 1] + col[j])
            else:
                e = col[j]
            if pos == 0 or e != edges[pos - 1]:
                edges[pos] = e
                pos += 1
    return edges[:pos].copy()


@jit
def bin_matrix(X, edges, offsets):
    """X[n, f] as bin numbers: out[i, f] = number of edges of feature f below X[i, f].

    A table of BIN_LOOKUP_CELLS equal cells between a feature's first and last edge gives
    the count of edges below each cell's start; a short scan from there finds the exact
    count (the table only sets where the scan starts, so any table gives the same bins).
    """
    n, nf = X.shape
    out = np.empty((n, nf), dtype=np.uint8)
    cells = BIN_LOOKUP_CELLS
    start = np.zeros((nf, cells + 1), dtype=np.int64)
    low = np.zeros(nf)
    scale = np.zeros(nf)
    for f in range(nf):
        first = offsets[f]
        ne = offsets[f + 1] - first
        if ne == 0 or not edges[first + ne - 1] > edges[first]:
            continue
        low[f] = edges[first]
        scale[f] = cells / (edges[first + ne - 1] - edges[first])
        j = 0
        for c in range(cells + 1):
            bound = low[f] + c / scale[f]
            while j < ne and edges[first + j] < bound:
                j += 1
            start[f, c] = j
    for i in range(n):
        for f in range(nf):
            first = offsets[f]
            ne = offsets[f + 1] - first
            x = X[i, f]
            t = (x - low[f]) * scale[f]
            c = 0
            if t > 0.0:
                c = cells if t >= cells else int(t)
            k = start[f, c]
            while k > 0 and edges[first + k - 1] >= x:
                k -= 1
            while k < ne and edges[first + k] < x:
                k += 1
            out[i, f] = k
    return out


# ---------------------------------------------------------------- histograms and splits


@jit
def _build_histogram(Xb, gh, idx, start, end, hist):
    """hist[f, b] = (sum g, sum h, count) over rows idx[start:end] (gh[r] = (g, h))."""
    nf = Xb.shape[1]
    hist[:, :, :] = 0.0
    i = start
    while i + 1 < end:
        # two rows per step: more independent additions in flight
        r = idx[i]
        s = idx[i + 1]
        g0 = gh[r, 0]
        h0 = gh[r, 1]
        g1 = gh[s, 0]
        h1 = gh[s, 1]
        row0 = Xb[r]
        row1 = Xb[s]
        for f in range(nf):
            b = row0[f]
            hist[f, b, 0] += g0
            hist[f, b, 1] += h0
            hist[f, b, 2] += 1.0
            b = row1[f]
            hist[f, b, 0] += g1
            hist[f, b, 1] += h1
            hist[f, b, 2] += 1.0
        i += 2
    if i < end:
        r = idx[i]
        row0 = Xb[r]
        for f in range(nf):
            b = row0[f]
            hist[f, b, 0] += gh[r, 0]
            hist[f, b, 1] += gh[r, 1]
            hist[f, b, 2] += 1.0


@jit
def _build_root_histogram(Xb, gh, m, counts, hist):
    """hist of rows 0..m-1 in order: (sum g, sum h) built, counts copied from `counts` (the
    same for every round that uses all rows: a third fewer additions on the largest node)."""
    nf = Xb.shape[1]
    for f in range(nf):
        for b in range(hist.shape[1]):
            hist[f, b, 0] = 0.0
            hist[f, b, 1] = 0.0
            hist[f, b, 2] = counts[f, b]
    i = 0
    while i + 1 < m:
        g0 = gh[i, 0]
        h0 = gh[i, 1]
        g1 = gh[i + 1, 0]
        h1 = gh[i + 1, 1]
        row0 = Xb[i]
        row1 = Xb[i + 1]
        for f in range(nf):
            b = row0[f]
            hist[f, b, 0] += g0
            hist[f, b, 1] += h0
            b = row1[f]
            hist[f, b, 0] += g1
            hist[f, b, 1] += h1
        i += 2
    if i < m:
        row0 = Xb[i]
        for f in range(nf):
            b = row0[f]
            hist[f, b, 0] += gh[i, 0]
            hist[f, b, 1] += gh[i, 1]


@jit
def _bin_counts(Xb, max_bin):
    """counts[f, b]: rows of Xb whose feature f falls in bin b (as floats, like histograms)."""
    n, nf = Xb.shape
    counts = np.zeros((nf, max_bin))
    for i in range(n):
        row = Xb[i]
        for f in range(nf):
            counts[f, row[f]] += 1.0
    return counts


@jit
def _best_split(hist, n_bins, sum_g, sum_h, count, min_samples_leaf, l2):
    """(gain, feature, bin) of the node's best split; feature -1 when none is allowed."""
    best_gain = 0.0
    best_f = -1
    best_b = -1
    parent = sum_g * sum_g / (sum_h + l2)
    for f in range(hist.shape[0]):
        hf = hist[f]
        gl = 0.0
        hl = 0.0
        cl = 0.0
        for b in range(n_bins[f] - 1):
            gl += hf[b, 0]
            hl += hf[b, 1]
            cl += hf[b, 2]
            cr = count - cl
            if cr < min_samples_leaf:
                break
            if cl < min_samples_leaf:
                continue
            hr = sum_h - hl
            if hl < MIN_HESSIAN or hr < MIN_HESSIAN:
                continue
            gr = sum_g - gl
            gain = gl * gl / (hl + l2) + gr * gr / (hr + l2) - parent
            if gain > best_gain:
                best_gain = gain
                best_f = f
                best_b = b
    return best_gain, best_f, best_b


@jit
def _columns(Xb):
    """Xb[n, f] copied feature-major (out[f, i] = Xb[i, f]), a block of rows at a time."""
    n, nf = Xb.shape
    out = np.empty((nf, n), dtype=np.uint8)
    for i0 in range(0, n, 256):
        for i in range(i0, min(n, i0 + 256)):
            for f in range(nf):
                out[f, i] = Xb[i, f]
    return out


@jit
def _partition(XbT, idx, start, end, feature, bin_, buf):
    """Reorders idx[start:end] stably: rows with bin <= bin_ first; returns the split point.

    Reads the feature's column of the feature-major bins XbT: a node's rows stay ascending
    (stable partitions of 0..n-1), so the reads walk the column forward."""
    col = XbT[feature]
    nl = start
    nr = 0
    for i in range(start, end):
        # branch-free: write both ways, advance one (the outcome is unpredictable)
        r = idx[i]
        go_left = 1 if col[r] <= bin_ else 0
        idx[nl] = r
        buf[nr] = r
        nl += go_left
        nr += 1 - go_left
    for i in range(nr):
        idx[nl + i] = buf[i]
    return nl


@jit
def _leaf_value(sum_g, sum_h, l2):
    """Newton step -G / (H + l2) of a leaf (0 when the denominator is 0)."""
    den = sum_h + l2
    if den <= 0.0:
        return 0.0
    return -sum_g / den


# ---------------------------------------------------------------- one tree


@jit
def _grow_tree(Xb, XbT, n_bins, gh, idx, m, max_leaves, max_depth, min_samples_leaf, l2,
               learning_rate, hist_pool, buf, root_counts,
               t_feature, t_bin, t_left, t_right, t_value, t_gain, t_count, t_start, t_end):
    """Grows one tree on rows idx[:m] best-first; returns its node count (nodes 0..).

    root_counts: the bin counts of all rows when idx[:m] is 0..m-1 (every row), else empty."""
    n_slots = hist_pool.shape[0]
    free_slots = np.empty(n_slots, dtype=np.int64)
    for s in range(n_slots):
        free_slots[s] = n_slots - 1 - s
    n_free = n_slots
    cap = t_start.shape[0]                 # nodes of one tree at most
    # per node: sums, depth, histogram slot and best split found
    sum_g = np.zeros(cap)
    sum_h = np.zeros(cap)
    depth = np.zeros(cap, dtype=np.int64)
    slot = np.full(cap, -1, dtype=np.int64)
    split_f = np.full(cap, -1, dtype=np.int64)
    split_b = np.zeros(cap, dtype=np.int64)
    split_gain = np.zeros(cap)
    # open nodes: leaves with an allowed split, waiting to be split
    open_nodes = np.empty(cap, dtype=np.int64)
    n_open = 0

    sg = 0.0
    sh = 0.0
    for i in range(m):
        sg += gh[idx[i], 0]
        sh += gh[idx[i], 1]
    n_nodes = 1
    t_feature[0] = -1
    t_start[0] = 0
    t_end[0] = m
    t_count[0] = m
    sum_g[0] = sg
    sum_h[0] = sh
    n_leaves = 1
    if (max_leaves > 1 and max_depth != 0 and m >= 2 * min_samples_leaf
            and sh >= MIN_HESSIAN):
        n_free -= 1
        slot[0] = free_slots[n_free]
        if root_counts.shape[0] > 0:
            _build_root_histogram(Xb, gh, m, root_counts, hist_pool[slot[0]])
        else:
            _build_histogram(Xb, gh, idx, 0, m, hist_pool[slot[0]])
        gain, f, b = _best_split(hist_pool[slot[0]], n_bins, sg, sh, m, min_samples_leaf, l2)
        if f >= 0:
            split_f[0] = f
            split_b[0] = b
            split_gain[0] = gain
            open_nodes[0] = 0
            n_open = 1
        else:
            free_slots[n_free] = slot[0]
            n_free += 1

    while n_open > 0 and n_leaves < max_leaves:
        k = 0
        for j in range(1, n_open):
            if split_gain[open_nodes[j]] > split_gain[open_nodes[k]]:
                k = j
        node = open_nodes[k]
        for j in range(k, n_open - 1):
            open_nodes[j] = open_nodes[j + 1]
        n_open -= 1

        f = split_f[node]
        b = split_b[node]
        s0 = t_start[node]
        s1 = t_end[node]
        mid = _partition(XbT, idx, s0, s1, f, b, buf)
        lc = n_nodes
        rc = n_nodes + 1
        n_nodes += 2
        n_leaves += 1
        t_feature[node] = f
        t_bin[node] = b
        t_gain[node] = split_gain[node]
        t_left[node] = lc
        t_right[node] = rc
        t_start[lc] = s0
        t_end[lc] = mid
        t_start[rc] = mid
        t_end[rc] = s1
        parent_hist = hist_pool[slot[node]]
        gl = 0.0
        hl = 0.0
        for bb in range(b + 1):
            gl += parent_hist[f, bb, 0]
            hl += parent_hist[f, bb, 1]
        for c in (lc, rc):
            t_feature[c] = -1
            t_count[c] = t_end[c] - t_start[c]
            depth[c] = depth[node] + 1
        sum_g[lc] = gl
        sum_h[lc] = hl
        sum_g[rc] = sum_g[node] - gl
        sum_h[rc] = sum_h[node] - hl

        can_left = (depth[lc] != max_depth and t_count[lc] >= 2 * min_samples_leaf
                    and sum_h[lc] >= MIN_HESSIAN)
        can_right = (depth[rc] != max_depth and t_count[rc] >= 2 * min_samples_leaf
                     and sum_h[rc] >= MIN_HESSIAN)
        if n_leaves >= max_leaves:
            can_left = False
            can_right = False
        if can_left or can_right:
            small = lc
            large = rc
            if t_count[rc] < t_count[lc]:
                small = rc
                large = lc
            n_free -= 1
            slot[small] = free_slots[n_free]
            _build_histogram(Xb, gh, idx, t_start[small], t_end[small], hist_pool[slot[small]])
            slot[large] = slot[node]
            slot[node] = -1
            if (can_left if large == lc else can_right):
                big = hist_pool[slot[large]]
                little = hist_pool[slot[small]]
                for ff in range(big.shape[0]):
                    for bb in range(n_bins[ff]):
                        big[ff, bb, 0] -= little[ff, bb, 0]
                        big[ff, bb, 1] -= little[ff, bb, 1]
                        big[ff, bb, 2] -= little[ff, bb, 2]
            for c in (lc, rc):
                ok = can_left if c == lc else can_right
                if ok:
                    gain, cf, cb = _best_split(hist_pool[slot[c]], n_bins, sum_g[c], sum_h[c],
                                               t_count[c], min_samples_leaf, l2)
                    if cf >= 0:
                        split_f[c] = cf
                        split_b[c] = cb
                        split_gain[c] = gain
                        open_nodes[n_open] = c
                        n_open += 1
                        continue
                free_slots[n_free] = slot[c]
                n_free += 1
                slot[c] = -1
        else:
            free_slots[n_free] = slot[node]
            n_free += 1
            slot[node] = -1

    for node in range(n_nodes):
        if t_feature[node] < 0:
            t_value[node] = learning_rate * _leaf_value(sum_g[node], sum_h[node], l2)
            t_left[node] = -1
            t_right[node] = -1
            t_bin[node] = 0
            t_gain[node] = 0.0
        else:
            t_value[node] = 0.0
    return n_nodes


# ---------------------------------------------------------------- boosting


@jit
def _sigmoid(z):
    """1 / (1 + exp(-z)); exp overflowing to inf gives 0 (branch-free: gradients are hot)."""
    return 1.0 / (1.0 + math.exp(-z))


@jit
def _gradient(raw, y, w, gh, i):
    """Log-loss gradient and hessian of row i at its raw score, weighted, into gh[i]."""
    p = _sigmoid(raw[i])
    gh[i, 0] = w[i] * (p - y[i])
    gh[i, 1] = w[i] * p * (1.0 - p)


@jit
def _grown(arr, size):
    """arr copied into a new array of length `size` (>= len(arr))."""
    out = np.zeros(size, dtype=arr.dtype)
    out[:arr.shape[0]] = arr
    return out


@jit
def fit_boosted(Xb, n_bins, edges, offsets, y, w, learning_rate, n_rounds, max_leaves,
                max_depth, min_samples_leaf, l2, subsample, seed):
    """Boosted trees on binned Xb[n, f], labels y (0/1 floats) and weights w.

    Returns (baseline, feature, threshold, bin, left, right, value, gain, count, tree_start).
    max_leaves bounds the leaves of a tree (the wrapper turns "no limit" into the most that
    min_samples_leaf and max_depth allow); max_depth < 0 means no depth limit.
    """
    n, nf = Xb.shape
    sw = 0.0
    sy = 0.0
    for i in range(n):
        sw += w[i]
        sy += w[i] * y[i]
    p0 = min(max(sy / sw, PROB_EPS), 1.0 - PROB_EPS)
    baseline = math.log(p0 / (1.0 - p0))

    m = n
    if subsample < 1.0:
        m = max(1, int(math.floor(subsample * n + 0.5)))
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed)

    raw = np.full(n, baseline)
    XbT = _columns(Xb)                    # row-major for histograms, feature-major to split
    gh = np.zeros((n, 2))
    idx = np.empty(n, dtype=np.int32)
    buf = np.empty(n, dtype=np.int32)
    max_bin = 1
    for f in range(nf):
        max_bin = max(max_bin, n_bins[f])
    hist_pool = np.zeros((max_leaves + 1, nf, max_bin, 3))
    root_counts = _bin_counts(Xb, max_bin) if m == n else np.zeros((0, max_bin))

    cap = 2 * max_leaves - 1              # nodes of one tree at most
    t_start = np.empty(cap, dtype=np.int64)
    t_end = np.empty(cap, dtype=np.int64)
    size = max(n_rounds * 3, cap)
    feature = np.empty(size, dtype=np.int32)
    bins = np.empty(size, dtype=np.int32)
    left = np.empty(size, dtype=np.int32)
    right = np.empty(size, dtype=np.int32)
    value = np.empty(size)
    gain = np.empty(size)
    count = np.empty(size, dtype=np.int64)
    tree_start = np.zeros(n_rounds + 1, dtype=np.int64)
    used = 0

    for rnd in range(n_rounds):
        if used + cap > feature.shape[0]:
            size = max(2 * feature.shape[0], used + cap)
            feature = _grown(feature, size)
            bins = _grown(bins, size)
            left = _grown(left, size)
            right = _grown(right, size)
            value = _grown(value, size)
            gain = _grown(gain, size)
            count = _grown(count, size)
        if m < n:
            _sample_rows(n, m, state, idx)
            for j in range(m):
                _gradient(raw, y, w, gh, idx[j])
        else:
            for i in range(n):
                idx[i] = i
                _gradient(raw, y, w, gh, i)
        t_feature = feature[used:]
        t_bin = bins[used:]
        t_left = left[used:]
        t_right = right[used:]
        t_value = value[used:]
        nodes = _grow_tree(Xb, XbT, n_bins, gh, idx, m, max_leaves, max_depth,
                           min_samples_leaf, l2, learning_rate, hist_pool, buf, root_counts,
                           t_feature, t_bin, t_left, t_right, t_value, gain[used:],
                           count[used:], t_start, t_end)
        if m == n:
            for node in range(nodes):
                if t_feature[node] < 0:
                    v = t_value[node]
                    for j in range(t_start[node], t_end[node]):
                        raw[idx[j]] += v
        else:
            for i in range(n):
                node = 0
                while t_feature[node] >= 0:
                    if XbT[t_feature[node], i] <= t_bin[node]:
                        node = t_left[node]
                    else:
                        node = t_right[node]
                raw[i] += t_value[node]
        for node in range(nodes):              # tree-local child numbers -> model-wide
            if t_feature[node] >= 0:
                t_left[node] += used
                t_right[node] += used
        used += nodes
        tree_start[rnd + 1] = used

    threshold = np.zeros(used)
    for node in range(used):
        f = feature[node]
        if f >= 0:
            threshold[node] = edges[offsets[f] + bins[node]]
    return (baseline, feature[:used].copy(), threshold, bins[:used].copy(),
            left[:used].copy(), right[:used].copy(), value[:used].copy(),
            gain[:used].copy(), count[:used].copy(), tree_start)


# ---------------------------------------------------------------- prediction


@jit
def _raw(x, feature, threshold, left, right, value, tree_start, baseline):
    """Raw score (log-odds) of one feature row x[f]."""
    z = baseline
    for t in range(tree_start.shape[0] - 1):
        node = tree_start[t]
        while feature[node] >= 0:
            if x[feature[node]] <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        z += value[node]
    return z


@jit
def predict_proba(X, feature, threshold, left, right, value, tree_start, baseline):
    """Probability of class 1 for every row of X[n, f]."""
    n = X.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = _sigmoid(_raw(X[i], feature, threshold, left, right, value, tree_start,
                               baseline))
    return out


@jit
def predict_proba_row(x, feature, threshold, left, right, value, tree_start, baseline):
    """Probability of class 1 for one feature row x[f] (the live loop's newest bar)."""
    return _sigmoid(_raw(x, feature, threshold, left, right, value, tree_start, baseline))


@jit
def gain_importance(feature, gain, n_features):
    """Total split gain per feature, divided by the total (zeros when no split)."""
    out = np.zeros(n_features)
    for node in range(feature.shape[0]):
        if feature[node] >= 0:
            out[feature[node]] += gain[node]
    s = out.sum()
    if s > 0.0:
        out /= s
    return out
