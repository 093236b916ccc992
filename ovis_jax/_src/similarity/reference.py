"""Similarities the plain way, with pycocotools per frame: the oracle of :mod:`.cpu`.

:func:`track_iou` is metric step 6 for one pair; :func:`frame_ious` gives per-frame IoUs
(frame-level metrics) in the layout of :func:`ovis_jax._src.similarity.cpu.frame_ious`.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["frame_ious", "track_iou"]


def track_iou(d_frames, g_frames) -> float:
    """metric step 6: IoU of two tracks, summed over frames (pycocotools per-frame operations).

    Args:
        d_frames: per frame, a compressed RLE dict or None.
        g_frames: per frame, a compressed RLE dict or None.
    """
    inter = 0
    union = 0
    for d, g in zip(d_frames, g_frames, strict=True):
        if d is not None and g is not None:
            inter += int(mask_utils.area(mask_utils.merge([d, g], intersect=True)))
            union += int(mask_utils.area(mask_utils.merge([d, g], intersect=False)))
        elif d is not None:
            union += int(mask_utils.area(d))
        elif g is not None:
            union += int(mask_utils.area(g))
    return float(inter) / float(union) if union > 0 else 0.0


def frame_ious(results, gt, d: np.ndarray, g: np.ndarray):
    """The same with pycocotools per-frame intersections and unions."""
    ious, either, n = [], [], []
    for td, tg in zip(d.tolist(), g.tolist(), strict=True):
        frames = list(zip(results.rles[td], gt.rles[tg], strict=True))
        n.append(len(frames))
        for fd, fg in frames:
            ad = int(mask_utils.area(fd)) if fd is not None else 0
            ag = int(mask_utils.area(fg)) if fg is not None else 0
            inter = 0
            if ad and ag:
                inter = int(mask_utils.area(mask_utils.merge([fd, fg], intersect=True)))
            union = ad + ag - inter
            ious.append(inter / union if union else 0.0)
            either.append(ad > 0 or ag > 0)
    start = np.zeros(len(n) + 1, dtype=np.int64)
    np.cumsum(n, out=start[1:])
    return np.asarray(ious, np.float64), np.asarray(either, bool), start
