"""Results files of the OVIS / YouTube-VIS family: parsing and validating them against their
ground truth (see :mod:`ovis_jax._src.io.vis`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ovis_jax._src import messages, progress
from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import GroundTruth, PathOrObject, Results, UnknownResults, Video
from ovis_jax._src.io.read import TYPED_RESULTS, gc_paused, read_source
from ovis_jax._src.io.segments import Collector, FastFile, collectors, duplicate_pairs
from ovis_jax._src.io.validate import is_finite_number, is_id, is_int, item_video, require, show

__all__ = [
    "UNKNOWN_VIDEO_HINT",
    "ResultsContext",
    "load_results",
    "parse_result",
    "refuse_foreign",
    "uncompressed_frames",
]

logger = logging.getLogger(__name__)


class _Result(NamedTuple):
    """One kept result, as :func:`parse_result` reads it."""

    id: int  # 1..N in file order (metric step 1)
    video_id: int
    category_id: int
    score: float


@dataclasses.dataclass
class ResultsContext:
    """What the per-result parser needs and what it tallies across results."""

    video_by_id: dict[int, Video]
    known_cats: set[int]
    collector: Collector
    discarded: Collector
    dropped: list[_Result] = dataclasses.field(default_factory=list)  # unknown categories


UNKNOWN_VIDEO_HINT = (
    "not in the ground truth; to evaluate some of the videos, give the whole ground truth and "
    "--subset / subsets="
)


def parse_result(i: int, r: Any, ctx: ResultsContext) -> _Result | None:
    """Validates ``results[i]`` and adds its masks to the context's collector.

    Returns:
        The result, or None when its category is not in the ground truth (then its masks are
        validated all the same, and counted).
    """
    where, video = item_video(r, f"results[{i}]", ctx.video_by_id, UNKNOWN_VIDEO_HINT)
    vid = video.id
    cid = require(r, "category_id", where)
    if not is_id(cid):
        raise FormatError(f"{where}: 'category_id' must be an integer (64-bit), got {show(cid)}")
    score = require(r, "score", where)
    if not is_finite_number(score):
        raise FormatError(f"{where}: 'score' must be a finite number, got {show(score)}")
    segs = require(r, "segmentations", where)
    row = _Result(i + 1, int(vid), int(cid), float(score))
    if int(cid) not in ctx.known_cats:
        ctx.dropped.append(row)
        ctx.discarded.add_track(segs, video, where)
        return None
    ctx.collector.add_track(segs, video, where)
    return row


def refuse_foreign(data: Any, gt: GroundTruth) -> None:
    """Refuses, with a hint, a ground truth given as results and results that share no video
    with the ground truth (for another dataset or split)."""
    if isinstance(data, Mapping) and "videos" in data and "annotations" in data:
        anns = data["annotations"] if isinstance(data["annotations"], list) else []
        if not any(isinstance(a, Mapping) and "score" in a for a in anns[:100]):
            raise FormatError(
                "results: this is a ground-truth file (a JSON object with 'videos' and "
                "'annotations' without scores), not results: are the ground truth and the "
                "results swapped?"
            )
    items = data.get("annotations") if isinstance(data, Mapping) else data
    if not isinstance(items, list) or not items or not gt.videos:
        return
    ids = {int(v) for a in items if isinstance(a, Mapping) and is_int(v := a.get("video_id"))}
    if ids and not ids & set(gt.video_by_id):
        raise FormatError(
            f"results: none of the {len(ids)} video ids of the results (e.g. {min(ids)}) is a "
            f"video of the ground truth (0 of {len(gt.videos)} videos in common; its ids run "
            f"{gt.videos[0].id}..{gt.videos[-1].id}): are the results for another dataset or "
            "split, or are the ground truth and the results swapped?"
        )


@gc_paused
def load_results(source: PathOrObject, gt: GroundTruth, *, max_bytes: int | None = None) -> Results:
    """Loads and validates a results file against its ground truth.

    Args:
        source: a path to the JSON file (a list of results), or the already-parsed list (not
            modified).
        gt: the ground truth the results are for.
        max_bytes: the cap on the file's size once decompressed (None: 16 GiB, or
            ``OVIS_JAX_MAX_INPUT_BYTES``).

    Returns:
        The validated :class:`Results` of the categories of ``gt``. Results of other
        categories are counted and reported in a warning.

    Raises:
        FormatError: naming the offending result (index and video id) and what was expected.
    """
    data = fast = read_source(source, "results", TYPED_RESULTS, max_bytes=max_bytes)
    progress.stage(logger, "validate")
    if isinstance(data, FastFile):
        data = fast.items
    warnings: list[str] = []
    refuse_foreign(data, gt)
    if isinstance(data, Mapping) and "annotations" in data:
        data = data["annotations"]
        warnings.append(
            "the results are a JSON object: its 'annotations' list was evaluated (the official "
            "format is a bare list)"
        )
    if not isinstance(data, list):
        raise FormatError(f"results: expected a JSON list of results, got {type(data).__name__}")
    ctx = ResultsContext(gt.video_by_id, set(gt.category_ids.tolist()), *collectors(fast))
    keep = [r for i, item in enumerate(data) if (r := parse_result(i, item, ctx)) is not None]
    collector, discarded, dropped = ctx.collector, ctx.discarded, ctx.dropped
    masks = collector.build()
    discarded.build()
    duplicates = len(duplicate_pairs(keep, masks))
    if duplicates:
        warnings.append(
            f"{duplicates} result(s) are exact duplicates of an earlier result (same video, "
            "category, score and masks): each copy is scored as a separate prediction"
        )
    if not data:
        warnings.append(messages.EMPTY_RESULTS)
    n_unknown = len(dropped)
    if n_unknown:
        ids = sorted({k.category_id for k in dropped})
        warnings.append(messages.unknown_categories(n_unknown, ids))
    for w in warnings:
        logger.debug("warning: %s", w)  # returned in .warnings: one channel
    # avg_area: mean of the non-null, non-zero pixel counts.
    avg = masks.track_avg_areas()
    return Results(
        result_id=np.asarray([k.id for k in keep], dtype=np.int64),
        video_id=np.asarray([k.video_id for k in keep], dtype=np.int64),
        category_id=np.asarray([k.category_id for k in keep], dtype=np.int64),
        score=np.asarray([k.score for k in keep], dtype=np.float64),
        avg_area=avg,
        masks=masks,
        rles=masks.rles(),
        num_unknown_category=n_unknown,
        warnings=tuple(warnings),
        unknown=UnknownResults(
            result_id=np.asarray([k.id for k in dropped], dtype=np.int64),
            video_id=np.asarray([k.video_id for k in dropped], dtype=np.int64),
            category_id=np.asarray([k.category_id for k in dropped], dtype=np.int64),
            score=np.asarray([k.score for k in dropped], dtype=np.float64),
        ),
    )


def uncompressed_frames(data: list) -> list[tuple[int, int]]:
    """The (item, frame) of the first uncompressed RLE (``counts`` a list) of every item that
    has one: the official ``loadRes`` raises ``TypeError`` on them, so the servers reject the
    file. Items read by the fast path hold compressed strings only."""
    found = []
    for i, item in enumerate(data):
        segs = item.get("segmentations") if isinstance(item, Mapping) else None
        if not isinstance(segs, list):
            continue
        for t, seg in enumerate(segs):
            if isinstance(seg, Mapping) and isinstance(seg.get("counts"), list):
                found.append((i, t))
                break
    return found
