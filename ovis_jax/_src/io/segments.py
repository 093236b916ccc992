"""Collecting the segmentations of many tracks into one :class:`MaskTable`.

Two collectors share one small interface (:class:`Collector`: ``add_track`` per track, then
``build`` once): :class:`SegmentationCollector` for parsed objects (RLE dicts, uncompressed
RLE, polygons, null frames) and :class:`FastCollector` for a file the fast path read, whose
segmentations are already arrays (:mod:`ovis_jax._src.io.segjson`). Both validate every frame
(count, size, RLE) and name the item and frame of the first bad one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec
import numpy as np

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import Video
from ovis_jax._src.io.validate import is_finite_number, is_int, length_error, show, size_error
from ovis_jax._src.masks.rle import MaskTable, mask_table

__all__ = [
    "Collector",
    "FastCollector",
    "FastFile",
    "FastSegments",
    "FastTrack",
    "SegmentationCollector",
    "collectors",
    "duplicate_pairs",
    "to_compressed",
]


class Collector(Protocol):
    """Collects the segmentations of tracks, then builds their :class:`MaskTable`."""

    def add_track(self, segs: Any, video: Video, where: str) -> None:
        """Validates one track's ``segmentations`` (one entry per frame of ``video``) and keeps
        it; ``where`` names the item in messages."""

    def build(self) -> MaskTable:
        """The table of the tracks added, in the order they were added."""


def _as_dict(track: Any) -> dict:
    """A typed track (``read.TypedTrack``) as the mapping the validation code reads (keys that
    were absent stay absent)."""
    return {k: v for k, v in msgspec.structs.asdict(track).items() if v is not msgspec.UNSET}


class FastFile:
    """A file read by the fast path: the items as mappings whose ``segmentations`` is the
    track's index into ``segments`` (the arrays of ``segjson.read_segmentations``)."""

    def __init__(self, typed: Any, tracks: list, segments: dict) -> None:
        self.typed = typed
        self.items = []
        for i, t in enumerate(tracks):
            item = _as_dict(t)
            item["segmentations"] = FastTrack(i)
            self.items.append(item)
        self.segments = FastSegments(segments, len(tracks))


@dataclasses.dataclass(frozen=True)
class FastTrack:
    index: int


class FastSegments:
    """The segmentations of a fast-path file, validated all at once when the items are."""

    def __init__(self, segments: dict, num_tracks: int) -> None:
        self.arrays = segments
        self.height = np.zeros(num_tracks, dtype=np.int64)
        self.width = np.zeros(num_tracks, dtype=np.int64)
        self.where = [""] * num_tracks
        self._table: MaskTable | None = None

    def num_frames(self, track: Any) -> int | None:
        """The number of frames of a track (a :class:`FastTrack`; None for anything else)."""
        if not isinstance(track, FastTrack):
            return None
        fs = self.arrays["frame_start"]
        return int(fs[track.index + 1] - fs[track.index])

    def add_track(self, track: FastTrack, video: Video, where: str) -> None:
        i = track.index
        fs = self.arrays["frame_start"]
        n = int(fs[i + 1] - fs[i])
        if n != video.length:
            raise length_error(where, "segmentations", n, video)
        frame_string = self.arrays["frame_string"][fs[i] : fs[i + 1]]
        sizes = self.arrays["size"][frame_string[frame_string >= 0]]
        bad = np.flatnonzero((sizes[:, 0] != video.height) | (sizes[:, 1] != video.width))
        if bad.size:
            t = int(np.flatnonzero(frame_string >= 0)[bad[0]])
            raise size_error(
                f"{where}, frame {t}", sizes[bad[0]].tolist(), video.height, video.width
            )
        self.height[i], self.width[i], self.where[i] = video.height, video.width, where

    def table(self) -> MaskTable:
        if self._table is None:
            a = self.arrays
            self._table = mask_table(
                a["chars"], a["char_start"], a["frame_string"], a["frame_start"],
                self.height, self.width, describe=self.where.__getitem__,
            )  # fmt: skip
            self.arrays = {}
        return self._table


