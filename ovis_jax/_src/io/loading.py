"""Loading and validating ground-truth and results files (paths or already-parsed objects).

Everything is checked before anything is evaluated; a malformed input raises
:class:`~ovis_jax.FormatError` naming the item (its index in the file and its video id) and what
was expected. The caller's objects are never mutated.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import gc
import gzip
import hashlib
import io
import json
import logging
import math
import os
import reprlib
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np

from ovis_jax._src import messages, progress
from ovis_jax._src.errors import FormatError
from ovis_jax._src.masks.rle import MaskTable, mask_table
from ovis_jax._src.params import OCCLUSION_SCORES

__all__ = [
    "GroundTruth",
    "Results",
    "UnknownResults",
    "Video",
    "load_ground_truth",
    "load_results",
]

logger = logging.getLogger(__name__)

PathOrObject = str | os.PathLike | Mapping | Sequence


@dataclasses.dataclass(frozen=True)
class Video:
    """One video of the ground truth."""

    id: int
    height: int
    width: int
    length: int


@dataclasses.dataclass(frozen=True, eq=False)
class GroundTruth:
    """A validated ground-truth file. G tracks (annotations of known categories), file order.

    Attributes:
        format: ``"ovis"`` (occlusion labels present) or ``"ytvis"`` (none).
        videos: the videos, sorted by id.
        category_ids: int64[K] category ids, ascending.
        category_names: the K category names, in the order of ``category_ids``.
        ann_id: int64[G] annotation ids.
        video_id: int64[G].
        category_id: int64[G].
        iscrowd: bool[G].
        avg_area: float64[G] mean of the non-null, non-zero entries of ``areas`` (metric step 2).
        occ_score: float64[G] occlusion score (metric step 3); 0.0 for YouTube-VIS format.
        masks: the tracks' frames as run lengths.
        rles: per track, per frame, a compressed RLE dict (``counts`` as bytes) or None: the
            input of the pycocotools reference path.
        warnings: what loading noticed and did about it.
        fingerprint: a string identifying this ground truth (ids, sizes, categories).
        category_partition: int64[K] the categories' LV-VIS ``partition`` (0, 1 base; 2, 3
            novel), -1 where the file has none.
        has_annotations: False for a file without ``annotations`` (a validation split),
            loaded with ``require_annotations=False``.
    """

    format: str
    videos: tuple[Video, ...]
    category_ids: np.ndarray
    category_names: tuple[str, ...]
    ann_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    iscrowd: np.ndarray
    avg_area: np.ndarray
    occ_score: np.ndarray
    masks: MaskTable
    rles: Sequence[tuple[dict | None, ...]]
    warnings: tuple[str, ...]
    fingerprint: str
    category_partition: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    has_annotations: bool = True

    @property
    def has_occlusion(self) -> bool:
        return self.format == "ovis"

    @property
    def video_by_id(self) -> dict[int, Video]:
        return {v.id: v for v in self.videos}


class UnknownResults(NamedTuple):
    """The results whose category id is not in the ground truth (not evaluated), U of them.

    Attributes:
        result_id: int64[U] ids in the numbering of ``Results.result_id`` (file index + 1).
        video_id, category_id: int64[U].
        score: float64[U].
    """

    result_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Results:
    """Validated results of known categories, D tracks in file order.

    Attributes:
        result_id: int64[D] ids 1..N in file order (metric step 1; counted over the whole file).
        video_id: int64[D].
        category_id: int64[D].
        score: float64[D].
        avg_area: float64[D] mean of the non-null, non-zero per-frame pixel counts.
        masks: the tracks' frames as run lengths.
        rles: per track, per frame, a compressed RLE dict or None (reference path input).
        num_unknown_category: results whose category id is not in the ground truth (not kept).
        warnings: what loading noticed and did about it.
        unknown: those results' ids, videos, categories and scores (for per-result reports).
    """

    result_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    avg_area: np.ndarray
    masks: MaskTable
    rles: Sequence[tuple[dict | None, ...]]
    num_unknown_category: int
    warnings: tuple[str, ...]
    unknown: UnknownResults | None = None


# --------------------------------------------------------------------------------------------
# Reading


def _gc_paused(fn):
    """Runs ``fn`` with Python's cyclic garbage collector paused (restored afterwards).

    Parsing and validating a file allocates millions of small objects and no reference cycles;
    the collector's generation scans then cost 35-45 % of ``json.load`` (measured, benchmarks/
    NOTES.md). Reference counting still frees everything as usual.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def _length_error(where: str, key: str, n: Any, video: Video) -> FormatError:
    """A per-frame list (``key``) whose length is not the video's."""
    return FormatError(
        f"{where}: {key!r} has {n} entries, expected {video.length} "
        f"(the length of video {video.id})"
    )


