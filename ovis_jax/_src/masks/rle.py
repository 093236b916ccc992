"""Run-length encoded masks: one compact form from the file's bytes to the intersections.

COCO's compressed RLE stores the run lengths of a column-major (Fortran order) mask, alternating
zero-runs and one-runs and starting with a zero-run, as a string of 6-bit characters (5 payload
bits and a continuation bit, the last character of a value carrying a sign bit), each value after
the third being stored as a difference to the value two places before.

All strings of a file are kept as they came, concatenated into one byte buffer with offsets
(:class:`MaskTable`). One compiled pass (:func:`~scan_strings`) decodes and
validates every string (pycocotools does not: a corrupt string can decode into more pixels than
the frame has) and records each mask's area and foreground span; the intersection kernels decode
the strings again, group by group, straight into run boundaries. Run lengths are only
materialised for the consumers that want them (the streaming evaluator, the device kernels).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import numpy as np

from ovis_jax._src.errors import FormatError
from ovis_jax._src.parallel import run_chunks

__all__ = [
    "MaskTable",
    "encode_dense",
    "mask_table",
    "rle_problem",
]

# Texts of the problem codes of ovis_jax._src.masks.scan.scan_strings (1..6).
_PROBLEMS = {
    1: "compressed RLE has a character outside '0'..'o'",
    2: "compressed RLE string ends in the middle of a value",
    3: "compressed RLE has a value longer than 7 characters",
    4: "compressed RLE decodes to a negative run length",
    5: (
        "compressed RLE has a 7-character value that overflows pycocotools' 32-bit decoding "
        "(the official evaluator would read another mask)"
    ),
    6: "compressed RLE decodes to a run length above 2^31 - 1",
    7: (
        "RLE has a zero-length run between two others (pycocotools' merge, which the official "
        "evaluator uses, can stop early at such a run and miscount the mask; re-encode the mask)"
    ),
}


def rle_problem(code: int) -> str:
    """Human-readable description of a decoder problem code."""
    return _PROBLEMS[int(code)]


def encode_dense(mask: np.ndarray) -> dict:
    """Compressed RLE (``counts`` as ``str``) of an H×W mask; nonzero pixels are foreground."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


@dataclasses.dataclass(frozen=True, eq=False)
class MaskTable:
    """The frames of a set of tracks as validated compressed RLE strings (host-side, NumPy).

    Frames are numbered track by track: track ``i`` owns frames
    ``frame_start[i] : frame_start[i + 1]``, one per frame of its video. S strings, one per
    non-null frame, in frame order.

    Attributes:
        chars: uint8[C] all strings concatenated.
        char_start: int64[S + 1] string ``s`` is ``chars[char_start[s]:char_start[s + 1]]``.
        frame_string: int64[F] each frame's string, -1 where the frame is null.
        frame_start: int64[X + 1] first frame of each track.
        height, width: int64[X] frame size of each track's video.
        string_area: int64[S] foreground pixels of each string's mask.
        string_first, string_last: int64[S] foreground span ``[first, last)`` of column-major
            positions (0, 0 when empty).
        string_values: int64[S] number of run lengths of each string.
    """

    chars: np.ndarray
    char_start: np.ndarray
    frame_string: np.ndarray
    frame_start: np.ndarray
    height: np.ndarray
    width: np.ndarray
    string_area: np.ndarray
    string_first: np.ndarray
    string_last: np.ndarray
    string_values: np.ndarray

    @property
    def num_tracks(self) -> int:
        return int(self.frame_start.shape[0] - 1)

    @property
    def present(self) -> np.ndarray:
        """bool[F], False where the frame is null."""
        return self.frame_string >= 0

    @functools.cached_property
    def area(self) -> np.ndarray:
        """int64[F] pixel count of each frame's mask (0 when null)."""
        out = np.zeros(self.frame_string.shape[0], dtype=np.int64)
        present = self.frame_string >= 0
        out[present] = self.string_area[self.frame_string[present]]
        return out

    def track_areas(self) -> np.ndarray:
        """int64[X] total pixel count of each track over its frames."""
        return _segment_sums(self.area, self.frame_start)

    def track_lengths(self) -> np.ndarray:
        """int64[tracks] number of non-null frames of each track (an empty mask counts)."""
        return _segment_sums(self.present.astype(np.int64), self.frame_start)

    def track_avg_areas(self) -> np.ndarray:
        """float64[X] mean of each track's non-null, non-zero frame areas (0 if none).

        The areas are integers, so ``sum / n`` is exactly what ``np.mean`` gives."""
        total = _segment_sums(self.area, self.frame_start).astype(np.float64)
        num = _segment_sums((self.area > 0).astype(np.int64), self.frame_start)
        return np.divide(total, num, out=np.zeros_like(total), where=num > 0)

    def take(self, tracks: np.ndarray) -> MaskTable:
        """The table of some tracks (in the given order); the strings are shared."""
        n = self.frame_start[tracks + 1] - self.frame_start[tracks]
        frame_start = np.zeros(n.shape[0] + 1, dtype=np.int64)
        np.cumsum(n, out=frame_start[1:])
        frames = np.repeat(self.frame_start[tracks] - frame_start[:-1], n) + np.arange(
            frame_start[-1], dtype=np.int64
        )
        return dataclasses.replace(
            self,
            frame_string=self.frame_string[frames],
            frame_start=frame_start,
            height=self.height[tracks],
            width=self.width[tracks],
        )

    def string(self, s: int) -> bytes:
        """The compressed RLE string ``s``."""
        return self.chars[self.char_start[s] : self.char_start[s + 1]].tobytes()

    def rles(self) -> Sequence[tuple[dict | None, ...]]:
        """Per track, per frame, a pycocotools RLE dict (``counts`` as bytes) or None."""
        return _LazyRles(self)

    @property
    def counts(self) -> np.ndarray:
        """int32 run lengths of all present frames, frame after frame (see :attr:`runs`)."""
        return self.runs[0]

    @property
    def run_start(self) -> np.ndarray:
        """int64[F + 1] offsets of each frame's run lengths in :attr:`counts`."""
        return self.runs[1]

    @functools.cached_property
    def runs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, run_start)``: int32 run lengths of all present frames and int64[F + 1]
        offsets of each frame's runs in them (decoded on first use, then kept)."""
        from ovis_jax._src.masks import scan

        present = np.flatnonzero(self.frame_string >= 0)
        strings = self.frame_string[present]
        frame_runs = np.zeros(self.frame_string.shape[0], dtype=np.int64)
        frame_runs[present] = self.string_values[strings]
        run_start = np.zeros(frame_runs.shape[0] + 1, dtype=np.int64)
        np.cumsum(frame_runs, out=run_start[1:])
        counts = np.empty(int(run_start[-1]), dtype=np.int32)
        run_chunks(
            lambda i0, i1: scan.decode_lengths(
                self.chars, self.char_start, strings, run_start[present], i0, i1, counts
            ),
            strings.shape[0],
            cost=frame_runs[present],
            min_cost=1 << 20,
        )
        return counts, run_start


