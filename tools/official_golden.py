"""Writes ``tests/data/official_stats.json``: what the official evaluator says on synthetic inputs.

For each case the file holds a *recipe* that regenerates the input exactly (the demo sample, or a
``synthetic`` generator and its keyword arguments, plus an optional named transform) and
the official evaluator's numbers (the cases: the demo sample, two hand-built inputs, seeded
``random_dataset`` inputs of both formats and small ``ovis_like`` ones): all 18 (OVIS) or 12
(YouTube-VIS) stats at full precision, and fingerprints of the official ``precision`` /
``recall`` arrays (their shape, a SHA-256 of the values rounded to 10 decimals, and a run-length
encoding of the values: always for recall, for precision when it is short).
``tests/test_official.py`` regenerates every input and checks every backend against these numbers.

Only numbers are written: the official code is never copied into the repository. Get it as
``benchmarks/official.py`` explains (https://github.com/qjy981010/cocoapi for OVIS,
https://github.com/youtubevos/cocoapi for YouTube-VIS) and run::

    python tools/official_golden.py --official DIR [--out tests/data/official_stats.json]

Inputs on which the official code is documented to crash (README, "Where `ovis_jax` differs")
are avoided:

* an empty result list: such seeds are skipped (and listed under ``"skipped"``);
* a ground-truth track whose occlusion labels are all null (the official OVIS code divides by
  zero): the transform ``"null_occlusion_to_no"`` labels every non-null frame of such a track
  ``"no_occlusion"``, which gives it the occlusion score 0.0 that ``ovis_jax`` gives the all-null
  track. The test also evaluates the untransformed input and expects the same numbers.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "official_stats.json"
#: Precision run-length encodings longer than this (JSON characters) are left out (the digest
#: still covers the array); recall ones are always kept.
PRECISION_RUNS_MAX_CHARS = 12_000

# Seeds of random_dataset: OVIS format, YouTube-VIS format, and both with unknown categories.
OVIS_SEEDS = range(0, 30)
# OVIS seeds whose tracks all have some occlusion label (no transform needed), >= 5 tracks each.
OVIS_CLEAN_SEEDS = (47, 48, 54, 56, 60, 95, 101, 131)
YTVIS_SEEDS = range(100, 130)
UNKNOWN_CATEGORY_SEEDS = range(200, 206)
# Small ovis_like datasets (realistic, fragmented masks; crowds).
OVIS_LIKE_KWARGS: tuple[dict[str, Any], ...] = (
    {"seed": 1, "num_videos": 4, "num_categories": 4, "frames": (4, 8),
     "sizes": [[60, 100], [90, 160]], "predictions_per_video": 8},
    {"seed": 2, "num_videos": 3, "num_categories": 3, "frames": 6, "sizes": [[72, 128]],
     "predictions_per_video": 10, "crowd_rate": 0.3},
    {"seed": 3, "num_videos": 4, "num_categories": 5, "frames": (3, 9),
     "sizes": [[60, 100], [90, 160]], "predictions_per_video": 12, "occlusion": False},
    {"seed": 4, "num_videos": 2, "num_categories": 2, "frames": 10, "sizes": [[120, 200]],
     "predictions_per_video": 15, "crowd_rate": 0.2, "occlusion": False},
)  # fmt: skip

#: Hand-built inputs (``_handmade``): IoU ties between ground truths (metric step 9: the later one
#: wins; no random dataset decides this rule) and a result whose area is exactly 128**2.
HANDMADE = ("iou_ties", "result_area_boundary")


# --------------------------------------------------------------------------------------------
# Recipes (imported by tests/test_official.py: keep this part free of the official code)
# --------------------------------------------------------------------------------------------


def _null_occlusion_to_no(gt: dict) -> int:
    """Labels the non-null frames of all-null-occlusion tracks "no_occlusion"; returns how many
    tracks it changed."""
    changed = 0
    for ann in gt["annotations"]:
        occ = ann.get("occlusion")
        if occ is not None and all(o is None for o in occ):
            ann["occlusion"] = [None if s is None else "no_occlusion" for s in ann["segmentations"]]
            changed += 1
    return changed


TRANSFORMS = {"null_occlusion_to_no": _null_occlusion_to_no}


def _synthetic():
    """``ovis_jax/testing/synthetic.py`` loaded by path (NumPy + pycocotools only; works without
    installing, and without importing the rest of the package)."""
    name = "_ovis_jax_synthetic"
    if name not in sys.modules:
        path = REPO / "ovis_jax" / "testing" / "synthetic.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _handmade(name: str) -> tuple[dict, list]:
    """Small hand-built inputs for rules random data seldom decides (see HANDMADE)."""
    enc = _synthetic().encode_mask

    def mask(h: int, w: int, rows: slice, cols: slice) -> dict:
        m = np.zeros((h, w), np.uint8)
        m[rows, cols] = 1
        return enc(m)

    def video(vid: int, h: int, w: int) -> dict:
        return {"id": vid, "width": w, "height": h, "length": 1, "file_names": [f"{vid}.jpg"]}

    def ann(aid, vid, cat, seg, area, crowd=0, occ=None):
        a = {"id": aid, "video_id": vid, "category_id": cat, "segmentations": [seg],
             "areas": [area], "bboxes": [None], "iscrowd": crowd}  # fmt: skip
        if occ is not None:
            a["occlusion"] = [occ]
        return a

    def res(vid, cat, score, seg):
        return {"video_id": vid, "category_id": cat, "score": score, "segmentations": [seg]}

    cats = [{"id": c, "name": f"cat{c}", "supercategory": "object"} for c in (1, 2)]
    if name == "iou_ties":
        # Row 0 of a 10x10 frame: A = cols 0-9, M1 = cols 0-5, M2 = cols 4-9;
        # IoU(A, M1) = IoU(A, M2) = 0.6, IoU(M1, M2) = 0.2. metric step 9: among equal IoUs the
        # later ground truth wins, which decides what a lower-scored result can still match.
        a, m1, m2 = (mask(10, 10, slice(0, 1), c) for c in (slice(0, 10), slice(0, 6),
                                                               slice(4, 10)))  # fmt: skip
        m3 = mask(10, 10, slice(5, 10), slice(0, 5))
        gt = {
            "videos": [video(1, 10, 10), video(2, 10, 10)],
            "categories": cats,
            "annotations": [
                # Video 1: two plain tracks. A takes M2 (the later), so B = M1 still matches.
                ann(1, 1, 1, m1, 6, occ="no_occlusion"),
                ann(2, 1, 1, m2, 6, occ="no_occlusion"),
                # Video 2: in the "heavy" occlusion range M1 (crowd) and M2 (light) are
                # ignored: A takes M2, so B = M2 is unmatched and counts as a false positive.
                ann(3, 2, 2, m1, 6, crowd=1, occ="no_occlusion"),
                ann(4, 2, 2, m2, 6, occ="no_occlusion"),
                ann(5, 2, 2, m3, 25, occ="severe_occlusion"),
            ],
        }
        results = [
            res(1, 1, 0.9, a), res(1, 1, 0.8, m1),
            res(2, 2, 0.9, a), res(2, 2, 0.8, m2), res(2, 2, 0.7, m3),
        ]  # fmt: skip
        return gt, results
    if name == "result_area_boundary":
        # A 256x128 frame; the ground truth's area is 128**2 (small and medium); an unmatched
        # result of exactly 128**2 pixels is a false positive in both ranges (metric steps 7, 10).
        top, bottom = (mask(256, 128, r, slice(0, 128)) for r in (slice(0, 128), slice(128, 256)))
        quarter = mask(256, 128, slice(0, 64), slice(0, 128))
        gt = {
            "videos": [video(1, 256, 128)],
            "categories": cats[:1],
            "annotations": [ann(1, 1, 1, top, 128 * 128), ann(2, 1, 1, quarter, 64 * 128)],
        }
        results = [res(1, 1, 0.9, bottom), res(1, 1, 0.8, top), res(1, 1, 0.7, quarter)]
        return gt, results
    raise ValueError(f"unknown handmade case {name!r}")


def generate_raw(recipe: dict) -> tuple[dict, list]:
    """The generator's output for ``recipe``, before its transform."""
    gen = recipe["generator"]
    if gen == "demo":
        data = REPO / "ovis_jax" / "data"
        gt = json.loads((data / "demo_gt.json").read_text())
        results = json.loads((data / "demo_results.json").read_text())
        return gt, results
    if gen == "handmade":
        return _handmade(**recipe["kwargs"])
    synthetic = _synthetic()
    kwargs = dict(recipe["kwargs"])
    if gen == "ovis_like":
        if "sizes" in kwargs:
            kwargs["sizes"] = tuple(tuple(s) for s in kwargs["sizes"])
        if isinstance(kwargs.get("frames"), list):
            kwargs["frames"] = tuple(kwargs["frames"])
        return synthetic.ovis_like(**kwargs)
    if gen == "random_dataset":
        return synthetic.random_dataset(**kwargs)
    raise ValueError(f"unknown generator {gen!r}")


