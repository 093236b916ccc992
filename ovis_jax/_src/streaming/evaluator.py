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
and areas summed over the frames (metric step 6); a result's ``avg_area`` is its summed area
divided by its number of frames of non-zero area (step 2). So per prediction the state keeps its
exact intersection with every ground-truth track of its video, its total area and its number of
non-empty frames, plus its score, label and validity; grouping, matching and accumulation run at
:meth:`~StreamingEvaluator.compute` time on the host and device, with the code of the file path.

Intersections never make the ground truth dense: on device, the foreground runs of a video's
ground-truth masks (from the file's run lengths) are expanded into the list of their pixel
positions (L pixel slots, each track padded to a multiple of 256 and the list to the largest
video of the ground truth, so shapes are fixed), the predictions are gathered at these positions
and summed per track. The work is N × L per video, independent of G and of the canvas size, and
the counts are exact int32 (a batch's canvas F × H × W must have fewer than 2^31 pixels; checked).

Conventions of dense predictions (all documented numbers refer to these):

* ``masks`` are ``[B, N, F, H, W]``: video b's frame t is ``masks[b, :, t, :h_b, :w_b]`` (row
  ``y``, column ``x``), frames ``t >= length_b`` and pixels outside ``h_b × w_b`` are padding
  and ignored whatever they hold. Boolean masks are used as they are; any other dtype is
  thresholded with ``masks >= 0.5`` (probabilities; for logits, threshold them yourself at 0 or
  use :func:`resize_masks` with ``threshold=0.0``), after JAX's conversion of the input to its
  default precision (float32 unless x64 is on).
* A frame whose mask is all zero counts as the official code counts a ``null`` frame: it adds
  nothing to the track's unions and is excluded from ``avg_area`` either way (metric steps 2, 6),
  so every number equals that of a results file holding the frame as an all-zero RLE or as
  ``null``.
* Scores are stored as float32 (the state's dtype) and evaluated as their exact float64 values:
  the results equal the file path's for a file whose scores are those float32 values written as
  Python floats. Ties between scores are broken by prediction index within a video, which is the
  file order when predictions are written video by video in index order (metric step 5).
* Labels are category ids, held to the rules of a results file's ``category_id``: an integer
  dtype and values in int64 (64-bit ids are kept exactly, as two int32 halves in the state);
  anything else is a ``ValueError`` naming the video and prediction. Predictions whose label is
  not a ground-truth category are not evaluated (counted in a warning, as the file path does).

Shapes follow the legend of :mod:`ovis_jax._src.legend`: V videos of the ground truth
(ascending id order), F frames, H×W pixels (the padded canvas of a batch), B videos in a batch,
N predictions per video (``max_predictions`` in the state), G ground-truth tracks per video (the
largest number over the ground truth), U foreground runs and L pixel slots per video.

Layout: the state and its algebra (``merge``, ``reduce``) are in
:mod:`~ovis_jax._src.streaming.state`, the ground truth's host tables and ``prepare`` in
:mod:`~ovis_jax._src.streaming.tables`, the jitted per-video core in
:mod:`~ovis_jax._src.streaming.core`; this module is the host façade.

Device work is jitted and fixed-shape: one compilation per input shape and dtype, never a
retrace across batches of the same shape. ``update`` does not wait for the device: a video given
twice is caught at ``compute`` (from the state's ``conflict`` flags), or at once with
``update(..., check=True)``, which reads the state back to the host. JAX's global x64 flag is
never changed (float64 work at :meth:`~StreamingEvaluator.compute` runs under a scoped
``jax.enable_x64``).

Multiple devices: shard a batch over a :class:`jax.sharding.Mesh` along its first (batch) axis
(``jax.device_put(masks, NamedSharding(mesh, P("batch")))``); :meth:`~StreamingEvaluator.update`
places the ground-truth side of the batch the same way, and the per-video work runs on each
device for its shard. Multiple processes (``jax.distributed``): let each process update its own
state with the videos it evaluates (process-local arrays), then combine the states with
:meth:`~StreamingEvaluator.allgather` (``process_allgather`` then
:meth:`StreamingState.reduce`, a scan of :meth:`StreamingState.merge`) and call
:meth:`~StreamingEvaluator.compute` on any process.

Checkpoints: the state is a pytree of arrays and saves with ``orbax.checkpoint``
(``StandardCheckpointer`` or one item of a ``CheckpointManager``); it carries a fingerprint of
the ground truth (ids, sizes, categories and masks), so a state restored for other ground truth
is refused with a clear error by :meth:`~StreamingEvaluator.restore`,
:meth:`~StreamingEvaluator.validate`, ``update``, ``merge`` and ``compute``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from ovis_jax._src import messages
from ovis_jax._src.backends.jax.backend import evaluate_tracks
from ovis_jax._src.io.model import GroundTruth
from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.params import EvalParams
from ovis_jax._src.streaming.core import (
    batch_sharding,
    resize_masks,
    update_state,
    update_state_jit,
)
from ovis_jax._src.streaming.labels import host_labels, join_labels
from ovis_jax._src.streaming.state import StreamingState, check_fingerprint, check_like
from ovis_jax._src.streaming.tables import INT32_LIMIT, GTBatch, build_tables, host_ints, prepare

__all__ = ["GTBatch", "StreamingEvaluator", "StreamingState", "resize_masks"]

logger = logging.getLogger(__name__)


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
        self.tables = build_tables(gt)
        if self.pad_video_id in self.tables.video_pos:
            raise ValueError(
                f"pad_video_id {self.pad_video_id} is a video id of the ground truth: choose "
                "another one"
            )
        self.num_slots = self.tables.num_tracks  # G
        self.num_pixels = self.tables.num_pixels  # L
        self.num_runs = self.tables.num_runs  # U
        self._fingerprint = self.tables.fingerprint
        self._fingerprint_dev = jax.numpy.asarray(self._fingerprint)
        self._abstract = jax.eval_shape(self.init)
        core = functools.partial(
            update_state, num_pixels=self.num_pixels, num_tracks=self.num_slots
        )
        self._update_jit = jax.jit(core)
        self._merge_jit = jax.jit(StreamingState.merge)
        self._reduce_jit = jax.jit(StreamingState.reduce)

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
        state = StreamingState.empty(
            num_videos=self.num_videos,
            max_predictions=self.max_predictions,
            num_tracks=self.num_slots,
            fingerprint=self._fingerprint,
        )
        return self._own_fingerprint(state)

    def _own_fingerprint(self, state: StreamingState) -> StreamingState:
        """``state`` holding this evaluator's fingerprint array (known good: never read back)."""
        if isinstance(state.fingerprint, jax.ShapeDtypeStruct):
            return state
        return StreamingState(**{**vars(state), "fingerprint": self._fingerprint_dev})

    def validate(self, state: StreamingState | Mapping[str, Any]) -> StreamingState:
        """Checks that a state (or the dict ``orbax`` restores without a target) was made by an
        evaluator of this ground truth and these options.

        A state whose fingerprint is this evaluator's own array (from :meth:`init` or
        :meth:`update`) is not read back from the device.

        Returns:
            The state as a :class:`StreamingState` (leaves unchanged, or as restored).

        Raises:
            ValueError: the state belongs to other ground truth (named by fingerprint) or has
                other shapes (another ``max_predictions``), or is not an evaluator state.
        """
        if isinstance(state, Mapping):
            state = StreamingState.from_mapping(state)
        if not isinstance(state, StreamingState):
            raise TypeError(f"expected a StreamingState, got {type(state).__name__}")
        if state.fingerprint is not self._fingerprint_dev:
            check_fingerprint(jax.device_get(state.fingerprint), self._fingerprint)
        check_like(state, self._abstract, self.max_predictions)
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

        raw = (checkpointer or ocp.StandardCheckpointer()).restore(directory)
        if not isinstance(raw, StreamingState | Mapping):
            raise ValueError(f"{directory}: not a StreamingEvaluator state")
        return self.validate(raw)

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
        return prepare(self.tables, video_ids, pad_video_id=self.pad_video_id)

    def update(
        self,
        state: StreamingState,
        video_ids: Any,
        masks: Any,
        scores: Any,
        labels: Any,
        valid: Any = None,
        *,
        check: bool = False,
    ) -> StreamingState:
        """Adds the predictions of a batch of videos.

        Checks on the host, without waiting for the device: known video ids, no video twice in
        the batch, each video's length, height and width within the canvas ``F, H, W``, shapes.
        Then runs the jitted core of :meth:`update_fn` (compiled once per shape for all
        evaluators). A batch sharded over devices along its first
        axis stays sharded. A video already updated in ``state`` is not overwritten but marked
        in the state's ``conflict`` flags, and :meth:`compute` raises naming it.

        Args:
            state: the state so far.
            video_ids: int[B] video ids; ``pad_video_id`` marks a padding row (ignored).
            masks: bool or float[B, N, F, H, W] each video's predicted masks at the video's size,
                zero-padded (see the module docstring); N <= ``max_predictions``.
            scores: float[B, N].
            labels: int[B, N] category ids (any integer dtype; 64-bit ids are kept exactly).
            valid: bool[B, N] which entries are real predictions; all by default.
            check: also check at once that no video is already updated in ``state`` (reads
                ``state.updated`` back, so it waits for the previous update).

        Returns:
            The new state.

        Raises:
            ValueError: a bad shape, an unknown video, a video twice in the batch or (with
                ``check``) already updated (named), a state of other ground truth, a label that
                is not an integer category id of 64 bits (named by video and prediction).
        """
        state = self.validate(state)
        ids = host_ints(video_ids, "video_ids")
        shape = tuple(np.shape(masks))
        if len(shape) != 5 or shape[0] != ids.shape[0]:
            raise ValueError(
                f"masks must be [B, N, F, H, W] with B = len(video_ids) = {ids.shape[0]}, got "
                f"shape {list(shape)}"
            )
        self._check_shapes(shape, scores, labels, valid)
        pos, gt_batch = self.prepare(ids)
        self._check_videos(ids, pos, shape, np.asarray(state.updated) if check else None)
        real = np.ones(shape[:2], dtype=bool) if valid is None else np.asarray(valid, bool)
        labels = host_labels(labels, real=real & (pos >= 0)[:, None], video_ids=ids)
        sharding = batch_sharding(masks)
        video_pos = pos if sharding is None else jax.device_put(pos, sharding)
        if sharding is not None:
            gt_batch = GTBatch(*(jax.device_put(x, sharding) for x in gt_batch))
            labels = tuple(jax.device_put(x, sharding) for x in labels)
        new = update_state_jit(
            state, gt_batch, video_pos, masks, scores, labels, valid,
            num_pixels=self.num_pixels, num_tracks=self.num_slots,
        )  # fmt: skip
        return self._own_fingerprint(new)

    def _check_videos(self, ids, pos, shape, updated: np.ndarray | None) -> None:
        seen: dict[int, int] = {}
        for i, p in enumerate(pos.tolist()):
            if p < 0:
                continue
            vid = int(ids[i])
            if updated is not None and updated[p]:
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
            length, height, width = self.tables.video_size[p].tolist()
            if length > shape[2] or height > shape[3] or width > shape[4]:
                raise ValueError(
                    f"video {vid} (video_ids[{i}]) has {length} frames of {height}x{width} "
                    f"pixels, more than the masks' canvas of {shape[2]} frames of "
                    f"{shape[3]}x{shape[4]}"
                )

    def _check_shapes(self, shape: tuple[int, ...], scores: Any, labels: Any, valid: Any) -> None:
        b, n, f, h, w = shape
        if n > self.max_predictions:
            raise ValueError(
                f"masks have N = {n} predictions per video, more than max_predictions = "
                f"{self.max_predictions}"
            )
        if f * h * w >= INT32_LIMIT:
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

    @staticmethod
    def merge_fn(a: StreamingState, b: StreamingState) -> StreamingState:
        """``a.merge(b)`` (:meth:`StreamingState.merge`): pure and jittable, nothing checked."""
        return a.merge(b)

    def _names(self, rows: np.ndarray) -> str:
        ids = ", ".join(str(int(self.tables.video_ids[i])) for i in rows[:10])
        return ids + (", ..." if rows.size > 10 else "")

    def merge(self, a: StreamingState, b: StreamingState) -> StreamingState:
        """Combines two states of disjoint sets of videos (e.g. of two devices or processes).

        Associative and commutative, so any tree of merges gives the same state.

        Raises:
            ValueError: a state of other ground truth, or a video updated in both (named).
        """
        a, b = jax.device_get((self.validate(a), self.validate(b)))
        return self.merge_stacked(jax.tree_util.tree_map(lambda x, y: np.stack([x, y]), a, b))

    def merge_stacked(self, stacked: StreamingState) -> StreamingState:
        """Merges states stacked along a new leading axis (e.g. ``process_allgather``'s
        output): :meth:`StreamingState.reduce` after checks on the host.

        Raises:
            ValueError: no state, a state of other ground truth, or a video updated in two of
                the states (named).
        """
        raw = stacked if isinstance(stacked, Mapping) else vars(stacked)
        host = jax.device_get(StreamingState.from_mapping(raw))
        if int(np.shape(host.updated)[0]) == 0:
            raise ValueError("no states to merge")
        check_fingerprint(host.fingerprint, self._fingerprint, stacked=True)
        check_like(
            jax.tree_util.tree_map(lambda x: x[0], host), self._abstract, self.max_predictions
        )
        both = np.flatnonzero(np.asarray(host.updated).sum(axis=0) > 1)
        if both.size:
            raise ValueError(
                f"video(s) {self._names(both)} were updated in both states: merge combines "
                "states of disjoint sets of videos"
            )
        return self._own_fingerprint(self._reduce_jit(host))

    def allgather(self, state: StreamingState) -> StreamingState:
        """Under ``jax.distributed``: the merge of every process's state (call it on every
        process; each process must have updated a disjoint set of videos).

        ``jax.experimental.multihost_utils.process_allgather`` of the state, then
        :meth:`merge_stacked`. With one process it returns the state unchanged.
        """
        from jax.experimental import multihost_utils

        state = self.validate(state)
        return self.merge_stacked(multihost_utils.process_allgather(state, tiled=False))

    def compute(self, state: StreamingState) -> EvalResult:
        """The official numbers of the predictions in ``state``.

        Equal (to the last bit) to :func:`ovis_jax.evaluate` on a results file with the same
        predictions written video by video in prediction order (see the module docstring).

        Raises:
            ValueError: a state of other ground truth, a video updated more than once (named), a
                non-finite score (named).
        """
        host = jax.device_get(self.validate(state))
        conflict = np.flatnonzero(np.asarray(host.conflict))
        if conflict.size:
            raise ValueError(
                f"video(s) {self._names(conflict)} were updated more than once (in update, "
                "update_fn or merge_fn): their predictions are not reliable"
            )
        d_v, d_n, warnings = _selected(host, self.tables.video_ids, self.gt.category_ids)
        area = np.asarray(host.pred_area)[d_v, d_n].astype(np.int64)
        frames = np.asarray(host.pred_frames)[d_v, d_n].astype(np.int64)
        avg_area = np.divide(
            area.astype(np.float64), frames, out=np.zeros(area.shape[0]), where=frames > 0
        )
        inter, slot = np.asarray(host.inter), self.tables.track_slot
        return evaluate_tracks(
            self.gt,
            video_id=self.tables.video_ids[d_v],
            category_id=join_labels(host.label, host.label_hi)[d_v, d_n],
            score=np.asarray(host.score)[d_v, d_n].astype(np.float64),
            avg_area=avg_area,
            area=area,
            pair_intersections=lambda d, g: inter[d_v[d], d_n[d], slot[g]].astype(np.int64),
            params=self.params,
            warnings=tuple(warnings),
        )


def _selected(host: StreamingState, video_ids: np.ndarray, category_ids: Any):
    """The predictions to evaluate, as (video row int64[D], prediction index int64[D]) in file
    order (video ascending, then index), and the warnings about the others.

    Raises:
        ValueError: a non-finite score (named by video id and prediction index).
    """
    sel = np.asarray(host.valid) & np.asarray(host.updated)[:, None]
    d_v, d_n = np.nonzero(sel)  # video ascending, then prediction index: "file order"
    score = np.asarray(host.score)[d_v, d_n].astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(score))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"video {int(video_ids[d_v[i]])}, prediction {int(d_n[i])}: score {score[i]} is not "
            "finite"
        )
    label = join_labels(host.label, host.label_hi)[d_v, d_n]
    known = np.isin(label, np.asarray(category_ids, dtype=np.int64))
    warnings: list[str] = []
    if d_v.size == 0:
        warnings.append(messages.EMPTY_RESULTS)
    unknown = np.unique(label[~known])
    if unknown.size:
        warnings.append(messages.unknown_categories(int((~known).sum()), unknown.tolist()))
    return d_v[known], d_n[known], warnings
