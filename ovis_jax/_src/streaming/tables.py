"""Host side of the streaming evaluator: the ground truth's pixel tables and per-batch inputs.

Built once per ground truth (NumPy): every video's foreground runs, grouped by ground-truth
track (in file order within the video) and laid out in a per-video list of pixel slots, each
track padded to a multiple of ``BLOCK`` so that a block of slots never mixes two tracks. A batch
then needs only its videos' rows of these tables (:func:`prepare`), small compared to the masks.

Shapes use the legend of :mod:`ovis_jax._src.legend`: V videos (ascending id), G ground-truth
tracks per video (the largest), B videos of a batch, U foreground runs per video (the largest),
L pixel slots per video (padded; the largest); G and U also name the flat axes of all the
ground truth's tracks and runs (in :class:`GTTables`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, NamedTuple

import jax
import numpy as np

from ovis_jax._src.backends.grouping import ragged_arange
from ovis_jax._src.backends.jax.iou import RunTable
from ovis_jax._src.io.model import GroundTruth
from ovis_jax._src.streaming.state import FINGERPRINT_BYTES

__all__ = ["BLOCK", "INT32_LIMIT", "GTBatch", "GTTables", "build_tables", "gt_digest", "prepare"]

# A track's pixel slots are summed in blocks of this many (each track's list is padded to a
# multiple of it).
BLOCK = 256
INT32_LIMIT = 2**31


class GTBatch(NamedTuple):
    """The ground truth of the videos of one batch, as the jitted update consumes it.

    Built on the host by :func:`prepare` (small: run lengths, not pixels). Padding rows (no
    video) have size 0 and no runs.

    Attributes:
        size: int32[B, 3] each video's (length, height, width).
        run_start: int32[B, U] first pixel of each foreground run of the video's ground-truth
            tracks, as a column-major position in its frame (``x * height + y``).
        run_length: int32[B, U] pixels of the run (0 for padding).
        run_frame: int32[B, U] frame of the run.
        run_slot: int32[B, U] ground-truth track of the run, as its position among the video's
            tracks in file order.
        run_offset: int32[B, U] position of the run's first pixel in the video's slot list
            (L for padding runs).
    """

    size: Any
    run_start: Any
    run_length: Any
    run_frame: Any
    run_slot: Any
    run_offset: Any


@dataclasses.dataclass(frozen=True)
class GTTables:
    """The ground truth's streaming tables (host, NumPy; built by :func:`build_tables`).

    Attributes:
        video_ids: int64[V] ascending.
        video_pos: video id -> row in the state.
        video_size: int64[V, 3] each video's (length, height, width).
        track_slot: int64[G] each ground-truth track's column in the state (its position
            among its video's tracks, file order).
        num_tracks: G, the most tracks of a video (>= 1).
        num_pixels: L, the most pixel slots of a video (a multiple of ``BLOCK``, >= ``BLOCK``).
        num_runs: U, the most foreground runs of a video (>= 1).
        run_start, run_length, run_frame, run_slot, run_offset: int32[U] every run, grouped
            by video then track (see :class:`GTBatch`).
        video_run_first: int64[V + 1] video v's runs are ``video_run_first[v]:[v + 1]``.
        fingerprint: uint8[16] :func:`gt_digest` of the ground truth.
    """

    video_ids: np.ndarray
    video_pos: dict[int, int]
    video_size: np.ndarray
    track_slot: np.ndarray
    num_tracks: int
    num_pixels: int
    num_runs: int
    run_start: np.ndarray
    run_length: np.ndarray
    run_frame: np.ndarray
    run_slot: np.ndarray
    run_offset: np.ndarray
    video_run_first: np.ndarray
    fingerprint: np.ndarray


def gt_digest(gt: GroundTruth) -> np.ndarray:
    """uint8[16]: a digest of everything the state's numbers depend on."""
    h = hashlib.sha256()
    h.update(gt.fingerprint.encode())
    for a in (
        gt.ann_id,
        gt.video_id,
        gt.masks.counts,
        gt.masks.run_start,
        gt.masks.present,
        gt.masks.frame_start,
    ):
        arr = np.ascontiguousarray(a)
        h.update(str(arr.dtype).encode())
        h.update(np.asarray(arr.shape, np.int64).tobytes())
        h.update(arr.tobytes())
    return np.frombuffer(h.digest()[:FINGERPRINT_BYTES], dtype=np.uint8).copy()