def generate(recipe: dict) -> tuple[dict, list]:
    """The input ``recipe`` describes: the generator's output with the transform applied."""
    gt, results = generate_raw(recipe)
    if recipe.get("transform"):
        gt = copy.deepcopy(gt)
        TRANSFORMS[recipe["transform"]](gt)
    return gt, results


def _rle(values: np.ndarray) -> list[list[float | int]]:
    flat = values.ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    counts = np.diff(np.concatenate((starts, [flat.size])))
    return [[float(flat[s]), int(c)] for s, c in zip(starts, counts, strict=True)]


def digest(values: np.ndarray) -> str:
    """SHA-256 of the float64 values rounded to 10 decimals (C order, -0.0 made 0.0)."""
    a = np.ascontiguousarray(np.round(np.asarray(values, np.float64), 10) + 0.0)
    return hashlib.sha256(a.tobytes()).hexdigest()


def fingerprint(values: np.ndarray, *, max_chars: int | None, runs_axis: int | None = None) -> dict:
    """Shape, digest and (when at most ``max_chars`` of JSON, or always if None) the run-length
    encoding of an array; ``runs_axis`` is moved last before encoding (the recall-threshold axis
    of precision: long runs)."""
    values = np.asarray(values, np.float64)
    out: dict[str, Any] = {"shape": list(values.shape), "sha256_round10": digest(values)}
    moved = values if runs_axis is None else np.moveaxis(values, runs_axis, -1)
    runs = _rle(moved)
    if max_chars is None or len(json.dumps(runs)) <= max_chars:
        out["runs"] = runs
        if runs_axis is not None:
            out["runs_axis"] = runs_axis
    return out


