"""Compiled scanners of COCO compressed RLE strings (numba): validation, areas, decoding.

Compressed RLE (COCO): the run lengths of a column-major mask, alternately background and
foreground, starting with background, each value written in 6-bit characters ``'0'..'o'``
(5 payload bits, 0x20 = "more characters follow", 0x10 of the last one = sign), values after
the third stored as a difference to the value two places before.

**One decoding, the official one.** pycocotools' ``rleFrString`` (hence the official evaluators
and the server) assembles a value with 32-bit ``int`` shifts and stores each run as a 32-bit
``uint``; these kernels use 64-bit arithmetic. The two agree on every value of at most 6
characters, and on a 7-character value whose last character is ``'0'`` or ``'1'`` (payload bits
30..34 all but bit 30 clear, no sign): there ``payload << 30`` fits a 32-bit ``int``. Any other
7-character value is shifted out of 32 bits by pycocotools (undefined behaviour in C; on x86 the
payload's upper bits are lost and the sign shift ``-1 << 35`` becomes ``-1 << 3``), so its value
differs from the true one, or matches it only by that accident: such strings are refused
(:data:`OVERFLOW`), as are values of 8 characters or more (:data:`TOO_LONG`), negative run
lengths (:data:`NEGATIVE`; pycocotools would wrap them to huge ``uint`` runs) and run lengths
above ``2^31 - 1`` (:data:`HUGE`; no frame holds that many pixels, and it keeps every stored run,
which later values are differences to, the same in 32 and 64 bits). So a string accepted here
decodes in pycocotools to the same runs, value by value.

Every kernel is compiled once with ``cache=True`` and ``nogil=True`` (see
:func:`ovis_jax._src.parallel.run_chunks`). The texts of the problem codes live in
:mod:`ovis_jax._src.masks.rle`.
"""

from __future__ import annotations

import numba
import numpy as np

from ovis_jax._src.backends.cpu.startup import prepare_numba

__all__ = [
    "BAD_CHAR",
    "HUGE",
    "NEGATIVE",
    "OK",
    "OVERFLOW",
    "TOO_LONG",
    "TRUNCATED",
    "ZERO_RUN",
    "decode_boundaries",
    "decode_lengths",
    "scan_strings",
]

# Problem codes of scan_strings, per string.
OK, BAD_CHAR, TRUNCATED, TOO_LONG, NEGATIVE, OVERFLOW, HUGE, ZERO_RUN = range(8)
_INT32_MAX = 2**31 - 1

prepare_numba()  # before the decorators: the cache is optional (see startup.py)
_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _problem(chars, p0, p1, first):
    """The problem code of a string whose scan failed with ``first``: a bad character anywhere
    wins, then a string ending inside a value, then the first problem met."""
    for p in range(p0, p1):
        c = np.int64(chars[p]) - 48
        if c < 0 or c > 63:
            return BAD_CHAR
    if p1 > p0 and (np.int64(chars[p1 - 1]) - 48) & 0x20:
        return TRUNCATED
    return first


@_jit
def scan_strings(chars, char_start, s0, s1, codes, totals, areas, firsts, lasts, nvals):
    """Decodes and validates strings ``s0:s1`` without storing their runs.

    Args:
        chars: uint8[C] all strings concatenated.
        char_start: int64[S + 1] string ``s`` is ``chars[char_start[s]:char_start[s + 1]]``.
        s0, s1: the strings to scan.
        codes: int8[S] out: :data:`OK` or a problem code.
        totals: int64[S] out: sum of the run lengths (height × width when well formed).
        areas: int64[S] out: foreground pixels.
        firsts, lasts: int64[S] out: foreground span ``[first, last)`` (0, 0 when empty).
        nvals: int64[S] out: number of run lengths.
    """
    for s in range(s0, s1):
        p, end = char_start[s], char_start[s + 1]
        m = 0
        prev1 = np.int64(0)
        prev2 = np.int64(0)
        pos = np.int64(0)
        area = np.int64(0)
        first = np.int64(-1)
        last = np.int64(0)
        code = OK
        zero_before = False
        while p < end and code == OK:
            x = np.int64(0)
            c = np.int64(0)
            k = 0
            more = True
            while more:
                if p >= end:
                    code = TRUNCATED
                    break
                c = np.int64(chars[p]) - 48
                if c < 0 or c > 63:
                    code = BAD_CHAR
                    break
                if k == 7:
                    code = TOO_LONG
                    break
                x |= (c & 0x1F) << (5 * k)
                more = (c & 0x20) != 0
                p += 1
                k += 1
                if not more and (c & 0x10) != 0:
                    x |= np.int64(-1) << (5 * k)
            if code != OK:
                break
            if k == 7 and (c & 0x1E) != 0:  # pycocotools' 32-bit shifts lose payload bits
                code = OVERFLOW
                break
            if m > 2:
                x += prev2
            if x < 0:
                code = NEGATIVE
                break
            if x > _INT32_MAX:
                code = HUGE
                break
            if zero_before and x > 0:  # pycocotools' merge can end early at an inner zero run
                code = ZERO_RUN
                break
            zero_before = x == 0 and (m > 0 or zero_before)  # zeros at the very end are fine
            if m & 1 and x > 0:
                if first < 0:
                    first = pos
                area += x
                last = pos + x
            pos += x
            prev2 = prev1
            prev1 = x
            m += 1
        if code != OK:
            code = _problem(chars, char_start[s], end, code)
        codes[s] = code
        totals[s] = pos
        areas[s] = area
        firsts[s] = max(first, 0)
        lasts[s] = last
        nvals[s] = m


@_jit
def _value(chars, p):
    """The value starting at ``chars[p]`` of a valid string: ``(value, next p)``."""
    c = np.int64(chars[p]) - 48
    x = c & 0x1F
    k = 1
    while c & 0x20:
        c = np.int64(chars[p + k]) - 48
        x |= (c & 0x1F) << (5 * k)
        k += 1
    if c & 0x10:
        x |= np.int64(-1) << (5 * k)
    return x, p + k


@_jit
def decode_boundaries(chars, p, end, out, o):
    """Writes the cumulative run boundaries of one (valid) string to ``out[o:]``.

    Boundary ``i`` is the position where run ``i`` ends, so foreground run ``j`` is
    ``[out[o + 2j], out[o + 2j + 1])``. Returns the number of values written.
    """
    m = 0
    prev1 = np.int64(0)
    prev2 = np.int64(0)
    pos = np.int64(0)
    while p < end:
        x, p = _value(chars, p)
        if m > 2:
            x += prev2
        pos += x
        out[o + m] = pos
        prev2 = prev1
        prev1 = x
        m += 1
    return m


@_jit
def decode_lengths(chars, char_start, strings, out_start, i0, i1, out):
    """Writes the run lengths of (valid) strings ``strings[i]`` to ``out[out_start[i]:]`` for
    ``i`` in ``i0:i1``."""
    for i in range(i0, i1):
        s, o = strings[i], out_start[i]
        n = decode_boundaries(chars, char_start[s], char_start[s + 1], out, o)
        prev = 0
        for j in range(o, o + n):
            cur = out[j]
            out[j] = cur - prev
            prev = cur
