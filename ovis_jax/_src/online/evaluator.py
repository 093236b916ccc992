"""A framework-neutral online evaluator: per-video predictions in, the file path's numbers out.

For training loops that produce, per video, ``scores`` [N], ``labels`` [N] and dense ``masks``
[N, F, H, W] (PyTorch / detectron2 / Mask2Former-family code bases, often as CUDA tensors),
shaped like detectron2's ``DatasetEvaluator``::

    ev = OnlineEvaluator(gt)            # gt: a path, a parsed dict or a GroundTruth
    ev.reset()
    for video_id, scores, labels, masks in model_outputs:
        ev.process(video_id, scores, labels, masks)
    result = ev.evaluate()              # == ovis_jax.evaluate(gt, the same predictions as a file)
    print(ev.summary())                 # the official summary lines

``update`` / ``compute`` are aliases of ``process`` / ``evaluate`` (torchmetrics habits).

Inputs: NumPy arrays, any object with ``__array__`` and any object with ``__dlpack__`` (a torch
or CuPy tensor, a JAX array), never importing torch or detectron2. Masks are foreground where
nonzero: ``bool``, integer (``uint8`` 0/1 or 0/255), or floating point holding only 0 and 1
(probabilities or logits are refused: threshold them first, e.g. ``masks > 0.5``). A video's
masks may instead be given already encoded: a sequence of N predictions, each a sequence of F
frames, each a COCO RLE dict (``{"size": [H, W], "counts": ...}``) or ``None``.

Two paths, chosen with ``path=`` at construction:

* ``"host"`` (default): each video's masks come to host memory once (NumPy; a CPU DLPack
  tensor without a copy, a device tensor with its own ``.cpu()`` or through JAX) and are encoded
  to compressed RLE with pycocotools, frame by frame, exactly as a results file is written
  (Mask2Former's ``instances_to_coco_json_video`` does the same: one RLE per frame, empty frames
  included). Only these strings are kept (a few bytes per frame, never the dense masks);
  :meth:`OnlineEvaluator.evaluate` hands them to :func:`ovis_jax.evaluate` as a parsed results
  list, so the result *is* the file path's, with the track-length breakdown, on any backend.
  An all-zero frame is kept as the RLE of an all-zero mask, not as ``null``: a results file
  written by the code bases above holds it so, and ``null`` would change only the track-length
  breakdown (the official numbers count an empty frame and a null frame alike, metric steps 2
  and 6). No mask is ever dropped.
* ``"device"``: the masks go to JAX without a host copy (``jax.dlpack.from_dlpack`` for a
  ``__dlpack__`` object, so a CUDA tensor stays on the GPU) and are reduced there by the
  :class:`~ovis_jax.StreamingEvaluator` to exact per-track intersections and areas; scores and
  labels (N numbers a video) are kept on the host in float64 / int64. ``evaluate`` returns the
  same stats, precision, recall and scores as the file path (no track-length breakdown, as the
  streaming evaluator). One compilation per distinct (N bucket, F, H, W). In a PyTorch process
  set ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` so that JAX does not take most of the GPU memory.

Predictions are numbered video by video in the order :meth:`~OnlineEvaluator.process` is called
and, within a video, in index order: that is the "file order" score ties follow (metric step 5),
as in a file written in that order. Shapes follow :mod:`ovis_jax._src.legend` (N predictions of
a video, F frames, H×W pixels).
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import GroundTruth, Video
from ovis_jax._src.io.vis import load_ground_truth
from ovis_jax._src.metrics.ap.summary import EvalResult, format_summary
from ovis_jax._src.params import EvalParams

__all__ = ["PATHS", "OnlineEvaluator", "device_array", "encode_video", "host_array"]

logger = logging.getLogger(__name__)

#: The evaluation paths of :class:`OnlineEvaluator`.
PATHS = ("host", "device")

_DLPACK_CPU = (1, 3)  # kDLCPU, kDLCUDAHost: memory NumPy can read
_INT64 = np.iinfo(np.int64)


class Prediction(NamedTuple):
    """One prediction as the host path keeps it (picklable, e.g. to gather across processes).

    Attributes:
        video_id: its video.
        index: its index n in the video's N predictions.
        category_id: its label.
        score: its score (float64).
        segmentations: per frame, ``{"size": [H, W], "counts": str}`` or ``None`` (or the
            caller's RLE entry, copied).
    """

    video_id: int
    index: int
    category_id: int
    score: float
    segmentations: tuple


# --------------------------------------------------------------------------------------------
# Inputs


def host_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array, read once: an ndarray as is, a CPU ``__dlpack__`` object without
    a copy, a device one through its ``.cpu()`` (torch) or JAX, else ``numpy.asarray``.

    Raises:
        ValueError: ``x`` cannot be read as an array (``name`` says which input).
    """
    if isinstance(x, np.ndarray):
        return x
    try:
        if hasattr(x, "__dlpack__"):
            device = x.__dlpack_device__() if hasattr(x, "__dlpack_device__") else (1, 0)
            if int(device[0]) in _DLPACK_CPU:
                try:
                    return np.from_dlpack(x)
                except (BufferError, TypeError, RuntimeError):
                    pass  # e.g. a dtype DLPack cannot carry: try __array__ below
            elif callable(getattr(x, "cpu", None)):
                return host_array(x.cpu(), name)
            elif not hasattr(x, "__array__"):
                import jax

                return np.asarray(jax.dlpack.from_dlpack(x))
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError, BufferError) as e:
        raise ValueError(f"{name} cannot be read as an array ({type(x).__name__}): {e}") from e