class FastCollector:
    """Collects some tracks of a :class:`FastSegments` (the same interface as
    :class:`SegmentationCollector`)."""

    def __init__(self, segments: FastSegments) -> None:
        self.segments = segments
        self.tracks: list[int] = []

    def add_track(self, segs: Any, video: Video, where: str) -> None:
        self.segments.add_track(segs, video, where)
        self.tracks.append(segs.index)

    def build(self) -> MaskTable:
        table = self.segments.table()
        if len(self.tracks) == table.num_tracks:
            return table
        return table.take(np.asarray(self.tracks, dtype=np.int64))


def collectors(data: Any) -> tuple[Collector, Collector]:
    """The (kept, discarded) segmentation collectors for a parsed file."""
    if isinstance(data, FastFile):
        return FastCollector(data.segments), FastCollector(data.segments)
    return SegmentationCollector(), SegmentationCollector()


# --------------------------------------------------------------------------------------------
# Segmentations


class SegmentationCollector:
    """Collects the segmentations of many tracks as compressed RLE strings, then decodes and
    validates them all at once into a :class:`MaskTable`."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.where: list[str] = []  # per track, its description for error messages
        self.frame_string: list[int] = []  # per frame: index into strings, or -1
        self.frame_start: list[int] = [0]
        self.height: list[int] = []
        self.width: list[int] = []

    def add_track(self, segs: Any, video: Video, where: str) -> None:
        if not isinstance(segs, list):
            raise FormatError(f"{where}: 'segmentations' must be a list, got {type(segs).__name__}")
        if len(segs) != video.length:
            raise length_error(where, "segmentations", len(segs), video)
        h, w = video.height, video.width
        self._add_general(segs, h, w, where)
        self.frame_start.append(len(self.frame_string))
        self.height.append(h)
        self.width.append(w)
        self.where.append(where)

    def _add_general(self, segs: list, h: int, w: int, where: str) -> None:
        for t, seg in enumerate(segs):
            # The official code tests `if seg:`, so an empty polygon list and an empty object
            # are absent frames.
            if seg is None or (isinstance(seg, (list, dict)) and len(seg) == 0):
                self.frame_string.append(-1)
                continue
            self.frame_string.append(len(self.strings))
            self.strings.append(to_compressed(seg, h, w, f"{where}, frame {t}"))

    def build(self) -> MaskTable:
        text = "".join(self.strings)
        # Writable (a bytearray), like the fast path's buffer: one compiled kernel for both.
        chars = np.frombuffer(bytearray(text, "utf-8", "surrogatepass"), dtype=np.uint8)
        lengths = np.fromiter(map(len, self.strings), dtype=np.int64, count=len(self.strings))
        if chars.shape[0] != len(text):
            s = next(i for i, x in enumerate(self.strings) if not x.isascii())
            track, frame = self._locate(s)
            raise FormatError(
                f"{self.where[track]}, frame {frame}: compressed RLE has a non-ASCII character"
            )
        self.strings = []
        char_start = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=char_start[1:])
        return mask_table(
            chars,
            char_start,
            np.asarray(self.frame_string, dtype=np.int64),
            np.asarray(self.frame_start, dtype=np.int64),
            np.asarray(self.height, dtype=np.int64),
            np.asarray(self.width, dtype=np.int64),
            describe=self.where.__getitem__,
        )

    def _locate(self, s: int) -> tuple[int, int]:
        frame = self.frame_string.index(s)
        track = int(np.searchsorted(self.frame_start, frame, side="right")) - 1
        return track, frame - self.frame_start[track]


def to_compressed(seg: Any, h: int, w: int, where: str) -> str:
    """The compressed RLE string of one frame's segmentation (any input form)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, Mapping):
        if "counts" not in seg or "size" not in seg:
            raise FormatError(f"{where}: an RLE needs 'size' and 'counts'")
        size = seg["size"]
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(is_int(s) for s in size)
        ):
            raise FormatError(f"{where}: RLE 'size' must be [height, width], got {show(size)}")
        if [int(size[0]), int(size[1])] != [h, w]:
            raise size_error(where, [int(size[0]), int(size[1])], h, w)
        counts = seg["counts"]
        if isinstance(counts, str):
            return counts
        if isinstance(counts, bytes):
            try:
                return counts.decode("ascii")
            except UnicodeDecodeError as e:
                raise FormatError(f"{where}: compressed RLE has a non-ASCII character") from e
        if isinstance(counts, list):
            if not all(is_int(c) and c >= 0 for c in counts):
                raise FormatError(
                    f"{where}: uncompressed RLE 'counts' must be non-negative integers"
                )
            if sum(counts) != h * w:
                raise FormatError(
                    f"{where}: RLE run lengths sum to {sum(counts)}, expected {h * w} "
                    "(height x width of the video)"
                )
            rle = mask_utils.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
            return rle["counts"].decode("ascii")
        raise FormatError(
            f"{where}: RLE 'counts' must be a string or a list of ints, got {type(counts).__name__}"
        )
    if isinstance(seg, list):
        polys = []
        for p in seg:
            if (
                not isinstance(p, list)
                or len(p) < 4
                or len(p) % 2
                or not all(is_finite_number(v) for v in p)
            ):
                raise FormatError(
                    f"{where}: a polygon must be a list of an even number (>= 4) of finite "
                    "coordinates"
                )
            coords = [float(v) for v in p]
            # pycocotools' rasteriser uses memory in proportion to the edge length: a
            # coordinate far outside the frame can exhaust the machine.
            limit = 2.0 * max(h, w)
            if any(abs(v) > limit for v in coords):
                raise FormatError(
                    f"{where}: polygon coordinate out of range (|x| and |y| must be at most "
                    f"{limit:g}, twice the frame size)"
                )
            polys.append(coords)
        try:
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        except Exception as e:  # pycocotools raises assorted types on odd input
            raise FormatError(f"{where}: cannot rasterise polygon ({e})") from e
        return rle["counts"].decode("ascii")
    raise FormatError(
        f"{where}: a segmentation must be an RLE object, a polygon list or null, "
        f"got {type(seg).__name__}"
    )


