"""Mask intersections on the accelerator, straight from COCO compressed RLE bytes.

The host hands over the raw ``counts`` strings of all result and ground-truth frames (two
concatenated byte buffers with offsets) and a list of *pair-frames*: (result string, ground-truth
string, track pair). The pair-frames are processed in chunks (below); for each, the host gathers
just the strings the chunk references into a compact buffer and the device decodes and
intersects them, in int64 under a scoped ``jax.enable_x64(True)``; only per-pair sums come back.

**Decoding** (:func:`_prepare`: one jitted call on a chunk's buffer; no loop over strings). A
compressed RLE string is a sequence of values, each 1..7 characters ``c - 48`` holding 5 payload
bits (least significant first) and a "more follows" bit 0x20; the last character of a value
carries the sign in bit 0x10. The strings were validated on the host
(:func:`ovis_jax._src.masks.scan.scan_strings`), which accepts only values that pycocotools'
32-bit decoder reads the same, so the int64 arithmetic here gives the official runs. Over the
whole buffer at once:

1. a character ends a value iff its bit 0x20 is clear; an exclusive cumsum of these flags gives
   each character its value index, and a running maximum (``lax.cummax``) of the value starts its
   position ``j`` inside the value;
2. each character contributes ``payload << 5j`` (minus ``1 << 5(j+1)`` for a set sign bit on the
   last character), and a sorted ``segment_sum`` over the value index assembles the values;
3. values after the third of a string are differences to the value two places before. With
   ``cum`` the cumulative sum along each parity chain (a cumsum over the ``(Y/2, 2)`` reshape of
   the Y values), run length ``v`` is ``cum[v] - cum[r - 2]`` where ``r`` is the first value of
   ``v``'s chain inside its string (``k <= 2``, ``k`` the value's index in its string; ``r = v``
   when ``k <= 2``). Integer wrap-around of ``cum`` cancels in the difference, so this is exact.

Runs alternate background / foreground starting with background: run ``k`` is foreground iff
``k`` is odd.

**Intersections** (:func:`_intersect_chunk`). The runs of the chunk's strings are laid end to end on
one global pixel axis (string after string), with inclusive cumsums ``end`` (end of each run) and
``fg_end`` (foreground pixels up to the end of each run). The foreground pixels before a global
position ``x`` are ``fg_before(x) = fg_end[i] - [fg i] (end[i] - x)`` with ``i`` the first run
whose end exceeds ``x`` (one ``searchsorted`` into ``end``), ``fg_end[-1]`` past the last run.
For a pair-frame with query string ``q`` and base string ``b`` (same frame size), each foreground
run ``[s, e)`` of ``q``, shifted to ``b``'s place on the axis, meets ``b`` in
``fg_before(e') - fg_before(s')`` pixels. Sums over the query runs of a pair-frame, then over the
pair-frames of a pair (``segment_sum``), give the intersections.

**Chunks** (:func:`_chunk_bounds`). The host only knows the strings' character counts, an upper
bound on their numbers of values: a pair-frame gets ``chars // 2`` query slots (>= its foreground
runs; exactly its foreground runs when the caller passes the strings' numbers of values, as
the JAX backend does) on the side with fewer characters (none for an empty query mask: such
pair-frames are dropped). Consecutive pair-frames form a chunk while it needs at
most ``_CHUNK_SLOTS`` slots and its distinct strings (each counted once, however many of its
pair-frames use it) hold at most ``_CHUNK_CHARS`` characters; a single pair-frame over a bound gets
a chunk of its own. So device memory is bounded whatever the data size: a few int64 per padded
character and per padded slot of one chunk (two chunks are resident at once: the host prepares the
next while the device runs the current one). A string used by several chunks is decoded by each.
Every array is padded to a power-of-4 bucket so that chunks of similar size reuse the compiled
kernels (most chunks are full, so they share one); pairs are renumbered within each chunk.

Shapes use the legend of :mod:`ovis_jax._src.legend` (S strings, C characters, Y stored values,
U runs, J pair-frames, P pairs).

Meant for a GPU: on a CPU, XLA's cumulative sums and binary searches are ~15× slower than NumPy's,
and the host path of :mod:`ovis_jax._src.backends.jax.iou` is the faster choice there.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ovis_jax._src.backends.grouping import bucket

__all__ = ["device_pair_intersections"]

_MIN_BUCKET = 1 << 12
# Per chunk of pair-frames (one device call), at most this many characters of the strings it
# references and this many query slots: together they bound device memory, whatever the data.
_CHUNK_CHARS = 1 << 22
_CHUNK_SLOTS = 1 << 22
_MIN_WINDOW = 1 << 10  # pair-frames first looked at by the chunker (then doubled as needed)
_ZERO_CHAR = 48  # b"0": a one-character value 0, used as padding


def _bucket(n: int) -> int:
    """The padded size of ``n`` elements (see :func:`ovis_jax._src.backends.grouping.bucket`)."""
    return bucket(n, _MIN_BUCKET)


class _RunTable(NamedTuple):
    """Runs of the strings of one chunk on one global pixel axis (device arrays).

    Attributes:
        end: int64[U] global position one past each run (inclusive cumsum of run lengths).
        length: int64[U] run lengths (0 for padding).
        fg_end: int64[U] foreground pixels up to the end of each run (inclusive cumsum).
        fg: bool[U] whether each run is foreground.
        vstart: int64[S + 1] first run of each string (result strings, then ground truth).
        origin: int64[S] global position of each string's first pixel.
    """

    end: jax.Array
    length: jax.Array
    fg_end: jax.Array
    fg: jax.Array
    vstart: jax.Array
    origin: jax.Array


def _value_payloads(c: jax.Array, value_end: jax.Array, vid: jax.Array) -> jax.Array:
    """Signed values from 6-bit characters.

    Args:
        c: int64[C] characters minus 48.
        value_end: bool[C] whether each character is the last of its value.
        vid: int64[C] value index of each character (non-decreasing).

    Returns:
        int64[C] the value of each value index (0 past the last value).
    """
    n = c.shape[0]
    pos = jnp.arange(n, dtype=jnp.int64)
    first = jnp.concatenate([jnp.ones(1, dtype=bool), value_end[:-1]])
    shift = 5 * (pos - jax.lax.cummax(jnp.where(first, pos, 0)))
    contrib = (c & 0x1F) << shift
    negative = value_end & ((c & 0x10) != 0)
    contrib = contrib - jnp.where(negative, jnp.int64(1) << (shift + 5), 0)
    return jax.ops.segment_sum(contrib, vid, num_segments=n, indices_are_sorted=True)


def _undelta(x: jax.Array, vstart: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Undoes the "difference to the value two places before" of values after the third.

    Args:
        x: int64[Y] stored values of all strings (Y even).
        vstart: int64[S + 1] first value of each string.

    Returns:
        ``(counts, k)``: int64[Y] run lengths and int64[Y] index of each value in its string.
    """
    n = x.shape[0]
    v = jnp.arange(n, dtype=jnp.int64)
    heads = vstart[:-1]
    head = jax.lax.cummax(jnp.zeros(n, jnp.int64).at[heads].max(heads, mode="drop"))
    k = v - head
    chain = jnp.cumsum(x.reshape(-1, 2), axis=0).reshape(-1)  # P[v] = x[v] + P[v - 2]
    first = jnp.where(k <= 2, v, head + 2 - k % 2)  # first value of v's chain in its string
    before = jnp.where(first >= 2, chain[jnp.maximum(first - 2, 0)], 0)
    return chain - before, k


