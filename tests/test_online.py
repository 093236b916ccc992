"""The online evaluator (host and device paths) and the flax nnx metric: the file path's numbers
from per-video dense predictions, input forms (NumPy, ``__array__``, DLPack, RLE), bad inputs."""

from __future__ import annotations

import functools
import logging
import warnings

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax.online import OnlineEvaluator
from ovis_jax.testing import assert_results_equal, synthetic

logging.getLogger("ovis_jax").setLevel(logging.ERROR)

BACKENDS = ("cpu", "jax", "reference")


def _decode(seg: dict | None, h: int, w: int) -> np.ndarray:
    if seg is None:
        return np.zeros((h, w), bool)
    counts = seg["counts"]
    rle = {"size": seg["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools' NumPy 2 DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


@functools.cache
def _dataset(seed: int):
    """``(gt, results, per_video)``: a random ground truth, its results file (compressed RLE
    and null frames) and, per video in id order, ``(video, scores, labels, masks, rles)`` with
    masks bool[N, F, H, W] decoded from the file and ``rles`` the file's segmentations."""
    gt_dict, results = synthetic.random_dataset(
        seed=seed, num_videos=5, max_results_per_video=12, unknown_categories=True
    )
    gt = ovis_jax.load_ground_truth(gt_dict)
    by: dict[int, list] = {v.id: [] for v in gt.videos}
    for r in results:
        by[r["video_id"]].append(r)
    per_video = []
    for v in gt.videos:
        rs = by[v.id]
        masks = np.zeros((len(rs), v.length, v.height, v.width), bool)
        for i, r in enumerate(rs):
            for t, seg in enumerate(r["segmentations"]):
                masks[i, t] = _decode(seg, v.height, v.width)
        scores = np.asarray([r["score"] for r in rs], np.float64)
        labels = np.asarray([r["category_id"] for r in rs], np.int64)
        per_video.append((v, scores, labels, masks, [r["segmentations"] for r in rs]))
    return gt, results, per_video


def _all_frames_encoded(results: list) -> list:
    """The results with every null frame written as the RLE of an all-zero mask (as
    Mask2Former-family code writes its files)."""
    out = []
    for r in results:
        segs = r["segmentations"]
        size = next(s["size"] for s in segs if s is not None)
        zero = synthetic.encode_mask(np.zeros(size, bool))
        out.append({**r, "segmentations": [zero if s is None else s for s in segs]})
    return out


def _assert_same_numbers(a, b) -> None:
    """Exactly equal official numbers: stats, precision, recall, scores."""
    assert list(a.stats) == list(b.stats)
    assert a.stats == b.stats
    for name in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _feed(ev: OnlineEvaluator, per_video, *, order=None, form=np.asarray) -> None:
    order = range(len(per_video)) if order is None else order
    for k in order:
        v, scores, labels, masks, _ = per_video[k]
        ev.process(v.id, form(scores), form(labels), form(masks))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_host_path_equals_file_path(seed, backend):
    gt, results, per_video = _dataset(seed)
    ev = OnlineEvaluator(gt, backend=backend)
    _feed(ev, per_video, order=reversed(range(len(per_video))))  # any video order
    got = ev.evaluate()
    _assert_same_numbers(got, ovis_jax.evaluate(gt, results, backend=backend))
    # Every frame is kept as an RLE (empty ones too): the whole result, track lengths
    # included, is that of a file written so.
    assert_results_equal(got, ovis_jax.evaluate(gt, _all_frames_encoded(results)), tol=0.0)
    assert got.warnings == ovis_jax.evaluate(gt, results, backend=backend).warnings


@pytest.mark.parametrize("backend", BACKENDS)
def test_rle_input_equals_file_path_with_lengths(backend):
    gt, results, per_video = _dataset(0)
    ev = OnlineEvaluator(gt, backend=backend)
    for v, scores, labels, _, rles in per_video:
        ev.update(v.id, scores, labels, rles)
    assert_results_equal(ev.compute(), ovis_jax.evaluate(gt, results, backend=backend), tol=0.0)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_device_path_equals_file_path(seed):
    gt, results, per_video = _dataset(seed)
    ev = OnlineEvaluator(gt, path="device", max_predictions=16)
    _feed(ev, per_video)  # NumPy arrays: into JAX through __dlpack__
    _assert_same_numbers(ev.evaluate(), ovis_jax.evaluate(gt, results, backend="cpu"))


def test_summary_is_the_official_text():
    gt, results, per_video = _dataset(0)
    ev = OnlineEvaluator(gt, backend="cpu")
    _feed(ev, per_video)
    assert ev.summary() == ovis_jax.format_summary(ovis_jax.evaluate(gt, results))


def test_reset_and_merge():
    gt, results, per_video = _dataset(1)
    expected = ovis_jax.evaluate(gt, results, backend="cpu")
    ev = OnlineEvaluator(gt, backend="cpu")
    _feed(ev, per_video[:1])
    ev.reset()
    assert ev.num_videos == 0
    a, b = OnlineEvaluator(gt, backend="cpu"), OnlineEvaluator(gt, backend="cpu")
    _feed(a, per_video, order=range(0, len(per_video), 2))
    _feed(b, per_video, order=range(1, len(per_video), 2))
    a.merge(b.predictions)
    _assert_same_numbers(a.evaluate(), expected)
    with pytest.raises(ValueError, match="processed in both"):
        a.merge(b.predictions)


class _ArrayOnly:
    """An object with only ``__array__`` (no DLPack)."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


class _DLPackOnly:
    """An object with only ``__dlpack__`` / ``__dlpack_device__`` (as a framework tensor)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


@pytest.mark.parametrize(
    ("form", "path"),
    [
        pytest.param(_ArrayOnly, "host", id="array-host"),
        pytest.param(_DLPackOnly, "host", id="dlpack-host"),
        pytest.param(_ArrayOnly, "device", id="array-device"),
        pytest.param(_DLPackOnly, "device", id="dlpack-device", marks=pytest.mark.slow),
    ],
)
def test_input_protocols(path, form):
    gt, results, per_video = _dataset(0)
    ev = OnlineEvaluator(gt, path=path, backend="cpu")
    _feed(ev, per_video, form=form)
    _assert_same_numbers(ev.evaluate(), ovis_jax.evaluate(gt, results, backend="cpu"))


@pytest.mark.parametrize("path", ["host", "device"])
def test_mask_dtypes(path):
    """uint8 0/255, float 0/1 and bool masks give the same numbers; 64-bit labels pass."""
    gt, results, per_video = _dataset(0)
    expected = ovis_jax.evaluate(gt, results, backend="cpu")
    for cast in (lambda m: m.astype(np.uint8) * 255, lambda m: m.astype(np.float32)):
        ev = OnlineEvaluator(gt, path=path, backend="cpu")
        for v, scores, labels, masks, _ in per_video:
            ev.process(np.int64(v.id), scores, labels.astype(np.uint64), cast(masks))
        _assert_same_numbers(ev.evaluate(), expected)


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    gt, results, per_video = _dataset(0)
    ev = OnlineEvaluator(gt, backend="cpu")
    _feed(ev, per_video, form=torch.as_tensor)
    _assert_same_numbers(ev.evaluate(), ovis_jax.evaluate(gt, results, backend="cpu"))


@pytest.mark.parametrize("path", ["host", "device"])
def test_bad_inputs(path):
    gt, _, per_video = _dataset(0)
    v, scores, labels, masks, _ = next(p for p in per_video if p[1].size >= 2)
    ev = OnlineEvaluator(gt, path=path, max_predictions=16)
    nan = scores.copy()
    nan[1] = np.nan
    probs = masks.astype(np.float32) * 0.7
    cases = [
        ({"video_id": 123456789}, "video 123456789: not a video of the ground truth"),
        ({"video_id": "a"}, "video_id must be an integer"),
        ({"scores": nan}, rf"video {v.id}, prediction 1: score nan is not finite"),
        ({"scores": scores[:, None]}, "scores must be"),
        ({"labels": labels.astype(np.float32)}, "labels must be integer category ids"),
        ({"labels": labels[:-1]}, r"labels must be \[N\]"),
        ({"labels": np.full(labels.shape, 2**63, np.uint64)}, "does not fit"),
        ({"masks": masks[:, :, :-1]}, rf"video {v.id}: masks must be \[N, F, H, W\]"),
        ({"masks": masks[:-1]}, r"masks must be \[N, F, H, W\]"),
        ({"masks": probs}, rf"video {v.id}, prediction 0: floating-point masks must hold"),
        ({"masks": masks.astype(np.complex64)}, "masks must be bool, integer or floating"),
    ]
    for change, message in cases:
        args = {"video_id": v.id, "scores": scores, "labels": labels, "masks": masks, **change}
        with pytest.raises(ValueError, match=message):
            ev.process(**args)
    ev.process(v.id, scores, labels, masks)
    with pytest.raises(ValueError, match=rf"video {v.id}: already processed"):
        ev.process(v.id, scores, labels, masks)
    with pytest.raises(ValueError, match="path must be one of"):
        OnlineEvaluator(gt, path="gpu")


def test_bad_rle_input_names_video_and_prediction():
    gt, _, per_video = _dataset(0)
    v, scores, labels, _, rles = next(p for p in per_video if p[1].size >= 2)
    ev = OnlineEvaluator(gt, backend="cpu")
    short = [list(r) for r in rles]
    short[1] = short[1][:-1]
    with pytest.raises(ValueError, match=rf"video {v.id}, prediction 1: .* RLE frames"):
        ev.process(v.id, scores, labels, short)
    broken = [list(r) for r in rles]
    t = next(i for i, s in enumerate(broken[1]) if s is not None)
    broken[1][t] = {"size": broken[1][t]["size"], "counts": "0"}
    ev.process(v.id, scores, labels, broken)  # content is validated at evaluate
    with pytest.raises(ovis_jax.FormatError, match=rf"^video {v.id}, prediction 1, frame {t}"):
        ev.evaluate()


def test_no_predictions():
    gt, _, _ = _dataset(0)
    ev = OnlineEvaluator(gt, backend="cpu")
    got = ev.evaluate()
    _assert_same_numbers(got, ovis_jax.evaluate(gt, [], backend="cpu"))


def test_nnx_metric_equals_streaming_and_file_path():
    nnx = pytest.importorskip("flax.nnx")
    from ovis_jax.nnx import VideoAPMetric

    gt, results, per_video = _dataset(0)
    metric = VideoAPMetric(gt, max_predictions=16)
    assert isinstance(metric, nnx.Metric)
    f = max(v.length for v, *_ in per_video)
    h = max(v.height for v, *_ in per_video)
    w = max(v.width for v, *_ in per_video)
    for v, scores, labels, masks, _ in per_video:
        n = scores.shape[0]
        canvas = np.zeros((1, 16, f, h, w), bool)
        canvas[0, :n, : v.length, : v.height, : v.width] = masks
        metric.update(
            video_ids=np.asarray([v.id]),
            masks=canvas,
            scores=np.pad(scores.astype(np.float32), (0, 16 - n))[None],
            labels=np.pad(labels.astype(np.int32), (0, 16 - n))[None],
            valid=(np.arange(16) < n)[None],
            unrelated=1.0,  # other metrics' keywords are ignored
        )
    # The streaming evaluator keeps float32 scores: compare with a file holding those.
    f32 = [{**r, "score": float(np.float32(r["score"]))} for r in results]
    _assert_same_numbers(metric.compute(), ovis_jax.evaluate(gt, f32, backend="cpu"))
    graphdef, state = nnx.split(metric)
    assert nnx.merge(graphdef, state).compute().stats == metric.compute().stats
    metric.reset()
    _assert_same_numbers(metric.compute(), ovis_jax.evaluate(gt, [], backend="cpu"))
    with pytest.raises(TypeError, match="needs masks"):
        metric.update(video_ids=np.asarray([per_video[0][0].id]))