def unrle(fp: dict) -> np.ndarray:
    """The array a :func:`fingerprint` with ``runs`` encodes."""
    shape, runs, axis = fp["shape"], fp["runs"], fp.get("runs_axis")
    moved = list(shape) if axis is None else [*shape[:axis], *shape[axis + 1 :], shape[axis]]
    if runs:
        flat = np.repeat([r[0] for r in runs], [r[1] for r in runs]).astype(np.float64)
    else:
        flat = np.zeros(0)
    arr = flat.reshape(moved)
    return arr if axis is None else np.moveaxis(arr, -1, axis)


def features(gt: dict, results: list) -> list[str]:
    """Corner-case features of an input (for the coverage summary)."""
    feats = []
    anns = gt["annotations"]
    if any(a.get("iscrowd") for a in anns):
        feats.append("crowd")
    scores = [r["score"] for r in results]
    if len(set(scores)) < len(scores):
        feats.append("score_ties")
    for a in anns:
        vals = [x for x in a["areas"] if x]
        if vals and float(np.mean(vals)) in (128.0**2, 256.0**2):
            feats.append("area_boundary")
            break
    pairs: dict[tuple, int] = {}
    for r in results:
        k = (r["video_id"], r["category_id"])
        pairs[k] = pairs.get(k, 0) + 1
    if pairs and max(pairs.values()) > 100:
        feats.append(">100_results_per_pair")
    kinds = set()
    for a in anns:
        for s in a["segmentations"]:
            if isinstance(s, list):
                kinds.add("polygon_gt")
            elif isinstance(s, dict) and isinstance(s["counts"], list):
                kinds.add("uncompressed_rle_gt")
    feats.extend(sorted(kinds))
    cats = {c["id"] for c in gt["categories"]}
    if any(r["category_id"] not in cats for r in results):
        feats.append("unknown_category_results")
    segs = [tuple(json.dumps(s) for s in a["segmentations"]) for a in anns]
    if len(set(segs)) < len(segs):
        feats.append("duplicate_gt_tracks")
    occ_scores = []
    for a in anns:
        occ = [o for o in a.get("occlusion") or [] if o is not None]
        m = {"no_occlusion": 0.0, "slight_occlusion": 0.25, "severe_occlusion": 0.75}
        vals = sorted(m[o] for o in occ)
        if vals:
            top = vals[-((len(vals) + 1) // 2) :]
            occ_scores.append(sum(top) / len(top))
    if any(s in (0.25, 0.5) for s in occ_scores):
        feats.append("occlusion_boundary")
    return feats


def recipes() -> list[dict]:
    """Every candidate recipe (before skipping the official crash cases)."""
    out = [{"name": "demo", "generator": "demo"}]
    for h in HANDMADE:
        out.append({"name": f"handmade_{h}", "generator": "handmade", "kwargs": {"name": h}})
    for s in (*OVIS_SEEDS, *OVIS_CLEAN_SEEDS):
        out.append(
            {
                "name": f"random_ovis_{s}",
                "generator": "random_dataset",
                "kwargs": {"seed": s, "occlusion": True},
            }
        )
    for s in YTVIS_SEEDS:
        out.append(
            {
                "name": f"random_ytvis_{s}",
                "generator": "random_dataset",
                "kwargs": {"seed": s, "occlusion": False},
            }
        )
    for s in UNKNOWN_CATEGORY_SEEDS:
        out.append(
            {
                "name": f"random_unknown_cats_{s}",
                "generator": "random_dataset",
                "kwargs": {"seed": s, "occlusion": s % 2 == 0, "unknown_categories": True},
            }
        )
    for kw in OVIS_LIKE_KWARGS:
        fmt = "ytvis" if kw.get("occlusion") is False else "ovis"
        out.append(
            {"name": f"ovis_like_{fmt}_{kw['seed']}", "generator": "ovis_like", "kwargs": kw}
        )
    return out


# --------------------------------------------------------------------------------------------
# Generating the golden file (needs the official code)
# --------------------------------------------------------------------------------------------


def _load_runner():
    path = REPO / "benchmarks" / "official.py"
    spec = importlib.util.spec_from_file_location("_official_runner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _official_files(runner, directory: str) -> dict[str, str]:
    """SHA-256 of each official file used (identifies the version without copying it)."""
    out = {}
    for fmt, names in runner._MODULES.items():
        folder = runner.find_official(directory, fmt)
        for n in names:
            out[f"{n}.py"] = hashlib.sha256((folder / f"{n}.py").read_bytes()).hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the official evaluator on every recipe and writes the golden file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="folder with the official .py files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runner = _load_runner()

    cases, skipped = [], []
    total = 0.0
    for recipe in recipes():
        gt, results = generate_raw(recipe)
        if not results:
            skipped.append({"name": recipe["name"], "reason": "empty result list"})
            continue
        if any(
            "occlusion" in a and all(o is None for o in a["occlusion"]) for a in gt["annotations"]
        ):
            recipe = {**recipe, "transform": "null_occlusion_to_no"}
        gt, results = generate(recipe)
        t0 = time.perf_counter()
        out = runner.run_official(args.official, gt, results, quiet=True)
        total += time.perf_counter() - t0
        case = {
            "recipe": recipe,
            "format": out["format"],
            "num_results": len(results),
            "num_gt": len(gt["annotations"]),
            "features": features(gt, results),
            "stats": out["stats"],
            "precision": fingerprint(
                out["precision"], max_chars=PRECISION_RUNS_MAX_CHARS, runs_axis=1
            ),
            "recall": fingerprint(out["recall"], max_chars=None),
            "official_seconds": round(out["seconds"], 4),
        }
        cases.append(case)
        logging.info(
            "%-24s %-5s %4d results %-22s %.3fs AP %.6f",
            recipe["name"],
            out["format"],
            len(results),
            recipe.get("transform", ""),
            out["seconds"],
            out["stats"][0],
        )
    doc = {
        "about": (
            "Numbers printed by the official OVIS / YouTube-VIS evaluators (see "
            "benchmarks/official.py) on inputs regenerated from the recipes; written by "
            "tools/official_golden.py, checked by tests/test_official.py. No official code here."
        ),
        "official_sources": {
            "ovis": "https://github.com/qjy981010/cocoapi PythonAPI/pycocotools",
            "ytvis": "https://github.com/youtubevos/cocoapi PythonAPI/pycocotools",
            "file_sha256": _official_files(runner, args.official),
        },
        "numpy": np.__version__,
        "cases": cases,
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    feats: dict[str, int] = {}
    for c in cases:
        for f in c["features"]:
            feats[f] = feats.get(f, 0) + 1
    logging.info(
        "%d cases (%d skipped), official evaluator %.1fs in all; feature coverage: %s; wrote %s"
        " (%.0f kB)",
        len(cases),
        len(skipped),
        total,
        feats,
        args.out,
        args.out.stat().st_size / 1e3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
