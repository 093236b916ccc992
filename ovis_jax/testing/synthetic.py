"""Synthetic OVIS / YouTube-VIS datasets for tests, demos and benchmarks.

Two generators are provided:

* :func:`ovis_like` builds realistic-looking video instance segmentation
  ground truth (moving, deforming blobs that occlude one another in depth
  order) together with a noisy prediction file. It is meant for benchmarks
  and demos and is fast enough to produce full-resolution datasets with
  hundreds of videos.
* :func:`random_dataset` builds tiny random datasets that deliberately hit the
  corner cases of the YouTube-VIS / OVIS evaluation protocol (score ties, IoU
  ties, crowd tracks, empty masks, area and occlusion boundaries, uncompressed
  RLE and polygon ground truth, ...). It is meant for exhaustive equivalence
  testing of an evaluator against a reference implementation.

Both return ``(ground_truth, results)`` where ``ground_truth`` is a dict in the
OVIS (or YouTube-VIS) annotation format and ``results`` a list of
``{video_id, category_id, score, segmentations}`` dicts. All values are plain
Python objects (no NumPy scalars), so the output is JSON-serialisable as is
and two outputs can be compared with ``==``.

This module depends only on NumPy, pycocotools and the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["encode_mask", "ovis_like", "random_dataset", "to_json"]

logger = logging.getLogger(__name__)

OVIS_CATEGORY_NAMES = (
    "Person",
    "Bird",
    "Cat",
    "Dog",
    "Horse",
    "Sheep",
    "Cow",
    "Elephant",
    "Bear",
    "Zebra",
    "Giraffe",
    "Poultry",
    "Giant_panda",
    "Lizard",
    "Parrot",
    "Monkey",
    "Rabbit",
    "Tiger",
    "Fish",
    "Turtle",
    "Bicycle",
    "Motorcycle",
    "Airplane",
    "Boat",
    "Vehical",
)

_OCCLUSION_LABELS = ("no_occlusion", "slight_occlusion", "severe_occlusion")


# --------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> dict:
    """Encodes a binary mask as a COCO compressed RLE.

    Args:
        mask: ``(H, W)`` array, interpreted as boolean.

    Returns:
        ``{"size": [H, W], "counts": str}`` (column-major compressed RLE with
        ``counts`` decoded to ``str`` so that it is JSON-serialisable).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def to_json(obj: Any, path: str | Path) -> None:
    """Writes ``obj`` as JSON to ``path``.

    NumPy scalars and arrays are converted to Python numbers and lists, and
    ``bytes`` (e.g. raw RLE counts) are decoded as ASCII. Parent directories
    are created if needed.

    Args:
        obj: JSON-like object (dicts, lists, numbers, strings, None).
        path: Destination file.
    """

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, bytes):
            return o.decode("ascii")
        raise TypeError(f"object of type {type(o).__name__} is not JSON serializable")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        json.dump(obj, f, default=default, separators=(",", ":"))


# --------------------------------------------------------------------------
# Fast RLE encoding of masks stored as (crop, offset) on a coarse grid
# --------------------------------------------------------------------------
#
# ``ovis_like`` never materialises full frames. An instance mask is a boolean
# crop ``m`` of a coarse grid plus the crop's top-left corner ``(i0, j0)`` in
# coarse cells; coarse cell ``(i, j)`` covers full-resolution pixels
# ``[i*k, min((i+1)*k, H)) x [j*k, min((j+1)*k, W))``. The COCO RLE of the
# upsampled mask is computed directly from the crop's per-column runs, so the
# cost is proportional to the crop size and the number of runs, not to H*W.