def _size_error(where: str, size: list[int], h: int, w: int) -> FormatError:
    """A mask whose ``size`` is not its video's."""
    return FormatError(
        f"{where}: mask size {size} differs from the video's [height, width] = {[h, w]}"
    )


class _TypedTrack(msgspec.Struct):
    """A result or annotation as the fast path parses it: ``segmentations`` stays a raw JSON
    slice of the file (read by :mod:`ovis_jax._src.io.segjson`), the other keys are parsed untyped
    and validated like any parsed object. Unknown keys are skipped."""

    segmentations: msgspec.Raw
    id: Any = msgspec.UNSET
    video_id: Any = msgspec.UNSET
    category_id: Any = msgspec.UNSET
    score: Any = msgspec.UNSET
    iscrowd: Any = msgspec.UNSET
    areas: Any = msgspec.UNSET
    occlusion: Any = msgspec.UNSET


class _TypedGroundTruth(msgspec.Struct):
    videos: Any
    categories: Any
    annotations: list[_TypedTrack]


_TYPED_RESULTS = msgspec.json.Decoder(list[_TypedTrack])
_TYPED_GT = msgspec.json.Decoder(_TypedGroundTruth)
_UNTYPED = msgspec.json.Decoder()


def _as_dict(track: _TypedTrack) -> dict:
    """A typed track as the mapping the validation code reads (keys that were absent stay
    absent)."""
    return {k: v for k, v in msgspec.structs.asdict(track).items() if v is not msgspec.UNSET}


def _parse(raw: bytes, decoder: msgspec.json.Decoder, label: str) -> Any:
    """Parses JSON bytes: the fast path's typed structs when the file has the expected shape
    and every segmentation list is in the common form (see :mod:`ovis_jax._src.io.segjson`), else
    the general untyped objects; the standard library's parser is the last resort (it reads
    numbers that overflow float64 as infinities, which validation then names)."""
    from ovis_jax._src.io import segjson

    try:
        typed = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        typed = None
    if typed is not None:
        tracks = typed.annotations if isinstance(typed, _TypedGroundTruth) else typed
        segments = segjson.read_segmentations(raw, [t.segmentations for t in tracks])
        if segments is not None:
            return _FastFile(typed, tracks, segments)
        del typed, tracks
    return parse_untyped(raw, label)


def parse_untyped(raw: bytes, label: str) -> Any:
    """JSON bytes as plain Python objects (msgspec; the standard library as the last resort,
    for numbers that overflow float64 or NaN / Infinity, which validation then names)."""
    try:
        return _UNTYPED.decode(raw)
    except (msgspec.DecodeError, RecursionError) as e:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FormatError(f"{label} is not valid JSON: {e}") from None


class _FastFile:
    """A file read by the fast path: the items as mappings whose ``segmentations`` is the
    track's index into ``segments`` (the arrays of ``segjson.read_segmentations``)."""

    def __init__(self, typed: Any, tracks: list[_TypedTrack], segments: dict) -> None:
        self.typed = typed
        self.items = []
        for i, t in enumerate(tracks):
            item = _as_dict(t)
            item["segmentations"] = _FastTrack(i)
            self.items.append(item)
        self.segments = _FastSegments(segments, len(tracks))


@dataclasses.dataclass(frozen=True)
class _FastTrack:
    index: int


