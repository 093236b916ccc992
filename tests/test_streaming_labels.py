"""The streaming evaluator accepts exactly the labels a results file may hold (issue 17, section 6).

A results file's ``category_id`` must be a JSON integer within int64; a result whose id is not a
ground-truth category is counted in a warning and not evaluated. Streamed labels follow the same
rules with the same numbers (64-bit ids included, kept exactly as two int32 halves in the state),
and anything else is a ``ValueError`` naming the video and the prediction.
"""

from __future__ import annotations

import copy
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax import FormatError
from ovis_jax._src.streaming.evaluator import StreamingEvaluator, StreamingState
from ovis_jax._src.streaming.labels import host_labels, join_labels, split_labels
from ovis_jax.testing import assert_results_equal

logging.getLogger("ovis_jax").setLevel(logging.ERROR)


def _dense(seg: dict) -> np.ndarray:
    rle = {"size": seg["size"], "counts": seg["counts"].encode()}
    return mask_utils.decode(rle).astype(bool)


def _arrays(gt: dict, results: list):
    """Dense predictions of ``results``: masks bool[V, N, F, H, W], scores, labels (Python ints
    in an object array), valid; videos in ascending id order."""
    videos = sorted(gt["videos"], key=lambda v: v["id"])
    per = {v["id"]: [r for r in results if r["video_id"] == v["id"]] for v in videos}
    n = max(1, max(len(x) for x in per.values()))
    f = max(v["length"] for v in videos)
    h = max(v["height"] for v in videos)
    w = max(v["width"] for v in videos)
    masks = np.zeros((len(videos), n, f, h, w), bool)
    scores = np.zeros((len(videos), n), np.float32)
    labels = np.zeros((len(videos), n), object)
    valid = np.zeros((len(videos), n), bool)
    for i, v in enumerate(videos):
        for j, r in enumerate(per[v["id"]]):
            for t, seg in enumerate(r["segmentations"]):
                if seg is not None:
                    masks[i, j, t, : v["height"], : v["width"]] = _dense(seg)
            scores[i, j] = r["score"]
            labels[i, j] = r["category_id"]
            valid[i, j] = True
    return [v["id"] for v in videos], masks, scores, labels, valid


def _stream(gt: dict, ids, masks, scores, labels, valid) -> ovis_jax.EvalResult:
    ev = StreamingEvaluator(ovis_jax.load_ground_truth(gt), max_predictions=masks.shape[1])
    return ev.compute(ev.update(ev.init(), ids, masks, scores, labels, valid))


def _file(gt: dict, results: list) -> ovis_jax.EvalResult:
    for r in results:
        r["score"] = float(np.float32(r["score"]))  # the state keeps float32 scores
    return ovis_jax.evaluate(gt, results, backend="cpu")


def _recategorised(tiny, mapping: dict[int, int], results_too: bool = True):
    gt, results = copy.deepcopy(tiny)
    for c in gt["categories"]:
        c["id"] = mapping[c["id"]]
    for a in gt["annotations"]:
        a["category_id"] = mapping[a["category_id"]]
    if results_too:
        for r in results:
            r["category_id"] = mapping[r["category_id"]]
    return gt, results


def _same(tiny_case, dtype) -> ovis_jax.EvalResult:
    gt, results = tiny_case
    ids, masks, scores, labels, valid = _arrays(gt, results)
    want = _file(gt, copy.deepcopy(results))
    got = _stream(gt, ids, masks, scores, labels.astype(dtype) if dtype else labels, valid)
    assert_results_equal(got, want, what="streaming vs file path")
    assert got.warnings == want.warnings
    return got


def test_labels_shifted_by_2_32_are_unknown_as_in_a_file(tiny):
    """Issue 17: every label + 2^32 evaluated as the original categories (AP 0.2164) before;
    now unknown, with the file path's warning and numbers."""
    gt, results = copy.deepcopy(tiny)
    for r in results:
        r["category_id"] += 1 << 32
    got = _same((gt, results), np.int64)
    assert any("not in the ground truth" in w for w in got.warnings)
    assert got.stats["AP"] in (0.0, -1.0)


@pytest.mark.parametrize(
    "mapping",
    [
        {1: 1 << 31, 2: (1 << 31) + 7},
        {1: 1 << 40, 2: -(1 << 40)},
        {1: 2**63 - 1, 2: -(2**63)},
        {1: -1, 2: -(2**31) - 1},
    ],
    ids=["2^31", "2^40", "int64-limits", "negative"],
)
@pytest.mark.parametrize("dtype", [np.int64, None], ids=["int64", "python-ints"])
def test_64_bit_category_ids_give_the_file_numbers(tiny, mapping, dtype):
    """Ground-truth ids >= 2^31 gave AP 0.0 and a misleading warning before."""
    got = _same(_recategorised(tiny, mapping), dtype)
    assert got.stats["AP"] > 0


def test_uint32_labels_above_2_31(tiny):
    _same(_recategorised(tiny, {1: 1 << 31, 2: (1 << 32) - 1}), np.uint32)


def test_uint64_labels(tiny):
    _same(_recategorised(tiny, {1: 1 << 40, 2: 3}), np.uint64)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8, np.uint16])
def test_narrow_integer_labels(tiny, dtype):
    _same(tiny, dtype)


def test_some_labels_unknown(tiny):
    gt, results = copy.deepcopy(tiny)
    results[0]["category_id"] = 99
    results[1]["category_id"] = (1 << 32) + 1  # 1 in int32
    got = _same((gt, results), np.int64)
    assert any("2 result(s)" in w and "4294967297" in w for w in got.warnings), got.warnings