def device_array(x: Any, name: str) -> Any:
    """``x`` as a JAX array: a JAX array as is, a ``__dlpack__`` object through
    ``jax.dlpack.from_dlpack`` (no copy: a CUDA tensor stays on its GPU), else ``jnp.asarray``.

    Raises:
        ValueError: ``x`` cannot be read as an array (``name`` says which input).
    """
    import jax
    import jax.numpy as jnp

    if isinstance(x, jax.Array):
        return x
    try:
        if hasattr(x, "__dlpack__"):
            try:
                return jax.dlpack.from_dlpack(x)
            except (BufferError, TypeError, RuntimeError):
                pass  # e.g. a dtype or layout JAX's DLPack import refuses: copy below
        return jnp.asarray(host_array(x, name))
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} cannot be read as an array ({type(x).__name__}): {e}") from e


def _scores(x: Any, n: int | None, where: str) -> np.ndarray:
    """float64[N] finite scores."""
    a = host_array(x, f"{where}: scores")
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        want = f"[N] with N = {n}" if n is not None else "[N]"
        raise ValueError(f"{where}: scores must be {want}, got shape {list(a.shape)}")
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
    ):
        raise ValueError(f"{where}: scores must be real numbers, got dtype {a.dtype}")
    out = a.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}, prediction {i}: score {out[i]} is not finite")
    return out


def _labels(x: Any, n: int, where: str) -> np.ndarray:
    """int64[N] category ids (any integer dtype; values must fit in int64)."""
    a = host_array(x, f"{where}: labels")
    if a.shape != (n,):
        raise ValueError(f"{where}: labels must be [N] with N = {n}, got shape {list(a.shape)}")
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integer category ids, got dtype {a.dtype}")
    if a.dtype == np.uint64 and n:
        big = np.flatnonzero(a > np.uint64(_INT64.max))
        if big.size:
            i = int(big[0])
            raise ValueError(
                f"{where}, prediction {i}: label {int(a[i])} does not fit in 64-bit signed ids"
            )
    return a.astype(np.int64)


