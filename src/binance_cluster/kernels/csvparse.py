"""Byte-level CSV parsing of numeric columns: decimal text to int64 / float64, exactly.

A float field is read as an integer mantissa `m` and a decimal exponent `k`. When
`m < 2**53` and `|k| <= 22`, both `m` and `10**|k|` are exact doubles, so the one
IEEE-754 division (or multiplication) is correctly rounded and equals Python's `float()` of
the text (Clinger's fast path, "How to read floating point numbers accurately", 1990).
Every other field (too many digits, large exponents, `nan`, blanks, junk) is handed back to
the caller as a "slow" field to convert with Python's own exact `float()` / `int()`.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.kernels._jit import jit

KIND_SKIP = 0
KIND_FLOAT = 1
KIND_INT = 2

STATUS_DONE = 0        # every line parsed
STATUS_SLOW_FULL = 1   # the slow-field buffer is full: convert them, then call again
STATUS_SHORT_ROW = 2   # a line ended before the last column (err_col = fields found)
STATUS_LONG_ROW = 3    # a line has more fields than columns
STATUS_ROWS_FULL = 4   # more rows than the output arrays hold

SLOW_FIELDS = 4096     # rows of the slow-field buffer: (row, column, start, end)

_COMMA = 44
_NL = 10
_CR = 13
_MAX_EXACT = 2 ** 53
POW10 = np.array([float(10 ** i) for i in range(23)])  # all exact doubles


@jit
def _field_end(data, i):
    """Index of the comma, newline or end of data that closes the field at i."""
    n = data.shape[0]
    while i < n and data[i] != _COMMA and data[i] != _NL:
        i += 1
    return i


@jit
def _text_end(data, start, end):
    """End of the field text: a carriage return before a newline is not part of it."""
    if end > start and data[end - 1] == _CR and (end == data.shape[0] or data[end] == _NL):
        return end - 1
    return end


@jit
def _parse_number(data, i, pow10):
    """Decimal number at i: (value, is_int, ok, end). ok=False means use the exact slow path.

    Reference: Clinger's fast path; `is_int` marks text without a point or exponent.
    """
    n = data.shape[0]
    neg = False
    if i < n and (data[i] == 45 or data[i] == 43):  # '-' or '+'
        neg = data[i] == 45
        i += 1
    m = 0
    sig = 0        # significant digits taken into m (leading zeros excluded)
    seen = 0       # digits seen at all
    frac = 0       # digits of m (and leading zeros) after the point
    too_long = False
    is_int = True
    in_frac = False
    while i < n:
        d = data[i]
        if 48 <= d <= 57:
            seen += 1
            if sig == 0 and d == 48:
                if in_frac:
                    frac += 1
            elif sig < 18:
                m = m * 10 + (np.int64(d) - 48)
                sig += 1
                if in_frac:
                    frac += 1
            else:
                too_long = True
        elif d == 46 and not in_frac:  # '.'
            in_frac = True
            is_int = False
        else:
            break
        i += 1
    if seen == 0:
        return 0.0, is_int, False, i
    exp = 0
    if i < n and (data[i] == 101 or data[i] == 69):  # 'e' or 'E'
        is_int = False
        i += 1
        eneg = False
        if i < n and (data[i] == 45 or data[i] == 43):
            eneg = data[i] == 45
            i += 1
        edigits = 0
        while i < n and 48 <= data[i] <= 57:
            if edigits < 6:
                exp = exp * 10 + (np.int64(data[i]) - 48)
            edigits += 1
            i += 1
        if edigits == 0 or edigits > 5:
            return 0.0, False, False, i
        if eneg:
            exp = -exp
    if too_long or m >= _MAX_EXACT:
        return 0.0, is_int, False, i
    k = exp - frac
    if m == 0:
        k = 0
    if k < -22 or k > 22:
        return 0.0, is_int, False, i
    v = float(m)
    if k < 0:
        v = v / pow10[-k]
    elif k > 0:
        v = v * pow10[k]
    if neg:
        v = -v
    return v, is_int, True, i


@jit
def parse_rows(data, pos, line, row, kinds, slots, out_f, out_i, lines, slow):
    """Parse CSV lines of `kinds.size` numeric fields from byte `pos` (1-based `line`).

    kinds[c] is KIND_SKIP, KIND_FLOAT or KIND_INT; a parsed column c goes to row `slots[c]`
    of `out_f` (floats) or `out_i` (ints); `lines[r]` gets each row's line number. Blank
    lines are skipped. Fields the fast path cannot convert exactly are listed in `slow` as
    (row, column, start, end) for the caller. Returns (status, pos, line, row, n_slow,
    err_col); on an error status pos/line point at the bad line.
    Reference: RFC 4180 without quoting; Clinger's fast path for the numbers.
    """
    n = data.shape[0]
    ncols = kinds.shape[0]
    cap = lines.shape[0]
    nslow = 0
    while pos < n:
        c0 = data[pos]
        if c0 == _NL:
            pos += 1
            line += 1
            continue
        if c0 == _CR and (pos + 1 == n or data[pos + 1] == _NL):
            pos += 2
            line += 1
            continue
        if nslow + ncols > slow.shape[0]:
            return STATUS_SLOW_FULL, pos, line, row, nslow, 0
        if row >= cap:
            return STATUS_ROWS_FULL, pos, line, row, nslow, 0
        start_of_line = pos
        i = pos
        for c in range(ncols):
            kind = kinds[c]
            start = i
            if kind == KIND_SKIP:
                end = _field_end(data, i)
            else:
                v, is_int, ok, j = _parse_number(data, i, POW10)
                if j < n and data[j] == _CR and (j + 1 == n or data[j + 1] == _NL):
                    j += 1
                if j < n and data[j] != _COMMA and data[j] != _NL:
                    ok = False
                    end = _field_end(data, j)
                else:
                    end = j
                if ok and kind == KIND_INT and not is_int:
                    ok = False
                if ok and kind == KIND_INT and abs(v) >= _MAX_EXACT:
                    ok = False
                if ok:
                    if kind == KIND_FLOAT:
                        out_f[slots[c], row] = v
                    else:
                        out_i[slots[c], row] = np.int64(v)
                else:
                    slow[nslow, 0] = row
                    slow[nslow, 1] = c
                    slow[nslow, 2] = start
                    slow[nslow, 3] = _text_end(data, start, end)
                    nslow += 1
            if c < ncols - 1:
                if end >= n or data[end] == _NL:
                    return STATUS_SHORT_ROW, start_of_line, line, row, nslow, c + 1
                i = end + 1
            else:
                if end < n and data[end] == _COMMA:
                    return STATUS_LONG_ROW, start_of_line, line, row, nslow, ncols
                i = end + 1
        lines[row] = line
        row += 1
        line += 1
        pos = i
    return STATUS_DONE, n, line, row, nslow, 0