class _FastSegments:
    """The segmentations of a fast-path file, validated all at once when the items are."""

    def __init__(self, segments: dict, num_tracks: int) -> None:
        self.arrays = segments
        self.height = np.zeros(num_tracks, dtype=np.int64)
        self.width = np.zeros(num_tracks, dtype=np.int64)
        self.where = [""] * num_tracks
        self._table: MaskTable | None = None

    def add_track(self, track: _FastTrack, video: Video, where: str) -> None:
        i = track.index
        fs = self.arrays["frame_start"]
        n = int(fs[i + 1] - fs[i])
        if n != video.length:
            raise _length_error(where, "segmentations", n, video)
        frame_string = self.arrays["frame_string"][fs[i] : fs[i + 1]]
        sizes = self.arrays["size"][frame_string[frame_string >= 0]]
        bad = np.flatnonzero((sizes[:, 0] != video.height) | (sizes[:, 1] != video.width))
        if bad.size:
            t = int(np.flatnonzero(frame_string >= 0)[bad[0]])
            raise _size_error(
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


class _FastCollector:
    """Collects some tracks of a :class:`_FastSegments` (the same interface as
    :class:`_SegmentationCollector`)."""

    def __init__(self, segments: _FastSegments) -> None:
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


def _collectors(data: Any) -> tuple[Any, Any]:
    """The (kept, discarded) segmentation collectors for a parsed file."""
    if isinstance(data, _FastFile):
        return _FastCollector(data.segments), _FastCollector(data.segments)
    return _SegmentationCollector(), _SegmentationCollector()


def read_bytes(path: str | os.PathLike, what: str) -> tuple[bytes, str]:
    """A JSON file's bytes, from the file itself, a ``.gz`` of it, or a zip archive holding it
    (its only ``.json`` member, or ``results.json``), and the label naming it in messages.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: a corrupt archive, or a zip without exactly one JSON member to read.
    """
    with open(path, "rb") as f:
        raw = f.read()
    label = f"{what} file {os.fspath(path)!r}"
    if raw.startswith(b"\x1f\x8b"):
        try:
            return gzip.decompress(raw), label
        except (OSError, EOFError, zlib.error) as e:
            raise FormatError(f"{label}: corrupt gzip data ({e})") from None
    if raw.startswith(b"PK\x03\x04") or raw.startswith(b"PK\x05\x06"):
        return _zip_member(raw, label)
    return raw, label


def _zip_member(raw: bytes, label: str) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            jsons = [n for n in names if n.lower().endswith(".json")]
            if "results.json" in names:
                name = "results.json"
            elif len(jsons) == 1:
                name = jsons[0]
            else:
                raise FormatError(
                    f"{label} is a zip archive with {len(jsons)} JSON members "
                    f"({_show(names)}): expected one, e.g. results.json at its root"
                )
            return z.read(name), f"{label} (member {name!r})"
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise FormatError(f"{label}: corrupt zip archive ({e})") from None


def _read(source: Any, what: str, decoder: msgspec.json.Decoder) -> Any:
    """A path's parsed contents (see :func:`read_bytes` and :func:`_parse`), or an
    already-parsed object as is.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        FormatError: it is not JSON (nor a gzip or zip archive of a JSON file).
    """
    if isinstance(source, (str, os.PathLike)):
        progress.stage(logger, "read")
        raw, label = read_bytes(source, what)
        return _parse(raw, decoder, label)
    return source


def _label(x: Any) -> str:
    """An id as it appears in an item's description (ints as is, anything else shortened)."""
    return str(x) if _is_int(x) else _show(x)


def _show(x: Any) -> str:
    """A user's value for an error message: short, and safe for any nesting depth."""
    return _SHOW.repr(x)


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60


#: Every id becomes an int64; a frame's pixel positions must fit in an int32 (the streaming
#: evaluator's and the device kernels' run lengths), so frames have fewer than 2^31 pixels.
_ID_RANGE = (-(2**63), 2**63 - 1)
MAX_FRAME_PIXELS = 2**31 - 1


def _kind(x: Any) -> str:
    """A value for an error message, with its JSON type when that is the surprise."""
    if isinstance(x, str):
        return f"the string {_show(x)}"
    if isinstance(x, (bool, float)) or x is None:
        return f"{json.dumps(x)} ({'null' if x is None else type(x).__name__})"
    return f"a {type(x).__name__}" if isinstance(x, (list, dict)) else repr(x)


def _is_id(x: Any) -> bool:
    """An integer that fits in int64 (ids of videos, categories, annotations)."""
    return _is_int(x) and _ID_RANGE[0] <= x <= _ID_RANGE[1]


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _is_finite_number(x: Any) -> bool:
    """A real number that float64 represents finitely (a huge JSON integer is not)."""
    if not _is_number(x):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _require(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        close = difflib.get_close_matches(key, [k for k in obj if isinstance(k, str)], n=1)
        hint = f" (the item has {close[0]!r}: did you mean {key!r}?)" if close else ""
        raise FormatError(f"{where}: missing key {key!r}{hint}")
    return obj[key]


# --------------------------------------------------------------------------------------------
# Segmentations


class _SegmentationCollector:
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
            raise _length_error(where, "segmentations", len(segs), video)
        h, w = video.height, video.width
        self._add_general(segs, h, w, where)
        self.frame_start.append(len(self.frame_string))
        self.height.append(h)
        self.width.append(w)
        self.where.append(where)

    def _add_general(self, segs: list, h: int, w: int, where: str) -> None:
        for t, seg in enumerate(segs):
            # The official code tests `if seg:`, so an empty polygon list is an absent frame.
            if seg is None or (isinstance(seg, list) and len(seg) == 0):
                self.frame_string.append(-1)
                continue
            self.frame_string.append(len(self.strings))
            self.strings.append(_to_compressed(seg, h, w, f"{where}, frame {t}"))

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


def _to_compressed(seg: Any, h: int, w: int, where: str) -> str:
    """The compressed RLE string of one frame's segmentation (any input form)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, Mapping):
        if "counts" not in seg or "size" not in seg:
            raise FormatError(f"{where}: an RLE needs 'size' and 'counts'")
        size = seg["size"]
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(_is_int(s) for s in size)
        ):
            raise FormatError(f"{where}: RLE 'size' must be [height, width], got {_show(size)}")
        if [int(size[0]), int(size[1])] != [h, w]:
            raise _size_error(where, [int(size[0]), int(size[1])], h, w)
        counts = seg["counts"]
        if isinstance(counts, str):
            return counts
        if isinstance(counts, bytes):
            try:
                return counts.decode("ascii")
            except UnicodeDecodeError as e:
                raise FormatError(f"{where}: compressed RLE has a non-ASCII character") from e
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts):
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
                or not all(_is_finite_number(v) for v in p)
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


def _parse_videos(raw: Any) -> tuple[Video, ...]:
    if not isinstance(raw, list):
        raise FormatError(f"ground truth: 'videos' must be a list, got {type(raw).__name__}")
    videos: dict[int, Video] = {}
    for i, v in enumerate(raw):
        where = f"videos[{i}]"
        vid = _require(v, "id", where)
        if not _is_id(vid):
            raise FormatError(f"{where}: 'id' must be an integer (64-bit), got {_show(vid)}")
        where = f"videos[{i}] (video_id {_label(vid)})"
        h = _require(v, "height", where)
        w = _require(v, "width", where)
        if not (_is_int(h) and _is_int(w) and h > 0 and w > 0):
            raise FormatError(f"{where}: 'height' and 'width' must be positive integers")
        if h * w > MAX_FRAME_PIXELS:
            raise FormatError(
                f"{where}: frames of {h} x {w} = {h * w} pixels are not supported (at most "
                f"2^31 - 1 = {MAX_FRAME_PIXELS} pixels per frame)"
            )
        if "length" in v:
            length = v["length"]
        elif isinstance(v.get("file_names"), list):
            length = len(v["file_names"])
        else:
            raise FormatError(f"{where}: missing key 'length' (and no 'file_names' list)")
        if not _is_int(length) or length < 0:
            raise FormatError(
                f"{where}: 'length' must be a non-negative integer, got {_show(length)}"
            )
        if int(vid) in videos:
            raise FormatError(f"{where}: duplicated video id {vid}")
        videos[int(vid)] = Video(int(vid), int(h), int(w), int(length))
    return tuple(videos[k] for k in sorted(videos))


def _parse_categories(raw: Any) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Category ids (ascending), names, and LV-VIS ``partition`` labels (-1 where absent)."""
    if not isinstance(raw, list):
        raise FormatError(f"ground truth: 'categories' must be a list, got {type(raw).__name__}")
    cats: dict[int, tuple[str, int]] = {}
    for i, c in enumerate(raw):
        cid = _require(c, "id", f"categories[{i}]")
        if not _is_id(cid):
            raise FormatError(
                f"categories[{i}]: 'id' must be an integer (64-bit), got {_show(cid)}"
            )
        if int(cid) in cats:
            raise FormatError(f"categories[{i}]: duplicated category id {cid}")
        name = c.get("name", cid)
        part = c.get("partition", -1)
        if part is None:
            part = -1
        if not _is_int(part):
            raise FormatError(
                f"categories[{i}] (category_id {cid}): 'partition' must be an integer, "
                f"got {_show(part)}"
            )
        cats[int(cid)] = (name if isinstance(name, str) else _label(name), int(part))
    ids = sorted(cats)
    names = tuple(cats[k][0] for k in ids)
    partition = np.asarray([cats[k][1] for k in ids], dtype=np.int64)
    return np.asarray(ids, dtype=np.int64), names, partition


def _valid_labels(occ: list) -> bool:
    """Whether every entry is null or a known occlusion label (a fast check of the common case)."""
    try:
        return set(occ) <= _OCCLUSION_ENTRIES
    except TypeError:  # an unhashable entry
        return False


_OCCLUSION_ENTRIES = frozenset([None, *OCCLUSION_SCORES])


def _occlusion_score(occ: list, where: str) -> float | None:
    if _valid_labels(occ):
        values = sorted(OCCLUSION_SCORES[o] for o in occ if o is not None)
        if not values:
            return None
        return float(np.mean(np.asarray(values[len(values) // 2 :], dtype=np.float64)))
    values = []
    for t, o in enumerate(occ):
        if o is None:
            continue
        if not isinstance(o, str) or o not in OCCLUSION_SCORES:
            raise FormatError(
                f"{where}, frame {t}: occlusion {_show(o)} is not one of "
                f"{sorted(OCCLUSION_SCORES)} or null"
            )
        values.append(OCCLUSION_SCORES[o])
    if not values:
        return None
    values.sort()
    return float(np.mean(np.asarray(values[len(values) // 2 :], dtype=np.float64)))


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


def _plain_areas(areas: list) -> bool:
    """Whether every entry is null or a finite non-negative int / float (the common case,
    checked in bulk; otherwise the caller checks entry by entry and names the bad one)."""
    if not set(map(type, areas)) <= {int, float, type(None)}:
        return False
    try:
        values = np.asarray([a for a in areas if a is not None], dtype=np.float64)
    except OverflowError:
        return False
    return bool(np.isfinite(values).all() and (values >= 0).all())


def _avg_area(areas: list) -> float:
    kept = [a for a in areas if a]
    return float(np.array(kept, dtype=np.float64).mean()) if kept else 0.0


def _item_video(
    item: Any, label: str, video_by_id: Mapping[int, Video], unknown: str
) -> tuple[str, Video]:
    """An item's description for messages (``label (video_id v)``) and its video.

    Raises:
        FormatError: no ``video_id``, not an integer, or not a known video (``unknown`` says
            where it was looked for).
    """
    vid = _require(item, "video_id", label)
    where = f"{label} (video_id {_label(vid)})"
    if not _is_int(vid):
        raise FormatError(f"{where}: 'video_id' must be an integer, got {_kind(vid)}")
    if int(vid) not in video_by_id:
        raise FormatError(f"{where}: unknown video_id {_show(vid)} ({unknown})")
    return where, video_by_id[int(vid)]


class _Annotation(NamedTuple):
    """One kept ground-truth annotation, as :func:`_parse_annotation` reads it."""

    id: int
    video_id: int
    category_id: int
    iscrowd: bool
    avg_area: float  # NaN: no 'areas' in the file (computed from the masks later)
    occ_score: float | None  # None: no occlusion label in any frame


@dataclasses.dataclass
class _GtContext:
    """What the per-annotation parser needs and what it tallies across annotations."""

    video_by_id: dict[int, Video]
    known_cats: set[int]
    is_ovis: bool
    collector: Any
    discarded: Any
    seen_ids: dict[int, int] = dataclasses.field(default_factory=dict)
    unknown_cat: int = 0


NO_ANNOTATIONS = (
    "the ground truth has no 'annotations' (a validation or test split, scored by the "
    "evaluation server?): it cannot score results; to check a results file against it, run "
    "python -m ovis_jax.check --gt GT.json --results RESULTS.json"
)


def _gt_object(data: Any, *, require_annotations: bool) -> tuple[Any, Any, list]:
    """The ground truth's (videos, categories, annotations); annotations ``[]`` when absent or
    null and not required."""
    if not isinstance(data, Mapping):
        raise FormatError(
            f"ground truth: expected a JSON object with 'videos', 'annotations' and "
            f"'categories', got {type(data).__name__}"
        )
    for key in ("videos", "categories"):
        if key not in data:
            raise FormatError(f"ground truth: missing top-level key {key!r}")
    anns = data.get("annotations")
    if anns is None:
        if require_annotations:
            raise FormatError(NO_ANNOTATIONS)
        anns = []
    if not isinstance(anns, list):
        raise FormatError(f"ground truth: 'annotations' must be a list, got {type(anns).__name__}")
    for i, a in enumerate(anns):
        if not isinstance(a, Mapping):
            raise FormatError(f"annotations[{i}]: expected a JSON object, got {type(a).__name__}")
    return data["videos"], data["categories"], anns


def _is_ovis_format(anns: list) -> bool:
    """Whether the annotations carry occlusion labels (all of them, or none)."""
    has_occ = ["occlusion" in a for a in anns]
    if any(has_occ) and not all(has_occ):
        i = has_occ.index(False)
        raise FormatError(
            f"annotations[{i}] (video_id {_label(anns[i].get('video_id'))}): missing key "
            "'occlusion' (other annotations have occlusion labels)"
        )
    return bool(anns) and all(has_occ)


def _annotation_areas(a: Mapping, video: Video, where: str) -> float:
    """The track's ``avg_area`` from its ``areas`` list (NaN when it has none)."""
    areas = a.get("areas")
    if areas is None:
        return math.nan
    if not isinstance(areas, list) or len(areas) != video.length:
        n = len(areas) if isinstance(areas, list) else type(areas).__name__
        raise _length_error(where, "areas", n, video)
    for t, ar in enumerate(areas if not _plain_areas(areas) else ()):
        if ar is not None and not (_is_finite_number(ar) and ar >= 0):
            raise FormatError(
                f"{where}, frame {t}: area must be a non-negative number or null, got {_show(ar)}"
            )
    return _avg_area(areas)


def _parse_annotation(i: int, a: Mapping, ctx: _GtContext) -> _Annotation | None:
    """Validates ``annotations[i]`` and adds its masks to the context's collector.

    Returns:
        The annotation, or None when its category is not in 'categories' (then its masks are
        validated all the same, and counted).
    """
    where, video = _item_video(a, f"annotations[{i}]", ctx.video_by_id, "not in 'videos'")
    vid = video.id
    aid = _require(a, "id", where)
    if not _is_id(aid):
        raise FormatError(f"{where}: 'id' must be an integer (64-bit), got {_show(aid)}")
    if int(aid) in ctx.seen_ids:
        raise FormatError(
            f"{where}: duplicated annotation id {aid} (also annotations[{ctx.seen_ids[int(aid)]}])"
        )
    ctx.seen_ids[int(aid)] = i
    cid = _require(a, "category_id", where)
    if not _is_id(cid):
        raise FormatError(f"{where}: 'category_id' must be an integer (64-bit), got {_show(cid)}")
    segs = _require(a, "segmentations", where)
    iscrowd = a.get("iscrowd", 0)
    if iscrowd not in (0, 1, True, False):
        raise FormatError(f"{where}: 'iscrowd' must be 0 or 1, got {_show(iscrowd)}")
    if int(cid) not in ctx.known_cats:
        ctx.unknown_cat += 1
        # Validated all the same: a malformed file is malformed wherever the error is.
        ctx.discarded.add_track(segs, video, where)
        return None
    ctx.collector.add_track(segs, video, where)
    avg_area = _annotation_areas(a, video, where)
    occ_score: float | None = 0.0
    if ctx.is_ovis:
        occ = a["occlusion"]
        if not isinstance(occ, list) or len(occ) != video.length:
            n = len(occ) if isinstance(occ, list) else type(occ).__name__
            raise _length_error(where, "occlusion", n, video)
        occ_score = _occlusion_score(occ, where)
    return _Annotation(int(aid), int(vid), int(cid), bool(iscrowd), avg_area, occ_score)


def _fill_missing_areas(avg: np.ndarray, masks: MaskTable) -> int:
    """Replaces the NaN entries of ``avg`` (tracks without 'areas') by the masks' average
    areas, in place; returns how many there were."""
    missing = np.flatnonzero(np.isnan(avg))
    for g in missing.tolist():
        f0, f1 = masks.frame_start[g], masks.frame_start[g + 1]
        avg[g] = _avg_area(masks.area[f0:f1].tolist())
    return int(missing.size)


def _gt_warnings(
    *, has_annotations: bool, num_anns: int, missing_areas: int, unknown_cat: int, no_occ: int
) -> list[str]:
    """The user-facing warnings of a ground-truth file, in a fixed order."""
    warnings = []
    if has_annotations and not num_anns:
        warnings.append(
            "the ground truth has no annotations: every number is -1 (undefined), and without "
            "occlusion labels the YouTube-VIS summary (12 numbers) is printed"
        )
    if missing_areas:
        warnings.append(
            f"{missing_areas} ground-truth track(s) have no 'areas': their areas were "
            "computed from the masks"
        )
    if unknown_cat:
        warnings.append(
            f"{unknown_cat} ground-truth annotation(s) have a category_id not in 'categories' "
            "and are not evaluated"
        )
    if no_occ:
        warnings.append(
            f"{no_occ} ground-truth track(s) have no occlusion label in any frame: their "
            "occlusion score is 0.0 (the official evaluator divides by zero here)"
        )
    return warnings


def _fingerprint(videos: tuple[Video, ...], cat_ids: np.ndarray, ann_ids: list, fmt: str) -> str:
    text = json.dumps(
        {
            "videos": [[v.id, v.height, v.width, v.length] for v in videos],
            "categories": cat_ids.tolist(),
            "annotations": ann_ids,
            "format": fmt,
        },
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@_gc_paused
def load_ground_truth(source: PathOrObject, *, require_annotations: bool = True) -> GroundTruth:
    """Loads and validates a ground-truth file.

    Args:
        source: a path to the JSON file (also ``.json.gz`` or a zip holding one JSON file), or
            the already-parsed object (not modified).
        require_annotations: if False, a file without ``annotations`` (or with
            ``"annotations": null``, as the validation splits ship) loads with no tracks and
            ``has_annotations`` False; if True (default) it is an error, since nothing could
            be scored against it.

    Returns:
        The validated :class:`GroundTruth`; the format (OVIS or YouTube-VIS) is detected from
        the presence of ``occlusion`` labels.

    Raises:
        FormatError: naming the offending item and what was expected.
    """
    data = fast = _read(source, "ground truth", _TYPED_GT)
    progress.stage(logger, "validate")
    if isinstance(data, _FastFile):
        t = fast.typed
        data = {"videos": t.videos, "categories": t.categories, "annotations": fast.items}
    raw_videos, raw_cats, anns = _gt_object(data, require_annotations=require_annotations)
    has_annotations = isinstance(data, Mapping) and data.get("annotations") is not None
    videos = _parse_videos(raw_videos)
    cat_ids, cat_names, partition = _parse_categories(raw_cats)
    collector, discarded = _collectors(fast)
    ctx = _GtContext(
        video_by_id={v.id: v for v in videos},
        known_cats=set(cat_ids.tolist()),
        is_ovis=_is_ovis_format(anns),
        collector=collector,
        discarded=discarded,
    )
    rows = [r for i, a in enumerate(anns) if (r := _parse_annotation(i, a, ctx)) is not None]
    masks = collector.build()
    discarded.build()
    avg = np.asarray([r.avg_area for r in rows], dtype=np.float64)
    fmt = "ovis" if ctx.is_ovis else "ytvis"
    warnings = _gt_warnings(
        has_annotations=has_annotations,
        num_anns=len(anns),
        missing_areas=_fill_missing_areas(avg, masks),
        unknown_cat=ctx.unknown_cat,
        no_occ=sum(r.occ_score is None for r in rows),
    )
    for w in warnings:
        logger.debug("warning: %s", w)  # returned in .warnings: one channel
    return GroundTruth(
        format=fmt,
        videos=videos,
        category_ids=cat_ids,
        category_names=cat_names,
        ann_id=np.asarray([r.id for r in rows], dtype=np.int64),
        video_id=np.asarray([r.video_id for r in rows], dtype=np.int64),
        category_id=np.asarray([r.category_id for r in rows], dtype=np.int64),
        iscrowd=np.asarray([r.iscrowd for r in rows], dtype=bool),
        avg_area=avg,
        occ_score=np.asarray([r.occ_score or 0.0 for r in rows], dtype=np.float64),
        masks=masks,
        rles=masks.rles(),
        warnings=tuple(warnings),
        fingerprint=_fingerprint(videos, cat_ids, [r.id for r in rows], fmt),
        category_partition=partition,
        has_annotations=has_annotations,
    )


# --------------------------------------------------------------------------------------------
# Results


class _Result(NamedTuple):
    """One kept result, as :func:`_parse_result` reads it."""

    id: int  # 1..N in file order (metric step 1)
    video_id: int
    category_id: int
    score: float


@dataclasses.dataclass
class _ResultsContext:
    """What the per-result parser needs and what it tallies across results."""

    video_by_id: dict[int, Video]
    known_cats: set[int]
    collector: Any
    discarded: Any
    dropped: list[_Result] = dataclasses.field(default_factory=list)  # unknown categories


UNKNOWN_VIDEO_HINT = (
    "not in the ground truth; to evaluate some of the videos, give the whole ground truth and "
    "--subset / subsets="
)


def _parse_result(i: int, r: Any, ctx: _ResultsContext) -> _Result | None:
    """Validates ``results[i]`` and adds its masks to the context's collector.

    Returns:
        The result, or None when its category is not in the ground truth (then its masks are
        validated all the same, and counted).
    """
    where, video = _item_video(r, f"results[{i}]", ctx.video_by_id, UNKNOWN_VIDEO_HINT)
    vid = video.id
    cid = _require(r, "category_id", where)
    if not _is_id(cid):
        raise FormatError(f"{where}: 'category_id' must be an integer (64-bit), got {_show(cid)}")
    score = _require(r, "score", where)
    if not _is_finite_number(score):
        raise FormatError(f"{where}: 'score' must be a finite number, got {_show(score)}")
    segs = _require(r, "segmentations", where)
    row = _Result(i + 1, int(vid), int(cid), float(score))
    if int(cid) not in ctx.known_cats:
        ctx.dropped.append(row)
        ctx.discarded.add_track(segs, video, where)
        return None
    ctx.collector.add_track(segs, video, where)
    return row


@_gc_paused
def load_results(source: PathOrObject, gt: GroundTruth) -> Results:
    """Loads and validates a results file against its ground truth.

    Args:
        source: a path to the JSON file (a list of results), or the already-parsed list (not
            modified).
        gt: the ground truth the results are for.

    Returns:
        The validated :class:`Results` of the categories of ``gt``. Results of other
        categories are counted and reported in a warning.

    Raises:
        FormatError: naming the offending result (index and video id) and what was expected.
    """
    data = fast = _read(source, "results", _TYPED_RESULTS)
    progress.stage(logger, "validate")
    if isinstance(data, _FastFile):
        data = fast.items
    warnings: list[str] = []
    if isinstance(data, Mapping) and "annotations" in data:
        data = data["annotations"]
        warnings.append(
            "the results are a JSON object: its 'annotations' list was evaluated (the official "
            "format is a bare list)"
        )
    if not isinstance(data, list):
        raise FormatError(f"results: expected a JSON list of results, got {type(data).__name__}")
    ctx = _ResultsContext(gt.video_by_id, set(gt.category_ids.tolist()), *_collectors(fast))
    keep = [r for i, item in enumerate(data) if (r := _parse_result(i, item, ctx)) is not None]
    collector, discarded, dropped = ctx.collector, ctx.discarded, ctx.dropped
    masks = collector.build()
    discarded.build()
    duplicates = len(duplicate_pairs(keep, masks))
    if duplicates:
        warnings.append(
            f"{duplicates} result(s) are exact duplicates of an earlier result (same video, "
            "category, score and masks): each copy is scored as a separate prediction"
        )
    if not data:
        warnings.append(messages.EMPTY_RESULTS)
    n_unknown = len(dropped)
    if n_unknown:
        ids = sorted({k.category_id for k in dropped})
        warnings.append(messages.unknown_categories(n_unknown, ids))
    for w in warnings:
        logger.debug("warning: %s", w)  # returned in .warnings: one channel
    # avg_area: mean of the non-null, non-zero pixel counts.
    avg = masks.track_avg_areas()
    return Results(
        result_id=np.asarray([k.id for k in keep], dtype=np.int64),
        video_id=np.asarray([k.video_id for k in keep], dtype=np.int64),
        category_id=np.asarray([k.category_id for k in keep], dtype=np.int64),
        score=np.asarray([k.score for k in keep], dtype=np.float64),
        avg_area=avg,
        masks=masks,
        rles=masks.rles(),
        num_unknown_category=n_unknown,
        warnings=tuple(warnings),
        unknown=UnknownResults(
            result_id=np.asarray([k.id for k in dropped], dtype=np.int64),
            video_id=np.asarray([k.video_id for k in dropped], dtype=np.int64),
            category_id=np.asarray([k.category_id for k in dropped], dtype=np.int64),
            score=np.asarray([k.score for k in dropped], dtype=np.float64),
        ),
    )
