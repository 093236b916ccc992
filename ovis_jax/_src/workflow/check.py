"""Checking a results file before it is evaluated or uploaded: every problem, not the first.

:func:`check_results` validates a results file against a ground truth that may lack annotations
(the validation splits ship without them; videos and categories are enough). The common case, a
clean file, costs one ordinary load. A file with problems is then read item by item, so that
each problem is named once (``results[i] (video_id v): ...``) and none hides another.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import numpy as np

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.io.read import TYPED_RESULTS, parse, parse_untyped, read_bytes, zip_problems
from ovis_jax._src.io.segments import FastFile, SegmentationCollector, duplicate_pairs
from ovis_jax._src.io.validate import show
from ovis_jax._src.io.vis_results import (
    ResultsContext,
    load_results,
    parse_result,
    refuse_foreign,
    uncompressed_frames,
)
from ovis_jax._src.progress import report

__all__ = ["CheckReport", "check_results"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """What :func:`check_results` found.

    Attributes:
        problems: one line per problem, in file order (each names ``results[i]`` and its
            video id), then file-wide ones.
        num_results: D, the number of results in the file.
        num_videos: V, the videos of the ground truth.
        videos_with_results: how many of them have at least one result.
        file_bytes: size of the file as given (compressed size for a zip / gzip), or None for
            an already-parsed object.
    """

    problems: tuple[str, ...]
    num_results: int
    num_videos: int
    videos_with_results: int
    file_bytes: int | None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_results(gt: GroundTruth, source: Any, *, max_bytes: int | None = None) -> CheckReport:
    """Lists every problem of a results file for this ground truth.

    Checks what evaluation checks (the item's keys and types, a known video id, one
    segmentation per frame of the video, mask sizes equal to the video's, valid RLE, finite
    scores), and what the evaluation server rejects or silently drops: category ids that are
    not categories of the ground truth, exact duplicate results, an empty list, uncompressed
    RLE (the official ``loadRes`` raises on it), a zip whose ``results.json`` is not alone at
    its root; results that share no video with the ground truth are one problem.

    Args:
        gt: the ground truth (``load_ground_truth(path, require_annotations=False)`` loads a
            validation split without annotations).
        source: a path to the results (JSON, ``.json.gz`` or a zip holding it), or the parsed
            list (not modified).
        max_bytes: the cap on the file's size once decompressed (see ``load_results``).

    Returns:
        The :class:`CheckReport`.

    Raises:
        OSError: the file cannot be read.
        FormatError: the file is not JSON, or not a JSON list of results.
    """
    size, layout = None, []
    if isinstance(source, (str, os.PathLike)):
        raw, label = read_bytes(source, "results", max_bytes=max_bytes, duplicates="last")
        size, layout = os.path.getsize(source), zip_problems(source)
        parsed = parse(raw, TYPED_RESULTS, label)
    else:
        raw, parsed = None, source
    try:
        refuse_foreign(parsed.items if isinstance(parsed, FastFile) else parsed, gt)
    except FormatError as e:
        data = _as_list(parsed.items if isinstance(parsed, FastFile) else parsed)
        return CheckReport((str(e), *layout), len(data), len(gt.videos), 0, size)
    try:
        loaded = load_results(parsed, gt)
    except FormatError:
        data = _as_list(parsed if raw is None else parse_untyped(raw, label))
        problems, good = _item_problems(gt, data)
        loaded = load_results([data[i] for i in good], gt)
        problems += _duplicate_problems(loaded, np.asarray(good, dtype=np.int64))
    else:
        data = _as_list(parsed.items if isinstance(parsed, FastFile) else parsed)
        problems = _category_problems(loaded)
        problems += _duplicate_problems(loaded, np.arange(len(data), dtype=np.int64))
    problems += [
        f"results[{i}] (video_id {show(data[i].get('video_id'))}), frame {t}: uncompressed RLE "
        "('counts' is a list): the official loadRes raises TypeError on it, so the server "
        "rejects the file; pack_results(..., compress=True) writes compressed strings"
        for i, t in uncompressed_frames(data)
    ]
    if not data:
        problems.append("the results list is empty")
    problems += layout
    videos = {item.get("video_id") for item in data if isinstance(item, dict)}
    known = {v.id for v in gt.videos}
    return CheckReport(
        problems=tuple(problems),
        num_results=len(data),
        num_videos=len(gt.videos),
        videos_with_results=len(known & {v for v in videos if isinstance(v, int)}),
        file_bytes=size,
    )


def _as_list(data: Any) -> list:
    if not isinstance(data, list):
        raise FormatError(f"results: expected a JSON list of results, got {type(data).__name__}")
    return data


def _item_problems(gt: GroundTruth, data: list) -> tuple[list[str], list[int]]:
    """Each item validated on its own (its masks too): the first problem of every bad item,
    and the indices of the items without a problem."""
    known = set(gt.category_ids.tolist())
    problems, good = [], []
    for i, item in enumerate(data):
        ctx = ResultsContext(gt.video_by_id, known, *_fresh_collectors())
        try:
            parse_result(i, item, ctx)
            ctx.collector.build()
            ctx.discarded.build()
        except FormatError as e:
            problems.append(str(e))
            continue
        finally:
            report(logger, i + 1, len(data), "results checked")
        if ctx.dropped:
            problems.append(_unknown_category(i, item["video_id"], item["category_id"]))
        good.append(i)
    return problems, good


def _fresh_collectors() -> tuple[SegmentationCollector, SegmentationCollector]:
    return SegmentationCollector(), SegmentationCollector()


def _unknown_category(i: int, video_id: Any, category_id: Any) -> str:
    return (
        f"results[{i}] (video_id {video_id}): category_id {show(category_id)} "
        "is not a category of the ground truth (the server ignores it)"
    )


def _category_problems(results: Results) -> list[str]:
    """The results loading set aside for their category (``Results.unknown``), in file order."""
    unknown = results.unknown
    return [
        _unknown_category(int(rid) - 1, int(vid), int(cid))
        for rid, vid, cid in zip(
            unknown.result_id, unknown.video_id, unknown.category_id, strict=True
        )
    ]


def _duplicate_problems(results: Results, index: np.ndarray) -> list[str]:
    """Exact duplicates among the loaded results; ``index`` maps a loaded result's position
    in the list it was loaded from to its index in the file."""
    keep = list(
        zip(
            results.result_id.tolist(),
            results.video_id.tolist(),
            results.category_id.tolist(),
            results.score.tolist(),
            strict=True,
        )
    )
    position = np.asarray(results.result_id) - 1
    return [
        f"results[{int(index[position[t]])}] (video_id {keep[t][1]}): exact duplicate of "
        f"results[{int(index[position[first]])}] (same category, score and masks)"
        for t, first in duplicate_pairs(keep, results.masks)
    ]
