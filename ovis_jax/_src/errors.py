"""The package's exception types."""

from __future__ import annotations

__all__ = ["FormatError", "ResourceError"]


class FormatError(ValueError):
    """A ground-truth or results input that does not follow the OVIS / YouTube-VIS format.

    The message names the offending item (its index in the file and its video id) and what was
    expected, e.g. ``results[12] (video_id 7): segmentations has 30 entries, expected 36 (the
    video's length)``.
    """


class ResourceError(MemoryError, ValueError):
    """An evaluation that would need more memory than the machine has, refused before any of
    it is allocated.

    The message says what would be allocated, how many bytes it needs, how many are available
    and how to reduce it. It is a :class:`MemoryError` (what it is about) and a
    :class:`ValueError` (an input too large for this machine), so the command line turns it
    into one ``error:`` line.
    """
