"""Streaming evaluation in JAX training loops: dense predicted masks in, the official numbers out.

A :class:`StreamingEvaluator` accumulates, batch by batch and on device, everything the official
OVIS / YouTube-VIS evaluation needs from the predictions, into a fixed-shape state
(:class:`StreamingState`, a pytree); :meth:`StreamingEvaluator.compute` then turns the state into
the same :class:`~ovis_jax.EvalResult` that :func:`ovis_jax.evaluate` returns for a results file
holding the same predictions::

    gt = ovis_jax.load_ground_truth("gt.json")
    ev = StreamingEvaluator(gt, max_predictions=20)
    state = ev.init()
    for video_ids, masks, scores, labels in batches:
        state = ev.update(state, video_ids, masks, scores, labels)
    result = ev.compute(state)  # == ovis_jax.evaluate(gt, the same predictions as a file)

Why this is exact: the official track IoU is ``I / (A_d + A_g - I)`` with integer intersections
and areas summed over the frames (SPEC step 6); a result's ``avg_area`` is its summed area
divided by its number of frames of non-zero area (step 2). So per prediction the state keeps its
exact intersection with every ground-truth track of its video, its total area and its number of
non-empty frames, plus its score, label and validity; grouping, matching and accumulation run at
:meth:`~StreamingEvaluator.compute` time on the host and device, with the code of the file path.

Intersections never make the ground truth dense: on device, the foreground runs of a video's
ground-truth masks (from the file's run lengths) are expanded into the list of their pixel
positions (P, each track padded to a multiple of 256 and the list to the largest video of the
ground truth, so shapes are fixed), the predictions are gathered at these positions and summed
per track. The work is N × P per video, independent of G and of the canvas size, and the counts
are exact int32 (a batch's canvas F × H × W must have fewer than 2^31 pixels; checked).

Conventions of dense predictions (all documented numbers refer to these):

* ``masks`` are ``[B, N, F, H, W]``: video b's frame t is ``masks[b, :, t, :h_b, :w_b]`` (row
  ``y``, column ``x``), frames ``t >= length_b`` and pixels outside ``h_b × w_b`` are padding
  and ignored whatever they hold. Boolean masks are used as they are; any other dtype is
  thresholded with ``masks >= 0.5`` (probabilities; for logits, threshold them yourself at 0 or
  use :func:`resize_masks` with ``threshold=0.0``), after JAX's conversion of the input to its
  default precision (float32 unless x64 is on).
* A frame whose mask is all zero counts as the official code counts a ``null`` frame: it adds
  nothing to the track's unions and is excluded from ``avg_area`` either way (SPEC steps 2, 6),
  so every number equals that of a results file holding the frame as an all-zero RLE or as
  ``null``.
* Scores are stored as float32 (the state's dtype) and evaluated as their exact float64 values:
  the results equal the file path's for a file whose scores are those float32 values written as
  Python floats. Ties between scores are broken by prediction index within a video, which is the
  file order when predictions are written video by video in index order (SPEC step 5).
* Labels are category ids; predictions whose label is not a ground-truth category are not
  evaluated (counted in a warning, as the file path does).

Shape legend: V videos of the ground truth (ascending id order), F frames, H×W pixels (the padded
canvas of a batch), B videos in a batch, N predictions per video (``max_predictions`` in the
state), G ground-truth tracks per video (the largest number over the ground truth), D results,
R ground-truth foreground runs per video, P ground-truth foreground pixel slots per video.

Device work is jitted and fixed-shape: one compilation per input shape and dtype, never a
retrace across batches of the same shape. JAX's global x64 flag is never changed (float64 work
at :meth:`~StreamingEvaluator.compute` runs under a scoped ``jax.enable_x64``).

Multiple devices: shard a batch over a :class:`jax.sharding.Mesh` along its first (batch) axis
(``jax.device_put(masks, NamedSharding(mesh, P("batch")))``); :meth:`~StreamingEvaluator.update`
places the ground-truth side of the batch the same way, and the per-video work runs on each
device for its shard. Multiple processes (``jax.distributed``): let each process update its own
state with the videos it evaluates (process-local arrays), then combine the states with
:meth:`~StreamingEvaluator.allgather` (``process_allgather`` then a tree of
:meth:`~StreamingEvaluator.merge`) and call :meth:`~StreamingEvaluator.compute` on any process.

Checkpoints: the state is a pytree of arrays and saves with ``orbax.checkpoint``
(``StandardCheckpointer`` or one item of a ``CheckpointManager``); it carries a fingerprint of
the ground truth (ids, sizes, categories and masks), so a state restored for other ground truth
is refused with a clear error by :meth:`~StreamingEvaluator.restore`,
:meth:`~StreamingEvaluator.validate`, ``update``, ``merge`` and ``compute``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ovis_jax._src.grouping import ragged_arange
from ovis_jax._src.iou import RunTable
from ovis_jax._src.jax_backend import evaluate_tracks
from ovis_jax._src.loading import GroundTruth
from ovis_jax._src.params import EvalParams
from ovis_jax._src.summary import EvalResult

__all__ = ["GTBatch", "StreamingEvaluator", "StreamingState", "resize_masks"]

logger = logging.getLogger(__name__)

# Foreground pixels of a ground-truth track are summed in blocks of this many (each track's pixel
# list is padded to a multiple of it, so that a block never mixes two tracks).
_BLOCK = 256
# Pixel counts sum groups of this many booleans in int8 first (see _count_pixels).
_GROUP = 32
_INT32_LIMIT = 2**31
_FINGERPRINT_BYTES = 16


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StreamingState:
    """What a :class:`StreamingEvaluator` accumulates: fixed shapes for the whole ground truth.

    Row v is the v-th video of the ground truth in ascending id order; column n is prediction n
    of that video (its index in the ``N`` axis of the batch that updated it).

    Attributes:
        inter: int32[V, N, G] exact intersection (pixels, summed over frames) of each prediction
            with each ground-truth track of its video; tracks in ground-truth file order.
        pred_area: int32[V, N] pixels of each prediction, summed over the video's frames.
        pred_frames: int32[V, N] number of frames in which the prediction has pixels.
        score: float32[V, N].
        label: int32[V, N] category ids.
        valid: bool[V, N] whether the entry is a real prediction.
        updated: bool[V] whether the video was updated (a video never updated has no
            predictions).
        conflict: bool[V] whether the video was updated more than once inside a jitted
            :meth:`StreamingEvaluator.update_fn` or :meth:`StreamingEvaluator.merge_fn`
            (:meth:`StreamingEvaluator.compute` then raises).
        fingerprint: uint8[16] identifies the ground truth the state was made for.
    """

    inter: jax.Array
    pred_area: jax.Array
    pred_frames: jax.Array
    score: jax.Array
    label: jax.Array
    valid: jax.Array
    updated: jax.Array
    conflict: jax.Array
    fingerprint: jax.Array


_FIELDS = tuple(f.name for f in dataclasses.fields(StreamingState))


class GTBatch(NamedTuple):
    """The ground truth of the videos of one batch, as the jitted update consumes it.

    Built on the host by :meth:`StreamingEvaluator.prepare` (small: run lengths, not pixels).
    Padding rows (no video) have size 0 and no runs.

    Attributes:
        size: int32[B, 3] each video's (length, height, width).
        run_start: int32[B, R] first pixel of each foreground run of the video's ground-truth
            tracks, as a column-major position in its frame (``x * height + y``).
        run_length: int32[B, R] pixels of the run (0 for padding).
        run_frame: int32[B, R] frame of the run.
        run_slot: int32[B, R] ground-truth track of the run, as its position among the video's
            tracks in file order.
        run_offset: int32[B, R] position of the run's first pixel in the video's pixel list
            (P for padding runs).
    """

    size: Any
    run_start: Any
    run_length: Any
    run_frame: Any
    run_slot: Any
    run_offset: Any


def _gt_digest(gt: GroundTruth) -> np.ndarray:
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
    return np.frombuffer(h.digest()[:_FINGERPRINT_BYTES], dtype=np.uint8).copy()


def _hex(fp: np.ndarray) -> str:
    return bytes(np.asarray(fp, dtype=np.uint8)).hex()


def _host_ints(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(jax.device_get(x))
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{what} must be a 1-D integer array, got {arr.dtype}{list(arr.shape)}")
    return arr.astype(np.int64)


class StreamingEvaluator:
    """Official OVIS / YouTube-VIS video mask AP from dense predictions, batch by batch.

    Args:
        gt: the validated ground truth (:func:`ovis_jax.load_ground_truth`).
        max_predictions: N, the most predictions per video (the batches' N axis may be smaller).
        params: evaluation parameters; the official ones by default.
        pad_video_id: the video id that marks a padding row of a batch (ignored); must not be
            a video id of the ground truth.

    Raises:
        ValueError: on a bad option, or ground truth too large for int32 pixel counting.
    """

    def __init__(
        self,
        gt: GroundTruth,
        *,
        max_predictions: int = 100,
        params: EvalParams | None = None,
        pad_video_id: int = -1,
    ) -> None:
        if not isinstance(gt, GroundTruth):
            raise TypeError("gt must be a GroundTruth (use ovis_jax.load_ground_truth)")
        if int(max_predictions) < 1:
            raise ValueError(f"max_predictions must be >= 1, got {max_predictions}")
        self.gt = gt
        self.params = params or EvalParams()
        self.max_predictions = int(max_predictions)
        self.pad_video_id = int(pad_video_id)
        self._video_ids = np.asarray([v.id for v in gt.videos], dtype=np.int64)
        if self.pad_video_id in set(self._video_ids.tolist()):
            raise ValueError(
                f"pad_video_id {self.pad_video_id} is a video id of the ground truth: choose "
                "another one"
            )
        self._video_pos = {int(v): i for i, v in enumerate(self._video_ids)}
        self._video_size = np.asarray(
            [[v.length, v.height, v.width] for v in gt.videos], dtype=np.int64
        ).reshape(-1, 3)
        self._fingerprint = _gt_digest(gt)
        self._build_gt_tables()
        self._abstract = jax.eval_shape(self.init)
        self._update_jit = jax.jit(self._update_core)
        self._merge_jit = jax.jit(self.merge_fn)

    # ----------------------------------------------------------------------------------------
    # Ground-truth tables (host, once)

    def _build_gt_tables(self) -> None:
        gt = self.gt
        n_v = len(gt.videos)
        n_g = int(gt.ann_id.shape[0])
        g_vpos = np.searchsorted(self._video_ids, gt.video_id).astype(np.int64)
        per_video = np.bincount(g_vpos, minlength=n_v) if n_g else np.zeros(n_v, np.int64)
        order = np.lexsort((np.arange(n_g), g_vpos))
        slot = np.empty(n_g, dtype=np.int64)
        slot[order] = ragged_arange(per_video) if n_g else order
        self._g_slot = slot
        self._g_vpos = g_vpos
        self.num_slots = max(1, int(per_video.max()) if n_v else 1)

        # Foreground runs of every ground-truth frame, grouped by (video, slot).
        masks = gt.masks
        runs = RunTable.from_masks(masks)
        n_frames = masks.present.shape[0]
        frames_per_track = np.diff(masks.frame_start)
        frame_track = np.repeat(np.arange(n_g, dtype=np.int64), frames_per_track)
        frame_t = np.arange(n_frames, dtype=np.int64) - np.repeat(
            masks.frame_start[:-1], frames_per_track
        )
        run_frame_id = np.repeat(np.arange(n_frames, dtype=np.int64), np.diff(runs.frame_first))
        run_track = frame_track[run_frame_id]
        length = runs.end.astype(np.int64) - runs.start.astype(np.int64)
        keep = np.flatnonzero(length > 0)
        run_track, length = run_track[keep], length[keep]
        run_vpos = g_vpos[run_track]
        run_slot = slot[run_track]
        order = np.lexsort((np.arange(keep.shape[0]), run_slot, run_vpos))
        keep, run_track, length = keep[order], run_track[order], length[order]
        run_vpos, run_slot = run_vpos[order], run_slot[order]
        # Pixel list of a video: its tracks' pixels, track by track (slot order), each track
        # padded to a multiple of _BLOCK.
        g = self.num_slots
        key = run_vpos * g + run_slot
        tot = np.zeros(max(n_v, 1) * g, dtype=np.int64)
        np.add.at(tot, key, length)
        alloc = (-(-tot // _BLOCK) * _BLOCK).reshape(-1, g)
        base = (np.cumsum(alloc, axis=1) - alloc).reshape(-1)
        csum = np.cumsum(length) - length
        first_of_key = np.zeros(key.shape[0], dtype=np.int64)
        if key.size:
            starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
            first_of_key = np.repeat(csum[starts], np.diff(np.append(starts, key.size)))
        offset = base[key] + csum - first_of_key
        video_pixels = alloc.sum(axis=1)
        self.num_pixels = int(max(_BLOCK, int(video_pixels.max()) if n_v else 0))
        if self.num_pixels >= _INT32_LIMIT:
            raise ValueError(
                f"a video's ground truth has {self.num_pixels} foreground pixels (padded), "
                "more than int32 can index"
            )
        self._run_start = runs.start[keep].astype(np.int32)
        self._run_length = length.astype(np.int32)
        self._run_frame = frame_t[run_frame_id[keep]].astype(np.int32)
        self._run_slot = run_slot.astype(np.int32)
        self._run_offset = offset.astype(np.int32)
        self._video_run_first = np.searchsorted(run_vpos, np.arange(n_v + 1)).astype(np.int64)
        self.num_runs = max(1, int(np.diff(self._video_run_first).max()) if n_v else 1)

    # ----------------------------------------------------------------------------------------
    # State

    @property
    def num_videos(self) -> int:
        """V, the number of videos of the ground truth."""
        return len(self.gt.videos)

    def abstract_state(self) -> StreamingState:
        """The state's shapes and dtypes (``jax.ShapeDtypeStruct`` leaves), e.g. as the target of
        ``ocp.args.StandardRestore``."""
        return self._abstract

    def init(self) -> StreamingState:
        """An empty state: no video updated."""
        v, n, g = self.num_videos, self.max_predictions, self.num_slots
        return StreamingState(
            inter=jnp.zeros((v, n, g), jnp.int32),
            pred_area=jnp.zeros((v, n), jnp.int32),
            pred_frames=jnp.zeros((v, n), jnp.int32),
            score=jnp.zeros((v, n), jnp.float32),
            label=jnp.zeros((v, n), jnp.int32),
            valid=jnp.zeros((v, n), jnp.bool_),
            updated=jnp.zeros((v,), jnp.bool_),
            conflict=jnp.zeros((v,), jnp.bool_),
            fingerprint=jnp.asarray(self._fingerprint),
        )

    def validate(self, state: StreamingState | Mapping[str, Any]) -> StreamingState:
        """Checks that a state (or the dict ``orbax`` restores without a target) was made by an
        evaluator of this ground truth and these options.

        Returns:
            The state as a :class:`StreamingState` (leaves unchanged, or as restored).

        Raises:
            ValueError: the state belongs to other ground truth (named by fingerprint) or has
                other shapes (another ``max_predictions``), or is not an evaluator state.
        """
        if isinstance(state, Mapping):
            missing = [f for f in _FIELDS if f not in state]
            if missing:
                raise ValueError(
                    f"not a StreamingEvaluator state: missing {', '.join(missing)} "
                    f"(has {', '.join(map(str, state))})"
                )
            state = StreamingState(**{f: state[f] for f in _FIELDS})
        if not isinstance(state, StreamingState):
            raise TypeError(f"expected a StreamingState, got {type(state).__name__}")
        fp = np.asarray(jax.device_get(state.fingerprint))
        if fp.shape != self._fingerprint.shape or not np.array_equal(fp, self._fingerprint):
            raise ValueError(
                f"this evaluator state was made for other ground truth (fingerprint "
                f"{_hex(fp.reshape(-1)[:_FINGERPRINT_BYTES])}; this evaluator's ground truth "
                f"has {_hex(self._fingerprint)}): use it with the evaluator of the ground truth "
                "it was made for"
            )
        expected = self.abstract_state()
        for name in _FIELDS:
            got, want = getattr(state, name), getattr(expected, name)
            if tuple(np.shape(got)) != tuple(want.shape) or np.dtype(got.dtype) != want.dtype:
                raise ValueError(
                    f"evaluator state field {name!r} is {np.dtype(got.dtype)}"
                    f"{list(np.shape(got))}, expected {want.dtype}{list(want.shape)} (was it "
                    f"made with max_predictions={self.max_predictions}?)"
                )
        return state

    def restore(self, directory: Any, checkpointer: Any = None) -> StreamingState:
        """Restores a state saved with ``orbax.checkpoint`` and checks it is for this ground
        truth.

        Args:
            directory: the checkpoint directory (what was given to ``checkpointer.save``).
            checkpointer: an ``orbax.checkpoint`` checkpointer; a ``StandardCheckpointer`` by
                default.

        Returns:
            The state.

        Raises:
            ValueError: the checkpoint holds a state of other ground truth or other shapes.
        """
        import orbax.checkpoint as ocp

        ckpt = checkpointer or ocp.StandardCheckpointer()
        raw = ckpt.restore(directory)
        if isinstance(raw, StreamingState):
            return self.validate(raw)
        if not isinstance(raw, Mapping):
            raise ValueError(f"{directory}: not a StreamingEvaluator state")
        return self.validate(raw)

    # ----------------------------------------------------------------------------------------
    # Update

    def prepare(self, video_ids: Any) -> tuple[np.ndarray, GTBatch]:
        """Host side of an update: the videos' positions and ground truth (NumPy).

        Args:
            video_ids: int[B] video ids; ``pad_video_id`` marks a padding row.

        Returns:
            ``(video_pos, gt_batch)``: int32[B] each video's row in the state (-1 for padding)
            and its :class:`GTBatch`, the inputs of :meth:`update_fn`.

        Raises:
            ValueError: an unknown video id (named).
        """
        ids = _host_ints(video_ids, "video_ids")
        b, r = ids.shape[0], self.num_runs
        pos = np.full(b, -1, dtype=np.int32)
        size = np.zeros((b, 3), dtype=np.int32)
        start = np.zeros((b, r), dtype=np.int32)
        length = np.zeros((b, r), dtype=np.int32)
        frame = np.zeros((b, r), dtype=np.int32)
        slot = np.zeros((b, r), dtype=np.int32)
        offset = np.full((b, r), self.num_pixels, dtype=np.int32)
        for i, vid in enumerate(ids.tolist()):
            if vid == self.pad_video_id:
                continue
            p = self._video_pos.get(vid)
            if p is None:
                raise ValueError(
                    f"video_ids[{i}] = {vid}: unknown video id (not in the ground truth)"
                )
            pos[i] = p
            size[i] = self._video_size[p]
            r0, r1 = self._video_run_first[p], self._video_run_first[p + 1]
            n = r1 - r0
            start[i, :n] = self._run_start[r0:r1]
            length[i, :n] = self._run_length[r0:r1]
            frame[i, :n] = self._run_frame[r0:r1]
            slot[i, :n] = self._run_slot[r0:r1]
            offset[i, :n] = self._run_offset[r0:r1]
        return pos, GTBatch(size, start, length, frame, slot, offset)

    def update(
        self,
        state: StreamingState,
        video_ids: Any,
        masks: Any,
        scores: Any,
        labels: Any,
        valid: Any = None,
    ) -> StreamingState:
        """Adds the predictions of a batch of videos.

        Checks on the host (so it waits for the previous update of ``state``): known video ids,
        each video updated once (not already in ``state``, not twice in the batch), each
        video's length, height and width within the canvas ``F, H, W``. Then runs the jitted
        :meth:`update_fn`. A batch sharded over devices along its first axis stays sharded.

        Args:
            state: the state so far.
            video_ids: int[B] video ids; ``pad_video_id`` marks a padding row (ignored).
            masks: bool or float[B, N, F, H, W] each video's predicted masks at the video's size,
                zero-padded (see the module docstring); N <= ``max_predictions``.
            scores: float[B, N].
            labels: int[B, N] category ids.
            valid: bool[B, N] which entries are real predictions; all by default.

        Returns:
            The new state.

        Raises:
            ValueError: a bad shape, an unknown video, a video updated twice (named), a state of
                other ground truth.
        """
        state = self.validate(state)
        ids = _host_ints(video_ids, "video_ids")
        updated = np.asarray(jax.device_get(state.updated))
        shape = tuple(np.shape(masks))
        if len(shape) != 5 or shape[0] != ids.shape[0]:
            raise ValueError(
                f"masks must be [B, N, F, H, W] with B = len(video_ids) = {ids.shape[0]}, got "
                f"shape {list(shape)}"
            )
        self._check_shapes(shape, scores, labels, valid)
        pos, gt_batch = self.prepare(ids)
        seen: dict[int, int] = {}
        for i, p in enumerate(pos.tolist()):
            if p < 0:
                continue
            vid = int(ids[i])
            if updated[p]:
                raise ValueError(
                    f"video {vid} (video_ids[{i}]) was already updated in this state: each "
                    "video's predictions must be given in exactly one update"
                )
            if p in seen:
                raise ValueError(
                    f"video {vid} appears twice in this batch (video_ids[{seen[p]}] and "
                    f"video_ids[{i}]): each video's predictions must be given once"
                )
            seen[p] = i
            length, height, width = self._video_size[p].tolist()
            if length > shape[2] or height > shape[3] or width > shape[4]:
                raise ValueError(
                    f"video {vid} (video_ids[{i}]) has {length} frames of {height}x{width} "
                    f"pixels, more than the masks' canvas of {shape[2]} frames of "
                    f"{shape[3]}x{shape[4]}"
                )
        sharding = _batch_sharding(masks)
        video_pos = pos if sharding is None else jax.device_put(pos, sharding)
        if sharding is not None:
            gt_batch = GTBatch(*(jax.device_put(x, sharding) for x in gt_batch))
        return self._update_jit(state, gt_batch, video_pos, masks, scores, labels, valid)

    def _check_shapes(self, shape: tuple[int, ...], scores: Any, labels: Any, valid: Any) -> None:
        b, n, f, h, w = shape
        if n > self.max_predictions:
            raise ValueError(
                f"masks have N = {n} predictions per video, more than max_predictions = "
                f"{self.max_predictions}"
            )
        if f * h * w >= _INT32_LIMIT:
            raise ValueError(
                f"a canvas of {f} frames of {h}x{w} pixels has 2^31 or more pixels: int32 "
                "pixel counts could overflow; evaluate such a video in a batch of its own size"
            )
        for name, x in (("scores", scores), ("labels", labels), ("valid", valid)):
            if x is not None and tuple(np.shape(x)) != (b, n):
                raise ValueError(f"{name} must be [B, N] = {[b, n]}, got {list(np.shape(x))}")

    @property
    def update_fn(self):
        """The pure, jitted core of :meth:`update`, to call inside your own ``jax.jit``.

        ``update_fn(state, gt_batch, video_pos, masks, scores, labels, valid) -> state`` with
        ``video_pos, gt_batch = ev.prepare(video_ids)`` (host, e.g. in the data pipeline) and
        the other arguments as for :meth:`update` (``valid`` may be None). Nothing is checked
        on the host here: the canvas must hold every video of the batch, and a video already
        updated (in ``state`` or earlier in the batch) is not overwritten but marked in
        ``state.conflict``, and :meth:`compute` then raises naming it.
        """
        return self._update_jit

    def _update_core(self, state, gt_batch, video_pos, masks, scores, labels, valid):
        b, n, f, h, w = masks.shape
        n_v, n_max, _ = state.inter.shape
        if n > n_max:
            raise ValueError(f"masks have N = {n} predictions, more than max_predictions {n_max}")
        if f * h * w >= _INT32_LIMIT:
            raise ValueError(f"a canvas of {f}x{h}x{w} pixels overflows int32 pixel counts")
        fg = masks if masks.dtype == jnp.bool_ else masks >= 0.5
        if valid is None:
            valid = jnp.ones((b, n), jnp.bool_)
        inter, area, frames = jax.vmap(self._video_core)(fg, *gt_batch)
        pad = n_max - n

        def widen(x, fill=0):
            return jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2), constant_values=fill)

        pos = jnp.asarray(video_pos, jnp.int32)
        real = pos >= 0
        safe = jnp.where(real, pos, 0)
        already = state.updated[safe] & real
        earlier = (pos[None, :] == pos[:, None]) & jnp.tril(jnp.ones((b, b), jnp.bool_), k=-1)
        conflict = real & (already | jnp.any(earlier, axis=1))
        write = jnp.where(real & ~conflict, pos, n_v)  # out of bounds: dropped
        mark = jnp.where(conflict, pos, n_v)

        def put(old, new):
            return old.at[write].set(new.astype(old.dtype), mode="drop")

        return StreamingState(
            inter=put(state.inter, widen(inter)),
            pred_area=put(state.pred_area, widen(area)),
            pred_frames=put(state.pred_frames, widen(frames)),
            score=put(state.score, widen(jnp.asarray(scores, jnp.float32))),
            label=put(state.label, widen(jnp.asarray(labels, jnp.int32))),
            valid=put(state.valid, widen(jnp.asarray(valid, jnp.bool_), False)),
            updated=state.updated.at[write].set(True, mode="drop"),
            conflict=state.conflict.at[mark].set(True, mode="drop"),
            fingerprint=state.fingerprint,
        )

    def _video_core(self, fg, size, run_start, run_length, run_frame, run_slot, run_offset):
        """One video: fg bool[N, F, H, W] -> inter int32[N, G], area int32[N], frames int32[N].

        The intersections gather the predictions at the ground truth's foreground pixels (P of
        them, padded): the work is proportional to N × P, not to the canvas or to G.
        """
        n, f, h, w = fg.shape
        length, height, width = size[0], size[1], size[2]
        region = (
            (jnp.arange(f) < length)[:, None, None]
            & (jnp.arange(h) < height)[None, :, None]
            & (jnp.arange(w) < width)[None, None, :]
        )
        frame_area = _count_pixels(fg & region)  # [N, F]
        area = jnp.sum(frame_area, axis=1, dtype=jnp.int32)
        frames = jnp.sum(frame_area > 0, axis=1, dtype=jnp.int32)
        # Pixel k of the video's pixel list belongs to run rid[k] (runs sorted by offset).
        num_p, num_r = self.num_pixels, run_start.shape[0]
        k = jnp.arange(num_p, dtype=jnp.int32)
        starts = jnp.zeros(num_p, jnp.int32).at[run_offset].add(1, mode="drop")
        rid = jnp.cumsum(starts, dtype=jnp.int32) - 1
        rc = jnp.clip(rid, 0, num_r - 1)
        within = k - run_offset[rc]
        ok = (rid >= 0) & (within < run_length[rc])
        p = run_start[rc] + within  # column-major position in the video's frame
        col_h = jnp.maximum(height, 1)
        flat = (run_frame[rc] * h + p % col_h) * w + p // col_h
        flat = jnp.where(ok, flat, 0)
        hit = jnp.take(fg.reshape(n, f * h * w), flat, axis=1) & ok[None, :]  # [N, P]
        blocks = jnp.sum(
            jnp.sum(
                hit.reshape(n, num_p // _BLOCK, _BLOCK // _GROUP, _GROUP), axis=3, dtype=jnp.int8
            ),
            axis=2,
            dtype=jnp.int32,
        )
        block_slot = run_slot[rc[::_BLOCK]]
        inter = jax.ops.segment_sum(
            blocks.T, block_slot, num_segments=self.num_slots, indices_are_sorted=True
        ).T
        return inter, area, frames

    # ----------------------------------------------------------------------------------------
    # Merge

    @staticmethod
    def merge_fn(a: StreamingState, b: StreamingState) -> StreamingState:
        """Pure, jittable merge of two states (the caller's duty: same ground truth, disjoint
        videos). A video updated in both keeps ``b``'s row and is marked in ``conflict``
        (:meth:`compute` then raises); the fingerprint is ``a``'s."""

        def pick(x, y):
            sel = b.updated.reshape(b.updated.shape + (1,) * (x.ndim - 1))
            return jnp.where(sel, y, x)

        return StreamingState(
            inter=pick(a.inter, b.inter),
            pred_area=pick(a.pred_area, b.pred_area),
            pred_frames=pick(a.pred_frames, b.pred_frames),
            score=pick(a.score, b.score),
            label=pick(a.label, b.label),
            valid=pick(a.valid, b.valid),
            updated=a.updated | b.updated,
            conflict=a.conflict | b.conflict | (a.updated & b.updated),
            fingerprint=a.fingerprint,
        )

    def merge(self, a: StreamingState, b: StreamingState) -> StreamingState:
        """Combines two states of disjoint sets of videos (e.g. of two devices or processes).

        Associative and commutative, so any tree of merges gives the same state.

        Raises:
            ValueError: a state of other ground truth, or a video updated in both (named).
        """
        a, b = self.validate(a), self.validate(b)
        ha, hb = jax.device_get((a, b))
        both = np.flatnonzero(np.asarray(ha.updated) & np.asarray(hb.updated))
        if both.size:
            ids = ", ".join(str(int(self._video_ids[i])) for i in both[:10])
            raise ValueError(
                f"video(s) {ids}{', ...' if both.size > 10 else ''} were updated in both states: "
                "merge combines states of disjoint sets of videos"
            )
        return self._merge_jit(ha, hb)

    def merge_stacked(self, stacked: StreamingState) -> StreamingState:
        """Merges states stacked along a new leading axis (e.g. ``process_allgather``'s
        output), as a tree of :meth:`merge`."""
        host = jax.device_get(stacked)
        count = int(np.shape(host.updated)[0])
        states = [jax.tree_util.tree_map(lambda x, i=i: x[i], host) for i in range(count)]
        if not states:
            raise ValueError("no states to merge")
        while len(states) > 1:
            pairs = [
                self.merge(states[i], states[i + 1]) if i + 1 < len(states) else states[i]
                for i in range(0, len(states), 2)
            ]
            states = pairs
        return self.validate(jax.tree_util.tree_map(jnp.asarray, states[0]))

    def allgather(self, state: StreamingState) -> StreamingState:
        """Under ``jax.distributed``: the merge of every process's state (call it on every
        process; each process must have updated a disjoint set of videos).

        ``jax.experimental.multihost_utils.process_allgather`` of the state, then
        :meth:`merge_stacked`. With one process it returns the state unchanged.
        """
        from jax.experimental import multihost_utils

        state = self.validate(state)
        return self.merge_stacked(multihost_utils.process_allgather(state, tiled=False))

    # ----------------------------------------------------------------------------------------
    # Compute

    def compute(self, state: StreamingState) -> EvalResult:
        """The official numbers of the predictions in ``state``.

        Equal (to the last bit) to :func:`ovis_jax.evaluate` on a results file with the same
        predictions written video by video in prediction order (see the module docstring).

        Raises:
            ValueError: a state of other ground truth, a video updated more than once inside a
                jitted update or merge (named), a non-finite score (named).
        """
        state = self.validate(state)
        host = jax.device_get(state)
        conflict = np.flatnonzero(np.asarray(host.conflict))
        if conflict.size:
            ids = ", ".join(str(int(self._video_ids[i])) for i in conflict[:10])
            raise ValueError(
                f"video(s) {ids}{', ...' if conflict.size > 10 else ''} were updated more than "
                "once (in update_fn or merge_fn): their predictions are not reliable"
            )
        sel = np.asarray(host.valid) & np.asarray(host.updated)[:, None]
        d_v, d_n = np.nonzero(sel)  # video ascending, then prediction index: "file order"
        score = np.asarray(host.score)[d_v, d_n].astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(score))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"video {int(self._video_ids[d_v[i]])}, prediction {int(d_n[i])}: score "
                f"{score[i]} is not finite"
            )
        label = np.asarray(host.label)[d_v, d_n].astype(np.int64)
        known = np.isin(label, self.gt.category_ids)
        warnings: list[str] = []
        if d_v.size == 0:
            warnings.append("the results list is empty: every AP is 0 where ground truth exists")
        unknown = np.unique(label[~known])
        if unknown.size:
            shown = ", ".join(str(int(c)) for c in unknown[:10]) + (
                ", ..." if unknown.size > 10 else ""
            )
            warnings.append(
                f"{int((~known).sum())} result(s) have a category_id not in the ground truth "
                f"({shown}) and are not evaluated"
            )
        for w in warnings:
            logger.warning(w)
        d_v, d_n, score, label = d_v[known], d_n[known], score[known], label[known]
        area = np.asarray(host.pred_area)[d_v, d_n].astype(np.int64)
        frames = np.asarray(host.pred_frames)[d_v, d_n].astype(np.int64)
        avg_area = np.divide(
            area.astype(np.float64),
            frames,
            out=np.zeros(area.shape[0], dtype=np.float64),
            where=frames > 0,
        )
        inter = np.asarray(host.inter)
        return evaluate_tracks(
            self.gt,
            video_id=self._video_ids[d_v],
            category_id=label,
            score=score,
            avg_area=avg_area,
            area=area,
            pair_intersections=lambda d, g: inter[d_v[d], d_n[d], self._g_slot[g]].astype(np.int64),
            params=self.params,
            warnings=tuple(warnings),
        )