def _check_mask_shape(shape: tuple, n: int, video: Video, where: str) -> None:
    want = (n, video.length, video.height, video.width)
    if tuple(shape) != want:
        raise ValueError(
            f"{where}: masks must be [N, F, H, W] = {list(want)} (N predictions, the video's "
            f"{video.length} frames of {video.height}x{video.width} pixels), got shape "
            f"{list(shape)}"
        )


def _mask_dtype_kind(dtype: Any, where: str) -> str:
    """``"bool"``, ``"int"`` or ``"float"``; anything else is refused."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    if np.issubdtype(dtype, np.floating):
        return "float"
    raise ValueError(f"{where}: masks must be bool, integer or floating point, got {dtype}")


def _not_binary_error(where: str, n: int) -> ValueError:
    return ValueError(
        f"{where}, prediction {n}: floating-point masks must hold only 0 and 1 (these look like "
        "probabilities or logits): threshold them first, e.g. masks > 0.5"
    )


def _foreground(a: np.ndarray, where: str) -> np.ndarray:
    """bool[N, F, H, W]: nonzero pixels; floating-point masks must be 0 / 1."""
    kind = _mask_dtype_kind(a.dtype, where)
    if kind == "bool":
        return a
    fg = a != 0
    if kind == "float":
        bad = np.flatnonzero((fg & (a != 1)).any(axis=(1, 2, 3)))
        if bad.size:
            raise _not_binary_error(where, int(bad[0]))
    return fg


def encode_video(fg: np.ndarray) -> list[tuple[dict, ...]]:
    """Compressed RLE of every frame, as pycocotools writes a results file.

    Args:
        fg: bool[N, F, H, W] foreground.

    Returns:
        Per prediction, per frame ``{"size": [H, W], "counts": str}`` (all-zero frames
        included).
    """
    from pycocotools import mask as mask_utils

    n, f, h, w = fg.shape
    if n * f == 0:
        return [() for _ in range(n)]
    # [H, W, N*F] column-major uint8: pycocotools encodes the frames in one call.
    stack = np.asfortranarray(fg.reshape(n * f, h, w).transpose(1, 2, 0), dtype=np.uint8)
    rles = mask_utils.encode(stack)
    size = [int(h), int(w)]
    frames = [{"size": size, "counts": r["counts"].decode("ascii")} for r in rles]
    return [tuple(frames[i * f : (i + 1) * f]) for i in range(n)]


def _is_rle_input(masks: Any) -> bool:
    """Whether ``masks`` is given as per-prediction lists of RLE dicts / None (an empty list:
    no predictions)."""
    if isinstance(masks, (list, tuple)):
        if not masks:
            return True
        for pred in masks:
            if not isinstance(pred, (list, tuple)):
                return False
            if any(isinstance(s, Mapping) for s in pred):
                return True
            if pred and all(s is None for s in pred):
                continue
            return False
    return False


def _rle_video(masks: Sequence, n: int, video: Video, where: str) -> list[tuple]:
    """The caller's RLE entries, checked (count, frames, sizes) and copied."""
    if len(masks) != n:
        raise ValueError(f"{where}: masks has {len(masks)} predictions, expected N = {n}")
    out = []
    for i, pred in enumerate(masks):
        if len(pred) != video.length:
            raise ValueError(
                f"{where}, prediction {i}: {len(pred)} RLE frames, expected {video.length} (the "
                "video's length)"
            )
        frames = []
        for t, seg in enumerate(pred):
            if seg is None:
                frames.append(None)
                continue
            if not isinstance(seg, Mapping) or "counts" not in seg or "size" not in seg:
                raise ValueError(
                    f"{where}, prediction {i}, frame {t}: expected an RLE dict with 'size' and "
                    f"'counts' or None, got {type(seg).__name__}"
                )
            size = [int(s) for s in seg["size"]]
            if size != [video.height, video.width]:
                raise ValueError(
                    f"{where}, prediction {i}, frame {t}: RLE size {size}, expected "
                    f"{[video.height, video.width]} (the video's)"
                )
            counts = seg["counts"]
            counts = counts.decode("ascii") if isinstance(counts, bytes) else counts
            frames.append({"size": size, "counts": counts})
        out.append(tuple(frames))
    return out