def _first_real(valid) -> tuple[int, int]:
    b, n = np.argwhere(valid)[0]
    return int(b), int(n)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(5.7, np.float32), (1.0, np.float64), (True, np.bool_), (np.nan, np.float32)],
    ids=["5.7", "integral-float", "bool", "nan"],
)
def test_non_integer_labels_are_refused_naming_video_and_prediction(tiny, value, dtype):
    gt, results = tiny
    ids, masks, scores, labels, valid = _arrays(gt, results)
    labels = np.where(valid, value, 0).astype(dtype)
    b, n = _first_real(valid)
    with pytest.raises(ValueError, match=rf"video {ids[b]} \(video_ids\[{b}\]\), prediction {n}"):
        _stream(gt, ids, masks, scores, labels, valid)


@pytest.mark.parametrize("value", [1.0, 5.7, True])
def test_the_file_path_refuses_them_too(tiny, value):
    gt, results = copy.deepcopy(tiny)
    results[0]["category_id"] = value
    with pytest.raises(FormatError, match="must be an integer"):
        ovis_jax.load_results(results, ovis_jax.load_ground_truth(gt))


@pytest.mark.parametrize("big", [2**63, 2**64 - 1])
def test_labels_beyond_64_bits_are_refused(tiny, big):
    """uint64 values above int64 (and Python ints beyond it), as a file's category_id 2^63."""
    gt, results = copy.deepcopy(tiny)
    ids, masks, scores, labels, valid = _arrays(gt, results)
    b, n = _first_real(valid)
    for arr in (labels.astype(np.uint64), labels.copy()):
        arr[b, n] = big
        with pytest.raises(ValueError, match=rf"prediction {n}: label {big} is not a 64-bit"):
            _stream(gt, ids, masks, scores, arr, valid)
    results[0]["category_id"] = big
    with pytest.raises(FormatError, match="64-bit"):
        ovis_jax.load_results(results, ovis_jax.load_ground_truth(gt))


def test_labels_of_non_predictions_are_not_checked(tiny):
    """Entries with valid False and padding rows are not predictions: any label goes."""
    gt, results = tiny
    ids, masks, scores, labels, valid = _arrays(gt, results)
    want = _stream(gt, ids, masks, scores, labels.astype(np.int64), valid)
    masks = np.concatenate([masks, masks[:1]])
    scores = np.concatenate([scores, scores[:1]])
    valid_p = np.concatenate([valid, valid[:1]])
    ids = [*ids, -1]  # a padding row
    wide = np.concatenate([labels, labels[:1]]).astype(np.uint64)
    wide[~valid_p] = 2**64 - 1
    wide[-1] = 2**64 - 1
    ev = StreamingEvaluator(ovis_jax.load_ground_truth(gt), max_predictions=masks.shape[1])
    got = ev.compute(ev.update(ev.init(), ids, masks, scores, wide, valid_p))
    assert_results_equal(got, want, what="garbage labels of non-predictions")


def test_host_labels_split_and_join_exactly():
    ids = np.array([[0, -1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]], dtype=np.int64)
    lo, hi = host_labels(ids, real=np.ones(ids.shape, bool), video_ids=np.array([3]))
    assert lo.dtype == hi.dtype == np.int32
    assert np.array_equal(join_labels(lo, hi), ids)


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.int32, jnp.uint8, jnp.uint32])
def test_split_labels_traced_matches_the_host(dtype):
    x = np.array([[0, 1, 100, 127]], dtype=np.dtype(dtype))
    if np.dtype(dtype).kind == "i":
        x[0, 0] = -5
    if np.dtype(dtype) == np.uint32:
        x[0, 3] = 2**32 - 1
    lo, hi = jax.jit(split_labels)(jnp.asarray(x))
    want = host_labels(x, real=np.ones(x.shape, bool), video_ids=np.array([0]))
    assert np.array_equal(np.asarray(lo), want[0]) and np.array_equal(np.asarray(hi), want[1])


def test_update_fn_refuses_float_labels(tiny):
    gt, results = tiny
    ids, masks, scores, labels, valid = _arrays(gt, results)
    ev = StreamingEvaluator(ovis_jax.load_ground_truth(gt), max_predictions=masks.shape[1])
    pos, gt_batch = ev.prepare(ids)
    with pytest.raises(ValueError, match="integer category ids, got dtype float32"):
        ev.update_fn(ev.init(), gt_batch, pos, masks, scores, labels.astype(np.float32), valid)
    state = ev.update_fn(ev.init(), gt_batch, pos, masks, scores, labels.astype(np.int32), valid)
    want = _stream(gt, ids, masks, scores, labels.astype(np.int64), valid)
    assert_results_equal(ev.compute(state), want, what="update_fn vs update")


def test_a_state_saved_without_label_hi_still_restores(tiny):
    """States saved before ``label_hi`` existed: the high half is the sign of ``label``."""
    gt, results = tiny
    ids, masks, scores, labels, valid = _arrays(gt, results)
    ev = StreamingEvaluator(ovis_jax.load_ground_truth(gt), max_predictions=masks.shape[1])
    state = ev.update(ev.init(), ids, masks, scores, labels.astype(np.int32), valid)
    old = {k: v for k, v in jax.device_get(vars(state)).items() if k != "label_hi"}
    restored = ev.validate(old)
    assert isinstance(restored, StreamingState)
    assert_results_equal(ev.compute(restored), ev.compute(state), what="old state")