@jax.jit
def _prepare(chars: jax.Array, char_start: jax.Array) -> _RunTable:
    """Decodes a padded buffer of compressed RLE strings into runs on one global pixel axis.

    Args:
        chars: uint8[C] the strings concatenated, padded with ``b"0"`` (C even).
        char_start: int64[S + 1] string offsets, padded with the real number of characters.

    Returns:
        The :class:`_RunTable` (runs past the last real one, from the padding, have length 0).
    """
    c = chars.astype(jnp.int64) - _ZERO_CHAR
    value_end = (c & 0x20) == 0
    ends = jnp.cumsum(value_end, dtype=jnp.int64)
    vid = ends - value_end
    vstart = jnp.concatenate([jnp.zeros(1, jnp.int64), ends])[char_start]
    length, k = _undelta(_value_payloads(c, value_end, vid), vstart)
    fg = k % 2 == 1
    end = jnp.cumsum(length)
    fg_end = jnp.cumsum(jnp.where(fg, length, 0))
    origin = jnp.concatenate([jnp.zeros(1, jnp.int64), end])[vstart[:-1]]
    return _RunTable(end, length, fg_end, fg, vstart, origin)


def _coverage(table: _RunTable, x: jax.Array) -> jax.Array:
    """int64 foreground pixels before each global position ``x`` (shape of ``x``)."""
    n = table.end.shape[0]
    i = jnp.searchsorted(table.end, x, side="right")
    ic = jnp.minimum(i, n - 1)
    partial = table.fg_end[ic] - jnp.where(table.fg[ic], table.end[ic] - x, 0)
    return jnp.where(i < n, partial, table.fg_end[n - 1])