def _rle_to_dense(segs: list[tuple], video: Video) -> np.ndarray:
    """bool[N, F, H, W] decoded from the caller's RLE entries (device path)."""
    from pycocotools import mask as mask_utils

    out = np.zeros((len(segs), video.length, video.height, video.width), dtype=np.bool_)
    for i, pred in enumerate(segs):
        for t, seg in enumerate(pred):
            if seg is not None:
                rle = seg
                if isinstance(seg["counts"], list):
                    rle = mask_utils.frPyObjects(seg, video.height, video.width)
                elif isinstance(seg["counts"], str):
                    rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
                out[i, t] = mask_utils.decode(rle) != 0
    return out


# --------------------------------------------------------------------------------------------
# The evaluator


class OnlineEvaluator:
    """Official OVIS / YouTube-VIS video mask AP from per-video predictions of any framework.

    Args:
        gt: the ground truth: a :class:`~ovis_jax.GroundTruth`, a path or a parsed dict.
        backend: the backend :meth:`evaluate` runs (``"auto"``, ``"cpu"``, ``"jax"``,
            ``"reference"``; host path only, see :func:`ovis_jax.evaluate`).
        params: evaluation parameters; the official ones by default.
        path: ``"host"`` (default: masks encoded to RLE on the host, the file path at
            :meth:`evaluate`) or ``"device"`` (masks reduced on JAX's device by a
            :class:`~ovis_jax.StreamingEvaluator`); see the module docstring.
        max_predictions: the most predictions per video (``"device"`` path only).

    Raises:
        ValueError: a bad option.
    """

    def __init__(
        self,
        gt: Any,
        *,
        backend: str = "auto",
        params: EvalParams | None = None,
        path: str = "host",
        max_predictions: int = 100,
    ) -> None:
        if path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {path!r}")
        self.gt = gt if isinstance(gt, GroundTruth) else load_ground_truth(gt)
        self.backend = backend
        self.params = params or EvalParams()
        self.path = path
        self.max_predictions = int(max_predictions)
        self._videos = self.gt.video_by_id
        self._device = _DeviceSide(self) if path == "device" else None
        self.reset()

    def reset(self) -> None:
        """Forgets every prediction (start of an evaluation round)."""
        self._predictions: list[Prediction] = []
        self._seen: set[int] = set()
        self._result: EvalResult | None = None
        if self._device is not None:
            self._device.reset()

    @property
    def num_videos(self) -> int:
        """How many videos were processed since the last :meth:`reset`."""
        return len(self._seen)

    @property
    def predictions(self) -> tuple[Prediction, ...]:
        """The host path's predictions so far (picklable: gather them from other processes
        and hand them to :meth:`merge`)."""
        return tuple(self._predictions)

    def _video(self, video_id: Any) -> tuple[int, Video, str]:
        try:
            vid = operator.index(video_id) if not hasattr(video_id, "item") else video_id.item()
            vid = operator.index(vid)
        except (TypeError, ValueError):
            raise ValueError(f"video_id must be an integer, got {video_id!r}") from None
        where = f"video {vid}"
        if vid not in self._videos:
            raise ValueError(f"{where}: not a video of the ground truth")
        if vid in self._seen:
            raise ValueError(
                f"{where}: already processed since the last reset (each video's predictions "
                "must be given in one call)"
            )
        return vid, self._videos[vid], where

    def process(self, video_id: Any, scores: Any, labels: Any, masks: Any) -> None:
        """Adds the predictions of one video.

        Args:
            video_id: the video's id (an integer of the ground truth).
            scores: float[N] scores (finite).
            labels: int[N] category ids (any integer dtype, 64-bit ids included).
            masks: bool / int / float (0 or 1)[N, F, H, W] at the video's length and size,
                foreground where nonzero; or N sequences of F RLE dicts / None.

        Raises:
            ValueError: an unknown or repeated video, a bad shape or dtype, a non-finite score,
                a non-binary float mask (naming the video and the prediction).
        """
        vid, video, where = self._video(video_id)
        s = _scores(scores, None, where)
        n = s.shape[0]
        lab = _labels(labels, n, where)
        if self._device is not None:
            self._device.process(vid, video, s, lab, masks, where)
        else:
            if _is_rle_input(masks):
                segs = _rle_video(masks, n, video, where)
            else:
                a = host_array(masks, f"{where}: masks")
                _check_mask_shape(a.shape, n, video, where)
                segs = encode_video(_foreground(a, where))
            self._predictions.extend(
                Prediction(vid, i, int(lab[i]), float(s[i]), segs[i]) for i in range(n)
            )
        self._seen.add(vid)
        self._result = None

    def update(self, video_id: Any, scores: Any, labels: Any, masks: Any) -> None:
        """Alias of :meth:`process` (torchmetrics' name)."""
        self.process(video_id, scores, labels, masks)

    def merge(self, predictions: Sequence[Prediction]) -> None:
        """Adds predictions gathered from another evaluator's :attr:`predictions` (host path),
        e.g. of the other processes of a distributed evaluation.

        Raises:
            ValueError: on the device path, or a video already processed here (named).
        """
        if self._device is not None:
            raise ValueError(
                "merge is for the host path; on the device path use StreamingEvaluator.merge"
            )
        new = {int(p.video_id) for p in predictions}
        both = sorted(new & self._seen)
        if both:
            raise ValueError(f"video {both[0]}: processed in both evaluators")
        self._predictions.extend(Prediction(*p) for p in predictions)
        self._seen |= new
        self._result = None

    def evaluate(self) -> EvalResult:
        """The official numbers of every prediction processed since the last :meth:`reset`.

        Returns:
            The :class:`~ovis_jax.EvalResult` that :func:`ovis_jax.evaluate` gives for a
            results file holding the same predictions (see the module docstring).
        """
        if self._device is not None:
            self._result = self._device.evaluate()
        else:
            self._result = _evaluate_host(self)
        return self._result

    def compute(self) -> EvalResult:
        """Alias of :meth:`evaluate` (torchmetrics' name)."""
        return self.evaluate()

    def summary(self) -> str:
        """The official summary lines of :meth:`evaluate` (evaluating first if needed)."""
        return format_summary(self._result if self._result is not None else self.evaluate())


