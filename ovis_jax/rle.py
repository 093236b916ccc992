"""Run-length encoded masks: validated decoding of COCO RLE strings into run lengths, in bulk.

COCO's compressed RLE stores the run lengths of a column-major (Fortran order) mask, alternating
zero-runs and one-runs and starting with a zero-run, as a string of 6-bit characters (5 payload
bits and a continuation bit, the last character of a value carrying a sign bit), each value after
the third being stored as a difference to the value two places before it.

pycocotools does not validate these strings (a corrupt one can decode into more pixels than the
frame has), so every string is decoded and checked here, vectorised over all strings of a file,
before anything else touches it. The decoded run lengths (:class:`MaskTable`) are also what the
JAX backend computes intersections from.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from itertools import pairwise

import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    "MaskTable",
    "decode_compressed",
    "encode_dense",
    "parallel_map",
    "rle_problem",
]

# Error codes of decode_compressed, per string.
_OK, _BAD_CHAR, _TRUNCATED, _TOO_LONG, _NEGATIVE = range(5)
_PROBLEMS = {
    _BAD_CHAR: "compressed RLE has a character outside '0'..'o'",
    _TRUNCATED: "compressed RLE string ends in the middle of a value",
    _TOO_LONG: "compressed RLE has a value longer than 7 characters",
    _NEGATIVE: "compressed RLE decodes to a negative run length",
}

# Strings are decoded in chunks of about this many characters, to bound peak memory.
_CHUNK_CHARS = 1 << 22


def rle_problem(code: int) -> str:
    """Human-readable description of a :func:`decode_compressed` error code."""
    return _PROBLEMS[int(code)]


def _segment_sums(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sums of ``values[starts[i]:stops[i]]``, exact for integers, empty segments give 0."""
    csum = np.zeros(values.shape[0] + 1, dtype=np.int64)
    np.cumsum(values, out=csum[1:])
    return csum[stops] - csum[starts]


def _decode_chunk(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(strings)
    lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
    str_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=str_start[1:])
    total = int(str_start[-1])
    codes = np.zeros(n, dtype=np.int8)
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(n + 1, np.int64), codes
    c = np.frombuffer(b"".join(strings), dtype=np.uint8) - np.uint8(48)  # wraps below '0'
    bad_char = c > 63
    any_bad_char = bool(bad_char.any())
    if any_bad_char:
        c = np.where(bad_char, np.uint8(0), c)
    nonempty = lens > 0
    last = str_start[1:][nonempty] - 1
    end = (c & 0x20) == 0
    truncated = np.zeros(n, dtype=bool)
    truncated[nonempty] = ~end[last]
    end[last] = True  # a value never spans two strings
    end_idx = np.flatnonzero(end)
    start_idx = np.empty_like(end_idx)
    start_idx[0] = 0
    start_idx[1:] = end_idx[:-1] + 1
    vlen = end_idx - start_idx + 1
    # Values are at most 7 characters (35 bits); longer ones are flagged and truncated.
    x = (c[start_idx] & 0x1F).astype(np.int64)
    active = np.flatnonzero(vlen > 1)
    j = 1
    while active.size and j < 7:
        x[active] |= (c[start_idx[active] + j] & 0x1F).astype(np.int64) << (5 * j)
        active = active[vlen[active] > j + 1]
        j += 1
    sign = (c[end_idx] & 0x10) != 0
    x -= sign.astype(np.int64) << (5 * np.minimum(vlen, 7))
    # Values after the third of a string are stored as differences to the value two places
    # before: a cumulative sum along each parity chain, restarting at each string's first
    # three values.
    vstart = np.searchsorted(end_idx, str_start, side="left")
    nv = x.shape[0]
    reset = np.zeros(nv + 2, dtype=bool)
    heads = vstart[:-1][nonempty]
    reset[heads] = True
    reset[heads + 1] = True
    reset[heads + 2] = True
    counts = np.empty_like(x)
    for parity in (0, 1):
        chain = x[parity::2]
        restart = reset[parity:nv:2]
        csum = np.cumsum(chain)
        idx = np.arange(chain.shape[0])
        last_reset = np.maximum.accumulate(np.where(restart, idx, 0))
        counts[parity::2] = csum - csum[last_reset] + chain[last_reset]
    negative = counts < 0
    if negative.any():
        codes[_segment_sums(negative, vstart[:-1], vstart[1:]) > 0] = _NEGATIVE
    if (vlen > 7).any():
        codes[_segment_sums(vlen > 7, vstart[:-1], vstart[1:]) > 0] = _TOO_LONG
    codes[truncated] = _TRUNCATED
    if any_bad_char:
        codes[_segment_sums(bad_char, str_start[:-1], str_start[1:]) > 0] = _BAD_CHAR
    return counts, vstart, codes


