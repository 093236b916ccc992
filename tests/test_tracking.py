"""Tracking metrics (HOTA, CLEAR, Identity): hand cases and TrackEval 1.3.0 golden numbers."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from ovis_jax._src.io.vis import load_ground_truth, load_results
from ovis_jax._src.metrics.tracking import clear, hota, identity
from ovis_jax._src.metrics.tracking.api import tracking_metrics
from ovis_jax._src.metrics.tracking.base import SequenceData

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "trackeval_stats.json"
BACKENDS = ("cpu", "reference")
FAMILIES = {"hota": hota, "clear": clear, "identity": identity}


def _tool():
    name = "_ovis_jax_trackeval_golden"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "trackeval_golden.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------------------------
# TrackEval's own hand cases (its tests/test_metrics.py, the CLEAR and Identity ones)


def _from_dense(gt_present, tracker_present, similarity) -> SequenceData:
    n = gt_present.shape[0]
    g = [np.flatnonzero(gt_present[t]) for t in range(n)]
    d = [np.flatnonzero(tracker_present[t]) for t in range(n)]
    s = [similarity[t][g[t], :][:, d[t]] for t in range(n)]
    return SequenceData.from_frames(
        gt_ids=g, tracker_ids=d, similarity_scores=s,
        num_gt_ids=gt_present.shape[1], num_tracker_ids=tracker_present.shape[1],
    )  # fmt: skip


def _no_confusion(confusion: bool):
    sim = np.zeros((5, 2, 2))
    sim[:, 0, 1] = [0, 0, 0, 1, 1]
    sim[:, 1, 0] = [1, 1, 0, 0, 0]
    if confusion:
        sim[:, 0, 0] = [0, 0, 1, 0, 0]
        sim[:, 1, 1] = [0, 1, 0, 0, 0]
    gp = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).T
    tp = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).T
    return _from_dense(gp, tp, sim)


def _split_tracks():
    sim = np.zeros((5, 2, 5))
    sim[:, 0, 0] = [1, 1, 0, 0, 0]
    sim[:, 0, 3] = [0, 0, 0, 1, 1]
    sim[:, 1, 1] = [0, 0, 1, 1, 0]
    sim[:, 1, 2] = [0, 0, 0, 0, 1]
    sim[:, 1, 4] = [1, 1, 0, 0, 0]
    gp = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 1]]).T
    tp = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [0, 0, 1, 1, 1],
                   [1, 1, 0, 0, 0]]).T  # fmt: skip
    return _from_dense(gp, tp, sim)


HAND = {
    "no_confusion": (
        lambda: _no_confusion(False),
        {"clear": {"CLR_TP": 4, "CLR_FN": 4, "CLR_FP": 5, "IDSW": 0, "MOTA": 1 - 9 / 8},
         "identity": {"IDTP": 4, "IDFN": 4, "IDFP": 5, "IDR": 4 / 8, "IDP": 4 / 9,
                      "IDF1": 2 * 4 / 17}},
    ),
    "with_confusion": (
        lambda: _no_confusion(True),
        {"clear": {"CLR_TP": 5, "CLR_FN": 3, "CLR_FP": 4, "IDSW": 1, "MOTA": 1 - 8 / 8},
         "identity": {"IDTP": 4, "IDFN": 4, "IDFP": 5, "IDR": 4 / 8, "IDP": 4 / 9,
                      "IDF1": 2 * 4 / 17}},
    ),
    "split_tracks": (
        _split_tracks,
        {"clear": {"CLR_TP": 9, "CLR_FN": 0, "CLR_FP": 2, "IDSW": 3, "MOTA": 1 - 5 / 9},
         "identity": {"IDTP": 4, "IDFN": 5, "IDFP": 7, "IDR": 4 / 9, "IDP": 4 / 11,
                      "IDF1": 2 * 4 / 20}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HAND))
def test_trackeval_hand_cases(name):
    make, expected = HAND[name]
    data = make()
    for fam, keys in expected.items():
        res = FAMILIES[fam].eval_sequence(data)
        for k, v in keys.items():
            assert res[k] == pytest.approx(v, abs=1e-12), (fam, k)


def test_hota_hand_case():
    """One gt and one tracker track over 4 frames, IoUs 1, 0.5, 0.5 and a missed frame.

    Alpha <= 0.5: 3 TP, 1 FN (frame 3 has no tracker), 0 FP; one id pair with 3 matches:
    AssA = 3 / (4 + 3 - 3) = 3/4, AssRe = 3/4, AssPr = 1; LocA = 2/3; DetA = 3/4.
    Alpha > 0.5: 1 TP, 3 FN, 2 FP; AssA = 1 / (4 + 3 - 1) = 1/6; DetA = 1/6.
    """
    data = SequenceData.from_frames(
        gt_ids=[[0], [0], [0], [0]], tracker_ids=[[0], [0], [0], []],
        similarity_scores=[np.array([[1.0]]), np.array([[0.5]]), np.array([[0.5]]),
                           np.zeros((1, 0))],
    )  # fmt: skip
    res = hota.eval_sequence(data)
    low = hota.ALPHAS <= 0.5 + 1e-12
    np.testing.assert_allclose(res["HOTA_TP"], np.where(low, 3, 1))
    np.testing.assert_allclose(res["DetA"], np.where(low, 3 / 4, 1 / 6), rtol=0, atol=1e-15)
    np.testing.assert_allclose(res["AssA"], np.where(low, 3 / 4, 1 / 6), rtol=0, atol=1e-15)
    np.testing.assert_allclose(res["AssPr"], np.where(low, 1.0, 1 / 3), rtol=0, atol=1e-15)
    np.testing.assert_allclose(res["LocA"], np.where(low, 2 / 3, 1.0), rtol=0, atol=1e-15)
    assert res["HOTA(0)"] == pytest.approx(3 / 4, abs=1e-15)
    c = clear.eval_sequence(data)
    # Tracked 3 of 4 frames: 0.75 is not > 0.8, so partly tracked.
    assert (c["CLR_TP"], c["CLR_FN"], c["IDSW"], c["MT"], c["PT"], c["Frag"]) == (3, 1, 0, 0, 1, 0)
    assert c["MOTP"] == pytest.approx(2 / 3, abs=1e-15)


def test_from_frames_roundtrip():
    data = _split_tracks()
    fv = data.frames()
    for t in range(data.num_timesteps):
        g, d, s = fv.frame(data, t)
        assert s.shape == (g.shape[0], d.shape[0])


# --------------------------------------------------------------------------------------------
# TrackEval golden numbers


def _golden():
    if not GOLDEN.exists():
        pytest.skip("tests/data/trackeval_stats.json missing (tools/trackeval_golden.py)")
    return json.loads(GOLDEN.read_text())["cases"]


def _load(recipe):
    g, r = _tool().generate(recipe)
    gt = load_ground_truth(g)
    return gt, load_results(r, gt)


def _close(ours, theirs, where):
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray([np.nan if x is None else x for x in theirs] if isinstance(theirs, list)
                   else (np.nan if theirs is None else theirs), dtype=np.float64)  # fmt: skip
    assert a.shape == b.shape, where
    ok = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-9)
    assert ok.all(), f"{where}: ours {a}, TrackEval {b}"


def _check_case(case, result):
    for name in ("class_average", "detection_average"):
        block = getattr(result, name)
        arrays = result.per_alpha[name]
        for key, theirs in case[name].items():
            fam, k = key.split("/", 1)
            if fam == "hota" and k in arrays:
                _close(arrays[k], theirs, f"{name} {key}")
                _close(block[k], float(np.mean(theirs)), f"{name} {key} (mean)")
            elif k in block:
                _close(block[k], theirs, f"{name} {key}")
    by_id = {str(c["id"]): c for c in result.per_category}
    for cid, keys in case["per_category"].items():
        for key, theirs in keys.items():
            k = key.split("/", 1)[1]
            if k in by_id[cid]:
                _close(by_id[cid][k], theirs, f"category {cid} {key}")


def _case_ids():
    if not GOLDEN.exists():
        return []
    return range(len(json.loads(GOLDEN.read_text())["cases"]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("i", _case_ids())
def test_golden(i, backend):
    case = _golden()[i]
    gt, res = _load(case["recipe"])
    _check_case(case, tracking_metrics(gt, res, backend=backend))


@pytest.mark.parametrize("i", [0, 3, 12, 22])
def test_backends_equal(i):
    case = _golden()[i]
    gt, res = _load(case["recipe"])
    a = tracking_metrics(gt, res, backend="cpu").to_json()
    b = tracking_metrics(gt, res, backend="reference").to_json()
    assert a == b


def test_class_average_present_and_threshold():
    case = _golden()[0]
    gt, res = _load(case["recipe"])
    full = tracking_metrics(gt, res)
    present = [c for c in full.per_category if c["CLR_TP"] + c["CLR_FN"] > 0]
    assert full.class_average_present["IDF1"] == pytest.approx(
        np.mean([c["IDF1"] for c in present]), abs=1e-12)  # fmt: skip
    cut = tracking_metrics(gt, res, score_threshold=0.5)
    assert cut.num_results == int((res.score >= 0.5).sum())
    assert cut.detection_average["CLR_FP"] <= full.detection_average["CLR_FP"]
    text = full.format_text()
    assert "HOTA" in text and "IDF1" in text and math.isfinite(full.class_average["HOTA"])