def _crop_runs(
    crop: np.ndarray, i0: int, j0: int, k: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the sorted [start, end) column-major pixel runs of ones."""
    h, w = crop.shape
    padded = np.zeros((w, h + 2), bool)
    padded[:, 1:-1] = crop.T
    # Transitions alternate start / end within every padded column.
    sj, sr = np.divmod(np.flatnonzero(padded[:, 1:] != padded[:, :-1]), h + 1)
    if sj.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sj, er = sj[0::2], sr[1::2]
    sr = sr[0::2]
    y_start = np.minimum((i0 + sr) * k, height)
    y_end = np.minimum((i0 + er) * k, height)
    x = (j0 + sj).astype(np.int64) * k
    if k == 1:
        starts = x * height + y_start
        ends = x * height + y_end
    else:
        xs = x[:, None] + np.arange(k)
        valid = xs < width
        starts = (xs * height + y_start[:, None])[valid]
        ends = (xs * height + y_end[:, None])[valid]
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        ends = ends[order]
    if starts.size > 1:
        # Runs ending at the bottom of one column and starting at the top of
        # the next one are contiguous in column-major order: merge them.
        split = starts[1:] != ends[:-1]
        if not split.all():
            starts = starts[np.concatenate(([True], split))]
            ends = ends[np.concatenate((split, [True]))]
    return starts, ends


def _encode_crop(
    crop: np.ndarray, i0: int, j0: int, k: int, height: int, width: int
) -> tuple[dict, int]:
    """Encodes a coarse crop as a full-resolution compressed RLE.

    Returns:
        ``(rle, area)`` with ``area`` the number of foreground pixels.
    """
    starts, ends = _crop_runs(crop, i0, j0, k, height, width)
    total = height * width
    n = starts.size
    if n == 0:
        counts = np.array([total], np.uint32)
    else:
        counts = np.empty(2 * n + 1, np.int64)
        counts[0] = starts[0]
        counts[1::2] = ends - starts
        counts[2:-1:2] = starts[1:] - ends[:-1]
        counts[-1] = total - ends[-1]
        if counts[-1] == 0:
            counts = counts[:-1]
        counts = counts.astype(np.uint32)
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    area = int((ends - starts).sum())
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}, area


def _crop_bbox(crop: np.ndarray, i0: int, j0: int, k: int, height: int, width: int) -> list[float]:
    """Full-resolution ``[x, y, w, h]`` box of a non-empty coarse crop."""
    rows = np.flatnonzero(crop.any(axis=1))
    cols = np.flatnonzero(crop.any(axis=0))
    y0 = (i0 + int(rows[0])) * k
    y1 = min((i0 + int(rows[-1]) + 1) * k, height)
    x0 = (j0 + int(cols[0])) * k
    x1 = min((j0 + int(cols[-1]) + 1) * k, width)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _clip_crop(
    crop: np.ndarray, i0: int, j0: int, hc: int, wc: int
) -> tuple[np.ndarray, int, int] | None:
    """Clips a crop to the ``hc x wc`` coarse frame; None if nothing is left."""
    h, w = crop.shape
    a0, a1 = max(i0, 0), min(i0 + h, hc)
    b0, b1 = max(j0, 0), min(j0 + w, wc)
    if a0 >= a1 or b0 >= b1:
        return None
    sub = crop[a0 - i0 : a1 - i0, b0 - j0 : b1 - j0]
    if not sub.any():
        return None
    return sub, a0, b0


def _dilate(crop: np.ndarray, r: int) -> np.ndarray:
    """Square dilation by ``r`` cells; the output is ``2r`` larger per axis."""
    h, w = crop.shape
    horiz = np.zeros((h, w + 2 * r), bool)
    for d in range(2 * r + 1):
        horiz[:, d : d + w] |= crop
    out = np.zeros((h + 2 * r, w + 2 * r), bool)
    for d in range(2 * r + 1):
        out[d : d + h] |= horiz
    return out


def _erode(crop: np.ndarray, r: int) -> np.ndarray:
    """Square erosion by ``r`` cells (outside of the crop is background)."""
    h, w = crop.shape
    if h <= 2 * r or w <= 2 * r:
        return np.zeros_like(crop)
    horiz = crop.copy()
    horiz[:, :r] = False
    horiz[:, w - r :] = False
    for d in range(1, r + 1):
        horiz[:, r : w - r] &= crop[:, r - d : w - r - d]
        horiz[:, r : w - r] &= crop[:, r + d : w - r + d]
    out = horiz.copy()
    out[:r] = False
    out[h - r :] = False
    for d in range(1, r + 1):
        out[r : h - r] &= horiz[r - d : h - r - d]
        out[r : h - r] &= horiz[r + d : h - r + d]
    return out


# --------------------------------------------------------------------------
# ovis_like: moving blobs with depth-ordered occlusion
# --------------------------------------------------------------------------


_ARANGE = np.arange(4096.0)
_ARANGE_COL = _ARANGE[:, None]


class _Blob:
    """A union of rotated ellipses moving along a smooth path (coarse units).

    All per-frame geometry is precomputed at construction time (vectorised
    over frames and ellipses); :meth:`render` only rasterises.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        hc: int,
        wc: int,
        length: int,
        *,
        big: bool = False,
        anchor: tuple[float, float] | None = None,
    ) -> None:
        m = min(hc, wc)
        radius = m * (rng.uniform(0.15, 0.3) if big else rng.uniform(0.06, 0.24))
        n_ell = int(rng.integers(2, 5) if big else rng.integers(1, 4))
        offsets = rng.normal(0.0, 0.55, size=(n_ell, 2)) * radius
        offsets[0] = 0.0
        a = radius * rng.uniform(0.5, 1.1, size=n_ell)
        b = a * rng.uniform(0.35, 1.0, size=n_ell)
        theta0 = rng.uniform(0.0, np.pi, size=n_ell)
        omega = rng.normal(0.0, 0.03, size=n_ell)
        if anchor is None:
            c0 = np.array([rng.uniform(0.1, 0.9) * hc, rng.uniform(0.1, 0.9) * wc])
        else:
            # Instances of a video gather around an anchor (herds, crowds,
            # traffic), so they overlap and occlude one another.
            c0 = np.array(anchor) + rng.normal(0.0, 0.2 * m, size=2)
        speed = m * rng.uniform(0.0, 0.012)
        angle = rng.uniform(0.0, 2 * np.pi)
        vel = speed * np.array([np.sin(angle), np.cos(angle)])
        wobble_amp = m * rng.uniform(0.0, 0.08, size=2)
        wobble_freq = rng.uniform(0.02, 0.15, size=2)
        wobble_phase = rng.uniform(0.0, 2 * np.pi, size=2)
        growth = rng.normal(0.0, 0.004)
        amp, freq, phase = rng.uniform(0.0, 0.15), rng.uniform(0.02, 0.1), rng.uniform(0, 2 * np.pi)
        depth0 = rng.uniform(0.0, 1.0)
        depth_vel = rng.normal(0.0, 0.006)

        t = np.arange(length, dtype=np.float64)[:, None]
        center = c0 + vel * t + wobble_amp * np.sin(wobble_freq * t + wobble_phase)  # (T, 2)
        scale = np.exp(growth * t + amp * np.sin(freq * t + phase))  # (T, 1)
        cy = center[:, :1] + offsets[:, 0] * scale  # (T, E)
        cx = center[:, 1:] + offsets[:, 1] * scale
        a2 = (a * scale) ** 2
        b2 = (b * scale) ** 2
        theta = theta0 + omega * t
        cos2, sin2, cs = np.cos(theta) ** 2, np.sin(theta) ** 2, np.cos(theta) * np.sin(theta)
        # Ellipse: qa X^2 + qb X Y + qc Y^2 <= 1 (X columns, Y rows, relative
        # to its center). Per column X, Y = slope X +- sqrt(alpha X^2 + beta).
        qa = cos2 / a2 + sin2 / b2
        qb = 2.0 * cs * (1.0 / a2 - 1.0 / b2)
        qc = sin2 / a2 + cos2 / b2
        slope = -qb / (2.0 * qc)
        alpha = (qb * qb - 4.0 * qa * qc) / (4.0 * qc * qc)
        beta = 1.0 / qc
        half_x = np.sqrt(a2 * cos2 + b2 * sin2)
        half_y = np.sqrt(a2 * sin2 + b2 * cos2)
        r0 = np.clip(np.floor(cy - half_y), 0, hc).astype(int)
        r1 = np.clip(np.floor(cy + half_y) + 1, 0, hc).astype(int)
        e0 = np.clip(np.floor(cx - half_x), 0, wc).astype(int)
        e1 = np.clip(np.floor(cx + half_x) + 1, 0, wc).astype(int)
        cols = (r0, r1, e0, e1, cy - 0.5, 0.5 - cx, slope, alpha, beta)
        table = np.stack([np.asarray(c, np.float64) for c in cols], axis=-1).tolist()
        self.frames: list[list[tuple]] = [
            [
                (int(p[0]), int(p[1]), int(p[2]), int(p[3]), *p[4:])
                for p in row
                if p[0] < p[1] and p[2] < p[3]
            ]
            for row in table
        ]
        self.depths: list[float] = (depth0 + depth_vel * t[:, 0]).tolist()

    def render(self, t: int) -> tuple[np.ndarray, int, int] | None:
        """Amodal mask at frame ``t`` as a clipped crop, or None if off-frame.

        Must run under ``np.errstate(invalid="ignore")`` (columns outside an
        ellipse give NaN half-heights, which compare False).
        """
        ells = self.frames[t]
        if not ells:
            return None
        i0 = min(p[0] for p in ells)
        i1 = max(p[1] for p in ells)
        j0 = min(p[2] for p in ells)
        j1 = max(p[3] for p in ells)
        out = np.zeros((i1 - i0, j1 - j0), bool)
        big = j1 > _ARANGE.size or i1 > _ARANGE.size
        for r0, r1, e0, e1, cy, cx, slope, alpha, beta in ells:
            if big:
                x = np.arange(e0, e1, dtype=np.float64) + cx
                y = np.arange(r0, r1, dtype=np.float64)[:, None]
            else:
                x = _ARANGE[e0:e1] + cx
                y = _ARANGE_COL[r0:r1]
            half = np.sqrt(alpha * x * x + beta)
            mid = slope * x + cy
            out[r0 - i0 : r1 - i0, e0 - j0 : e1 - j0] |= np.abs(y - mid) <= half
        if not out.any():
            return None
        return out, i0, j0


