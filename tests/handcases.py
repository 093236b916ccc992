"""Tiny evaluation cases whose numbers are derived by hand (TrackEval style).

Each ``case_*`` function builds a ground-truth dict and a results list from numpy masks and returns
a :class:`HandCase` holding them together with every summary number the official evaluator prints,
derived on paper from the README's "The metric" and written as exact fractions. The derivation of
each case is in its docstring. :data:`CASES` maps a name to a zero-argument builder of every case
(and variant), so that other tests can reuse them (e.g. to compare backends).

Conventions used throughout:

- Frames are 10x10 unless a case says otherwise; ``A`` is the top-left 5x5 square (25 px),
  ``B`` the bottom-right 5x5 square, ``C`` the top-right one, ``D`` the bottom-left one: pairwise
  disjoint, so every IoU between them is 0.
- Ground-truth tracks get the occlusion label ``no_occlusion`` on every non-null frame
  (occlusion score 0.0: ranges "all" and "light") and ``areas`` equal to their masks' pixel
  counts, unless a case says otherwise.
- With G not-ignored ground truths and a ranked list of results, per IoU threshold:
  ``rc = tp_cum / G``, ``pr = tp_cum / (tp_cum + fp_cum)`` (the eps only matters to 1e-16),
  the envelope makes ``pr`` non-increasing, and recall point ``r`` (one of 0, 0.01, ..., 1)
  reads the envelope at the first index with ``rc >= r`` (0 past the end). E.g. one TP out of
  G = 2 gives precision 1 at the 51 points r = 0..0.5 and 0 at the 50 others: AP = 51/101.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from fractions import Fraction as F
from typing import Any

import numpy as np

from ovis_jax._src.masks.rle import encode_dense
from ovis_jax._src.metrics.ap.summary import OVIS_KEYS, YTVIS_KEYS

__all__ = [
    "CASES",
    "HandCase",
    "expected_stats",
    "gt_file",
    "rect",
    "result",
    "track",
    "uniform_stats",
    "video",
]

H = W = 10


# --------------------------------------------------------------------------------------------
# Builders


def rect(r0: int, r1: int, c0: int, c1: int, h: int = H, w: int = W) -> np.ndarray:
    """An h x w mask with rows r0:r1 and columns c0:c1 set."""
    m = np.zeros((h, w), dtype=np.uint8)
    m[r0:r1, c0:c1] = 1
    return m


def empty(h: int = H, w: int = W) -> np.ndarray:
    """An all-zero (present but empty) h x w mask."""
    return np.zeros((h, w), dtype=np.uint8)


def full(h: int = H, w: int = W) -> np.ndarray:
    """An all-one h x w mask (h * w pixels)."""
    return np.ones((h, w), dtype=np.uint8)


A = rect(0, 5, 0, 5)  # top-left, 25 px
B = rect(5, 10, 5, 10)  # bottom-right, 25 px
C = rect(0, 5, 5, 10)  # top-right, 25 px
D = rect(5, 10, 0, 5)  # bottom-left, 25 px


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed RLE (``counts`` a list of run lengths, column-major, zero-run first)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts: list[int] = []
    value, run = 0, 0
    for px in flat.tolist():
        if px == value:
            run += 1
        else:
            counts.append(run)
            value, run = px, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def _seg(frame: Any) -> Any:
    """A frame as a file entry: numpy masks become compressed RLE; None, polygons and RLE
    dicts are passed through."""
    if isinstance(frame, np.ndarray):
        return encode_dense(frame)
    return frame


def _bbox(frame: Any) -> list[float] | None:
    if not isinstance(frame, np.ndarray):
        return None
    rows, cols = np.nonzero(frame)
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols.min()), float(rows.min()), float(np.ptp(cols) + 1), float(np.ptp(rows) + 1)]


def video(vid: int, length: int, h: int = H, w: int = W) -> dict:
    return {
        "id": vid,
        "width": w,
        "height": h,
        "length": length,
        "file_names": [f"v{vid}/{t:05d}.jpg" for t in range(length)],
    }


_AUTO = "auto"


def track(
    ann_id: int,
    video_id: int,
    frames: Sequence[Any],
    *,
    category_id: int = 1,
    iscrowd: int = 0,
    areas: Any = _AUTO,
    occlusion: Any = "no_occlusion",
) -> dict:
    """A ground-truth track.

    Args:
        frames: per frame a numpy mask, None (absent) or an already-built segmentation
            (polygon list or RLE dict; then ``areas`` must be given).
        areas: ``"auto"`` (the masks' pixel counts, None where absent), an explicit list, or
            None to leave the key out.
        occlusion: a label put on every non-null frame, an explicit list, or None to leave
            the key out (YouTube-VIS format).
    """
    ann: dict[str, Any] = {
        "id": ann_id,
        "video_id": video_id,
        "category_id": category_id,
        "iscrowd": iscrowd,
        "segmentations": [_seg(f) for f in frames],
        "bboxes": [_bbox(f) for f in frames],
    }
    if isinstance(areas, str) and areas == _AUTO:
        if not all(f is None or isinstance(f, np.ndarray) for f in frames):
            raise ValueError("give 'areas' explicitly for polygon / RLE frames")
        ann["areas"] = [None if f is None else int(np.count_nonzero(f)) for f in frames]
    elif areas is not None:
        ann["areas"] = list(areas)
    if isinstance(occlusion, str):
        ann["occlusion"] = [None if f is None else occlusion for f in frames]
    elif occlusion is not None:
        ann["occlusion"] = list(occlusion)
    return ann


def result(video_id: int, frames: Sequence[Any], score: float, *, category_id: int = 1) -> dict:
    """A predicted track."""
    return {
        "video_id": video_id,
        "category_id": category_id,
        "score": score,
        "segmentations": [_seg(f) for f in frames],
    }


def gt_file(videos: list[dict], annotations: list[dict], categories: Sequence[int] = (1,)) -> dict:
    return {
        "videos": videos,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"cat{c}", "supercategory": "object"} for c in categories],
    }


# --------------------------------------------------------------------------------------------
# Expected numbers


def expected_stats(*, ytvis: bool = False, **values: Any) -> dict[str, F]:
    """All summary numbers of a case, in the official order; every key must be given."""
    keys = YTVIS_KEYS if ytvis else OVIS_KEYS
    missing = [k for k in keys if k not in values]
    extra = [k for k in values if k not in keys]
    if missing or extra:
        raise ValueError(f"expected_stats: missing {missing}, unexpected {extra}")
    return {k: F(values[k]) for k in keys}


def uniform_stats(ap, ap50, ap75, ar1, ar10, ar100, *, ytvis: bool = False) -> dict[str, F]:
    """The numbers of a case whose ground truths are all small (avg area <= 128²) and light
    (occlusion score 0), and whose results are all small: the "small" and "light" numbers
    equal the "all" ones, medium / large / medium-occlusion / heavy are -1."""
    values = dict(
        AP=ap, AP50=ap50, AP75=ap75, APs=ap, APm=-1, APl=-1,
        AR1=ar1, AR10=ar10, AR100=ar100, ARs=ar100, ARm=-1, ARl=-1,
    )  # fmt: skip
    if not ytvis:
        values.update(APso=ap, APmo=-1, APho=-1, ARso=ar100, ARmo=-1, ARho=-1)
    return expected_stats(ytvis=ytvis, **values)


@dataclasses.dataclass(frozen=True)
class HandCase:
    """A ground truth, its results, and the summary numbers derived by hand."""

    name: str
    gt: dict
    results: list
    stats: dict[str, F]


# --------------------------------------------------------------------------------------------
# Cases


def case_perfect_match() -> HandCase:
    """One track, one identical result: every number is 1 (small, light)."""
    gt = gt_file([video(1, 2)], [track(1, 1, [A, A])])
    results = [result(1, [A, A], 0.9)]
    return HandCase("perfect_match", gt, results, uniform_stats(1, 1, 1, 1, 1, 1))


def case_score_tie_within_video(tp_first: bool) -> HandCase:
    """One ground truth A; two results with the same score 0.5: one is A (IoU 1), one is B
    (IoU 0). The stable sort keeps file order, so the file order decides:

    - FP first: ranked FP, TP; rc = [0, 1], pr = [0, 1/2], envelope [1/2, 1/2]: AP = 1/2 at
      every threshold. maxDet 1 keeps only the FP: AR1 = 0.
    - TP first: ranked TP, FP; pr = [1, 1/2], rc = [1, 1]: every point reads index 0: AP = 1,
      AR1 = 1.
    """
    gt = gt_file([video(1, 1)], [track(1, 1, [A])])
    tp, fp = result(1, [A], 0.5), result(1, [B], 0.5)
    results = [tp, fp] if tp_first else [fp, tp]
    if tp_first:
        stats = uniform_stats(1, 1, 1, 1, 1, 1)
    else:
        stats = uniform_stats(F(1, 2), F(1, 2), F(1, 2), 0, 1, 1)
    name = "score_tie_within_video/" + ("tp_first" if tp_first else "fp_first")
    return HandCase(name, gt, results, stats)


def case_score_tie_across_videos(tp_in_video: int, tp_first_in_file: bool) -> HandCase:
    """Ground truth A in videos 1 and 2 (listed as [2, 1] in the file). Two results with the same
    score 0.5: an exact one (TP) in video ``tp_in_video``, a B (FP) in the other video.

    Accumulation concatenates the videos in ascending id order and sorts stably, so the file
    order of the results does not matter; the video id does:

    - TP in video 2: ranked FP, TP; G = 2: rc = [0, 1/2], pr = [0, 1/2], envelope 1/2 up to
      r = 0.5 (51 points), 0 after: AP = 51/202. AR = 1/2.
    - TP in video 1: ranked TP, FP: pr = [1, 1/2], rc = [1/2, 1/2]: AP = 51/101. AR = 1/2.
    """
    gt = gt_file([video(2, 1), video(1, 1)], [track(1, 1, [A]), track(2, 2, [A])])
    other = 3 - tp_in_video
    tp, fp = result(tp_in_video, [A], 0.5), result(other, [B], 0.5)
    results = [tp, fp] if tp_first_in_file else [fp, tp]
    ap = F(51, 101) if tp_in_video == 1 else F(51, 202)
    name = f"score_tie_across_videos/tp_in_video{tp_in_video}/" + (
        "tp_first_in_file" if tp_first_in_file else "fp_first_in_file"
    )
    half = F(1, 2)
    return HandCase(name, gt, results, uniform_stats(ap, ap, ap, half, half, half))


def case_identical_ground_truths() -> HandCase:
    """Two identical ground truths (mask A) and one identical result (IoU 1 with both). The file
    gives the first ``areas`` [25] (small) and the second ``areas`` [20000] (medium): the
    evaluator uses the file's areas, not the masks'.

    - all: both count (G = 2); the walk ties at IoU 1 and the *later* one takes the result; one
      TP: AP = 51/101, AR = 1/2.
    - small: the second is ignored, so the walk is [first, second] and stops at the ignored
      one once the first matched: TP, G = 1: APs = 1, ARs = 1.
    - medium: the first is ignored, the walk is [second, first]: TP, G = 1: APm = 1.
    - large: both ignored: -1. Occlusion: both light.

    Which of two identical, equally-ignored tracks wins cannot change a number (they are
    interchangeable); :func:`case_equal_iou_tie` shows the later-wins rule where it matters.
    """
    gt = gt_file(
        [video(1, 1)],
        [track(1, 1, [A], areas=[25]), track(2, 1, [A], areas=[20000])],
    )
    results = [result(1, [A], 0.9)]
    ap, half = F(51, 101), F(1, 2)
    stats = expected_stats(
        AP=ap, AP50=ap, AP75=ap, APs=1, APm=1, APl=-1, APso=ap, APmo=-1, APho=-1,
        AR1=half, AR10=half, AR100=half, ARs=1, ARm=1, ARl=-1, ARso=half, ARmo=-1, ARho=-1,
    )  # fmt: skip
    return HandCase("identical_ground_truths", gt, results, stats)


def case_equal_iou_tie(left_first: bool) -> HandCase:
    """Ground truths L (left half, 50 px) and R (right half, 50 px). Result 1 (score 0.9) is
    the full frame: IoU 50/100 = 0.5 with both. Result 2 (score 0.8) is exactly L.

    At t = 0.5 result 1 ties and the *later* ground truth in file order takes it:

    - file order [L, R]: result 1 takes R, result 2 takes L: two TPs, AP(0.5) = 1, recall 1.
    - file order [R, L]: result 1 takes L, result 2 finds L taken (IoU 0 with R): TP, FP;
      AP(0.5) = 51/101, recall 1/2.

    At t > 0.5 result 1 matches nothing (FP) and result 2 takes L: FP, TP with G = 2:
    AP(t) = 51/202, recall 1/2. maxDet 1 keeps result 1 only: AR1 = (1/2) / 10 = 1/20.
    """
    left, right = rect(0, 10, 0, 5), rect(0, 10, 5, 10)
    tracks = [track(1, 1, [left]), track(2, 1, [right])]
    if not left_first:
        tracks = tracks[::-1]
    gt = gt_file([video(1, 1)], tracks)
    results = [result(1, [full()], 0.9), result(1, [left], 0.8)]
    high = F(51, 202)
    if left_first:
        ap50, ar50 = F(1), F(1)
    else:
        ap50, ar50 = F(51, 101), F(1, 2)
    ap = (ap50 + 9 * high) / 10
    ar = (ar50 + 9 * F(1, 2)) / 10
    name = "equal_iou_tie/" + ("left_first" if left_first else "right_first")
    return HandCase(name, gt, results, uniform_stats(ap, ap50, high, F(1, 20), ar, ar))


def case_crowd(iscrowd: int) -> HandCase:
    """Ground truth G = A (top-left 25 px) and K = the right half (50 px), crowd or not.
    Results: 0.9 exactly K; 0.8 the top-right quarter C (IoU 25/50 = 0.5 with K: a COCO box
    crowd IoU would say 1, the track IoU says 0.5); 0.7 exactly A; 0.6 the bottom-left D (IoU 0
    with both).

    Crowd (G = 1): at t = 0.5 the first two are absorbed by K (ignored, a crowd can be matched
    again), then TP, FP: pr after ignoring = [1, 1/2] with rc = [1, 1]: AP = 1. At t > 0.5 the
    second no longer reaches K: FP, TP, FP: pr = [0, 1/2, 1/3], rc = [0, 1, 1]: AP = 1/2. So
    AP = (1 + 9/2) / 10 = 11/20. maxDet 1 keeps only the absorbed one: AR1 = 0.

    Not a crowd (G = 2): TP (K), FP (K taken), TP (A), FP at every threshold:
    rc = [1/2, 1/2, 1, 1], pr = [1, 1/2, 2/3, 1/2], envelope [1, 2/3, 2/3, 1/2]: 1 at the 51
    points up to r = 0.5, 2/3 at the 50 others: AP = (51 + 100/3) / 101 = 253/303. AR1 = 1/2.
    """
    gt = gt_file(
        [video(1, 1)],
        [track(1, 1, [A]), track(2, 1, [rect(0, 10, 5, 10)], iscrowd=iscrowd)],
    )
    results = [
        result(1, [rect(0, 10, 5, 10)], 0.9),
        result(1, [C], 0.8),
        result(1, [A], 0.7),
        result(1, [D], 0.6),
    ]
    if iscrowd:
        stats = uniform_stats(F(11, 20), 1, F(1, 2), 0, 1, 1)
    else:
        ap = F(253, 303)
        stats = uniform_stats(ap, ap, ap, F(1, 2), 1, 1)
    return HandCase(f"crowd/iscrowd{iscrowd}", gt, results, stats)


def case_area_boundaries() -> HandCase:
    """Area ranges are inclusive at both ends.

    Ground truths (masks A, but the file's ``areas`` decide): GA in video 1 with areas
    [16000, 16768] (mean exactly 128² = 16384: small and medium), GB in video 2 with areas
    [65000, 66072] (mean exactly 256² = 65536: medium and large). Results, by score:
    0.95 a full 128x128 frame in video 3 (area 16384, no ground truth there: FP); 0.9 exactly
    GA; 0.8 exactly GB; 0.5 a full 256x256 frame in video 4 (area 65536, FP).

    - all / medium: FP, TP, TP, FP with G = 2: pr = [0, 1/2, 2/3, 1/2], envelope
      [2/3, 2/3, 2/3, 1/2], rc = [0, 1/2, 1, 1]: every point reads 2/3: AP = 2/3.
    - small: the 128² FP counts (16384 <= 128²), GB's TP is ignored, the 256² FP is unmatched
      and outside the range (ignored): FP, TP, G = 1: AP = 1/2.
    - large: the 128² FP is outside the range (ignored), GA's TP is ignored: TP, FP, G = 1:
      AP = 1.
    Every ground truth is found: all recalls are 1 (one result per video: AR1 = 1).
    """
    gt = gt_file(
        [video(1, 2), video(2, 2), video(3, 1, 128, 128), video(4, 1, 256, 256)],
        [
            track(1, 1, [A, A], areas=[16000, 16768]),
            track(2, 2, [A, A], areas=[65000, 66072]),
        ],
    )
    results = [
        result(3, [full(128, 128)], 0.95),
        result(1, [A, A], 0.9),
        result(2, [A, A], 0.8),
        result(4, [full(256, 256)], 0.5),
    ]
    two_thirds = F(2, 3)
    stats = expected_stats(
        AP=two_thirds, AP50=two_thirds, AP75=two_thirds,
        APs=F(1, 2), APm=two_thirds, APl=1, APso=two_thirds, APmo=-1, APho=-1,
        AR1=1, AR10=1, AR100=1, ARs=1, ARm=1, ARl=1, ARso=1, ARmo=-1, ARho=-1,
    )  # fmt: skip
    return HandCase("area_boundaries", gt, results, stats)


def case_occlusion_boundaries() -> HandCase:
    """Occlusion ranges are inclusive at both ends; unmatched results are never ignored by
    occlusion.

    GL in video 1, occlusion [no, slight]: sorted [0, 0.25], the largest ceil(2/2) = 1: score
    0.25 (light and medium). GH in video 2, occlusion [no, slight, severe]: sorted
    [0, 0.25, 0.75], the largest 2: score 0.5 (medium and heavy). Results by score: 0.97
    exactly GH; 0.95 B in video 1 (FP); 0.9 exactly GL.

    - all / medium: TP, FP, TP with G = 2: AP = 253/303 (see the non-crowd case).
    - light: GH ignored, so its TP is ignored: FP, TP with G = 1: pr = [0, 1/2]: AP = 1/2.
    - heavy: GL's TP is ignored: TP, FP with G = 1: AP = 1.
    AR1: video 1 keeps the FP, video 2 its TP: 1/2.
    """
    gt = gt_file(
        [video(1, 2), video(2, 3)],
        [
            track(1, 1, [A, A], occlusion=["no_occlusion", "slight_occlusion"]),
            track(
                2,
                2,
                [A, A, A],
                occlusion=["no_occlusion", "slight_occlusion", "severe_occlusion"],
            ),
        ],
    )
    results = [
        result(2, [A, A, A], 0.97),
        result(1, [B, B], 0.95),
        result(1, [A, A], 0.9),
    ]
    ap = F(253, 303)
    stats = expected_stats(
        AP=ap, AP50=ap, AP75=ap, APs=ap, APm=-1, APl=-1, APso=F(1, 2), APmo=ap, APho=1,
        AR1=F(1, 2), AR10=1, AR100=1, ARs=1, ARm=-1, ARl=-1, ARso=1, ARmo=1, ARho=1,
    )  # fmt: skip
    return HandCase("occlusion_boundaries", gt, results, stats)


def case_null_and_empty_frames() -> HandCase:
    """Null frames and empty masks on both sides.

    Video 1 (3 frames): ground truth [60 px, null, empty], result (0.9) [the same 60 px,
    20 px, 20 px]: I = 60, U = 60 + 20 (GT null) + 20 (GT empty) = 100: IoU 0.6.
    Video 2 (4 frames): ground truth [40 px, 40 px, null, empty], result (0.8)
    [the same 40 px, null, empty, empty]: I = 40, U = 40 + 40 (result null) + 0 + 0 = 80:
    IoU 0.5.

    t = 0.5: two TPs: AP 1, recall 1. t = 0.55, 0.6 (0.6 >= 0.6 exactly): TP, FP with G = 2:
    AP 51/101, recall 1/2. t >= 0.65: nothing: 0.
    AP = (1 + 2 * 51/101) / 10 = 203/1010; AP75 = 0; AR = (1 + 2/2) / 10 = 1/5.
    """
    g60, g40 = rect(0, 6, 0, 10), rect(0, 4, 0, 10)
    gt = gt_file(
        [video(1, 3), video(2, 4)],
        [
            track(1, 1, [g60, None, empty()]),
            track(2, 2, [g40, g40, None, empty()]),
        ],
    )
    results = [
        result(1, [g60, rect(0, 2, 0, 10), rect(8, 10, 0, 10)], 0.9),
        result(2, [g40, None, empty(), empty()], 0.8),
    ]
    ap, ar = F(203, 1010), F(1, 5)
    return HandCase("null_and_empty_frames", gt, results, uniform_stats(ap, 1, 0, ar, ar, ar))


def case_top_100(variant: str) -> HandCase:
    """Only the top 100 results of a (video, category) pair count. One ground truth A in
    video 1; false positives are B.

    - ``rank100``: 99 FPs scored above the TP, one FP below (rank 101, dropped). The TP is
      100th: pr = 1/100 at the end, envelope 1/100 everywhere: AP = 1/100, AR100 = 1.
    - ``rank101``: 100 FPs above the TP: the TP is dropped: AP = 0, AR = 0.
    - ``tied100`` / ``tied101``: all 101 results score 0.5; the TP is 100th / 101st in file
      order: the stable sort decides, the same numbers as ``rank100`` / ``rank101``.
    - ``per_video``: 60 FPs above the TP in video 1 and 60 FPs (scored between) in video 2:
      the cut is per video, the TP is kept at rank 121 overall: AP = 1/121, AR100 = 1.
    AR1 and AR10 are 0 throughout (the TP is never in a video's top 10).
    """
    n_videos = 2 if variant == "per_video" else 1
    gt = gt_file([video(v, 1) for v in range(1, n_videos + 1)], [track(1, 1, [A])])
    tp = result(1, [A], 0.5)
    if variant in ("rank100", "rank101"):
        n_above = 99 if variant == "rank100" else 100
        results = [result(1, [B], 1 - i / 1000) for i in range(n_above)] + [tp]
        results.append(result(1, [B], 0.1))
    elif variant in ("tied100", "tied101"):
        n_above = 99 if variant == "tied100" else 100
        results = [result(1, [B], 0.5) for _ in range(101)]
        results.insert(n_above, tp)
        results.pop()
    elif variant == "per_video":
        results = [result(1, [B], 1 - i / 1000) for i in range(60)]
        results += [result(2, [B], 0.9 - i / 1000) for i in range(60)]
        results.append(tp)
    else:
        raise ValueError(variant)
    if variant in ("rank100", "tied100"):
        stats = uniform_stats(F(1, 100), F(1, 100), F(1, 100), 0, 0, 1)
    elif variant == "per_video":
        stats = uniform_stats(F(1, 121), F(1, 121), F(1, 121), 0, 0, 1)
    else:
        stats = uniform_stats(0, 0, 0, 0, 0, 0)
    return HandCase(f"top_100/{variant}", gt, results, stats)


def case_missing_categories_and_videos() -> HandCase:
    """Categories 1..4, videos 1..3.

    - Category 1: ground truth A in videos 1 and 2; one exact result in video 1, none in
      video 2 (whose ground truth still counts as a miss): TP with G = 2: AP = 51/101,
      AR = 1/2 (if video 2 were skipped it would be 1).
    - Category 2: no ground truth, one result (video 1): every entry -1 (not 0).
    - Category 3: nothing at all: -1.
    - Category 4: only a crowd ground truth (video 3), absorbing one result: no not-ignored
      ground truth: -1.
    - A result of category 99 (not in the ground truth) is not evaluated (a warning).
    The summary averages the defined entries only: category 1's numbers.
    """
    gt = gt_file(
        [video(1, 1), video(2, 1), video(3, 1)],
        [
            track(1, 1, [A]),
            track(2, 2, [A]),
            track(3, 3, [A], category_id=4, iscrowd=1),
        ],
        categories=(1, 2, 3, 4),
    )
    results = [
        result(1, [B], 0.99, category_id=99),
        result(1, [A], 0.9),
        result(1, [A], 0.8, category_id=2),
        result(3, [A], 0.7, category_id=4),
    ]
    ap, half = F(51, 101), F(1, 2)
    return HandCase(
        "missing_categories_and_videos", gt, results, uniform_stats(ap, ap, ap, half, half, half)
    )


#: Polygon P1 (rows 1..3, columns 2..7: 18 px) and the two-part P2 (4 + 4 px); x is the column.
POLY1 = [[2, 1, 8, 1, 8, 4, 2, 4]]
POLY2 = [[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 7, 5, 7, 7, 5, 7]]
POLY1_MASK = rect(1, 4, 2, 8)
POLY2_MASK = rect(0, 2, 0, 2) | rect(5, 7, 5, 7)


def case_segmentation_forms(form: str) -> HandCase:
    """The same ground truth as compressed RLE, polygons (video 1) and uncompressed RLE
    (video 2); ``form`` is ``"compressed"``, ``"polygon"`` or ``"uncompressed"``.

    Video 1: ground truth [P1, P2] (18 and 8 px), an exact result (0.9): IoU 1. Video 2:
    ground truth Q = columns 0..3 (40 px), a result (0.8) of columns 0..2 (30 px): IoU 0.75.
    t <= 0.75 (6 thresholds): two TPs: AP 1, recall 1. t >= 0.8: TP, FP with G = 2: AP 51/101,
    recall 1/2. AP = (6 + 4 * 51/101) / 10 = 81/101; AP75 = 1; AR = (6 + 4/2) / 10 = 4/5.
    """
    q = rect(0, 10, 0, 4)
    if form == "compressed":
        f1, f2, fq = POLY1_MASK, POLY2_MASK, q
    elif form == "polygon":
        f1, f2, fq = POLY1, POLY2, q
    elif form == "uncompressed":
        f1, f2, fq = POLY1_MASK, POLY2_MASK, uncompressed_rle(q)
    else:
        raise ValueError(form)
    gt = gt_file(
        [video(1, 2), video(2, 1)],
        [track(1, 1, [f1, f2], areas=[18, 8]), track(2, 2, [fq], areas=[40])],
    )
    results = [result(1, [POLY1_MASK, POLY2_MASK], 0.9), result(2, [rect(0, 10, 0, 3)], 0.8)]
    ap, ar = F(81, 101), F(4, 5)
    return HandCase(f"segmentation_forms/{form}", gt, results, uniform_stats(ap, 1, 1, ar, ar, ar))


def case_ytvis_format(with_occlusion: bool) -> HandCase:
    """Ground truths A and B in one video; results (by score) exactly A, C (FP), exactly B:
    TP, FP, TP with G = 2: AP = 253/303; AR1 = 1/2. Without occlusion labels the file is
    YouTube-VIS format: 12 numbers, occlusion axis of size 1."""
    occ = "no_occlusion" if with_occlusion else None
    gt = gt_file([video(1, 1)], [track(1, 1, [A], occlusion=occ), track(2, 1, [B], occlusion=occ)])
    results = [result(1, [A], 0.9), result(1, [C], 0.8), result(1, [B], 0.7)]
    ap = F(253, 303)
    stats = uniform_stats(ap, ap, ap, F(1, 2), 1, 1, ytvis=not with_occlusion)
    return HandCase("ytvis_format/" + ("ovis" if with_occlusion else "ytvis"), gt, results, stats)


def case_empty_results() -> HandCase:
    """Ground truth A (category 1) and no results at all: AP = AR = 0 where ground truth
    exists; category 2 (no ground truth) and the empty ranges are -1."""
    gt = gt_file([video(1, 1)], [track(1, 1, [A])], categories=(1, 2))
    return HandCase("empty_results", gt, [], uniform_stats(0, 0, 0, 0, 0, 0))


def case_all_null_occlusion() -> HandCase:
    """G1 in video 1 has occlusion [null, null] (score 0.0: light, with a warning); G2 in
    video 2 is severe (0.75: heavy). Results: exactly G1 (0.9), B in video 2 (0.8, FP).

    - all: TP, FP with G = 2: AP = 51/101, AR = 1/2.
    - light: G2 ignored, the FP still counts: TP, FP with G = 1: AP = 1, AR = 1.
    - medium occlusion: nothing: -1.
    - heavy: G1's TP is ignored, FP with G = 1: AP = 0, AR = 0.
    """
    gt = gt_file(
        [video(1, 2), video(2, 1)],
        [
            track(1, 1, [A, A], occlusion=[None, None]),
            track(2, 2, [A], occlusion="severe_occlusion"),
        ],
    )
    results = [result(1, [A, A], 0.9), result(2, [B], 0.8)]
    ap, half = F(51, 101), F(1, 2)
    stats = expected_stats(
        AP=ap, AP50=ap, AP75=ap, APs=ap, APm=-1, APl=-1, APso=1, APmo=-1, APho=0,
        AR1=half, AR10=half, AR100=half, ARs=half, ARm=-1, ARl=-1, ARso=1, ARmo=-1, ARho=0,
    )  # fmt: skip
    return HandCase("all_null_occlusion", gt, results, stats)


def case_areas_from_masks(with_areas: bool) -> HandCase:
    """A 128x128 video of 3 frames; ground truth [full frame (16384 px), empty, null], given
    without ``areas`` (computed from the masks) or with the equivalent [16384, 0, null]. The
    mean skips the empty and the null frame: 16384, small *and* medium (counting the empty frame
    would give 8192: small only). An exact result [full, null, null]: IoU 16384/16384 = 1.
    Every defined number is 1; large and the non-light occlusion ranges are -1."""
    frames = [full(128, 128), empty(128, 128), None]
    areas = [16384, 0, None] if with_areas else None
    gt = gt_file([video(1, 3, 128, 128)], [track(1, 1, frames, areas=areas)])
    results = [result(1, [full(128, 128), None, None], 0.9)]
    stats = expected_stats(
        AP=1, AP50=1, AP75=1, APs=1, APm=1, APl=-1, APso=1, APmo=-1, APho=-1,
        AR1=1, AR10=1, AR100=1, ARs=1, ARm=1, ARl=-1, ARso=1, ARmo=-1, ARho=-1,
    )  # fmt: skip
    name = "areas_from_masks/" + ("given" if with_areas else "missing")
    return HandCase(name, gt, results, stats)


def case_ground_truth_id_zero() -> HandCase:
    """Ground truth with id 0 and an exact result: still a match (the official code would call
    it a false positive and print 0): every number 1."""
    gt = gt_file([video(1, 1)], [track(0, 1, [A])])
    return HandCase(
        "ground_truth_id_zero", gt, [result(1, [A], 0.9)], uniform_stats(1, 1, 1, 1, 1, 1)
    )


def case_max_dets() -> HandCase:
    """Video 1: ground truths A and B; 11 results, by score: C (FP), exactly A (TP), 8 x C
    (FP), exactly B (TP, 11th: beyond maxDet 10). Video 2: ground truth A, one exact result
    scored lowest of all (0.05). G = 3.

    - maxDet 1: video 1 keeps its FP, video 2 its TP: recall 1/3. Ranked FP, TP:
      pr = [0, 1/2], rc = [0, 1/3]: 1/2 at the 34 points r <= 1/3: AP = 17/101.
    - maxDet 10: FP, TP, 8 FP, TP(video 2): rc ends at 2/3; envelope 1/2 up to r = 1/3
      (34 points), then 2/11 (the last pr) up to 2/3 (33 points): AP = 23/101; recall 2/3.
    - maxDet 100: FP, TP, 8 FP, TP, TP: pr ends 2/11, 3/12; envelope 1/2 (34 points), then
      1/4 (67 points): AP = (17 + 67/4) / 101 = 135/404; recall 1.
    """
    gt = gt_file(
        [video(1, 1), video(2, 1)],
        [track(1, 1, [A]), track(2, 1, [B]), track(3, 2, [A])],
    )
    results = [result(1, [C], 0.9), result(1, [A], 0.8)]
    results += [result(1, [C], 0.7 - i / 100) for i in range(8)]
    results += [result(1, [B], 0.6), result(2, [A], 0.05)]
    ap = F(135, 404)
    return HandCase("max_dets", gt, results, uniform_stats(ap, ap, ap, F(1, 3), F(2, 3), 1))


#: (category, result pixels inside a full-frame ground truth, thresholds matched of 10).
IOU_EDGES = ((1, 60, 3), (2, 90, 9), (3, 95, 10), (4, 49, 0))


def case_iou_threshold_edges() -> HandCase:
    """Four categories, each a full-frame ground truth (100 px) and one result of k pixels
    inside it: IoU k/100, matched at the thresholds t <= IoU (float64 comparison with
    t from linspace(0.5, 0.95, 10), whose 9th value is 0.8999999999999999):

    - 60 px: IoU 0.6 matches 0.5, 0.55, 0.6 (equal): AP_k = 3/10.
    - 90 px: IoU 0.9 matches up to 0.8999999999999999: 9/10.
    - 95 px: IoU 0.95 matches all ten (equal at 0.95): 1.
    - 49 px: nothing: 0.
    AP = (3/10 + 9/10 + 1 + 0) / 4 = 11/20; AP50 = 3/4; AP75 = 1/2; AR the same as AP.
    """
    masks = {
        60: rect(0, 6, 0, 10),
        90: rect(0, 9, 0, 10),
        95: rect(0, 9, 0, 10) | rect(9, 10, 0, 5),
    }
    masks[49] = rect(0, 7, 0, 7)
    annotations, results = [], []
    for cat, px, _ in IOU_EDGES:
        assert int(masks[px].sum()) == px
        annotations.append(track(cat, 1, [full()], category_id=cat))
        results.append(result(1, [masks[px]], 0.9, category_id=cat))
    gt = gt_file([video(1, 1)], annotations, categories=[c for c, _, _ in IOU_EDGES])
    ap = F(11, 20)
    return HandCase(
        "iou_threshold_edges", gt, results, uniform_stats(ap, F(3, 4), F(1, 2), ap, ap, ap)
    )


CASES: dict[str, Callable[[], HandCase]] = {
    "perfect_match": case_perfect_match,
    "score_tie_within_video/fp_first": lambda: case_score_tie_within_video(False),
    "score_tie_within_video/tp_first": lambda: case_score_tie_within_video(True),
    **{
        f"score_tie_across_videos/tp_in_video{v}/{o}": (
            lambda v=v, first=first: case_score_tie_across_videos(v, first)
        )
        for v in (1, 2)
        for o, first in (("tp_first_in_file", True), ("fp_first_in_file", False))
    },
    "identical_ground_truths": case_identical_ground_truths,
    "equal_iou_tie/left_first": lambda: case_equal_iou_tie(True),
    "equal_iou_tie/right_first": lambda: case_equal_iou_tie(False),
    "crowd/iscrowd1": lambda: case_crowd(1),
    "crowd/iscrowd0": lambda: case_crowd(0),
    "area_boundaries": case_area_boundaries,
    "occlusion_boundaries": case_occlusion_boundaries,
    "null_and_empty_frames": case_null_and_empty_frames,
    **{
        f"top_100/{v}": (lambda v=v: case_top_100(v))
        for v in ("rank100", "rank101", "tied100", "tied101", "per_video")
    },
    "missing_categories_and_videos": case_missing_categories_and_videos,
    **{
        f"segmentation_forms/{f}": (lambda f=f: case_segmentation_forms(f))
        for f in ("compressed", "polygon", "uncompressed")
    },
    "ytvis_format/ytvis": lambda: case_ytvis_format(False),
    "ytvis_format/ovis": lambda: case_ytvis_format(True),
    "empty_results": case_empty_results,
    "all_null_occlusion": case_all_null_occlusion,
    "areas_from_masks/missing": lambda: case_areas_from_masks(False),
    "areas_from_masks/given": lambda: case_areas_from_masks(True),
    "ground_truth_id_zero": case_ground_truth_id_zero,
    "max_dets": case_max_dets,
    "iou_threshold_edges": case_iou_threshold_edges,
}
