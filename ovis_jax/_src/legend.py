"""The one shape legend of the package: every docstring writes array shapes with these letters.

A shape is written ``dtype[A, B, ...]`` (e.g. ``float64[T, R, K, A, O, M]``); ``X + 1`` is one
more than ``X`` (offset arrays), a digit is a literal size, a lowercase name is a static argument,
a suffix ``d`` / ``g`` names the side (``Sd`` result strings, ``Sg`` ground-truth strings), and a
letter never means two things.
Sizes that are padded (to a bucket, or to the largest video) say so where they appear.

The official axes (those of the precision and recall arrays and of the input files):

====  =========================================================================================
V     videos (ascending id order where an axis is per video)
F     frames: of a video, or flat over all tracks of a mask table (track after track)
H     pixel rows (height) of a frame
W     pixel columns (width) of a frame
D     results (predicted tracks), flat over all videos; padded where a kernel needs it
G     ground-truth tracks, flat over all videos, or per video where the axis follows V / Q
T     IoU thresholds
R     recall thresholds
K     categories (in a compact accumulation, only the kept ones: those with ground truth)
A     area ranges
O     occlusion ranges (1 for YouTube-VIS format)
M     max-detection cuts
====  =========================================================================================

Internal axes:

====  =========================================================================================
Q     (video, category) groups (padded where a kernel needs it)
P     (result, ground-truth) track pairs of the same video
J     pair-frames: the frames of a pair where both tracks have a mask
S     RLE strings (one per stored frame mask)
C     characters of the RLE strings, concatenated
Y     stored RLE values (run lengths as written in the strings)
U     runs of RLE masks (alternating background / foreground, or foreground only where said)
B     videos of a streaming batch
N     predictions per video in a streaming batch or state (``max_predictions``)
L     pixel slots of a video's ground-truth pixel list (streaming; padded)
Z     states stacked along a leading axis (``StreamingState.reduce``)
X     tracks of a mask table (its D results or its G ground-truth tracks)
E     elements of a generic helper (any flat axis)
I     kept (area range, occlusion range, max-detection cut) slots of a compact accumulation
====  =========================================================================================
"""

from __future__ import annotations

__all__ = ["LEGEND"]

#: Letter -> meaning, for tests and tools (the tables above, in order).
LEGEND: dict[str, str] = {
    "V": "videos",
    "F": "frames (of a video, or flat over a mask table's tracks)",
    "H": "pixel rows (height)",
    "W": "pixel columns (width)",
    "D": "results (predicted tracks)",
    "G": "ground-truth tracks",
    "T": "IoU thresholds",
    "R": "recall thresholds",
    "K": "categories",
    "A": "area ranges",
    "O": "occlusion ranges",
    "M": "max-detection cuts",
    "Q": "(video, category) groups",
    "P": "(result, ground-truth) track pairs",
    "J": "pair-frames",
    "S": "RLE strings",
    "C": "characters of the RLE strings",
    "Y": "stored RLE values",
    "U": "runs of RLE masks",
    "B": "videos of a streaming batch",
    "N": "predictions per video (streaming)",
    "L": "pixel slots of a video's ground-truth pixel list",
    "Z": "stacked states",
    "X": "tracks of a mask table",
    "E": "elements of a generic helper",
    "I": "kept (area, occlusion, maxDet) slots of a compact accumulation",
}
