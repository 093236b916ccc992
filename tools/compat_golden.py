"""Writes ``tests/data/compat_stats.json``: the official API classes on call sequences with
changed ``params``.

Each case is a recipe (as in ``tools/official_golden.py``, which regenerates the input), the
official classes to use (``OVIS`` / ``OVISeval`` or ``YTVOS`` / ``YTVOSeval``), the ``params``
changes made after construction (``set``) and, optionally, between ``evaluate()`` and
``accumulate()`` (``set_after_evaluate``), all with concrete values. Recorded: ``stats``, the
``summarize()`` text, ``eval["counts"]`` and fingerprints (shape, digest, run-length values
when short) of ``precision``, ``recall`` and ``scores``. ``tests/test_compat.py`` replays every
sequence on ``ovis_jax.compat`` with every backend.

Only numbers and text are written: the official code is never copied (see
``benchmarks/official.py`` for where to get it)::

    python tools/compat_golden.py --official DIR [--out tests/data/compat_stats.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "compat_stats.json"
#: The inputs (recipes of tools/official_golden.py), small ones of both formats.
RECIPES = (
    "handmade_iou_ties",
    "ovis_like_ovis_1",
    "ovis_like_ytvis_3",
    "random_ovis_48",
    "random_ytvis_102",
    "random_unknown_cats_202",
    "random_unknown_cats_203",
)
#: Sequences whose per-video records (``evalImgs``) and ``ious`` are recorded (as digests).
RECORDED = ("default", "usecats0", "vid_subset", "cat_subset", "vid_unknown_id")
#: Params whose values are arrays in the official ``Params`` (set as float64 arrays).
ARRAY_PARAMS = ("iouThrs", "recThrs")


def _tool(name: str, path: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def official_golden():
    """``tools/official_golden.py`` (recipes, generators, fingerprints)."""
    return _tool("_official_golden", "tools/official_golden.py")


def recipe(name: str) -> dict:
    """The recipe ``name``, with the transform the official code needs (all-null occlusion)."""
    tool = official_golden()
    rec = next(r for r in tool.recipes() if r["name"] == name)
    gt, _ = tool.generate_raw(rec)
    if any("occlusion" in a and all(o is None for o in a["occlusion"]) for a in gt["annotations"]):
        rec = {**rec, "transform": "null_occlusion_to_no"}
    return rec


def sequences(gt: dict, ovis: bool) -> list[tuple[str, dict, dict]]:
    """``(name, set, set_after_evaluate)`` call sequences for one input, concrete values."""
    vids = sorted(v["id"] for v in gt["videos"])
    cats = sorted(c["id"] for c in gt["categories"])
    used = sorted({a["category_id"] for a in gt["annotations"]})
    half = used[: max(1, len(used) // 2)]
    out = [
        ("default", {}, {}),
        ("mask2former", {"maxDets": [1, 10, 100]}, {}),
        ("vid_subset", {"vidIds": vids[::2]}, {}),
        ("vid_unknown_id", {"vidIds": [*vids[1:], max(vids) + 1000]}, {}),
        ("cat_subset", {"catIds": half}, {}),
        ("cat_subset_unsorted_repeated", {"catIds": [*half[::-1], half[0]]}, {}),
        ("maxdets_1_5_20", {"maxDets": [20, 1, 5]}, {}),
        ("maxdets_4", {"maxDets": [1, 10, 100, 3]}, {}),
        ("area_ranges", {"areaRng": [[0, 1e10], [0, 32**2], [32**2, 96**2], [96**2, 1e10]]}, {}),
        (
            "area_ranges_relabelled",
            {
                "areaRng": [[0, 1e10], [0, 50**2], [50**2, 1e10]],
                "areaRngLbl": ["all", "small", "large"],
            },
            {},
        ),
        ("usecats0", {"useCats": 0}, {}),
        ("usecats0_cat_subset", {"useCats": 0, "catIds": half}, {}),
        ("usecats0_vid_subset", {"useCats": 0, "vidIds": vids[1:]}, {}),
        (
            "iou_rec_thresholds",
            {"iouThrs": [0.5, 0.75, 0.3], "recThrs": list(np.linspace(0, 1, 11))},
            {},
        ),
        ("usesegm", {"useSegm": 1}, {}),
        (
            "accumulate_area_subset",
            {},
            {"areaRng": [[0, 1e10], [0, 128**2]], "areaRngLbl": ["all", "small"]},
        ),
        ("accumulate_vid_positions", {}, {"vidIds": vids[1:]}),
        ("accumulate_maxdets_subset", {"maxDets": [1, 10, 100, 300]}, {"maxDets": [1, 10, 100]}),
        ("accumulate_recthrs", {}, {"recThrs": list(np.linspace(0, 1, 21))}),
        ("categories_all_ids", {"catIds": [*cats, max(cats) + 7]}, {}),
    ]
    if ovis:
        out.append(("occlusion_ranges", {"occRng": [[0, 1], [0, 0.3], [0.3, 0.6], [0.6, 1]]}, {}))
        out.append(
            (
                "usecats0_occlusion",
                {"useCats": 0, "occRng": [[0, 1], [0, 0.1], [0.1, 0.5], [0.5, 1]]},
                {},
            )
        )
    return out


def apply(params: Any, changes: dict) -> None:
    """Sets ``changes`` on an official (or compat) ``Params`` object."""
    for key, value in changes.items():
        if key in ARRAY_PARAMS:
            value = np.asarray(value, dtype=np.float64)
        setattr(params, key, copy.deepcopy(value))


def run_sequence(api_cls, eval_cls, gt: dict, results: list, seq: tuple, **kwargs) -> dict:
    """Runs one call sequence; returns what is recorded (arrays as arrays)."""
    _, changes, after = seq
    coco_gt = api_cls()
    coco_gt.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    text = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = eval_cls(coco_gt, coco_dt, "segm", **kwargs)
        apply(ev.params, changes)
        ev.evaluate()
    apply(ev.params, after)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
    with contextlib.redirect_stdout(text):
        ev.summarize()
    records = records_digest(ev) if seq[0] in RECORDED else {}
    return {
        **records,
        "stats": [float(s) for s in ev.stats],
        "summary": text.getvalue(),
        "counts": [int(c) for c in ev.eval["counts"]],
        "precision": np.asarray(ev.eval["precision"], np.float64),
        "recall": np.asarray(ev.eval["recall"], np.float64),
        "scores": np.asarray(ev.eval["scores"], np.float64),
    }


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (np.generic, float)):
        return float(x) if not isinstance(x, (np.bool_, bool)) else bool(x)
    return x


def records_digest(ev: Any) -> dict:
    """SHA-256 digests of the evaluator's ``evalImgs`` and ``ious`` (values as JSON, numbers
    as floats, ``ious`` keys as ``"video,category"``), and how many records are not None."""
    import hashlib

    def sha(obj: Any) -> str:
        return hashlib.sha256(json.dumps(_plain(obj), sort_keys=True).encode()).hexdigest()

    ious = {f"{int(v)},{int(c)}": val for (v, c), val in ev.ious.items()}
    return {
        "evalImgs_sha256": sha(ev.evalImgs),
        "evalImgs_len": len(ev.evalImgs),
        "evalImgs_present": sum(e is not None for e in ev.evalImgs),
        "ious_sha256": sha(ious),
    }


def fingerprints(out: dict) -> dict:
    """The recorded form of :func:`run_sequence`'s arrays."""
    fp = official_golden().fingerprint
    return {
        **{k: v for k, v in out.items() if not isinstance(v, np.ndarray)},
        "precision": fp(out["precision"], max_chars=1500, runs_axis=1),
        "recall": fp(out["recall"], max_chars=None),
        "scores": fp(out["scores"], max_chars=1500, runs_axis=1),
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the official classes on every sequence and writes the golden file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="folder with the official .py files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runner = _tool("_official_runner", "benchmarks/official.py")
    cases = []
    for name in RECIPES:
        rec = recipe(name)
        gt, results = official_golden().generate(rec)
        fmt = runner.detect_format(gt)
        api, ev = runner.load_official(args.official, fmt)
        classes = (api.OVIS, ev.OVISeval) if fmt == "ovis" else (api.YTVOS, ev.YTVOSeval)
        for seq in sequences(gt, fmt == "ovis"):
            out = run_sequence(*classes, gt, results, seq)
            cases.append(
                {"name": f"{name}/{seq[0]}", "recipe": rec, "format": fmt, "set": seq[1],
                 "set_after_evaluate": seq[2], **fingerprints(out)}
            )  # fmt: skip
            print(f"{name:26s} {seq[0]:32s} AP {out['stats'][0]:.6f}")
    doc = {
        "about": (
            "The official OVIS / YouTube-VIS API classes (see benchmarks/official.py) on call "
            "sequences with changed params, over inputs regenerated from the recipes "
            "(tools/official_golden.py); written by tools/compat_golden.py, checked by "
            "tests/test_compat.py. No official code here."
        ),
        "numpy": np.__version__,
        "cases": cases,
    }
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{len(cases)} sequences; wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
