"""The per-frame CocoVID layout (mmdetection 3.x / mmtracking ``CocoVideoDataset``): detecting
it where a per-video (OVIS / YouTube-VIS) ground truth is expected, and converting it.

A CocoVID file lists ``images`` (frames: ``id``, ``video_id``, ``frame_id``, ``height``,
``width``) and one annotation per object per frame (``image_id``, ``instance_id``,
``segmentation``); the per-video layout has one annotation per object track with one
``segmentations`` entry per frame of its video.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.validate import is_int, require, show

__all__ = ["COCOVID_HINT", "convert_cocovid", "is_cocovid"]

COCOVID_HINT = (
    "ground truth: this is a per-frame CocoVID / mmdetection-3.x file ('images' and one "
    "annotation per object per frame, with 'image_id' and 'instance_id'), not the per-video "
    "OVIS / YouTube-VIS layout (one annotation per track, one 'segmentations' entry per "
    "frame); convert it with ovis_jax.convert_cocovid(data) and save the result as JSON"
)


def is_cocovid(data: Any) -> bool:
    """Whether a parsed ground truth has the per-frame CocoVID layout."""
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list):
        return False
    anns = data.get("annotations")
    return isinstance(anns, list) and any(
        isinstance(a, Mapping) and ("image_id" in a or "instance_id" in a) for a in anns[:100]
    )


def _frames(images: list) -> tuple[dict[int, dict], dict[Any, tuple[int, int]]]:
    """The videos' frames in ``frame_id`` order: per video id its size and file names, and per
    image id its (video id, frame index)."""
    per_video: dict[int, list] = {}
    for i, im in enumerate(images):
        where = f"images[{i}]"
        vid, fid = require(im, "video_id", where), require(im, "frame_id", where)
        if not (is_int(vid) and is_int(fid)):
            raise FormatError(f"{where}: 'video_id' and 'frame_id' must be integers")
        per_video.setdefault(int(vid), []).append((int(fid), i, im))
    videos, where_is = {}, {}
    for vid, frames in per_video.items():
        frames.sort(key=lambda x: x[0])
        first = frames[0][2]
        videos[vid] = {
            "id": vid,
            "height": require(first, "height", f"images[{frames[0][1]}]"),
            "width": require(first, "width", f"images[{frames[0][1]}]"),
            "length": len(frames),
            "file_names": [im.get("file_name") for _, _, im in frames],
        }
        for t, (_, i, im) in enumerate(frames):
            where_is[require(im, "id", f"images[{i}]")] = (vid, t)
    return videos, where_is


def convert_cocovid(data: Mapping) -> dict:
    """Converts a per-frame CocoVID ground truth to the per-video OVIS / YouTube-VIS layout.

    Frames are ordered by ``frame_id`` within each video; the annotations of one
    ``(video_id, instance_id)`` become one track (ids 1, 2, ... in order of first appearance)
    with one ``segmentations`` / ``areas`` / ``bboxes`` entry per frame (null where the object
    is absent). ``occlusion`` is not part of CocoVID, so the result is YouTube-VIS format.

    Args:
        data: the parsed CocoVID file (not modified).

    Returns:
        A new dict with ``videos``, ``categories`` and ``annotations`` (and ``info`` /
        ``licenses`` when present), ready for :func:`ovis_jax.load_ground_truth` or
        ``json.dump``.

    Raises:
        FormatError: a frame or annotation lacks what the conversion needs, or one instance
            has two categories.
    """
    images = data.get("images") if isinstance(data, Mapping) else None
    if not isinstance(images, list) or not isinstance(data.get("annotations"), list):
        raise FormatError("CocoVID ground truth: expected 'images' and 'annotations' lists")
    videos, where_is = _frames(images)
    tracks: dict[tuple[int, Any], dict] = {}
    for i, a in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        image_id = require(a, "image_id", where)
        if image_id not in where_is:
            raise FormatError(f"{where}: image_id {show(image_id)} is not in 'images'")
        vid, t = where_is[image_id]
        key = (vid, require(a, "instance_id", where))
        track = tracks.get(key)
        if track is None:
            n = videos[vid]["length"]
            track = tracks[key] = {
                "id": len(tracks) + 1,
                "video_id": vid,
                "category_id": require(a, "category_id", where),
                "iscrowd": a.get("iscrowd", 0),
                "segmentations": [None] * n,
                "areas": [None] * n,
                "bboxes": [None] * n,
            }
        elif track["category_id"] != a.get("category_id"):
            raise FormatError(
                f"{where}: instance {show(key[1])} of video {vid} has category_id "
                f"{show(a.get('category_id'))}, earlier {show(track['category_id'])}"
            )
        track["segmentations"][t] = require(a, "segmentation", where)
        track["areas"][t] = a.get("area")
        track["bboxes"][t] = a.get("bbox")
    out = {k: data[k] for k in ("info", "licenses") if k in data}
    out["videos"] = [videos[k] for k in sorted(videos)]
    out["categories"] = list(data.get("categories", []))
    out["annotations"] = list(tracks.values())
    return out
