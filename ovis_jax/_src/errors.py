"""The package's exception type."""

from __future__ import annotations

__all__ = ["FormatError"]


class FormatError(ValueError):
    """A ground-truth or results input that does not follow the OVIS / YouTube-VIS format.

    The message names the offending item (its index in the file and its video id) and what was
    expected, e.g. ``results[12] (video_id 7): segmentations has 30 entries, expected 36 (the
    video's length)``.
    """
