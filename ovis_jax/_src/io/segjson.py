"""The fast path of loading: a track's ``segmentations`` read straight from the file's bytes.

``msgspec`` parses each result / annotation with its ``segmentations`` left as a raw JSON slice
of the input (zero copy). A compiled kernel then walks those slices for the common form (every
entry ``null`` or ``{"size": [h, w], "counts": "<compressed RLE>"}``) and copies the counts
characters straight into the one byte buffer of :class:`~MaskTable`: no Python
object per frame. Anything else (polygons, uncompressed counts, other keys, escapes other than
``\\\\``, numbers that are not plain integers) makes the kernel stop with a status, and loading
falls back to the general path, which accepts every form and names every error.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np

from ovis_jax._src.backends.cpu.startup import prepare_numba
from ovis_jax._src.parallel import run_chunks

__all__ = ["read_segmentations"]

prepare_numba()  # before the decorators: the cache is optional (see startup.py)
_jit = numba.njit(cache=True, nogil=True, boundscheck=False)

_QUOTE, _BACKSLASH = 34, 92


@_jit
def _ws(b, p, end):
    while p < end and (b[p] == 32 or b[p] == 9 or b[p] == 10 or b[p] == 13):
        p += 1
    return p


@_jit
def _uint(b, p, end):
    """A plain non-negative JSON integer at ``p``: ``(value, next p)``, or ``(-1, p)``."""
    v = np.int64(0)
    q = p
    while q < end and 48 <= b[q] <= 57 and q - p < 12:
        v = v * 10 + (b[q] - 48)
        q += 1
    if q == p or (q < end and (b[q] == 46 or b[q] == 101 or b[q] == 69 or 48 <= b[q] <= 57)):
        return np.int64(-1), p
    return v, q


@_jit
def _key(b, p, end):
    """The key at ``p`` (a quoted string): 1 for "size", 2 for "counts", 0 otherwise."""
    if p >= end or b[p] != _QUOTE:
        return 0, p
    if p + 6 <= end and b[p + 5] == _QUOTE and b[p + 1] == 115 and b[p + 2] == 105:
        if b[p + 3] == 122 and b[p + 4] == 101:  # "size"
            return 1, p + 6
    if p + 8 <= end and b[p + 7] == _QUOTE and b[p + 1] == 99 and b[p + 2] == 111:
        if b[p + 3] == 117 and b[p + 4] == 110 and b[p + 5] == 116 and b[p + 6] == 115:
            return 2, p + 8  # "counts"
    return 0, p


@_jit
def _size(b, p, end):
    """``[h, w]`` at ``p``: ``(h, w, next p)``; h = -1 when it is not two plain integers."""
    if p >= end or b[p] != 91:
        return np.int64(-1), np.int64(-1), p
    h, p = _uint(b, _ws(b, p + 1, end), end)
    p = _ws(b, p, end)
    if h < 0 or p >= end or b[p] != 44:
        return np.int64(-1), np.int64(-1), p
    w, p = _uint(b, _ws(b, p + 1, end), end)
    p = _ws(b, p, end)
    if w < 0 or p >= end or b[p] != 93:
        return np.int64(-1), np.int64(-1), p
    return h, w, p + 1


@_jit
def _counts(b, p, end, out, o, write):
    """The string at ``p`` (after its opening quote) copied to ``out[o:]`` with ``\\\\``
    unescaped: ``(characters, next p)``, characters = -1 on any other escape."""
    n = 0
    while p < end and b[p] != _QUOTE:
        c = b[p]
        if c == _BACKSLASH:
            if p + 1 >= end or b[p + 1] != _BACKSLASH:
                return -1, p
            p += 1
        if write:
            out[o + n] = c
        n += 1
        p += 1
    return n, p + 1


@_jit
def _object(b, p, end, out, o, write):
    """One ``{"size": ..., "counts": ...}`` at ``p`` (after ``{``):
    ``(ok, h, w, characters, next p)``."""
    h = w = np.int64(-1)
    n = -1
    for _ in range(2):
        p = _ws(b, p, end)
        key, p = _key(b, p, end)
        p = _ws(b, p, end)
        if key == 0 or p >= end or b[p] != 58:
            return False, h, w, n, p
        p = _ws(b, p + 1, end)
        if key == 1 and h < 0:
            h, w, p = _size(b, p, end)
            if h < 0:
                return False, h, w, n, p
        elif key == 2 and n < 0 and p < end and b[p] == _QUOTE:
            n, p = _counts(b, p + 1, end, out, o, write)
            if n < 0:
                return False, h, w, n, p
        else:
            return False, h, w, n, p
        p = _ws(b, p, end)
        if p < end and b[p] == 44:
            p += 1
    ok = p < end and b[p] == 125 and h >= 0 and n >= 0
    return ok, h, w, n, p + 1


@_jit
def _track(b, p, end, out, o, write, fs, f, hw, cs, s):
    """One track's segmentation list ``b[p:end]``: ``(ok, frames, strings, characters)``;
    when ``write``, fills ``out`` (characters), ``fs`` (frame → string), ``hw`` (each
    string's size) and ``cs`` (each string's first character)."""
    frames = strings = chars = 0
    p = _ws(b, p, end)
    if p >= end or b[p] != 91:
        return False, frames, strings, chars
    p = _ws(b, p + 1, end)
    if p < end and b[p] == 93:
        return True, frames, strings, chars
    while p < end:
        if p + 4 <= end and b[p] == 110 and b[p + 1] == 117 and b[p + 3] == 108:
            if write:
                fs[f + frames] = -1
            p += 4
        elif b[p] == 123:
            ok, h, w, n, p = _object(b, p + 1, end, out, o + chars, write)
            if not ok:
                return False, frames, strings, chars
            if write:
                fs[f + frames] = s + strings
                hw[s + strings, 0] = h
                hw[s + strings, 1] = w
                cs[s + strings] = o + chars
            strings += 1
            chars += n
        else:
            return False, frames, strings, chars
        frames += 1
        p = _ws(b, p, end)
        if p < end and b[p] == 44:
            p = _ws(b, p + 1, end)
        elif p < end and b[p] == 93:
            return True, frames, strings, chars
        else:
            return False, frames, strings, chars
    return False, frames, strings, chars


@_jit
def _walk_all(b, starts, ends, t0, t1, write, counts, frame0, string0, char0, out, fs, hw, cs):
    """Tracks ``t0:t1``: without ``write``, counts each track's frames, strings and characters
    into ``counts[t]`` (``counts[t, 0] = -1`` for a track not in the common form); with it,
    fills the outputs at the offsets ``frame0``, ``string0``, ``char0`` (see :func:`_track`).
    One kernel for both passes: one compilation."""
    for t in range(t0, t1):
        ok, nf, ns, nc = _track(
            b, starts[t], ends[t], out, char0[t], write, fs, frame0[t], hw, cs, string0[t]
        )
        if not write:
            counts[t, 0] = nf if ok else -1
            counts[t, 1] = ns
            counts[t, 2] = nc


def _offsets(x: np.ndarray) -> np.ndarray:
    out = np.zeros(x.shape[0] + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out


def _move(b: np.ndarray, dst: int, src: int, n: int) -> None:
    """``b[dst:dst + n] = b[src:src + n]`` for ``dst <= src`` (overlap allowed): C's
    ``memmove``, in place (NumPy would copy an overlapping source first)."""
    if n > 0:
        assert 0 <= dst <= src and src + n <= b.shape[0] and b.flags.c_contiguous
        ctypes.memmove(b.ctypes.data + dst, b.ctypes.data + src, n)


def _in_order(starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether the slices follow each other in the buffer without overlapping (file order)."""
    return bool(np.all(starts[1:] >= ends[:-1])) if starts.shape[0] > 1 else True


def _write_in_place(buf, starts, ends, cost, counts, offsets, outputs) -> np.ndarray:
    """The second pass writing the characters into ``buf`` itself: ``buf[:C]``.

    A string's characters lie in the buffer at or after the position they are copied to, so
    each chunk of tracks first packs its characters at the start of its own slices (reading
    ahead of writing, chunks independent: threads), then the packed chunks move down to their
    final offsets one after the other. No second buffer as large as the strings is needed.
    """
    frame_start, string0, char0 = offsets
    frame_string, size, char_start = outputs
    packed: list[tuple[int, int, int]] = []

    def pack(t0: int, t1: int) -> None:
        shift = int(starts[t0] - char0[t0])  # >= 0: the characters before came from before
        _walk_all(buf, starts, ends, t0, t1, True, counts, frame_start, string0, char0 + shift,
                  buf, frame_string, size, char_start)  # fmt: skip
        char_start[string0[t0] : string0[t1]] -= shift
        packed.append((int(char0[t0]), shift, int(char0[t1] - char0[t0])))

    run_chunks(pack, starts.shape[0], cost=cost, min_cost=1 << 20)
    for dst, shift, n in sorted(packed):
        if shift:
            _move(buf, dst, dst + shift, n)
    return buf[: int(char0[-1])]


def read_segmentations(
    raw: bytes | bytearray, slices: list, *, in_place: bool = False
) -> dict[str, np.ndarray] | None:
    """Reads every track's raw ``segmentations`` slice in the common form.

    Args:
        raw: the whole file's bytes.
        slices: per track, the ``msgspec.Raw`` of its ``segmentations`` (a view into ``raw``).
        in_place: ``raw`` is a ``bytearray`` the caller gives up: the characters are written
            into it (``chars`` is a view of its start), so that the strings never exist twice;
            ``raw`` and ``slices`` hold other bytes afterwards. Untouched when None is
            returned.

    Returns:
        ``None`` if some track is not in the common form (the caller takes the general path),
        else the arrays ``chars`` (uint8[C]), ``char_start`` (int64[S + 1]),
        ``frame_string`` (int64[F], -1 for null), ``frame_start`` (int64[X + 1]) and
        ``size`` (int64[S, 2], each string's ``[h, w]``).
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    base = buf.ctypes.data
    # The first pass never writes; it reads the buffer as the second pass will (writable when
    # the caller's buffer is), so that one compiled specialisation serves both passes.
    source = buf
    if not buf.flags.writeable:
        source = buf.view()
        source.flags.writeable = False
    n = len(slices)
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    for i, r in enumerate(slices):
        view = np.frombuffer(r, dtype=np.uint8)
        starts[i] = view.ctypes.data - base if view.size else 0
        ends[i] = starts[i] + view.size
    if n and (starts.min() < 0 or ends.max() > buf.size):
        return None  # not views into raw (should not happen): take the general path
    counts = np.zeros((n, 3), dtype=np.int64)
    cost = ends - starts
    zeros = np.zeros(n, dtype=np.int64)
    none_u8, none_i = np.empty(0, np.uint8), np.empty(0, np.int64)
    none_hw = np.empty((0, 2), np.int64)
    run_chunks(
        lambda t0, t1: _walk_all(source, starts, ends, t0, t1, False, counts, zeros, zeros,
                                 zeros, none_u8, none_i, none_hw, none_i),
        n, cost=cost, min_cost=1 << 20,
    )  # fmt: skip
    if n and counts[:, 0].min() < 0:
        return None
    frame_start, string0, char0 = (_offsets(counts[:, i]) for i in range(3))
    frame_string = np.empty(int(frame_start[-1]), dtype=np.int64)
    size = np.empty((int(string0[-1]), 2), dtype=np.int64)
    char_start = np.empty(int(string0[-1]) + 1, dtype=np.int64)
    char_start[-1] = char0[-1]
    if in_place and n and buf.flags.writeable and _in_order(starts, ends):
        offsets, outputs = (frame_start, string0, char0), (frame_string, size, char_start)
        chars = _write_in_place(buf, starts, ends, cost, counts, offsets, outputs)
        return _arrays(chars, char_start, frame_string, frame_start, size)
    chars = np.empty(int(char0[-1]), dtype=np.uint8)
    run_chunks(
        lambda t0, t1: _walk_all(source, starts, ends, t0, t1, True, counts, frame_start,
                                 string0, char0, chars, frame_string, size, char_start),
        n, cost=cost, min_cost=1 << 20,
    )  # fmt: skip
    return _arrays(chars, char_start, frame_string, frame_start, size)


def _arrays(chars, char_start, frame_string, frame_start, size) -> dict[str, np.ndarray]:
    return {
        "chars": chars,
        "char_start": char_start,
        "frame_string": frame_string,
        "frame_start": frame_start,
        "size": size,
    }
