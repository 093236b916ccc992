"""Shared fixtures: a tiny hand-built OVIS dataset (10x10 frames) and its results."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ovis_jax._src.rle import encode_dense

H, W = 10, 10


@pytest.fixture(autouse=True, scope="session")
def _private_xla_cache(tmp_path_factory):
    """The CLI's persistent XLA cache defaults to ~/.cache/ovis_jax/xla: the tests (and the CLI
    processes they start, which inherit the environment) use pytest's temporary one instead."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVIS_JAX_CACHE", str(tmp_path_factory.mktemp("xla_cache")))
        yield


def box(r0: int, r1: int, c0: int, c1: int) -> dict:
    """Compressed RLE of a 10x10 frame with rows r0:r1, columns c0:c1 set."""
    m = np.zeros((H, W), dtype=np.uint8)
    m[r0:r1, c0:c1] = 1
    return encode_dense(m)


def _tiny() -> tuple[dict, list]:
    # Every frame gets its own dict (no aliasing), so that tests can edit one frame.
    def a():
        return box(0, 5, 0, 5)

    def b():
        return box(5, 10, 5, 10)

    def c():
        return box(2, 8, 2, 8)

    gt = {
        "videos": [
            {"id": 1, "width": W, "height": H, "length": 3, "file_names": ["a", "b", "c"]},
            {"id": 2, "width": W, "height": H, "length": 2, "file_names": ["d", "e"]},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "object"},
            {"id": 2, "name": "dog", "supercategory": "object"},
        ],
        "annotations": [
            {
                "id": 1,
                "video_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [a(), a(), None],
                "areas": [25, 25, None],
                "bboxes": [[0, 0, 5, 5], [0, 0, 5, 5], None],
                "occlusion": ["no_occlusion", "slight_occlusion", None],
            },
            {
                "id": 2,
                "video_id": 1,
                "category_id": 2,
                "iscrowd": 0,
                "segmentations": [b(), b(), b()],
                "areas": [25, 25, 25],
                "bboxes": [[5, 5, 5, 5]] * 3,
                "occlusion": ["severe_occlusion"] * 3,
            },
            {
                "id": 3,
                "video_id": 2,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [c(), c()],
                "areas": [36, 36],
                "bboxes": [[2, 2, 6, 6]] * 2,
                "occlusion": ["slight_occlusion", "no_occlusion"],
            },
        ],
    }
    results = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": [a(), a(), None]},
        {"video_id": 1, "category_id": 2, "score": 0.8, "segmentations": [b(), c(), b()]},
        {"video_id": 2, "category_id": 1, "score": 0.7, "segmentations": [c(), None]},
        {"video_id": 2, "category_id": 2, "score": 0.3, "segmentations": [a(), a()]},
    ]
    return gt, results


_TINY = _tiny()


@pytest.fixture
def tiny() -> tuple[dict, list]:
    """A fresh (ground truth, results) pair in OVIS format, safe to modify."""
    return copy.deepcopy(_TINY)


@pytest.fixture
def tiny_ytvis(tiny) -> tuple[dict, list]:
    """The same pair in YouTube-VIS format (no occlusion labels)."""
    gt, results = tiny
    for a in gt["annotations"]:
        del a["occlusion"]
    return gt, results
