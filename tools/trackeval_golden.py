"""Writes ``tests/data/trackeval_stats.json``: what TrackEval 1.3.0 says on synthetic inputs.

For each case the file holds a *recipe* (as in ``tools/official_golden.py``: a ``synthetic``
generator and its keyword arguments, or a hand-built input) and TrackEval's numbers for its
YouTube-VIS dataset with the HOTA, CLEAR and Identity metrics: every key of both class
combinations (``cls_comb_cls_av``, ``cls_comb_det_av``; HOTA keys as arrays over the 19
alphas) and every key of every category (HOTA arrays as their mean over the alphas).
``tests/test_tracking.py`` regenerates every input and checks every backend against them.

TrackEval is never a dependency and never copied: it runs in a separate environment::

    python3 -m venv /tmp/te_venv && /tmp/te_venv/bin/pip install trackeval==1.3.0 pycocotools
    python tools/trackeval_golden.py --python /tmp/te_venv/bin/python

The inputs are converted to what TrackEval's YouTube-VIS loader needs (in a temporary folder):
ground-truth annotations get ``height`` / ``width`` and uncompressed RLE masks (its loader runs
``frPyObjects`` on them, which fails on compressed strings and polygons), results keep
compressed RLE, videos get one ``file_names`` folder each (its sequence names). Old NumPy
aliases (``np.int``, ...) are shimmed inside the TrackEval process only.

``--bench GT RESULTS`` instead times TrackEval's whole run against ``tracking_metrics`` (load
included) on the same files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "trackeval_stats.json"

# Runner executed by TrackEval's interpreter: ours, no TrackEval code copied.
RUNNER = r"""
import contextlib, io, json, sys, time
import numpy as np
for _n, _t in (("int", int), ("bool", bool), ("float", float)):
    if not hasattr(np, _n):
        setattr(np, _n, _t)
t0 = time.perf_counter()
import trackeval
root = sys.argv[1]
ev = trackeval.Evaluator(dict(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False,
    TIME_PROGRESS=False, OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False,
    LOG_ON_ERROR=None))
ds = trackeval.datasets.YouTubeVIS(dict(GT_FOLDER=root + "/gt/",
    TRACKERS_FOLDER=root + "/trackers/",
    SPLIT_TO_EVAL="golden", OUTPUT_FOLDER=root + "/output", TRACKERS_TO_EVAL=["ours"],
    PRINT_CONFIG=False))
metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
           trackeval.metrics.Identity({"PRINT_CONFIG": False})]
with contextlib.redirect_stdout(io.StringIO()):
    res, _ = ev.evaluate([ds], metrics)
elapsed = time.perf_counter() - t0
def plain(v):
    if isinstance(v, np.ndarray):
        return [float(x) for x in v.tolist()]
    if isinstance(v, (np.integer, int)):
        return int(v)
    return float(v)
comb = res["YouTubeVIS"]["ours"]["COMBINED_SEQ"]
out = {"elapsed_s": elapsed, "version": trackeval.__version__ if hasattr(trackeval, "__version__")
       else None, "classes": {c: {m: {k: plain(v) for k, v in f.items()} for m, f in bm.items()
       if m in ("HOTA", "CLEAR", "Identity")} for c, bm in comb.items()}}