_RESULT_ITEM = re.compile(r"^results\[(\d+)\] \(video_id [^)]*\)")


def _evaluate_host(ev: OnlineEvaluator) -> EvalResult:
    """The file path on the kept predictions; a format error names video and prediction."""
    from ovis_jax._src.evaluation import evaluate

    preds = ev._predictions
    results = [
        {
            "video_id": p.video_id,
            "category_id": p.category_id,
            "score": p.score,
            "segmentations": list(p.segmentations),
        }
        for p in preds
    ]
    try:
        return evaluate(ev.gt, results, backend=ev.backend, params=ev.params)
    except FormatError as e:
        m = _RESULT_ITEM.match(str(e))
        if m is None:
            raise
        p = preds[int(m.group(1))]
        raise FormatError(f"video {p.video_id}, prediction {p.index}" + str(e)[m.end() :]) from None


# --------------------------------------------------------------------------------------------
# The device path


def _bucket(n: int, cap: int) -> int:
    """The padded N of a device update: the next power of two, at most ``cap``."""
    return min(cap, 1 << max(0, (n - 1).bit_length()))


class _DeviceSide:
    """The ``"device"`` path: a :class:`~ovis_jax.StreamingEvaluator` for the masks, float64
    scores and int64 labels on the host."""

    def __init__(self, owner: OnlineEvaluator) -> None:
        from ovis_jax._src.streaming.evaluator import StreamingEvaluator

        self.owner = owner
        self.streaming = StreamingEvaluator(
            owner.gt, max_predictions=owner.max_predictions, params=owner.params
        )
        self.rows = self.streaming.tables.video_pos

    def reset(self) -> None:
        v, n = self.streaming.num_videos, self.streaming.max_predictions
        self.state = self.streaming.init()
        self.score = np.zeros((v, n), np.float64)
        self.label = np.zeros((v, n), np.int64)
        self.count = np.zeros(v, np.int64)
        self.done = np.zeros(v, np.bool_)

    def process(self, vid: int, video: Video, s: np.ndarray, lab: np.ndarray, masks, where):
        import jax.numpy as jnp

        n = s.shape[0]
        if n > self.streaming.max_predictions:
            raise ValueError(
                f"{where}: {n} predictions, more than max_predictions = "
                f"{self.streaming.max_predictions}"
            )
        if _is_rle_input(masks):
            m = jnp.asarray(_rle_to_dense(_rle_video(masks, n, video, where), video))
        else:
            m = device_array(masks, f"{where}: masks")
            _check_mask_shape(m.shape, n, video, where)
            m = _device_foreground(m, where)
        row = int(self.rows[vid])
        self.score[row, :n], self.label[row, :n] = s, lab
        self.count[row], self.done[row] = n, True
        if n == 0:
            return  # a video never updated has no predictions
        nb = _bucket(n, self.streaming.max_predictions)
        m = jnp.pad(m, ((0, nb - n), (0, 0), (0, 0), (0, 0)))[None]
        valid = (np.arange(nb) < n)[None]
        zeros = np.zeros((1, nb), np.int32)
        self.state = self.streaming.update(
            self.state, np.asarray([vid]), m, zeros.astype(np.float32), zeros, valid
        )

    def evaluate(self) -> EvalResult:
        import jax

        from ovis_jax._src import messages
        from ovis_jax._src.backends.jax.backend import evaluate_tracks

        host = jax.device_get(self.state)
        sel = np.arange(self.streaming.max_predictions)[None, :] < self.count[:, None]
        d_v, d_n = np.nonzero(sel & self.done[:, None])  # video ascending, then index
        label = self.label[d_v, d_n]
        known = np.isin(label, self.owner.gt.category_ids)
        warnings = [messages.EMPTY_RESULTS] if d_v.size == 0 else []
        unknown = np.unique(label[~known])
        if unknown.size:
            warnings.append(messages.unknown_categories(int((~known).sum()), unknown.tolist()))
        d_v, d_n = d_v[known], d_n[known]
        area = np.asarray(host.pred_area)[d_v, d_n].astype(np.int64)
        frames = np.asarray(host.pred_frames)[d_v, d_n].astype(np.int64)
        avg_area = np.divide(
            area.astype(np.float64), frames, out=np.zeros(area.shape[0]), where=frames > 0
        )
        inter, slot = np.asarray(host.inter), self.streaming.tables.track_slot
        return evaluate_tracks(
            self.owner.gt,
            video_id=self.streaming.tables.video_ids[d_v],
            category_id=self.label[d_v, d_n],
            score=self.score[d_v, d_n],
            avg_area=avg_area,
            area=area,
            pair_intersections=lambda d, g: inter[d_v[d], d_n[d], slot[g]].astype(np.int64),
            params=self.owner.params,
            warnings=tuple(warnings),
        )


def _device_foreground(m: Any, where: str) -> Any:
    """bool[N, F, H, W] on device: nonzero pixels; floating-point masks must be 0 / 1 (one
    scalar per prediction read back to check)."""
    import jax.numpy as jnp

    kind = _mask_dtype_kind(m.dtype, where)
    if kind == "bool":
        return m
    fg = m != 0
    if kind == "float":
        bad = np.flatnonzero(np.asarray(jnp.any(fg & (m != 1), axis=(1, 2, 3))))
        if bad.size:
            raise _not_binary_error(where, int(bad[0]))
    return fg
