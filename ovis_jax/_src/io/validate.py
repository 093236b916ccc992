"""Validation helpers shared by the input readers: type tests for JSON values, the short
rendering of a user's value in a message, and the builders of the common errors.

Every error names the item (``results[i] (video_id v)``) and what was expected.
"""

from __future__ import annotations

import difflib
import json
import math
import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import Video

__all__ = [
    "ID_RANGE",
    "MAX_FRAME_PIXELS",
    "is_finite_number",
    "is_id",
    "is_int",
    "is_number",
    "item_video",
    "length_error",
    "mean_area",
    "plain_areas",
    "require",
    "show",
    "show_id",
    "show_kind",
    "size_error",
]


def length_error(where: str, key: str, n: Any, video: Video) -> FormatError:
    """A per-frame list (``key``) whose length is not the video's."""
    return FormatError(
        f"{where}: {key!r} has {n} entries, expected {video.length} "
        f"(the length of video {video.id})"
    )


def size_error(where: str, size: list[int], h: int, w: int) -> FormatError:
    """A mask whose ``size`` is not its video's."""
    return FormatError(
        f"{where}: mask size {size} differs from the video's [height, width] = {[h, w]}"
    )


def show_id(x: Any) -> str:
    """An id as it appears in an item's description (ints as is, anything else shortened)."""
    return str(x) if is_int(x) else show(x)


def show(x: Any) -> str:
    """A user's value for an error message: short, and safe for any nesting depth."""
    return _SHOW.repr(x)


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60


#: Every id becomes an int64; a frame's pixel positions must fit in an int32 (the streaming
#: evaluator's and the device kernels' run lengths), so frames have fewer than 2^31 pixels.
ID_RANGE = (-(2**63), 2**63 - 1)
MAX_FRAME_PIXELS = 2**31 - 1


def show_kind(x: Any) -> str:
    """A value for an error message, with its JSON type when that is the surprise."""
    if isinstance(x, str):
        return f"the string {show(x)}"
    if isinstance(x, (bool, float)) or x is None:
        return f"{json.dumps(x)} ({'null' if x is None else type(x).__name__})"
    return f"a {type(x).__name__}" if isinstance(x, (list, dict)) else repr(x)


def is_id(x: Any) -> bool:
    """An integer that fits in int64 (ids of videos, categories, annotations)."""
    return is_int(x) and ID_RANGE[0] <= x <= ID_RANGE[1]


def is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def is_finite_number(x: Any) -> bool:
    """A real number that float64 represents finitely (a huge JSON integer is not)."""
    if not is_number(x):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def require(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        close = difflib.get_close_matches(key, [k for k in obj if isinstance(k, str)], n=1)
        hint = f" (the item has {close[0]!r}: did you mean {key!r}?)" if close else ""
        raise FormatError(f"{where}: missing key {key!r}{hint}")
    return obj[key]


def plain_areas(areas: list) -> bool:
    """Whether every entry is null or a finite non-negative int / float (the common case,
    checked in bulk; otherwise the caller checks entry by entry and names the bad one)."""
    if not set(map(type, areas)) <= {int, float, type(None)}:
        return False
    try:
        values = np.asarray([a for a in areas if a is not None], dtype=np.float64)
    except OverflowError:
        return False
    return bool(np.isfinite(values).all() and (values >= 0).all())


def mean_area(areas: list) -> float:
    """The mean of the non-null, non-zero entries (0.0 when there are none)."""
    kept = [a for a in areas if a]
    return float(np.array(kept, dtype=np.float64).mean()) if kept else 0.0


def item_video(
    item: Any, label: str, video_by_id: Mapping[int, Video], unknown: str
) -> tuple[str, Video]:
    """An item's description for messages (``label (video_id v)``) and its video.

    Raises:
        FormatError: no ``video_id``, not an integer, or not a known video (``unknown`` says
            where it was looked for).
    """
    vid = require(item, "video_id", label)
    where = f"{label} (video_id {show_id(vid)})"
    if not is_int(vid):
        raise FormatError(f"{where}: 'video_id' must be an integer, got {show_kind(vid)}")
    if int(vid) not in video_by_id:
        raise FormatError(f"{where}: unknown video_id {show(vid)} ({unknown})")
    return where, video_by_id[int(vid)]