@functools.partial(jax.jit, static_argnames=("num_slots", "num_pairs"))
def _intersect_chunk(
    table: _RunTable,
    pf_q: jax.Array,
    pf_b: jax.Array,
    pf_pair: jax.Array,
    slot_start: jax.Array,
    *,
    num_slots: int,
    num_pairs: int,
) -> jax.Array:
    """Intersections of one chunk of pair-frames, summed per pair.

    Args:
        table: the runs of the chunk's strings.
        pf_q, pf_b: int64[J] query and base string (index into ``table.vstart``).
        pf_pair: int64[J] pair of each pair-frame, non-decreasing (``num_pairs`` for padding).
        slot_start: int64[J + 1] first query slot of each pair-frame (slot ``j`` of a
            pair-frame is the query string's run ``2j + 1``, its ``j``-th foreground run).
        num_slots: padded number of slots (static).
        num_pairs: padded number of pairs (static).

    Returns:
        int64[num_pairs] intersections of this chunk.
    """
    slot = jnp.arange(num_slots, dtype=jnp.int64)
    pf = jnp.searchsorted(slot_start, slot, side="right") - 1
    pf = jnp.clip(pf, 0, pf_q.shape[0] - 1)
    q, b = pf_q[pf], pf_b[pf]
    run = table.vstart[q] + 2 * (slot - slot_start[pf]) + 1
    valid = (slot < slot_start[-1]) & (run < table.vstart[q + 1])
    run = jnp.where(valid, run, 0)
    e = table.end[run] + (table.origin[b] - table.origin[q])
    s = e - table.length[run]
    contrib = jnp.where(valid, _coverage(table, e) - _coverage(table, s), 0)
    sums = jax.ops.segment_sum(
        contrib, pf_pair[pf], num_segments=num_pairs + 1, indices_are_sorted=True
    )
    return sums[:num_pairs]


def _pad(x: np.ndarray, size: int, fill: int, dtype=np.int64) -> np.ndarray:
    """Copy of ``x`` as ``dtype``, padded with ``fill`` to ``size``."""
    out = np.full(size, fill, dtype=dtype)
    out[: x.shape[0]] = x
    return out


def _ragged_gather(chars: np.ndarray, start: np.ndarray, length: np.ndarray, out: np.ndarray):
    """Writes ``chars[start[k]:start[k] + length[k]]`` for all ``k``, end to end, to ``out``.

    No loop: the source index of every output character is a cumsum of ones with a jump at
    each string's first character (one int64 per character).
    """
    keep = length > 0
    start, length = start[keep], length[keep]
    total = int(length.sum())
    if total == 0:
        return
    idx = np.ones(total, dtype=np.int64)
    idx[0] = start[0]
    idx[np.cumsum(length[:-1])] = start[1:] - (start[:-1] + length[:-1] - 1)
    np.cumsum(idx, out=idx)
    out[:total] = chars[idx]