def _count_pixels(x: jax.Array) -> jax.Array:
    """int32[...]: the number of True pixels of bool[..., H, W] masks.

    Sums groups of ``_GROUP`` pixels of a row in int8 first: XLA:CPU reduces a long boolean
    axis into int32 several times slower than this two-level sum.
    """
    *lead, h, w = x.shape
    q = w // _GROUP
    total = jnp.zeros(tuple(lead), jnp.int32)
    if q:
        rows = jnp.sum(x[..., : q * _GROUP].reshape(*lead, h, q, _GROUP), axis=-1, dtype=jnp.int8)
        total = total + jnp.sum(rows, axis=(-2, -1), dtype=jnp.int32)
    if w > q * _GROUP:
        total = total + jnp.sum(x[..., q * _GROUP :], axis=(-2, -1), dtype=jnp.int32)
    return total


def _batch_sharding(masks: Any) -> jax.sharding.Sharding | None:
    """The sharding of a batch's first axis when ``masks`` is split along it, else None."""
    sharding = getattr(masks, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return None
    spec = tuple(sharding.spec)
    if not spec or spec[0] is None:
        return None
    return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(spec[0]))


@functools.partial(jax.jit, static_argnames=("canvas", "method", "antialias"))
def resize_masks(
    masks: jax.Array,
    video_sizes: jax.Array,
    *,
    canvas: tuple[int, int],
    threshold: float = 0.5,
    method: str = "linear",
    antialias: bool = True,
) -> jax.Array:
    """Resizes model-resolution masks to each video's own size, on a padded canvas, and
    thresholds them: the ``masks`` input of :meth:`StreamingEvaluator.update`.

    For video b of size ``(h_b, w_b)``: ``out[b, ..., :h_b, :w_b]`` is
    ``jax.image.resize(masks[b], (N, F, h_b, w_b), method, antialias) >= threshold`` and every
    other pixel of the ``H × W`` canvas is False. It is computed with
    ``jax.image.scale_and_translate`` (scale ``h_b / h``, ``w_b / w``, no translation; the same
    kernel, antialiasing when downsampling, and edge handling as ``jax.image.resize``), so the
    per-video sizes may be traced values; the scale factors are float32, so values can differ
    from ``jax.image.resize``'s by float32 rounding. Frames are not resized.

    Args:
        masks: float[B, N, F, h, w] probabilities (or logits, with ``threshold=0.0``:
            ``sigmoid(x) >= 0.5`` exactly when ``x >= 0``) at the model's resolution.
        video_sizes: int[B, 2] each video's (height, width); <= canvas. Padding rows may use
            (0, 0) (all False).
        canvas: (H, W) static canvas size, e.g. the largest video size of the dataset.
        threshold: foreground where the resized value is >= threshold.
        method: ``"linear"`` (bilinear, default), ``"cubic"``, ``"lanczos3"`` or
            ``"lanczos5"``.
        antialias: as in ``jax.image.resize``.

    Returns:
        bool[B, N, F, H, W].
    """
    _, n, f, h, w = masks.shape
    big_h, big_w = canvas
    sizes = jnp.asarray(video_sizes, jnp.int32)

    def one(x, size):
        scale = jnp.maximum(size, 1).astype(jnp.float32) / jnp.asarray([h, w], jnp.float32)
        y = jax.image.scale_and_translate(
            x.astype(jnp.promote_types(x.dtype, jnp.float32)),
            (n, f, big_h, big_w),
            (2, 3),
            scale,
            jnp.zeros(2, jnp.float32),
            method=method,
            antialias=antialias,
        )
        region = (jnp.arange(big_h) < size[0])[:, None] & (jnp.arange(big_w) < size[1])[None, :]
        return (y >= threshold) & region

    return jax.vmap(one)(masks, sizes)
