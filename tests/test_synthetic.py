"""Tests of the synthetic dataset generators (ovis_jax.testing.synthetic)."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ovis_jax.testing import synthetic

# pycocotools' decode triggers a NumPy 2 DeprecationWarning (copy=False); harmless here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

OCCLUSION_VALUES = {"no_occlusion": 0.0, "slight_occlusion": 0.25, "severe_occlusion": 0.75}

SMALL = {"num_videos": 3, "num_categories": 4, "frames": (3, 6), "sizes": ((48, 64), (30, 40))}


def _decode(seg, h: int, w: int) -> np.ndarray:
    """Decodes any GT segmentation form (compressed / uncompressed RLE, polygons)."""
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(bool)


def _occlusion_score(labels: list) -> float | None:
    vals = sorted((OCCLUSION_VALUES[v] for v in labels if v is not None), reverse=True)
    if not vals:
        return None
    top = vals[: math.ceil(len(vals) / 2)]
    return sum(top) / len(top)


def _check_common(gt: dict, results: list) -> dict:
    """Structural checks shared by both generators; returns videos by id."""
    videos = {v["id"]: v for v in gt["videos"]}
    assert len(videos) == len(gt["videos"])
    for v in gt["videos"]:
        assert len(v["file_names"]) == v["length"] >= 1
    cat_ids = [c["id"] for c in gt["categories"]]
    assert len(set(cat_ids)) == len(cat_ids)
    assert [a["id"] for a in gt["annotations"]] == list(range(1, len(gt["annotations"]) + 1))
    for ann in gt["annotations"]:
        v = videos[ann["video_id"]]
        assert ann["category_id"] in cat_ids
        assert ann["iscrowd"] in (0, 1)
        for key in ("segmentations", "areas", "bboxes"):
            assert len(ann[key]) == v["length"]
        assert any(s is not None for s in ann["segmentations"])
        for seg, area, box in zip(ann["segmentations"], ann["areas"], ann["bboxes"], strict=True):
            assert (seg is None) == (area is None) == (box is None)
            if isinstance(seg, dict):
                assert seg["size"] == [v["height"], v["width"]]
    for res in results:
        v = videos[res["video_id"]]
        assert 0.0 < res["score"] <= 1.0
        assert len(res["segmentations"]) == v["length"]
        assert any(s is not None for s in res["segmentations"])
        for seg in res["segmentations"]:
            if seg is not None:
                assert isinstance(seg["counts"], str)
                assert seg["size"] == [v["height"], v["width"]]
    # Plain Python objects only: JSON round trip is the identity.
    assert json.loads(json.dumps(gt)) == gt
    assert json.loads(json.dumps(results)) == results
    return videos


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def test_encode_mask_matches_pycocotools():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 5)) < 0.5
    rle = synthetic.encode_mask(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == [7, 5]
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_to_json_round_trip(tmp_path):
    obj = {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "d": b"xy", "e": None}
    path = tmp_path / "sub" / "x.json"
    synthetic.to_json(obj, path)
    assert json.loads(path.read_text()) == {"a": 3, "b": 0.5, "c": [0, 1, 2], "d": "xy", "e": None}


def test_crop_encoder_matches_dense_encoding():
    """The fast crop -> full-resolution RLE path equals pycocotools on the dense mask."""
    rng = np.random.default_rng(1)
    for _ in range(400):
        k = int(rng.integers(1, 5))
        height, width = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        hc, wc = -(-height // k), -(-width // k)
        h, w = int(rng.integers(1, hc + 1)), int(rng.integers(1, wc + 1))
        i0, j0 = int(rng.integers(0, hc - h + 1)), int(rng.integers(0, wc - w + 1))
        crop = rng.random((h, w)) < rng.random()
        if rng.random() < 0.2:
            crop[:] = True
        coarse = np.zeros((hc, wc), bool)
        coarse[i0 : i0 + h, j0 : j0 + w] = crop
        dense = np.repeat(np.repeat(coarse, k, 0), k, 1)[:height, :width]
        rle, area = synthetic._encode_crop(crop, i0, j0, k, height, width)
        assert rle == synthetic.encode_mask(dense)
        assert area == int(dense.sum())


# --------------------------------------------------------------------------
# ovis_like
# --------------------------------------------------------------------------


def test_ovis_like_deterministic():
    a = synthetic.ovis_like(seed=3, **SMALL)
    b = synthetic.ovis_like(seed=3, **SMALL)
    c = synthetic.ovis_like(seed=4, **SMALL)
    assert a == b
    assert a != c


@pytest.mark.parametrize("occlusion", [True, False])
def test_ovis_like_structure(occlusion):
    gt, results = synthetic.ovis_like(
        seed=0,
        num_videos=4,
        num_categories=30,
        frames=(2, 8),
        sizes=((90, 160), (481, 601)),  # the second size uses 2x2-pixel cells
        predictions_per_video=9,
        occlusion=occlusion,
        crowd_rate=0.3,
    )
    videos = _check_common(gt, results)
    assert len(gt["videos"]) == 4
    assert [c["id"] for c in gt["categories"]] == list(range(1, 31))
    assert gt["categories"][0]["name"] == "Person"
    assert Counter(r["video_id"] for r in results) == dict.fromkeys(videos, 9)
    for ann in gt["annotations"]:
        v = videos[ann["video_id"]]
        assert ("occlusion" in ann) == occlusion
        if occlusion:
            assert len(ann["occlusion"]) == v["length"]
        for t, seg in enumerate(ann["segmentations"]):
            if seg is None:
                if occlusion:
                    assert ann["occlusion"][t] is None
                continue
            assert isinstance(seg["counts"], str)
            m = mask_utils.decode(seg)
            assert int(m.sum()) == ann["areas"][t] > 0
            assert ann["bboxes"][t] == [float(x) for x in mask_utils.toBbox(seg)]
            if occlusion:
                assert ann["occlusion"][t] in OCCLUSION_VALUES
    # Depth-ordered occlusion: visible masks of one video never overlap.
    for vid, v in videos.items():
        for t in range(v["length"]):
            count = np.zeros((v["height"], v["width"]), np.int32)
            for ann in gt["annotations"]:
                seg = ann["segmentations"][t] if ann["video_id"] == vid else None
                if seg is not None:
                    count += mask_utils.decode(seg)
            assert count.max() <= 1


def test_ovis_like_prediction_counts_and_occlusion_labels():
    gt, results = synthetic.ovis_like(
        seed=5, num_videos=6, frames=10, sizes=((60, 100),), predictions_per_video=2
    )
    assert Counter(r["video_id"] for r in results) == dict.fromkeys(range(1, 7), 2)
    labels = Counter(o for a in gt["annotations"] for o in a["occlusion"] if o is not None)
    assert set(labels) <= set(OCCLUSION_VALUES)
    assert (
        labels["no_occlusion"] > 0 and labels["slight_occlusion"] + labels["severe_occlusion"] > 0
    )
    _, none = synthetic.ovis_like(seed=5, num_videos=2, frames=3, predictions_per_video=0)
    assert none == []


# --------------------------------------------------------------------------
# random_dataset
# --------------------------------------------------------------------------


def test_random_dataset_deterministic():
    assert synthetic.random_dataset(seed=7) == synthetic.random_dataset(seed=7)
    assert synthetic.random_dataset(seed=7) != synthetic.random_dataset(seed=8)


def test_random_dataset_options():
    gt, results = synthetic.random_dataset(
        seed=1, num_videos=5, num_categories=3, occlusion=True, max_results_per_video=4
    )
    assert len(gt["videos"]) == 5 and len(gt["categories"]) == 3
    assert all("occlusion" in a for a in gt["annotations"])
    assert max(Counter(r["video_id"] for r in results).values(), default=0) <= 4
    gt, _ = synthetic.random_dataset(seed=1, occlusion=False)
    assert not any("occlusion" in a for a in gt["annotations"])
    unknown = 0
    for seed in range(10):
        gt, results = synthetic.random_dataset(seed=seed, unknown_categories=True)
        cats = {c["id"] for c in gt["categories"]}
        unknown += sum(r["category_id"] not in cats for r in results)
    assert unknown > 0


@pytest.mark.slow
def test_random_dataset_validity_and_edge_cases():
    seen: Counter = Counter()
    for seed in range(50):
        gt, results = synthetic.random_dataset(seed=seed)
        videos = _check_common(gt, results)
        cat_ids = {c["id"] for c in gt["categories"]}
        assert 1 <= len(videos) <= 20 and 1 <= len(cat_ids) <= 30
        assert all(r["category_id"] in cat_ids for r in results)
        per_video = Counter(r["video_id"] for r in results)
        assert max(per_video.values(), default=0) <= 150
        anns = gt["annotations"]
        ovis = bool(anns) and "occlusion" in anns[0]
        assert all(("occlusion" in a) == ovis for a in anns)
        for v in videos.values():
            assert 4 <= v["height"] <= 24 and 4 <= v["width"] <= 24 and 1 <= v["length"] <= 12
        gt_masks = set()
        for ann in anns:
            v = videos[ann["video_id"]]
            masks = []
            for seg, box in zip(ann["segmentations"], ann["bboxes"], strict=True):
                if seg is None:
                    masks.append(None)
                    continue
                if isinstance(seg, list):
                    seen["polygon"] += 1
                    assert all(len(p) >= 6 for p in seg)
                elif isinstance(seg["counts"], list):
                    seen["uncompressed"] += 1
                    assert seg["size"] == [v["height"], v["width"]]
                    assert sum(seg["counts"]) == v["height"] * v["width"]
                m = _decode(seg, v["height"], v["width"])
                rle = synthetic.encode_mask(m)
                assert box == [float(x) for x in mask_utils.toBbox(rle)]
                masks.append(rle["counts"])
                seen["empty mask"] += not m.any()
            mean_area = np.mean([a for a in ann["areas"] if a is not None])
            if mean_area in (128**2, 256**2):
                seen["boundary area"] += 1
            else:
                # Areas are the pixel counts of the decoded masks.
                for seg, area in zip(ann["segmentations"], ann["areas"], strict=True):
                    if seg is not None:
                        assert area == int(_decode(seg, v["height"], v["width"]).sum())
            key = (ann["video_id"], tuple(masks))
            seen["duplicate gt"] += key in gt_masks
            gt_masks.add(key)
            seen["crowd"] += ann["iscrowd"]
            seen["none frame"] += any(s is None for s in ann["segmentations"])
            if ovis:
                score = _occlusion_score(ann["occlusion"])
                seen[f"occlusion {score}"] += 1
        seen["score tie"] += len({r["score"] for r in results}) < len(results)
        seen["video without results"] += any(v not in per_video for v in videos)
        per_vc = Counter((r["video_id"], r["category_id"]) for r in results)
        seen[">100 results"] += max(per_vc.values(), default=0) > 100
        gt_cats = {a["category_id"] for a in anns}
        seen["category without gt"] += bool(cat_ids - gt_cats)
        seen["result in category without gt"] += any(
            r["category_id"] not in gt_cats for r in results
        )
        seen["result equal to gt"] += any(
            (r["video_id"], tuple(None if s is None else s["counts"] for s in r["segmentations"]))
            in gt_masks
            for r in results
        )
        seen["ovis" if ovis else "ytvis"] += 1
        seen["shuffled videos"] += [v["id"] for v in gt["videos"]] != sorted(videos)
    required = [
        "polygon",
        "uncompressed",
        "empty mask",
        "boundary area",
        "duplicate gt",
        "crowd",
        "none frame",
        "occlusion 0.25",
        "occlusion 0.5",
        "occlusion None",
        "score tie",
        "video without results",
        ">100 results",
        "category without gt",
        "result in category without gt",
        "result equal to gt",
        "ovis",
        "ytvis",
        "shuffled videos",
    ]
    missing = [name for name in required if not seen[name]]
    assert not missing, (missing, seen)
