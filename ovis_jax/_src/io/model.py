"""The data model of the inputs: videos, a validated ground truth, validated results, and the
format of the files (OVIS or YouTube-VIS)."""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.params import LENGTH_RANGES_OVIS, LENGTH_RANGES_YTVIS

__all__ = ["DataFormat", "GroundTruth", "PathOrObject", "Results", "UnknownResults", "Video"]


class DataFormat(str, enum.Enum):
    """The annotation format of a ground truth: OVIS (per-frame occlusion labels) or YouTube-VIS
    (none; also LV-VIS and the other YouTube-VIS-shaped datasets).

    A ``str`` enum: ``DataFormat.OVIS == "ovis"`` and ``DataFormat.YTVIS == "ytvis"``, so code
    and files that compare or store the plain strings keep working.
    """

    OVIS = "ovis"
    YTVIS = "ytvis"

    def __str__(self) -> str:
        return self.value

    @property
    def has_occlusion(self) -> bool:
        """Whether tracks carry occlusion scores (the OVIS summary's occlusion columns)."""
        return self is DataFormat.OVIS

    @property
    def length_ranges(self) -> tuple[tuple[str, float, float], ...]:
        """The default track-length ranges of the length pass (``EvalParams.length_ranges``)."""
        return LENGTH_RANGES_OVIS if self is DataFormat.OVIS else LENGTH_RANGES_YTVIS


PathOrObject = str | os.PathLike | Mapping | Sequence


@dataclasses.dataclass(frozen=True)
class Video:
    """One video of the ground truth."""

    id: int
    height: int
    width: int
    length: int


@dataclasses.dataclass(frozen=True, eq=False)
class GroundTruth:
    """A validated ground-truth file. G tracks (annotations of known categories), file order.

    Attributes:
        format: :attr:`DataFormat.OVIS` (occlusion labels present) or :attr:`DataFormat.YTVIS`
            (none); equal to the strings ``"ovis"`` and ``"ytvis"``.
        videos: the videos, sorted by id.
        category_ids: int64[K] category ids, ascending.
        category_names: the K category names, in the order of ``category_ids``.
        ann_id: int64[G] annotation ids.
        video_id: int64[G].
        category_id: int64[G].
        iscrowd: bool[G].
        avg_area: float64[G] mean of the non-null, non-zero entries of ``areas`` (metric step 2).
        occ_score: float64[G] occlusion score (metric step 3); 0.0 for YouTube-VIS format.
        masks: the tracks' frames as run lengths.
        rles: per track, per frame, a compressed RLE dict (``counts`` as bytes) or None: the
            input of the pycocotools reference path.
        warnings: what loading noticed and did about it.
        fingerprint: a string identifying this ground truth (ids, sizes, categories).
        category_partition: int64[K] the categories' LV-VIS ``partition`` (0, 1 base; 2, 3
            novel), -1 where the file has none.
        has_annotations: False for a file without ``annotations`` (a validation split),
            loaded with ``require_annotations=False``.
    """

    format: DataFormat
    videos: tuple[Video, ...]
    category_ids: np.ndarray
    category_names: tuple[str, ...]
    ann_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    iscrowd: np.ndarray
    avg_area: np.ndarray
    occ_score: np.ndarray
    masks: MaskTable
    rles: Sequence[tuple[dict | None, ...]]
    warnings: tuple[str, ...]
    fingerprint: str
    category_partition: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    has_annotations: bool = True

    @property
    def has_occlusion(self) -> bool:
        return DataFormat(self.format).has_occlusion

    @property
    def video_by_id(self) -> dict[int, Video]:
        return {v.id: v for v in self.videos}


class UnknownResults(NamedTuple):
    """The results whose category id is not in the ground truth (not evaluated), U of them.

    Attributes:
        result_id: int64[U] ids in the numbering of ``Results.result_id`` (file index + 1).
        video_id, category_id: int64[U].
        score: float64[U].
    """

    result_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Results:
    """Validated results of known categories, D tracks in file order.

    Attributes:
        result_id: int64[D] ids 1..N in file order (metric step 1; counted over the whole file).
        video_id: int64[D].
        category_id: int64[D].
        score: float64[D].
        avg_area: float64[D] mean of the non-null, non-zero per-frame pixel counts.
        masks: the tracks' frames as run lengths.
        rles: per track, per frame, a compressed RLE dict or None (reference path input).
        num_unknown_category: results whose category id is not in the ground truth (not kept).
        warnings: what loading noticed and did about it.
        unknown: those results' ids, videos, categories and scores (for per-result reports).
    """

    result_id: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    avg_area: np.ndarray
    masks: MaskTable
    rles: Sequence[tuple[dict | None, ...]]
    num_unknown_category: int
    warnings: tuple[str, ...]
    unknown: UnknownResults | None = None


# --------------------------------------------------------------------------------------------