def _query_sides(
    d_char_start: np.ndarray,
    g_char_start: np.ndarray,
    pf_d: np.ndarray,
    pf_g: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pair-frame: query string, base string (indices into the combined string list) and
    their numbers of characters; the query is the side with fewer characters."""
    g_offset = d_char_start.shape[0] - 1  # ground-truth strings follow the result strings
    d_len = (d_char_start[1:] - d_char_start[:-1])[pf_d]
    g_len = (g_char_start[1:] - g_char_start[:-1])[pf_g]
    d_query = d_len <= g_len
    g_index = pf_g + g_offset
    pf_q = np.where(d_query, pf_d, g_index)
    pf_b = np.where(d_query, g_index, pf_d)
    return pf_q, pf_b, np.where(d_query, d_len, g_len), np.where(d_query, g_len, d_len)


def _previous_use(pf_q: np.ndarray, pf_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair-frame, the last earlier pair-frame that references its query (resp. base)
    string, on either side; -1 for none."""
    ids = np.stack([pf_q, pf_b], axis=1).reshape(-1)  # reference r is of pair-frame r // 2
    order = np.argsort(ids, kind="stable")  # by string, then by pair-frame
    repeat = np.zeros(ids.shape[0], dtype=bool)
    repeat[1:] = ids[order[1:]] == ids[order[:-1]]
    prev = np.empty(ids.shape[0], dtype=np.int64)
    prev[order] = np.where(repeat, np.concatenate([[-1], order[:-1] // 2]), -1)
    return prev[0::2], prev[1::2]


def _chunk_bounds(
    slots: np.ndarray, q_len: np.ndarray, b_len: np.ndarray, pf_q: np.ndarray, pf_b: np.ndarray
) -> list[int]:
    """Boundaries of consecutive pair-frame chunks, each needing at most ``_CHUNK_SLOTS`` query
    slots and referencing at most ``_CHUNK_CHARS`` characters (a string counted once per chunk);
    a single pair-frame over either bound gets a chunk of its own.

    The characters of a chunk ``[c0, c1)`` are those of its string references whose previous use
    is before ``c0`` (the first use within the chunk): a cumsum and a binary search over a window
    of pair-frames from ``c0``, grown by doubling, so that each chunk costs O(its length) here.
    """
    prev_q, prev_b = _previous_use(pf_q, pf_b)
    slot_csum = np.cumsum(slots)
    window = _MIN_WINDOW
    bounds = [0]
    while bounds[-1] < slots.shape[0]:
        c0 = bounds[-1]
        base = int(slot_csum[c0 - 1]) if c0 else 0
        stop = int(np.searchsorted(slot_csum, base + _CHUNK_SLOTS, side="right"))
        while True:
            w1 = min(stop, c0 + window)
            new = np.where(prev_q[c0:w1] < c0, q_len[c0:w1], 0)
            new += np.where(prev_b[c0:w1] < c0, b_len[c0:w1], 0)
            n = int(np.searchsorted(np.cumsum(new), _CHUNK_CHARS, side="right"))
            if n < w1 - c0 or w1 == stop:
                break
            window *= 2
        window = max(_MIN_WINDOW, 2 * n)
        bounds.append(max(c0 + n, c0 + 1))
    return bounds


class _Strings(NamedTuple):
    """The strings of both sides on the host; string ``s >= S_d`` is ground-truth ``s - S_d``."""

    d_chars: np.ndarray
    d_start: np.ndarray
    g_chars: np.ndarray
    g_start: np.ndarray


def _chunk_buffer(strings: _Strings, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The padded character buffer and string offsets of the sorted distinct strings ``ids``
    (the input of :func:`_prepare`)."""
    n_d = strings.d_start.shape[0] - 1
    split = int(np.searchsorted(ids, n_d))
    d_ids, g_ids = ids[:split], ids[split:] - n_d
    d_len = strings.d_start[d_ids + 1] - strings.d_start[d_ids]
    g_len = strings.g_start[g_ids + 1] - strings.g_start[g_ids]
    start = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.concatenate([d_len, g_len]), out=start[1:])
    total, n_d_chars = int(start[-1]), int(start[split])
    chars = np.full(_bucket(total), _ZERO_CHAR, dtype=np.uint8)
    _ragged_gather(strings.d_chars, strings.d_start[d_ids], d_len, chars)
    _ragged_gather(strings.g_chars, strings.g_start[g_ids], g_len, chars[n_d_chars:])
    return chars, _pad(start, _bucket(start.shape[0]), total)


def _dispatch_chunk(
    strings: _Strings, pf_q: np.ndarray, pf_b: np.ndarray, pf_pair: np.ndarray, slots: np.ndarray
) -> tuple[np.ndarray, jax.Array]:
    """Starts one chunk on the device: decodes just the strings it references, intersects.

    Returns:
        ``(pairs, sums)``: the distinct pairs of the chunk and (on the device, not awaited)
        their intersections, padded.
    """
    ids, inverse = np.unique(np.concatenate([pf_q, pf_b]), return_inverse=True)
    inverse = inverse.reshape(-1)
    n = pf_q.shape[0]
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = pf_pair[1:] != pf_pair[:-1]
    pairs = pf_pair[new_pair]
    local_pair = np.cumsum(new_pair) - 1
    pairs_pad = _bucket(pairs.shape[0])
    pf_size = _bucket(n + 1)
    slot_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(slots, out=slot_start[1:])
    chars, char_start = _chunk_buffer(strings, ids)
    table = _prepare(jax.device_put(chars), jax.device_put(char_start))
    sums = _intersect_chunk(
        table,
        jax.device_put(_pad(inverse[:n], pf_size, 0)),
        jax.device_put(_pad(inverse[n:], pf_size, 0)),
        jax.device_put(_pad(local_pair, pf_size, pairs_pad)),
        jax.device_put(_pad(slot_start, pf_size + 1, int(slot_start[-1]))),
        num_slots=_bucket(int(slot_start[-1])),
        num_pairs=pairs_pad,
    )
    return pairs, sums


def device_pair_intersections(
    d_chars: np.ndarray,
    d_char_start: np.ndarray,
    g_chars: np.ndarray,
    g_char_start: np.ndarray,
    pf_d: np.ndarray,
    pf_g: np.ndarray,
    pf_pair: np.ndarray,
    num_pairs: int,
    *,
    d_values: np.ndarray | None = None,
    g_values: np.ndarray | None = None,
) -> np.ndarray:
    """Exact per-pair mask intersections, decoded and computed on JAX's default device.

    Args:
        d_chars: uint8[Cd] all result strings (COCO compressed RLE ``counts``) concatenated.
        d_char_start: int64[Sd + 1] string ``s`` is ``d_chars[d_char_start[s]:d_char_start[s+1]]``.
        g_chars: uint8[Cg] all ground-truth strings concatenated.
        g_char_start: int64[Sg + 1] offsets of the ground-truth strings.
        pf_d: int64[J] result string of each pair-frame.
        pf_g: int64[J] ground-truth string of each pair-frame (same frame size as ``pf_d``'s).
        pf_pair: int64[J] pair of each pair-frame, in ``[0, num_pairs)``, non-decreasing.
        num_pairs: number of pairs.
        d_values, g_values: optional int64[Sd] / int64[Sg] numbers of run lengths of each
            string (known from validation); with them each pair-frame gets exactly as many
            query slots as its query mask has foreground runs, instead of the bound
            ``characters // 2``.

    Returns:
        int64[num_pairs]: per pair, the sum over its pair-frames of the number of pixels that
        are foreground in both masks. Strings must be valid (checked by the host beforehand).
    """
    num_pairs = int(num_pairs)
    total = np.zeros(num_pairs, dtype=np.int64)
    pf_pair = np.asarray(pf_pair, dtype=np.int64)
    if num_pairs == 0 or pf_pair.shape[0] == 0:
        return total
    strings = _Strings(
        np.asarray(d_chars, dtype=np.uint8),
        np.asarray(d_char_start, dtype=np.int64),
        np.asarray(g_chars, dtype=np.uint8),
        np.asarray(g_char_start, dtype=np.int64),
    )
    pf_q, pf_b, q_len, b_len = _query_sides(
        strings.d_start, strings.g_start, np.asarray(pf_d, np.int64), np.asarray(pf_g, np.int64)
    )
    # A string of n characters has at most n values, of which at most n // 2 are foreground:
    # query slots. A pair-frame without any (an empty query mask) meets nothing.
    if d_values is not None and g_values is not None:
        values = np.concatenate([np.asarray(d_values, np.int64), np.asarray(g_values, np.int64)])
        slots = values[pf_q] // 2
    else:
        slots = q_len // 2
    keep = np.flatnonzero(slots >= 1)
    if keep.shape[0] == 0:
        return total
    pf_q, pf_b, pf_pair = pf_q[keep], pf_b[keep], pf_pair[keep]
    q_len, b_len, slots = q_len[keep], b_len[keep], slots[keep]
    bounds = _chunk_bounds(slots, q_len, b_len, pf_q, pf_b)
    pending = None
    with jax.enable_x64(True):
        for c0, c1 in itertools.pairwise(bounds):
            chunk = _dispatch_chunk(strings, pf_q[c0:c1], pf_b[c0:c1], pf_pair[c0:c1], slots[c0:c1])
            if pending is not None:  # the host prepared this chunk while that one ran
                pairs, sums = pending
                total[pairs] += np.asarray(jax.device_get(sums))[: pairs.shape[0]]
            pending = chunk
        pairs, sums = pending
        total[pairs] += np.asarray(jax.device_get(sums))[: pairs.shape[0]]
    return total
