"""``ovis_jax.compat`` == the official API classes, call sequence by call sequence.

The official numbers are in ``tests/data/compat_stats.json``, written by
``tools/compat_golden.py`` with the official classes (never committed: see
``benchmarks/official.py``): per input recipe and call sequence (``params`` changed before
``evaluate()`` and between ``evaluate()`` and ``accumulate()``), the stats, the ``summarize()``
text, ``eval["counts"]``, fingerprints of precision / recall / scores and, for some sequences,
digests of ``evalImgs`` and ``ious``. Every sequence runs on every backend.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ovis_jax
from ovis_jax.compat import OVIS, YTVOS, OVISeval, YTVOSeval

REPO = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((REPO / "tests" / "data" / "compat_stats.json").read_text())
CASES = {c["name"]: c for c in GOLDEN["cases"]}
#: Recipes (every sequence) and recipe/sequence names that run in the quick suite, both formats
#: (the others are marked slow).
QUICK = ("handmade_iou_ties", "ovis_like_ytvis_3/default")
#: Sequences whose parameters give the kernels new shapes (IoU / recall thresholds, maxDets, area
#: ranges): on the jax backend each compiles anew, so there they run in the slow suite only.
NEW_SHAPES = ("maxdets_4", "area_ranges_relabelled", "iou_rec_thresholds", "accumulate_recthrs")
TOL = 1e-12


def _tool():
    name = "_compat_golden"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "compat_golden.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_INPUTS: dict[str, str] = {}


def _inputs(recipe: dict) -> tuple[dict, list]:
    key = json.dumps(recipe, sort_keys=True)
    if key not in _INPUTS:
        _INPUTS[key] = json.dumps(_tool().official_golden().generate(recipe))
    gt, results = json.loads(_INPUTS[key])
    return gt, results


def _params():
    out = []
    for name in CASES:
        quick = name in QUICK or name.split("/")[0] in QUICK
        for backend in ovis_jax.BACKENDS:
            slow = not quick or (backend == "jax" and name.split("/")[1] in NEW_SHAPES)
            marks = (pytest.mark.slow,) if slow else ()
            out.append(pytest.param(name, backend, id=f"{name}-{backend}", marks=marks))
    return out


def _same_array(got: np.ndarray, want: dict) -> None:
    tool = _tool().official_golden()
    assert list(got.shape) == want["shape"]
    if "runs" in want:
        np.testing.assert_allclose(got, tool.unrle(want), rtol=0, atol=TOL)
    assert tool.digest(got) == want["sha256_round10"]


@pytest.mark.parametrize(("name", "backend"), _params())
def test_official_call_sequence(name, backend):
    case = CASES[name]
    gt, results = _inputs(case["recipe"])
    classes = (OVIS, OVISeval) if case["format"] == "ovis" else (YTVOS, YTVOSeval)
    seq = (name.split("/")[1], case["set"], case["set_after_evaluate"])
    got = _tool().run_sequence(*classes, gt, results, seq, backend=backend)
    np.testing.assert_allclose(got["stats"], case["stats"], rtol=0, atol=TOL)
    assert got["summary"] == case["summary"]
    assert got["counts"] == case["counts"]
    for key in ("precision", "recall", "scores"):
        _same_array(got[key], case[key])
    for key in ("evalImgs_sha256", "evalImgs_len", "evalImgs_present", "ious_sha256"):
        assert got.get(key) == case.get(key), key


# --------------------------------------------------------------------------------------------
# The Mask2Former-family evaluator and mmtracking's subset, written after their call shapes


def _mask2former_style(json_file: str, predictions: list, class_names: list[str]) -> dict:
    """The shape of Mask2Former's ``ytvis_eval._evaluate_predictions_on_coco`` followed by
    detectron2's per-category AP table (written here; not their code)."""
    coco_gt = YTVOS(json_file)
    coco_dt = coco_gt.loadRes(predictions)
    coco_eval = YTVOSeval(coco_gt, coco_dt)
    coco_eval.params.maxDets = [1, 10, 100]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    metrics = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"]
    stats = coco_eval.stats[:8]
    out = {m: float(s * 100 if s >= 0 else "nan") for m, s in zip(metrics, stats, strict=True)}
    precisions = coco_eval.eval["precision"]
    assert len(class_names) == precisions.shape[2]
    for k, cname in enumerate(class_names):
        precision = precisions[:, :, k, 0, -1]
        precision = precision[precision > -1]
        out[f"AP-{cname}"] = float(np.mean(precision) * 100) if precision.size else float("nan")
    return out


@pytest.mark.parametrize("backend", ovis_jax.BACKENDS)
def test_mask2former_shaped_evaluator(tmp_path, backend, monkeypatch):
    gt, results = _inputs(CASES["ovis_like_ytvis_3/default"]["recipe"])
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(gt))
    monkeypatch.setattr(YTVOSeval.__init__, "__kwdefaults__", {"backend": backend})
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        got = _mask2former_style(str(path), results, [c["name"] for c in gt["categories"]])
    assert printed.getvalue() == CASES["ovis_like_ytvis_3/mask2former"]["summary"]
    want = ovis_jax.evaluate(gt, results, backend=backend)
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"):
        w = want.stats[key]
        assert got[key] == pytest.approx(w * 100, abs=1e-10) if w >= 0 else np.isnan(got[key])
    for k, cat in enumerate(gt["categories"]):
        p = want.precision[:, :, k, 0, 0, -1]
        p = p[p > -1]
        if p.size:
            assert got[f"AP-{cat['name']}"] == pytest.approx(np.mean(p) * 100, abs=1e-10)
        else:
            assert np.isnan(got[f"AP-{cat['name']}"])