# --------------------------------------------------------------------------------------------
# Ground truth


def duplicate_pairs(keep: Sequence[tuple], masks: MaskTable) -> list[tuple[int, int]]:
    """The kept results that are exact copies of an earlier one (video, category, score, and
    the same strings frame by frame), as ``(index, index of the first copy)`` into ``keep``
    (rows ``(id, video_id, category_id, score)``). Masks are compared only between results
    that share video, category and score."""
    candidates: dict[tuple[int, int, float], list[int]] = {}
    for t, (_, vid, cid, score) in enumerate(keep):
        candidates.setdefault((vid, cid, score), []).append(t)
    pairs = []
    for tracks in candidates.values():
        if len(tracks) < 2:
            continue
        seen: list[tuple[int, tuple[np.ndarray, ...]]] = []
        for t in tracks:
            track = _track_strings(masks, t)
            first = next((u for u, other in seen if _same_strings(track, other)), None)
            if first is None:
                seen.append((t, track))
            else:
                pairs.append((t, first))
    return sorted(pairs)


def _track_strings(masks: MaskTable, t: int) -> tuple[np.ndarray, ...]:
    """Track ``t``'s null frames, string lengths and characters (its strings are contiguous
    in the buffer)."""
    frames = masks.frame_string[masks.frame_start[t] : masks.frame_start[t + 1]]
    present = frames[frames >= 0]
    cs = masks.char_start
    chars = masks.chars[cs[present[0]] : cs[present[-1] + 1]] if present.size else frames[:0]
    return frames >= 0, cs[present + 1] - cs[present], chars


def _same_strings(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
