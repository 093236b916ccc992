"""Local train / validation splits of a ground-truth file (the server's validation ground truth
is hidden, so researchers carve a ``valid_sub`` out of the training annotations).

:func:`split_ground_truth` is deterministic for a seed and stratified: every category with at
least :data:`MIN_VIDEOS_TO_STRATIFY` videos ends up in both halves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["FRACTION_TOLERANCE", "MIN_VIDEOS_TO_STRATIFY", "split_ground_truth"]

logger = logging.getLogger(__name__)

#: Categories with at least this many videos are put in both halves.
MIN_VIDEOS_TO_STRATIFY = 4
#: The valid half's share of the videos is within this of the fraction asked for.
FRACTION_TOLERANCE = 0.1


def split_ground_truth(data: Mapping, *, fraction: float, seed: int) -> tuple[dict, dict]:
    """Splits a ground truth into two complete ground truths with disjoint videos.

    Videos are drawn in a seeded random order. First, for each category with at least 4
    videos (rarest first), one of its videos goes to the valid half if none is there yet;
    then videos are added in that order until the valid half holds ``round(fraction * V)``
    videos. A video is only moved when every such category it contains keeps a video in the
    train half.

    Args:
        data: the parsed ground-truth object (already validated; not modified).
        fraction: the valid half's share of the videos, in (0, 1).
        seed: the random seed; the same seed gives the same split.

    Returns:
        ``(train, valid)``: copies of ``data`` (every top-level key kept) whose ``videos`` and
        ``annotations`` are those of each half, in file order.

    Raises:
        ValueError: a fraction outside (0, 1), or a ground truth too small or too
            concentrated for a stratified split within the tolerance.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    video_ids = sorted(int(v["id"]) for v in data["videos"])
    cats = _categories_per_video(data, video_ids)
    valid = _choose_valid(video_ids, cats, fraction=fraction, seed=seed)
    share = len(valid) / max(len(video_ids), 1)
    if abs(share - fraction) > FRACTION_TOLERANCE or not 0 < len(valid) < len(video_ids):
        raise ValueError(
            f"cannot split {len(video_ids)} videos with fraction {fraction}: keeping every "
            f"category with >= {MIN_VIDEOS_TO_STRATIFY} videos in both halves needs "
            f"{len(valid)} valid videos ({share:.2f})"
        )
    return _half(data, set(video_ids) - valid), _half(data, valid)


def _categories_per_video(data: Mapping, video_ids: list[int]) -> dict[int, set[int]]:
    cats: dict[int, set[int]] = {v: set() for v in video_ids}
    for a in data.get("annotations") or ():
        cats[int(a["video_id"])].add(int(a["category_id"]))
    return cats


def _choose_valid(
    video_ids: list[int], cats: dict[int, set[int]], *, fraction: float, seed: int
) -> set[int]:
    order = [video_ids[i] for i in np.random.default_rng(seed).permutation(len(video_ids))]
    videos_of: dict[int, list[int]] = {}
    for v in order:
        for c in sorted(cats[v]):
            videos_of.setdefault(c, []).append(v)
    strat = {c for c, vs in videos_of.items() if len(vs) >= MIN_VIDEOS_TO_STRATIFY}
    in_train = {c: len(vs) for c, vs in videos_of.items()}
    in_valid = dict.fromkeys(videos_of, 0)
    valid: set[int] = set()

    def move(v: int) -> bool:
        if v in valid or any(in_train[c] <= 1 for c in cats[v] & strat):
            return False
        valid.add(v)
        for c in cats[v]:
            in_train[c] -= 1
            in_valid[c] += 1
        return True

    for c in sorted(strat, key=lambda c: (len(videos_of[c]), c)):
        if in_valid[c] == 0 and not any(move(v) for v in videos_of[c]):
            raise ValueError(f"category {c} cannot be put in both halves")
    target = round(fraction * len(video_ids))
    for v in order:
        if len(valid) >= target:
            break
        move(v)
    return valid


def _half(data: Mapping, videos: set[int]) -> dict[str, Any]:
    out = dict(data)
    out["videos"] = [v for v in data["videos"] if int(v["id"]) in videos]
    if data.get("annotations") is not None:
        out["annotations"] = [a for a in data["annotations"] if int(a["video_id"]) in videos]
    return out
