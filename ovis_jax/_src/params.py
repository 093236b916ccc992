"""The one frozen parameters object of the evaluation (thresholds, ranges, max-detection cuts)."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["LENGTH_RANGES_OVIS", "LENGTH_RANGES_YTVIS", "OCCLUSION_SCORES", "EvalParams"]

#: Occlusion label → value used for a ground-truth track's occlusion score (metric step 3).
OCCLUSION_SCORES: dict[str, float] = {
    "no_occlusion": 0.0,
    "slight_occlusion": 0.25,
    "severe_occlusion": 0.75,
}


#: Track-length ranges (number of non-null frames), inclusive, as TIVE bins YouTube-VIS tracks:
#: ``<= 16``, ``16 < n <= 32``, ``> 32`` frames (lengths are whole numbers, so ``(16, 32]`` is
#: ``[17, 32]``).
LENGTH_RANGES_YTVIS: tuple[tuple[str, float, float], ...] = (
    ("short", 0.0, 16.0),
    ("medium", 17.0, 32.0),
    ("long", 33.0, 1e10),
)
#: OVIS videos are longer: the same cuts and one more at 96 frames.
LENGTH_RANGES_OVIS: tuple[tuple[str, float, float], ...] = (
    ("short", 0.0, 16.0),
    ("medium", 17.0, 32.0),
    ("long", 33.0, 96.0),
    ("very_long", 97.0, 1e10),
)


def _official_iou_thresholds() -> tuple[float, ...]:
    # Same expression as the COCO-API family, so the float64 values are bit-identical.
    return tuple(
        float(x)
        for x in np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
    )


def _official_recall_thresholds() -> tuple[float, ...]:
    return tuple(
        float(x)
        for x in np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
    )


@dataclasses.dataclass(frozen=True)
class EvalParams:
    """Evaluation parameters; the defaults are the official OVIS / YouTube-VIS ones.

    Attributes:
        iou_thresholds: T IoU thresholds, ``linspace(0.5, 0.95, 10)``.
        recall_thresholds: R recall thresholds, ``linspace(0, 1, 101)``.
        area_ranges: A named, inclusive ``(lo, hi)`` ranges of a track's average area.
        occlusion_ranges: O named, inclusive ``(lo, hi)`` ranges of a track's occlusion score
            (only used for OVIS-format ground truth).
        max_dets: M cuts on the number of results per (video, category), ascending.
        length_ranges: L named, inclusive ``(lo, hi)`` ranges of a track's length (its number
            of non-null frames) for the AP-by-track-length breakdown; None (default) picks
            :data:`LENGTH_RANGES_OVIS` or :data:`LENGTH_RANGES_YTVIS` by the ground truth's
            format.
    """

    iou_thresholds: tuple[float, ...] = dataclasses.field(default_factory=_official_iou_thresholds)
    recall_thresholds: tuple[float, ...] = dataclasses.field(
        default_factory=_official_recall_thresholds
    )
    area_ranges: tuple[tuple[str, float, float], ...] = (
        ("all", 0.0, 1e10),
        ("small", 0.0, 128.0**2),
        ("medium", 128.0**2, 256.0**2),
        ("large", 256.0**2, 1e10),
    )
    occlusion_ranges: tuple[tuple[str, float, float], ...] = (
        ("all", 0.0, 1.0),
        ("light", 0.0, 0.25),
        ("medium", 0.25, 0.5),
        ("heavy", 0.5, 1.0),
    )
    max_dets: tuple[int, ...] = (1, 10, 100)
    length_ranges: tuple[tuple[str, float, float], ...] | None = None

    def __post_init__(self) -> None:
        if list(self.max_dets) != sorted(self.max_dets) or min(self.max_dets) < 1:
            raise ValueError(f"max_dets must be ascending positive ints, got {self.max_dets}")
        if not self.iou_thresholds or not self.recall_thresholds:
            raise ValueError("iou_thresholds and recall_thresholds must not be empty")

    @property
    def iou_array(self) -> np.ndarray:
        """float64[T] IoU thresholds."""
        return np.asarray(self.iou_thresholds, dtype=np.float64)

    @property
    def recall_array(self) -> np.ndarray:
        """float64[R] recall thresholds."""
        return np.asarray(self.recall_thresholds, dtype=np.float64)

    def area_bounds(self) -> np.ndarray:
        """float64[A, 2] inclusive area bounds."""
        return np.asarray([(lo, hi) for _, lo, hi in self.area_ranges], dtype=np.float64)

    def occlusion_bounds(self, with_occlusion: bool) -> np.ndarray:
        """float64[O, 2] inclusive occlusion bounds; only the first ("all") without labels."""
        ranges = self.occlusion_ranges if with_occlusion else self.occlusion_ranges[:1]
        return np.asarray([(lo, hi) for _, lo, hi in ranges], dtype=np.float64)

    def for_lengths(self, data_format: str) -> EvalParams:
        """The parameters of the track-length pass: the length ranges in place of the area
        ranges (the same inclusive-range machinery, with track lengths as the per-track
        values) and only the "all" occlusion range."""
        ranges = self.length_ranges
        if ranges is None:
            ranges = LENGTH_RANGES_OVIS if data_format == "ovis" else LENGTH_RANGES_YTVIS
        return dataclasses.replace(
            self, area_ranges=tuple(ranges), occlusion_ranges=self.occlusion_ranges[:1]
        )