def _presence(rng: np.random.Generator, length: int) -> tuple[int, int]:
    """Frames ``[t_in, t_out)`` during which a track may be visible."""
    if length <= 2 or rng.random() < 0.55:
        return 0, length
    span = int(rng.integers(max(1, length // 5), length + 1))
    t_in = int(rng.integers(0, length - span + 1))
    return t_in, t_in + span


def _occlusion_label(hidden: float) -> str:
    if hidden < 0.1:
        return "no_occlusion"
    if hidden <= 0.5:
        return "slight_occlusion"
    return "severe_occlusion"


def _noisy_copy(
    rng: np.random.Generator,
    frames: list,
    hc: int,
    wc: int,
    quality: float,
    scale: float,
) -> list:
    """Noisy per-frame copy of a track of coarse crops (None where dropped)."""
    length = len(frames)
    bad = 1.0 - quality
    drift = rng.normal(0.0, bad * 0.35 * scale, size=2)
    jitter = bad * 0.08 * scale
    morph = int(np.clip(np.round(rng.normal(0.0, 0.5 + 2.5 * bad)), -3, 3))
    drop = 0.3 * bad * rng.random()
    lo, hi = 0, length
    if rng.random() < 0.15 + 0.2 * bad and length > 2:
        # Cut track: keep one contiguous segment.
        cut = int(rng.integers(1, length))
        if rng.random() < 0.5:
            hi = cut
        else:
            lo = cut
    out: list = []
    for t, item in enumerate(frames):
        if item is None or t < lo or t >= hi or rng.random() < drop:
            out.append(None)
            continue
        crop, i0, j0 = item
        if morph > 0:
            crop = _dilate(crop, morph)
            i0, j0 = i0 - morph, j0 - morph
        elif morph < 0:
            crop = _erode(crop, -morph)
        shift = np.round(drift + rng.normal(0.0, jitter, size=2)).astype(int)
        out.append(_clip_crop(crop, i0 + int(shift[0]), j0 + int(shift[1]), hc, wc))
    return out


def _track_scale(frames: list) -> float:
    sizes = [math.sqrt(item[0].size) for item in frames if item is not None]
    return float(np.mean(sizes)) if sizes else 1.0


def _render_false_positive(rng: np.random.Generator, hc: int, wc: int, length: int) -> list:
    blob = _Blob(rng, hc, wc, length)
    t_in, t_out = _presence(rng, length)
    frames: list = [None] * length
    for t in range(t_in, t_out):
        frames[t] = blob.render(t)
    return frames


def ovis_like(
    *,
    seed: int,
    num_videos: int = 20,
    num_categories: int = 25,
    tracks_per_video: float = 5.8,
    frames: int | tuple[int, int] = 70,
    sizes: Sequence[tuple[int, int]] = ((480, 854), (720, 1280), (1080, 1920)),
    predictions_per_video: int = 13,
    occlusion: bool = True,
    crowd_rate: float = 0.02,
) -> tuple[dict, list]:
    """Generates a realistic OVIS-like ground truth and a noisy result file.

    Every instance is a blob (a union of one to four rotated ellipses) moving
    along a smooth path while rotating, growing and shrinking. Instances are
    composited in a (slowly changing) depth order: the pixels of a nearer
    instance are removed from farther ones, so masks get fragmented by
    occlusion, and instances can be fully hidden or leave the frame (``None``
    frames). Tracks may also enter late or leave early. Occlusion labels are
    derived from the fraction of the in-frame amodal mask hidden by nearer
    instances (< 10 %: ``no_occlusion``, <= 50 %: ``slight_occlusion``, else
    ``severe_occlusion``). ``areas`` are exact pixel counts of the encoded
    (visible) masks and ``bboxes`` their exact bounding boxes.

    Masks are rasterised on a coarse grid of ``k x k`` pixel cells with
    ``k = max(1, round(min(H, W) / 270))`` (1 up to 404p, 2 at 480p, 3 at
    720p, 4 at 1080p) and encoded directly from a bounding-box crop, so the
    cost does not depend on the frame size. The RLEs are ordinary
    full-resolution COCO RLEs.

    Predictions are noisy copies of ground-truth tracks (a per-track drift
    plus per-frame jitter, dilation or erosion, dropped frames, cut tracks,
    sometimes the wrong class), duplicated noisy copies and false-positive
    blob tracks. Scores correlate with the copy quality plus noise. Exactly
    ``predictions_per_video`` results are returned per video.

    Args:
        seed: Seed of ``numpy.random.default_rng``; equal seeds give equal
            outputs.
        num_videos: Number of videos (ids ``1..num_videos``).
        num_categories: Number of categories (ids ``1..num_categories``; the
            first 25 use the OVIS category names).
        tracks_per_video: Mean number of ground-truth tracks per video (at
            least one track per video).
        frames: Video length, or an inclusive ``(min, max)`` range drawn per
            video.
        sizes: ``(height, width)`` choices, drawn per video.
        predictions_per_video: Number of results per video.
        occlusion: Whether to add the OVIS ``occlusion`` key to the
            annotations (``False`` gives the YouTube-VIS format).
        crowd_rate: Probability that a track is a crowd track (``iscrowd=1``).

    Returns:
        ``(ground_truth, results)``: the ground-truth dict (``videos``,
        ``annotations``, ``categories``) and the list of results
        (``video_id``, ``category_id``, ``score``, ``segmentations``).
    """
    if num_videos < 0 or num_categories < 1 or predictions_per_video < 0:
        raise ValueError(
            "num_videos >= 0, num_categories >= 1 and predictions_per_video >= 0 required"
        )
    rng = np.random.default_rng(seed)
    categories = [
        {
            "id": c,
            "name": OVIS_CATEGORY_NAMES[c - 1]
            if c <= len(OVIS_CATEGORY_NAMES)
            else f"category_{c}",
            "supercategory": "object",
        }
        for c in range(1, num_categories + 1)
    ]
    # Zipf-like category frequencies (a few frequent categories, a long tail).
    cat_weights = 1.0 / np.arange(1, num_categories + 1) ** 0.8
    cat_weights = cat_weights[rng.permutation(num_categories)]
    cat_weights /= cat_weights.sum()

    videos: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    # Columns outside an ellipse give NaN half-heights (see _Blob.render).
    with np.errstate(invalid="ignore"):
        for vid in range(1, num_videos + 1):
            height, width = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
            if isinstance(frames, int):
                length = int(frames)
            else:
                length = int(rng.integers(int(frames[0]), int(frames[1]) + 1))
            if length < 1:
                raise ValueError("videos need at least one frame")
            k = max(1, round(min(height, width) / 270))
            hc, wc = -(-height // k), -(-width // k)
            videos.append(
                {
                    "id": vid,
                    "width": width,
                    "height": height,
                    "length": length,
                    "file_names": [f"video_{vid:05d}/img_{t:07d}.jpg" for t in range(length)],
                }
            )
            video_cats = rng.choice(
                num_categories,
                size=int(min(num_categories, rng.integers(1, 4))),
                replace=False,
                p=cat_weights,
            )
            tracks = _render_video(rng, video_cats, tracks_per_video, crowd_rate, hc, wc, length)
            for tr in tracks:
                segs, areas, bboxes = [], [], []
                for item in tr["frames"]:
                    if item is None:
                        segs.append(None)
                        areas.append(None)
                        bboxes.append(None)
                    else:
                        rle, area = _encode_crop(*item, k, height, width)
                        segs.append(rle)
                        areas.append(area)
                        bboxes.append(_crop_bbox(*item, k, height, width))
                ann = {
                    "id": len(annotations) + 1,
                    "video_id": vid,
                    "category_id": tr["category_id"],
                    "segmentations": segs,
                    "areas": areas,
                    "bboxes": bboxes,
                    "iscrowd": tr["iscrowd"],
                }
                if occlusion:
                    ann["occlusion"] = tr["occlusion"]
                annotations.append(ann)
            results.extend(
                _predict_video(
                    rng,
                    vid,
                    tracks,
                    predictions_per_video,
                    num_categories,
                    video_cats,
                    hc,
                    wc,
                    length,
                    k,
                    height,
                    width,
                )
            )
    gt = {"videos": videos, "annotations": annotations, "categories": categories}
    logger.debug(
        "ovis_like(seed=%s): %d videos, %d tracks, %d results",
        seed,
        len(videos),
        len(annotations),
        len(results),
    )
    return gt, results


def _render_video(
    rng: np.random.Generator,
    video_cats: np.ndarray,
    tracks_per_video: float,
    crowd_rate: float,
    hc: int,
    wc: int,
    length: int,
) -> list[dict]:
    """Renders the visible (occlusion-aware) coarse masks of one video."""
    for _attempt in range(20):
        n_tracks = 1 + int(rng.poisson(max(tracks_per_video - 1.0, 0.0)))
        blobs, spans, meta = [], [], []
        anchor = (rng.uniform(0.3, 0.7) * hc, rng.uniform(0.25, 0.75) * wc)
        for _ in range(n_tracks):
            crowd = bool(rng.random() < crowd_rate)
            blobs.append(_Blob(rng, hc, wc, length, big=crowd, anchor=anchor))
            spans.append(_presence(rng, length))
            meta.append((int(rng.choice(video_cats)) + 1, int(crowd)))
        visible: list[list] = [[None] * length for _ in range(n_tracks)]
        occl: list[list] = [[None] * length for _ in range(n_tracks)]
        occupied = np.zeros((hc, wc), bool)
        for t in range(length):
            active = [i for i in range(n_tracks) if spans[i][0] <= t < spans[i][1]]
            active.sort(key=lambda i: blobs[i].depths[t])
            for i in active:
                item = blobs[i].render(t)
                if item is None:
                    continue
                amodal, i0, j0 = item
                region = occupied[i0 : i0 + amodal.shape[0], j0 : j0 + amodal.shape[1]]
                vis = amodal & ~region
                region |= amodal
                n_vis = int(np.count_nonzero(vis))
                if n_vis == 0:
                    continue
                visible[i][t] = (vis, i0, j0)
                occl[i][t] = _occlusion_label(1.0 - n_vis / int(np.count_nonzero(amodal)))
            occupied[:] = False
        tracks = [
            {
                "frames": visible[i],
                "occlusion": occl[i],
                "category_id": meta[i][0],
                "iscrowd": meta[i][1],
            }
            for i in range(n_tracks)
            if any(item is not None for item in visible[i])
        ]
        if tracks:
            return tracks
    raise RuntimeError("could not generate a visible track")  # pragma: no cover


def _predict_video(
    rng: np.random.Generator,
    vid: int,
    tracks: list[dict],
    n_pred: int,
    num_categories: int,
    video_cats: np.ndarray,
    hc: int,
    wc: int,
    length: int,
    k: int,
    height: int,
    width: int,
) -> list[dict]:
    """Builds exactly ``n_pred`` noisy predictions for one video."""
    # Plan: (kind, track index, quality); kinds: copy, dup (extra copy), fp.
    plans: list[tuple[str, int, float]] = []
    for i in rng.permutation(len(tracks)):
        if rng.random() < 0.92:
            plans.append(("copy", int(i), float(rng.beta(5.0, 1.6))))
    if len(plans) > n_pred:
        keep = np.sort(rng.choice(len(plans), size=n_pred, replace=False))
        plans = [plans[j] for j in keep]
    while len(plans) < n_pred:
        if rng.random() < 0.5:
            plans.append(("dup", int(rng.integers(len(tracks))), float(rng.beta(2.0, 2.5))))
        else:
            plans.append(("fp", -1, 0.0))
    plans = [plans[j] for j in rng.permutation(len(plans))]
    out = []
    for kind, i, quality in plans:
        if kind == "fp":
            for _attempt in range(10):
                frames = _render_false_positive(rng, hc, wc, length)
                if any(item is not None for item in frames):
                    break
            cat = (
                int(rng.choice(video_cats)) + 1
                if rng.random() < 0.6
                else int(rng.integers(1, num_categories + 1))
            )
            score = float(rng.uniform(0.001, 0.45))
        else:
            tr = tracks[i]
            frames = _noisy_copy(rng, tr["frames"], hc, wc, quality, _track_scale(tr["frames"]))
            cat = tr["category_id"]
            if rng.random() < 0.04 + 0.15 * (1.0 - quality):
                cat = int(rng.integers(1, num_categories + 1))
            score = 0.1 + 0.85 * quality + rng.normal(0.0, 0.08)
            if kind == "dup":
                score *= 0.6
            if cat != tr["category_id"]:
                score *= 0.7
            score = float(np.clip(score, 0.001, 0.999))
        if all(item is None for item in frames):
            # Every result keeps at least one frame: fall back to a clean
            # ground-truth frame.
            src = tracks[i] if i >= 0 else tracks[int(rng.integers(len(tracks)))]
            present = [t for t, item in enumerate(src["frames"]) if item is not None]
            t = present[int(rng.integers(len(present)))]
            frames = [None] * length
            frames[t] = src["frames"][t]
        segs = [
            None if item is None else _encode_crop(*item, k, height, width)[0] for item in frames
        ]
        out.append(
            {"video_id": vid, "category_id": cat, "score": round(score, 6), "segmentations": segs}
        )
    return out


# --------------------------------------------------------------------------
# random_dataset: tiny random datasets full of edge cases
# --------------------------------------------------------------------------

_AREA_BOUNDARIES = (128**2, 256**2)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with a (possibly empty) zero run."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return [int(r) for r in runs]


def _decode_rle(rle: dict) -> np.ndarray:
    """pycocotools decode, without its NumPy 2 ``copy=False`` DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def _mask_bbox(mask: np.ndarray) -> list[float]:
    """pycocotools ``[x, y, w, h]`` box of a dense mask (zeros if empty)."""
    return [float(v) for v in mask_utils.toBbox(encode_mask(mask))]


def _random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    u = rng.random()
    if u < 0.08:
        return np.zeros((h, w), bool)
    if u < 0.12:
        return np.ones((h, w), bool)
    if u < 0.75:
        m = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(1, 3))):
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
            m[y0:y1, x0:x1] = True
        return m
    return rng.random((h, w)) < rng.uniform(0.1, 0.9)


def _perturb_mask(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    u = rng.random()
    if u < 0.4:
        return mask ^ (rng.random(mask.shape) < rng.uniform(0.02, 0.3))
    if u < 0.8:
        dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
        return np.roll(mask, (dy, dx), axis=(0, 1))
    return _random_mask(rng, *mask.shape)


def _random_polygons(rng: np.random.Generator, h: int, w: int) -> list[list[float]]:
    polys = []
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.integers(3, 7))
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(1.0, max(h, w) / 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, size=n))
        rad = r * rng.uniform(0.4, 1.0, size=n)
        xs = np.clip(cx + rad * np.cos(ang), 0, w)
        ys = np.clip(cy + rad * np.sin(ang), 0, h)
        poly = np.stack([xs, ys], axis=1).ravel()
        polys.append([round(float(v), 2) for v in poly])
    return polys


def _present_frames(rng: np.random.Generator, length: int) -> list[bool]:
    u = rng.random()
    if u < 0.5 or length == 1:
        present = [True] * length
    elif u < 0.75:
        present = (rng.random(length) < 0.7).tolist()
    else:
        a = int(rng.integers(0, length))
        b = int(rng.integers(a + 1, length + 1))
        present = [a <= t < b for t in range(length)]
    if not any(present):
        present[int(rng.integers(length))] = True
    return [bool(p) for p in present]


def _occlusion_labels(rng: np.random.Generator, present: list[bool]) -> list:
    n = sum(present)
    u = rng.random()
    if u < 0.1:
        return [None] * len(present)
    values: list
    if u < 0.25:
        # Occlusion score exactly 0.25: the largest ceil(n/2) values are slight.
        m = math.ceil(n / 2)
        values = ["slight_occlusion"] * m + [
            str(rng.choice(_OCCLUSION_LABELS[:2])) for _ in range(n - m)
        ]
    elif u < 0.4 and n >= 3:
        # Exactly 0.5: the largest ceil(n/2) values average to 0.5.
        m = math.ceil(n / 2)
        if m % 2 == 0:
            top = ["severe_occlusion", "slight_occlusion"] * (m // 2)
            rest = [str(rng.choice(_OCCLUSION_LABELS[:2])) for _ in range(n - m)]
        else:
            # 3 s + l = 2 m with s = (m + 1) / 2 severe, l = (m - 3) / 2
            # slight and one "no" in the top half; the rest must be "no".
            top = (
                ["severe_occlusion"] * ((m + 1) // 2)
                + ["slight_occlusion"] * ((m - 3) // 2)
                + ["no_occlusion"]
            )
            rest = ["no_occlusion"] * (n - m)
        values = top + rest
    else:
        values = [str(rng.choice(_OCCLUSION_LABELS)) for _ in range(n)]
    values = [values[i] for i in rng.permutation(len(values))]
    it = iter(values)
    return [next(it) if p else None for p in present]


def _occlusion_score(labels: list) -> float | None:
    """Reference OVIS occlusion score (mean of the largest half)."""
    mapping = {"no_occlusion": 0.0, "slight_occlusion": 0.25, "severe_occlusion": 0.75}
    vals = sorted((mapping[v] for v in labels if v is not None), reverse=True)
    if not vals:
        return None
    top = vals[: math.ceil(len(vals) / 2)]
    return sum(top) / len(top)


class _Frame(NamedTuple):
    """A video of :func:`random_dataset`: id, frame size and length."""

    vid: int
    h: int
    w: int
    length: int


@dataclasses.dataclass(frozen=True)
class _ResultOptions:
    """What :func:`random_dataset` draws once for all its results."""

    score_mode: str
    big_video: int
    p_empty_video: float
    max_results: int
    cat_ids: list[int]
    gt_cats: list[int]
    unknown_categories: bool


def _draw_ids(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` ascending ids: ``1..n``, or (60%) a random subset of ``1..3n+5``."""
    if rng.random() < 0.4:
        return list(range(1, n + 1))
    return sorted(int(v) + 1 for v in rng.choice(3 * n + 5, size=n, replace=False))


def _draw_score(rng: np.random.Generator, mode: str) -> float:
    if mode == "coarse":
        return float(rng.choice([0.1, 0.5, 0.9]))
    if mode == "rounded":
        return round(float(rng.uniform(0.0, 1.0)), 1) or 0.1
    return float(rng.uniform(0.001, 1.0))


def _random_gt_masks(rng: np.random.Generator, fr: _Frame) -> tuple[list, list]:
    """A new ground-truth track's masks (None where absent) and segmentations: compressed or
    uncompressed RLE, or polygons."""
    present = _present_frames(rng, fr.length)
    kind = str(rng.choice(["compressed", "uncompressed", "polygon"], p=[0.65, 0.2, 0.15]))
    masks, segs = [], []
    for p in present:
        if not p:
            masks.append(None)
            segs.append(None)
        elif kind == "polygon":
            polys = _random_polygons(rng, fr.h, fr.w)
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, fr.h, fr.w))
            masks.append(_decode_rle(rle))
            segs.append(polys)
        else:
            m = _random_mask(rng, fr.h, fr.w)
            masks.append(m)
            if kind == "uncompressed":
                segs.append({"size": [fr.h, fr.w], "counts": _uncompressed_counts(m)})
            else:
                segs.append(encode_mask(m))
    return masks, segs


def _boundary_areas(rng: np.random.Generator, masks: list) -> list:
    """The track's ``areas``: the masks' pixel counts, or (10%) an area-range boundary."""
    present = [m is not None for m in masks]
    areas = [None if m is None else int(m.sum()) for m in masks]
    if rng.random() < 0.1:
        target = int(rng.choice(_AREA_BOUNDARIES))
        idx = [t for t, p in enumerate(present) if p]
        vals = [target] * len(idx)
        if len(idx) >= 2 and rng.random() < 0.5:
            d = int(rng.integers(1, 1000))
            vals[0], vals[1] = target - d, target + d
        for t, val in zip(idx, vals, strict=True):
            areas[t] = val
    return areas


def _random_gt_video(
    rng: np.random.Generator, fr: _Frame, gt_cats: list[int], occlusion: bool, annotations: list
) -> list[dict]:
    """Ground-truth section of a video: appends its 0-6 annotations to ``annotations`` and
    returns its tracks (``masks``, ``segmentations``, ``category_id``) for its results."""
    gt_tracks: list[dict] = []
    for _ in range(int(rng.integers(0, 7))):
        if gt_tracks and rng.random() < 0.15:  # a duplicate of an earlier track
            src = gt_tracks[int(rng.integers(len(gt_tracks)))]
            cat = src["category_id"] if rng.random() < 0.7 else int(rng.choice(gt_cats))
            masks = list(src["masks"])
            segs = json.loads(json.dumps(src["segmentations"]))
        else:
            cat = int(rng.choice(gt_cats))
            masks, segs = _random_gt_masks(rng, fr)
        ann = {
            "id": len(annotations) + 1,
            "video_id": fr.vid,
            "category_id": cat,
            "segmentations": segs,
            "areas": _boundary_areas(rng, masks),
            "bboxes": [None if m is None else _mask_bbox(m) for m in masks],
            "iscrowd": int(rng.random() < 0.1),
        }
        if occlusion:
            ann["occlusion"] = _occlusion_labels(rng, [m is not None for m in masks])
        annotations.append(ann)
        gt_tracks.append({"masks": masks, "segmentations": segs, "category_id": cat})
    return gt_tracks


def _num_results(rng: np.random.Generator, opts: _ResultOptions, *, big: bool) -> int:
    if big:
        return int(rng.integers(101, opts.max_results + 1))
    if rng.random() < opts.p_empty_video:
        return 0
    if rng.random() < 0.85:
        return int(rng.integers(1, min(20, opts.max_results) + 1)) if opts.max_results > 0 else 0
    return int(rng.integers(0, opts.max_results + 1))


def _result_masks(
    rng: np.random.Generator, fr: _Frame, gt_tracks: list[dict], cat_ids: list[int]
) -> tuple[list, int]:
    """One result's masks and category: a ground-truth copy (20%), a noisy copy (40%) or random
    masks; never all None."""
    u = rng.random()
    if gt_tracks and u < 0.2:
        src = gt_tracks[int(rng.integers(len(gt_tracks)))]
        masks, cat = list(src["masks"]), src["category_id"]
    elif gt_tracks and u < 0.6:
        src = gt_tracks[int(rng.integers(len(gt_tracks)))]
        cat = src["category_id"]
        p_none = rng.uniform(0.0, 0.4)
        masks = []
        for m in src["masks"]:
            r = rng.random()
            if r < p_none:
                masks.append(None)
            elif m is None:
                masks.append(_random_mask(rng, fr.h, fr.w) if r < 0.5 else None)
            else:
                masks.append(m if r < 0.5 else _perturb_mask(rng, m))
    else:
        present = _present_frames(rng, fr.length)
        masks = [_random_mask(rng, fr.h, fr.w) if p else None for p in present]
        cat = int(rng.choice(cat_ids))
    if not any(m is not None for m in masks):
        masks[int(rng.integers(fr.length))] = _random_mask(rng, fr.h, fr.w)
    return masks, cat


def _random_results_video(
    rng: np.random.Generator, fr: _Frame, gt_tracks: list[dict], opts: _ResultOptions, *, big: bool
) -> list[dict]:
    """Results section of a video (``big``: more than 100 results, mostly one category)."""
    n_res = _num_results(rng, opts, big=big)
    cat_ids = opts.cat_ids
    dominant = int(rng.choice(opts.gt_cats if rng.random() < 0.8 else cat_ids))
    results = []
    for _ in range(n_res):
        masks, cat = _result_masks(rng, fr, gt_tracks, cat_ids)
        if big and rng.random() < 0.9:
            cat = dominant
        elif rng.random() < 0.1:
            cat = int(rng.choice(cat_ids))
        if opts.unknown_categories and rng.random() < 0.05:
            cat = max(cat_ids) + int(rng.integers(1, 50))
        results.append(
            {
                "video_id": fr.vid,
                "category_id": cat,
                "score": _draw_score(rng, opts.score_mode),
                "segmentations": [None if m is None else encode_mask(m) for m in masks],
            }
        )
    return results


def random_dataset(
    *,
    seed: int,
    num_videos: int | None = None,
    num_categories: int | None = None,
    max_results_per_video: int = 150,
    occlusion: bool | None = None,
    unknown_categories: bool = False,
) -> tuple[dict, list]:
    """Generates a tiny random dataset that exercises evaluation corner cases.

    Frames are 4 to 24 pixels high and wide (drawn per video), videos have 1
    to 12 frames. Across seeds the datasets frequently contain:

    * score ties within and across videos (some datasets draw scores from
      ``{0.1, 0.5, 0.9}`` or round them to one decimal);
    * IoU ties: duplicated ground-truth tracks with identical masks and
      results identical to a ground-truth track;
    * crowd tracks (``iscrowd=1``), ``None`` frames and all-zero masks;
    * ground-truth tracks whose mean ``areas`` is exactly ``128**2`` or
      ``256**2`` (the ``areas`` lists are then set independently of the tiny
      masks);
    * occlusion label lists whose occlusion score is exactly 0.25 or 0.5, and
      tracks whose occlusion labels are all ``None``;
    * more than 100 results for one (video, category), videos without
      results or without ground truth, categories without ground truth and
      results in such categories;
    * ground-truth segmentations given as uncompressed RLE or polygons
      (``areas`` and ``bboxes`` then follow the pycocotools conversion);
    * non-contiguous, unsorted video and category ids and shuffled results.

    Every ground-truth track and every result has at least one non-``None``
    frame. Result segmentations are compressed RLEs or ``None``.

    Args:
        seed: Seed of ``numpy.random.default_rng``; equal seeds give equal
            outputs.
        num_videos: Number of videos; drawn in ``[1, 20]`` if None.
        num_categories: Number of categories; drawn in ``[1, 30]`` if None.
        max_results_per_video: Upper bound on the number of results per
            video (the number is drawn per video in ``[0, max]``).
        occlusion: Whether to use the OVIS format (``occlusion`` key on every
            annotation) or YouTube-VIS (no ``occlusion`` key); drawn at
            random if None.
        unknown_categories: If True, a few results use category ids that are
            not in the ground truth's ``categories``.

    Returns:
        ``(ground_truth, results)`` as for :func:`ovis_like`.
    """
    rng = np.random.default_rng(seed)
    if num_videos is None:
        num_videos = int(rng.integers(1, 21))
    if num_categories is None:
        num_categories = int(rng.integers(1, 31))
    if occlusion is None:
        occlusion = bool(rng.random() < 0.5)
    if num_videos < 1 or num_categories < 1:
        raise ValueError("num_videos and num_categories must be >= 1")
    video_ids = _draw_ids(rng, num_videos)
    cat_ids = _draw_ids(rng, num_categories)
    # GT only uses a subset of the categories, so some categories have no GT.
    n_gt_cats = num_categories if rng.random() < 0.4 else int(rng.integers(1, num_categories + 1))
    gt_cats = [int(c) for c in rng.choice(cat_ids, size=n_gt_cats, replace=False)]
    opts = _ResultOptions(
        score_mode=str(rng.choice(["uniform", "coarse", "rounded"], p=[0.4, 0.3, 0.3])),
        big_video=(
            int(rng.integers(num_videos))
            if rng.random() < 0.35 and max_results_per_video > 100
            else -1
        ),
        p_empty_video=rng.uniform(0.0, 0.4),
        max_results=max_results_per_video,
        cat_ids=cat_ids,
        gt_cats=gt_cats,
        unknown_categories=unknown_categories,
    )
    videos: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    for v_index, vid in enumerate(video_ids):
        h, w = int(rng.integers(4, 25)), int(rng.integers(4, 25))
        length = int(rng.integers(1, 13))
        videos.append(
            {
                "id": vid,
                "width": w,
                "height": h,
                "length": length,
                "file_names": [f"v{vid}/{t:05d}.jpg" for t in range(length)],
            }
        )
        frame = _Frame(vid, h, w, length)
        gt_tracks = _random_gt_video(rng, frame, gt_cats, occlusion, annotations)
        results += _random_results_video(rng, frame, gt_tracks, opts, big=v_index == opts.big_video)

    categories = [{"id": c, "name": f"cat{c}", "supercategory": "object"} for c in cat_ids]
    if rng.random() < 0.5:
        videos = [videos[i] for i in rng.permutation(len(videos))]
    if rng.random() < 0.5:
        categories = [categories[i] for i in rng.permutation(len(categories))]
    if rng.random() < 0.3:
        results = [results[i] for i in rng.permutation(len(results))]
    gt = {"videos": videos, "annotations": annotations, "categories": categories}
    return gt, results