json.dump(out, open(root + "/out.json", "w"))
"""

FAMILY_NAMES = {"hota": "HOTA", "clear": "CLEAR", "identity": "Identity"}


def _official_golden():
    """``tools/official_golden.py`` (its recipes and generators), loaded by path."""
    name = "_ovis_jax_official_golden"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "official_golden.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------------------------
# Recipes (imported by tests/test_tracking.py: keep this part free of TrackEval)


def recipes() -> list[dict[str, Any]]:
    """The ~40 cases: random datasets of both formats (crowds, null frames, empty masks, score
    and IoU ties, categories without ground truth, unknown categories), few-result variants
    (tracks absent from frames dominate), small ovis_like sets and the hand-built tie case."""
    out: list[dict[str, Any]] = []
    for s in range(0, 10):
        out.append({"generator": "random_dataset", "kwargs": {"seed": s}})
    for s in range(100, 108):
        out.append({"generator": "random_dataset", "kwargs": {"seed": s, "occlusion": False}})
    for s in range(200, 204):
        out.append({"generator": "random_dataset",
                    "kwargs": {"seed": s, "unknown_categories": True}})  # fmt: skip
    for s in range(300, 310):
        out.append({"generator": "random_dataset", "kwargs": {
            "seed": s, "max_results_per_video": 6, "num_categories": 3}})  # fmt: skip
    for kw in _official_golden().OVIS_LIKE_KWARGS:
        out.append({"generator": "ovis_like", "kwargs": dict(kw)})
    out.append({"generator": "ovis_like", "kwargs": {
        "seed": 5, "num_videos": 2, "num_categories": 3, "frames": 12, "sizes": [[64, 96]],
        "predictions_per_video": 30, "crowd_rate": 0.5}})  # fmt: skip
    out.append({"generator": "handmade", "kwargs": {"name": "iou_ties"}})
    out.append({"generator": "demo"})
    return out


def generate(recipe: dict) -> tuple[dict, list]:
    """The input of ``recipe`` (the generators of ``tools/official_golden.py``)."""
    return _official_golden().generate(recipe)


# --------------------------------------------------------------------------------------------
# Conversion to TrackEval's YouTube-VIS layout


def _string_counts(s: bytes) -> list[int]:
    """The run lengths of a COCO compressed RLE string (pycocotools' ``rleFrString``)."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def convert(gt, results, root: Path) -> None:
    """Writes the loaded ``gt`` / ``results`` under ``root`` as TrackEval's loader wants."""
    videos = [{"id": v.id, "height": v.height, "width": v.width, "length": v.length,
               "file_names": [f"v{v.id}/{t:05d}.jpg" for t in range(v.length)]}
              for v in gt.videos]  # fmt: skip
    size = {v.id: (v.height, v.width) for v in gt.videos}
    anns = []
    for i in range(gt.ann_id.shape[0]):
        h, w = size[int(gt.video_id[i])]
        segs = [None if f is None else {"size": [h, w], "counts": _string_counts(f["counts"])}
                for f in gt.rles[i]]  # fmt: skip
        areas = [None if s is None else int(sum(s["counts"][1::2])) for s in segs]
        anns.append({"id": int(gt.ann_id[i]), "video_id": int(gt.video_id[i]),
                     "category_id": int(gt.category_id[i]), "iscrowd": int(gt.iscrowd[i]),
                     "height": h, "width": w, "segmentations": segs, "areas": areas})  # fmt: skip
    cats = [
        {"id": int(c), "name": n} for c, n in zip(gt.category_ids, gt.category_names, strict=True)
    ]
    res = []
    for i in range(results.score.shape[0]):
        segs = [None if f is None else {"size": list(f["size"]), "counts": f["counts"].decode()}
                for f in results.rles[i]]  # fmt: skip
        res.append({"video_id": int(results.video_id[i]), "category_id":
                    int(results.category_id[i]), "score": float(results.score[i]),
                    "segmentations": segs})  # fmt: skip
    gdir = root / "gt" / "youtube_vis_golden"
    tdir = root / "trackers" / "youtube_vis_golden" / "ours" / "data"
    gdir.mkdir(parents=True, exist_ok=True)
    tdir.mkdir(parents=True, exist_ok=True)
    (gdir / "gt.json").write_text(json.dumps({"videos": videos, "categories": cats,
                                              "annotations": anns}))  # fmt: skip
    (tdir / "results.json").write_text(json.dumps(res))


def run_trackeval(python: str, root: Path) -> dict:
    """TrackEval's combined results on ``root`` (its own process)."""
    script = root / "runner.py"
    script.write_text(RUNNER)
    subprocess.run([python, str(script), str(root)], check=True)
    return json.loads((root / "out.json").read_text())


def _case(out: dict, gt) -> dict:
    """TrackEval's output reshaped: averages with full arrays, categories as summaries."""

    def fam_keys(by_metric: dict, arrays: bool) -> dict:
        flat: dict[str, Any] = {}
        for ours, theirs in FAMILY_NAMES.items():
            for k, v in by_metric[theirs].items():
                flat[f"{ours}/{k}"] = v if arrays or not isinstance(v, list) else float(
                    np.mean(v))  # fmt: skip
        return flat

    classes = out["classes"]
    return {
        "class_average": fam_keys(classes["cls_comb_cls_av"], True),
        "detection_average": fam_keys(classes["cls_comb_det_av"], True),
        "per_category": {
            str(int(c)): fam_keys(classes[n], False)
            for c, n in zip(gt.category_ids, gt.category_names, strict=True)
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/tmp/te_venv/bin/python")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--bench", nargs=2, metavar=("GT", "RESULTS"))
    args = ap.parse_args(argv)
    from ovis_jax._src.io.vis import load_ground_truth, load_results

    if args.bench:
        return _bench(args.python, *args.bench)
    cases = []
    for i, recipe in enumerate(recipes()):
        g, r = generate(recipe)
        gt = load_ground_truth(g)
        res = load_results(r, gt)
        with tempfile.TemporaryDirectory(prefix="trackeval_golden_") as tmp:
            convert(gt, res, Path(tmp))
            out = run_trackeval(args.python, Path(tmp))
        cases.append({"recipe": recipe, **_case(out, gt)})
        print(f"case {i}: {len(gt.category_ids)} categories, {len(r)} results", flush=True)
    doc = {"trackeval": "1.3.0 (PyPI), datasets.YouTubeVIS, metrics HOTA / CLEAR / Identity",
           "cases": cases}  # fmt: skip
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


def _bench(python: str, gt_path: str, res_path: str) -> int:
    """Times TrackEval's whole run (its process, load included) and ours on the same files."""
    from ovis_jax._src.io.vis import load_ground_truth, load_results
    from ovis_jax._src.metrics.tracking.api import tracking_metrics

    t = time.perf_counter()
    gt = load_ground_truth(gt_path)
    res = load_results(res_path, gt)
    ours = tracking_metrics(gt, res)
    ours_s = time.perf_counter() - t
    print(f"ours (load + tracking_metrics, cpu): {ours_s:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="trackeval_bench_") as tmp:
        t = time.perf_counter()
        convert(gt, res, Path(tmp))
        print(f"conversion for TrackEval: {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        out = run_trackeval(python, Path(tmp))
        te_s = time.perf_counter() - t
    print(f"TrackEval whole process: {te_s:.2f} s (inside: {out['elapsed_s']:.2f} s)")
    case = _case(out, gt)
    diffs = {}
    for key, theirs in case["class_average"].items():
        k = key.split("/", 1)[1]
        if k in ours.class_average:
            diffs[key] = abs(ours.class_average[k] - float(np.mean(theirs)))
    worst = max(diffs, key=diffs.get)
    print(f"worst class-average difference {diffs[worst]:.3g} ({worst})")
    print(f"speed-up {te_s / ours_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