def _track_slots(gt: GroundTruth, video_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each track's video row and slot (position in its video, file order), and G."""
    n_v, n_g = len(gt.videos), int(gt.ann_id.shape[0])
    g_vpos = np.searchsorted(video_ids, gt.video_id).astype(np.int64)
    per_video = np.bincount(g_vpos, minlength=n_v) if n_g else np.zeros(n_v, np.int64)
    order = np.lexsort((np.arange(n_g), g_vpos))
    slot = np.empty(n_g, dtype=np.int64)
    slot[order] = ragged_arange(per_video) if n_g else order
    return g_vpos, slot, max(1, int(per_video.max()) if n_v else 1)


def _sorted_runs(gt: GroundTruth, g_vpos: np.ndarray, slot: np.ndarray) -> dict[str, np.ndarray]:
    """The non-empty foreground runs of every ground-truth frame, sorted by (video, slot)."""
    masks = gt.masks
    n_g = int(gt.ann_id.shape[0])
    runs = RunTable.from_masks(masks)
    n_frames = masks.present.shape[0]
    frames_per_track = np.diff(masks.frame_start)
    frame_track = np.repeat(np.arange(n_g, dtype=np.int64), frames_per_track)
    frame_t = np.arange(n_frames, dtype=np.int64) - np.repeat(
        masks.frame_start[:-1], frames_per_track
    )
    run_frame_id = np.repeat(np.arange(n_frames, dtype=np.int64), np.diff(runs.frame_first))
    length = runs.end.astype(np.int64) - runs.start.astype(np.int64)
    keep = np.flatnonzero(length > 0)
    run_track = frame_track[run_frame_id[keep]]
    order = np.lexsort((np.arange(keep.shape[0]), slot[run_track], g_vpos[run_track]))
    keep, run_track = keep[order], run_track[order]
    return {
        "start": runs.start[keep],
        "length": length[keep],
        "frame": frame_t[run_frame_id[keep]],
        "vpos": g_vpos[run_track],
        "slot": slot[run_track],
    }


def _pixel_offsets(
    vpos: np.ndarray, slot: np.ndarray, length: np.ndarray, n_v: int, g: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each run's first slot in its video's pixel list (tracks in slot order, each padded to a
    multiple of ``BLOCK``), and each video's number of slots."""
    key = vpos * g + slot
    tot = np.zeros(max(n_v, 1) * g, dtype=np.int64)
    np.add.at(tot, key, length)
    alloc = (-(-tot // BLOCK) * BLOCK).reshape(-1, g)
    base = (np.cumsum(alloc, axis=1) - alloc).reshape(-1)
    csum = np.cumsum(length) - length
    first_of_key = np.zeros(key.shape[0], dtype=np.int64)
    if key.size:
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        first_of_key = np.repeat(csum[starts], np.diff(np.append(starts, key.size)))
    return base[key] + csum - first_of_key, alloc.sum(axis=1)


def build_tables(gt: GroundTruth) -> GTTables:
    """The streaming tables of ``gt`` (host, once per ground truth).

    Raises:
        ValueError: a video's ground truth has too many foreground pixels for int32.
    """
    n_v = len(gt.videos)
    video_ids = np.asarray([v.id for v in gt.videos], dtype=np.int64)
    g_vpos, slot, num_tracks = _track_slots(gt, video_ids)
    runs = _sorted_runs(gt, g_vpos, slot)
    offset, video_pixels = _pixel_offsets(
        runs["vpos"], runs["slot"], runs["length"], n_v, num_tracks
    )
    num_pixels = int(max(BLOCK, int(video_pixels.max()) if n_v else 0))
    if num_pixels >= INT32_LIMIT:
        raise ValueError(
            f"a video's ground truth has {num_pixels} foreground pixels (padded), "
            "more than int32 can index"
        )
    video_run_first = np.searchsorted(runs["vpos"], np.arange(n_v + 1)).astype(np.int64)
    return GTTables(
        video_ids=video_ids,
        video_pos={int(v): i for i, v in enumerate(video_ids)},
        video_size=np.asarray(
            [[v.length, v.height, v.width] for v in gt.videos], dtype=np.int64
        ).reshape(-1, 3),
        track_slot=slot,
        num_tracks=num_tracks,
        num_pixels=num_pixels,
        num_runs=max(1, int(np.diff(video_run_first).max()) if n_v else 1),
        run_start=runs["start"].astype(np.int32),
        run_length=runs["length"].astype(np.int32),
        run_frame=runs["frame"].astype(np.int32),
        run_slot=runs["slot"].astype(np.int32),
        run_offset=offset.astype(np.int32),
        video_run_first=video_run_first,
        fingerprint=gt_digest(gt),
    )


def host_ints(x: Any, what: str) -> np.ndarray:
    """int64[B]: ``x`` as a 1-D integer array on the host.

    Raises:
        ValueError: ``x`` is not 1-D or not integer (named ``what``).
    """
    arr = np.asarray(jax.device_get(x))
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{what} must be a 1-D integer array, got {arr.dtype}{list(arr.shape)}")
    return arr.astype(np.int64)


def prepare(tables: GTTables, video_ids: Any, *, pad_video_id: int) -> tuple[np.ndarray, GTBatch]:
    """Host side of an update: the videos' rows in the state and their ground truth (NumPy).

    Args:
        tables: the ground truth's tables.
        video_ids: int[B] video ids; ``pad_video_id`` marks a padding row.
        pad_video_id: the id of padding rows.

    Returns:
        ``(video_pos, gt_batch)``: int32[B] each video's row in the state (-1 for padding) and
        its :class:`GTBatch`.

    Raises:
        ValueError: an unknown video id (named).
    """
    t = tables
    ids = host_ints(video_ids, "video_ids")
    b, u = ids.shape[0], t.num_runs
    pos = np.full(b, -1, dtype=np.int32)
    size = np.zeros((b, 3), dtype=np.int32)
    cols = [np.zeros((b, u), dtype=np.int32) for _ in range(4)]  # start, length, frame, slot
    offset = np.full((b, u), t.num_pixels, dtype=np.int32)
    for i, vid in enumerate(ids.tolist()):
        if vid == pad_video_id:
            continue
        p = t.video_pos.get(vid)
        if p is None:
            raise ValueError(f"video_ids[{i}] = {vid}: unknown video id (not in the ground truth)")
        pos[i] = p
        size[i] = t.video_size[p]
        r0, r1 = t.video_run_first[p], t.video_run_first[p + 1]
        for col, src in zip(
            cols, (t.run_start, t.run_length, t.run_frame, t.run_slot), strict=True
        ):
            col[i, : r1 - r0] = src[r0:r1]
        offset[i, : r1 - r0] = t.run_offset[r0:r1]
    return pos, GTBatch(size, *cols, offset)