@pytest.mark.parametrize("backend", ovis_jax.BACKENDS)
def test_mmtracking_video_subset(backend):
    """``params.vidIds`` = a subset evaluates those videos as the 2022 subset path does."""
    gt, results = _inputs(CASES["random_ytvis_102/default"]["recipe"])
    ids = sorted(v["id"] for v in gt["videos"])[1::3]
    coco_gt = YTVOS()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    ev = YTVOSeval(coco_gt, coco_gt.loadRes(results), backend=backend)
    ev.params.vidIds = ids
    ev.evaluate()
    ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    want = ovis_jax.evaluate(gt, results, backend=backend, subsets={"s": ids}).subsets["s"]
    np.testing.assert_allclose(ev.stats, list(want.stats.values()), rtol=0, atol=TOL)
    np.testing.assert_allclose(ev.eval["precision"], want.precision[..., 0, :], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# The dataset classes and what raises


def _small():
    gt, results = _inputs(CASES["handmade_iou_ties/default"]["recipe"])
    return gt, results


def test_load_res_forms_and_no_mutation(tmp_path):
    gt, results = _small()
    before = json.dumps(results)
    coco_gt = OVIS()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    plain = tmp_path / "r.json"
    plain.write_text(json.dumps(results))
    gz = tmp_path / "r.json.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zp = tmp_path / "r.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("results.json", plain.read_text())
    forms = [results, str(plain), gz, zp, np.asarray(results, dtype=object)]
    loaded = [coco_gt.loadRes(f) for f in forms]
    assert json.dumps(results) == before  # the caller's dicts are untouched
    anns = loaded[0].dataset["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(results) + 1))
    assert all(a["iscrowd"] == 0 and len(a["areas"]) == len(a["segmentations"]) for a in anns)
    for other in loaded[1:]:
        assert [a["avg_area"] for a in other.dataset["annotations"]] == [
            a["avg_area"] for a in anns
        ]
    with pytest.raises(NotImplementedError, match="numeric NumPy array"):
        coco_gt.loadRes(np.zeros((3, 7)))
    with pytest.raises(ovis_jax.FormatError, match="video"):
        coco_gt.loadRes([{**results[0], "video_id": 999}])


def test_dataset_queries(tmp_path):
    gt, _ = _small()
    path = tmp_path / "gt.json.gz"
    path.write_bytes(gzip.compress(json.dumps(gt).encode()))
    ds = OVIS(path)
    assert ds.getVidIds() == [1, 2]
    assert ds.getCatIds() == [1, 2] and ds.getCatIds(catNms=["cat2"]) == [2]
    assert ds.getAnnIds(vidIds=[2]) == [3, 4, 5]
    assert ds.getAnnIds(vidIds=2, catIds=[2], iscrowd=1) == [3]
    assert ds.getAnnIds(areaRng=[10, 1e10]) == [5]
    assert ds.getVidIds(catIds=[2]) == [2]
    assert ds.loadAnns(3)[0]["iscrowd"] == 1 and ds.loadCats([1])[0]["name"] == "cat1"
    assert ds.loadVids(np.int64(1))[0]["height"] == 10
    assert ds.vidToAnns[1] == ds.loadAnns([1, 2]) and ds.catToVids[2] == [2, 2, 2]
    mask = ds.annToMask(ds.anns[1], 0)
    assert mask.shape == (10, 10) and int(mask.sum()) == 6
    assert ds.annToRLE(ds.anns[1], 0) is ds.anns[1]["segmentations"][0]


def test_what_raises():
    gt, results = _small()
    coco_gt = OVIS()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(results)
    for iou_type in ("bbox", "keypoints"):
        with pytest.raises(NotImplementedError, match=iou_type):
            OVISeval(coco_gt, coco_dt, iou_type).evaluate()
    ev = OVISeval(coco_gt, coco_dt)
    ev.params.useSegm = 0  # the deprecated switch: bbox
    with pytest.raises(NotImplementedError, match="bbox"):
        ev.evaluate()
    ev = OVISeval(coco_gt, coco_dt)
    with pytest.raises(RuntimeError, match="evaluate"):
        ev.accumulate()
    ev.evaluate()
    with pytest.raises(RuntimeError, match="accumulate"):
        ev.summarize()
    ev.params.vidIds = [77, *ev.params.vidIds]  # positions past the evaluated videos
    with pytest.raises(NotImplementedError, match="past the evaluated"):
        ev.accumulate()
    with pytest.raises(ValueError, match="backend"):
        OVISeval(coco_gt, coco_dt, backend="gpu")


def test_nothing_but_summarize_prints(capsys):
    gt, results = _small()
    coco_gt = OVIS()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    ev = OVISeval(coco_gt, coco_gt.loadRes(results), backend="cpu")
    ev.evaluate()
    ev.accumulate()
    assert capsys.readouterr().out == ""
    ev.summarize()
    assert capsys.readouterr().out == CASES["handmade_iou_ties/default"]["summary"]
    assert isinstance(ev.stats, np.ndarray) and ev.stats.shape == (18,)
    assert ev.eval["counts"] == [10, 101, 2, 4, 4, 3]