def decode_compressed(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decodes many COCO compressed RLE strings into run lengths, validating each.

    Args:
        strings: the ``counts`` strings, as bytes.

    Returns:
        ``(counts, offsets, codes)``: int32 run lengths of all strings concatenated; int64
        ``offsets[n + 1]`` such that string ``i``'s runs are ``counts[offsets[i]:offsets[i+1]]``;
        int8 ``codes[n]``, 0 where the string is well formed, else an error code for
        :func:`rle_problem`. Whether the runs sum to the frame size is for the caller to check.
    """
    n = len(strings)
    bounds = [0]
    chars = 0
    for j, s in enumerate(strings):
        chars += len(s)
        if chars >= _CHUNK_CHARS:
            bounds.append(j + 1)
            chars = 0
    if bounds[-1] != n:
        bounds.append(n)
    # NumPy releases the GIL in its loops, so chunks decode in parallel threads.
    parts = parallel_map(lambda ij: _decode_int32(strings[ij[0] : ij[1]]), list(pairwise(bounds)))
    offsets = np.zeros(n + 1, dtype=np.int64)
    codes = np.zeros(n, dtype=np.int8)
    for (i, j), (_, vstart, chunk_codes) in zip(pairwise(bounds), parts, strict=True):
        offsets[i + 1 : j + 1] = offsets[i] + vstart[1:]
        codes[i:j] = chunk_codes
    counts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    return counts, offsets, codes


def _decode_int32(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts, vstart, codes = _decode_chunk(strings)
    huge = counts > np.iinfo(np.int32).max
    if huge.any():  # no frame has that many pixels; keeps the int32 storage exact
        owner = np.repeat(np.arange(len(strings)), np.diff(vstart))
        codes[np.unique(owner[huge])] = _TOO_LONG
        counts = np.where(huge, 0, counts)
    return counts.astype(np.int32), vstart, codes


def parallel_map(fn, items: list) -> list:
    """``[fn(x) for x in items]`` on a thread per core (for NumPy-heavy, GIL-releasing work)."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(x) for x in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def encode_dense(mask: np.ndarray) -> dict:
    """Compressed RLE (``counts`` as ``str``) of an H×W mask; nonzero pixels are foreground."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


@dataclasses.dataclass(frozen=True, eq=False)
class MaskTable:
    """The frames of a set of tracks as run lengths, flat (host-side, NumPy).

    Frames are numbered track by track: track ``i`` owns frames
    ``frame_start[i] : frame_start[i + 1]``, one per frame of its video.

    Attributes:
        counts: int32 run lengths of all present frames, concatenated; each frame's runs
            alternate zero-runs and one-runs, starting with a zero-run, column-major.
        run_start: int64[frames + 1] offsets of each frame's runs in ``counts`` (empty when the
            frame is null).
        present: bool[frames], False where the frame is null.
        area: int64[frames] pixel count of each frame's mask (0 when null).
        frame_start: int64[tracks + 1] first frame of each track.
        height: int64[tracks] frame height of each track's video.
    """

    counts: np.ndarray
    run_start: np.ndarray
    present: np.ndarray
    area: np.ndarray
    frame_start: np.ndarray
    height: np.ndarray

    @property
    def num_tracks(self) -> int:
        return int(self.frame_start.shape[0] - 1)

    def track_areas(self) -> np.ndarray:
        """int64[tracks] total pixel count of each track over its frames."""
        return _segment_sums(self.area, self.frame_start[:-1], self.frame_start[1:])