class _LazyRles(Sequence):
    """Per track, per frame, a compressed RLE dict or None, built on first access (only the
    reference evaluator reads them)."""

    def __init__(self, masks: MaskTable) -> None:
        self._masks = masks
        self._tracks: tuple[tuple[dict | None, ...], ...] | None = None

    def _built(self) -> tuple[tuple[dict | None, ...], ...]:
        if self._tracks is None:
            m = self._masks
            tracks = []
            for i in range(m.num_tracks):
                size = [int(m.height[i]), int(m.width[i])]
                frames = m.frame_string[m.frame_start[i] : m.frame_start[i + 1]].tolist()
                tracks.append(
                    tuple(None if s < 0 else {"size": size, "counts": m.string(s)} for s in frames)
                )
            self._tracks = tuple(tracks)
        return self._tracks

    def __len__(self) -> int:
        return self._masks.num_tracks

    def __getitem__(self, i):
        return self._built()[i]


def _segment_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """int64 sums of ``values[offsets[i]:offsets[i+1]]`` (0 for empty ranges)."""
    csum = np.zeros(values.shape[0] + 1, dtype=np.int64)
    np.cumsum(values, out=csum[1:])
    return csum[offsets[1:]] - csum[offsets[:-1]]


def mask_table(
    chars: np.ndarray,
    char_start: np.ndarray,
    frame_string: np.ndarray,
    frame_start: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
    *,
    describe: Callable[[int], str],
) -> MaskTable:
    """Decodes and validates every string, and builds the :class:`MaskTable`.

    Args:
        chars, char_start, frame_string, frame_start, height, width: as in
            :class:`MaskTable`.
        describe: ``describe(track)`` names a track in an error message (its item and video).

    Raises:
        FormatError: naming the first bad frame (track and frame) and the problem: a malformed
            string, or run lengths that do not sum to height × width.
    """
    from ovis_jax._src.masks import scan

    n = char_start.shape[0] - 1
    codes = np.zeros(n, dtype=np.int8)
    totals, areas, firsts, lasts, nvals = (np.zeros(n, dtype=np.int64) for _ in range(5))
    run_chunks(
        lambda s0, s1: scan.scan_strings(
            chars, char_start, s0, s1, codes, totals, areas, firsts, lasts, nvals
        ),
        n,
        cost=np.diff(char_start),
        min_cost=1 << 20,
    )
    frames_per_track = np.diff(frame_start)
    present = np.flatnonzero(frame_string >= 0)
    track_of_string = np.repeat(np.arange(frames_per_track.shape[0]), frames_per_track)[present]
    sizes = (height * width)[track_of_string]
    bad = np.flatnonzero((codes != 0) | (totals != sizes))
    if bad.size:
        s = int(bad[0])
        track = int(track_of_string[s])
        frame = int(present[s] - frame_start[track])
        if codes[s] != 0:
            problem = rle_problem(codes[s])
        else:
            problem = (
                f"RLE run lengths sum to {int(totals[s])}, expected {int(sizes[s])} "
                "(height x width of the video)"
            )
        raise FormatError(f"{describe(track)}, frame {frame}: {problem}")
    return MaskTable(
        chars=chars,
        char_start=char_start,
        frame_string=frame_string,
        frame_start=frame_start,
        height=height,
        width=width,
        string_area=areas,
        string_first=firsts,
        string_last=lasts,
        string_values=nvals,
    )
