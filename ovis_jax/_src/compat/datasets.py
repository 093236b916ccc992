"""``YTVOS`` / ``OVIS``: the official dataset classes' surface over ``ovis_jax``'s loaders.

The attributes (``dataset``, ``anns``, ``cats``, ``vids``, ``vidToAnns``, ``catToVids``) and the
query methods behave as the official ``pycocotools.ytvos.YTVOS`` (youtubevos/cocoapi) and
``pycocotools.ovis.OVIS`` (qjy981010/cocoapi) do. What differs:

* a path may be anything ``ovis_jax`` reads (``.json``, ``.json.gz``, a zip holding one JSON);
* nothing is printed (progress goes to the ``ovis_jax`` logger), except :meth:`info`, whose
  only purpose is to print;
* ``loadRes`` validates the results against the ground truth with ``ovis_jax``'s loader (clear
  :class:`~ovis_jax.FormatError` messages where the official asserts or crashes), accepts a
  list of result dicts (the official raises ``NameError: unicode`` on Python 3), an empty list,
  and never modifies the caller's dicts (it annotates copies, as the official annotates the
  originals);
* the validated :class:`~ovis_jax.GroundTruth` / :class:`~ovis_jax.Results` are kept (built
  on first use) so that the evaluators run on the fast path without reading anything again.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import defaultdict
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.io.read import parse_untyped, read_bytes
from ovis_jax._src.io.vis import load_ground_truth, load_results

__all__ = ["OVIS", "YTVOS", "VisDataset"]

logger = logging.getLogger(__name__)


def _is_array_like(obj: Any) -> bool:
    return hasattr(obj, "__iter__") and hasattr(obj, "__len__")


def _as_list(x: Any) -> Any:
    return x if _is_array_like(x) else [x]


def _read_json(path: str | os.PathLike, what: str) -> Any:
    raw, label = read_bytes(path, what)
    return parse_untyped(raw, label)


def _avg_area(ann: dict) -> float:
    """``avg_area`` as the official code computes it (mean of the truthy ``areas``, else 0)."""
    if "avg_area" in ann:
        return ann["avg_area"]
    present = [a for a in ann.get("areas") or [] if a]
    return np.array(present).mean() if present else 0


class VisDataset:
    """The official dataset class (``YTVOS`` / ``OVIS``): a ground truth or a results set.

    Args:
        annotation_file: a path to the ground-truth JSON (or ``.json.gz``, or a zip holding
            it), or None for an empty object (fill ``dataset`` and call :meth:`createIndex`,
            as the official allows).

    Attributes:
        dataset: the parsed JSON object.
        anns: ``{annotation id: annotation}``.
        cats: ``{category id: category}``.
        vids: ``{video id: video}``.
        vidToAnns: ``{video id: [annotation, ...]}`` (file order).
        catToVids: ``{category id: [video id of each of its annotations, ...]}``.
    """

    def __init__(self, annotation_file: str | os.PathLike | None = None) -> None:
        self.dataset: dict = {}
        self.anns: dict = {}
        self.cats: dict = {}
        self.vids: dict = {}
        self.vidToAnns: defaultdict = defaultdict(list)
        self.catToVids: defaultdict = defaultdict(list)
        self._cache: dict[str, Any] = {}
        if annotation_file is not None:
            dataset = _read_json(annotation_file, "ground truth")
            if not isinstance(dataset, dict):
                raise TypeError(
                    f"annotation file format {type(dataset).__name__} not supported "
                    "(expected a JSON object)"
                )
            self.dataset = dataset
            self.createIndex()
            self._cache["source"] = annotation_file

    def createIndex(self) -> None:
        """Builds the lookup tables from ``dataset`` (call it again after changing
        ``dataset``; the fast path's validated copy is rebuilt on next use)."""
        logger.debug("creating index")
        anns, cats, vids = {}, {}, {}
        vid_to_anns, cat_to_vids = defaultdict(list), defaultdict(list)
        if "annotations" in self.dataset and self.dataset["annotations"] is None:
            del self.dataset["annotations"]  # as the official OVIS class does
        for ann in self.dataset.get("annotations", ()):
            vid_to_anns[ann["video_id"]].append(ann)
            anns[ann["id"]] = ann
        for vid in self.dataset.get("videos", ()):
            vids[vid["id"]] = vid
        for cat in self.dataset.get("categories", ()):
            cats[cat["id"]] = cat
        if "annotations" in self.dataset and "categories" in self.dataset:
            for ann in self.dataset["annotations"]:
                cat_to_vids[ann["category_id"]].append(ann["video_id"])
        self.anns, self.vidToAnns, self.catToVids = anns, vid_to_anns, cat_to_vids
        self.vids, self.cats = vids, cats
        self._cache = {}

    def info(self) -> None:
        """Prints ``dataset["info"]``, one ``key: value`` line each (as the official)."""
        for key, value in self.dataset["info"].items():
            print(f"{key}: {value}")

    def getAnnIds(self, vidIds=(), catIds=(), areaRng=(), iscrowd=None) -> list:
        """Ids of the annotations of the given videos / categories, with ``avg_area`` strictly
        inside ``areaRng`` and the given ``iscrowd``; an empty filter is skipped."""
        vid_ids, cat_ids = _as_list(vidIds), _as_list(catIds)
        if len(vid_ids) == len(cat_ids) == len(areaRng) == 0:
            anns = self.dataset["annotations"]
        else:
            if len(vid_ids):
                lists = [self.vidToAnns[v] for v in vid_ids if v in self.vidToAnns]
                anns = list(itertools.chain.from_iterable(lists))
            else:
                anns = self.dataset["annotations"]
            if len(cat_ids):
                anns = [a for a in anns if a["category_id"] in cat_ids]
            if len(areaRng):
                anns = [a for a in anns if areaRng[0] < _avg_area(a) < areaRng[1]]
        if iscrowd is not None:
            return [a["id"] for a in anns if a["iscrowd"] == iscrowd]
        return [a["id"] for a in anns]

    def getCatIds(self, catNms=(), supNms=(), catIds=()) -> list:
        """Ids of the categories with the given names / supercategories / ids."""
        names, sups, ids = _as_list(catNms), _as_list(supNms), _as_list(catIds)
        cats = self.dataset["categories"]
        if len(names):
            cats = [c for c in cats if c["name"] in names]
        if len(sups):
            cats = [c for c in cats if c["supercategory"] in sups]
        if len(ids):
            cats = [c for c in cats if c["id"] in ids]
        return [c["id"] for c in cats]

    def getVidIds(self, vidIds=(), catIds=()) -> list:
        """Ids of the given videos that hold every given category (all videos without a
        filter)."""
        vid_ids, cat_ids = _as_list(vidIds), _as_list(catIds)
        if len(vid_ids) == len(cat_ids) == 0:
            return list(self.vids.keys())
        ids = set(vid_ids)
        for i, cat_id in enumerate(cat_ids):
            if i == 0 and len(ids) == 0:
                ids = set(self.catToVids[cat_id])
            else:
                ids &= set(self.catToVids[cat_id])
        return list(ids)

    @staticmethod
    def _load(table: dict, ids: Any) -> list | None:
        if _is_array_like(ids):
            return [table[i] for i in ids]
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
            return [table[ids]]
        return None

    def loadAnns(self, ids=()) -> list | None:
        """The annotations with the given ids (a list, or one id)."""
        return self._load(self.anns, ids)

    def loadCats(self, ids=()) -> list | None:
        """The categories with the given ids (a list, or one id)."""
        return self._load(self.cats, ids)

    def loadVids(self, ids=()) -> list | None:
        """The videos with the given ids (a list, or one id)."""
        return self._load(self.vids, ids)

    def annToRLE(self, ann: dict, frameId: int) -> Any:
        """Frame ``frameId`` of ``ann`` as a compressed RLE (from a polygon, an uncompressed
        RLE, or an RLE as is)."""
        video = self.vids[ann["video_id"]]
        h, w = video["height"], video["width"]
        segm = ann["segmentations"][frameId]
        if isinstance(segm, list):
            return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
        if isinstance(segm["counts"], list):
            return mask_utils.frPyObjects(segm, h, w)
        return segm

    def annToMask(self, ann: dict, frameId: int) -> np.ndarray:
        """Frame ``frameId`` of ``ann`` as a binary mask, uint8[H, W]."""
        return mask_utils.decode(self.annToRLE(ann, frameId))

    def loadRes(self, resFile: Any) -> VisDataset:
        """Loads results for this ground truth: a path (``.json``, ``.json.gz``, zip), a list
        of result dicts, or an object-dtype NumPy array of them.

        Returns:
            A dataset object of the same class holding the results as annotations (copies of
            the given dicts with ``id`` = position + 1, ``areas``, ``bboxes``, ``avg_area`` and
            ``iscrowd`` = 0, as the official adds them).

        Raises:
            FormatError: a malformed result, or one for a video that is not in this ground
                truth (the official asserts).
            NotImplementedError: a numeric NumPy array (the COCO box form, which carries no
                masks; the official video classes lack ``loadNumpyAnnotations`` and raise).
        """
        source: Any = resFile
        if isinstance(resFile, (str, os.PathLike)):
            items = _read_json(resFile, "results")
        elif isinstance(resFile, np.ndarray):
            if resFile.dtype != object:
                raise NotImplementedError(
                    "loadRes: a numeric NumPy array (COCO boxes) has no masks; pass the results "
                    "as a list of dicts or a path (the official raises AttributeError here)"
                )
            items = source = list(resFile.ravel())
        else:
            items = resFile
        if not isinstance(items, list):
            raise TypeError(f"results: expected a list of result dicts, got {type(items).__name__}")
        results = load_results(source, self.ground_truth(require_annotations=False))
        res = type(self)()
        res.dataset["videos"] = list(self.dataset["videos"])
        anns = [_annotated(i, r, self.vids) for i, r in enumerate(items)]
        if anns and "segmentations" in anns[0]:
            res.dataset["categories"] = [dict(c) for c in self.dataset["categories"]]
        res.dataset["annotations"] = anns
        res.createIndex()
        res._cache["results"] = (self.ground_truth(require_annotations=False), results)
        return res

    # ----------------------------------------------------------------------------------------
    # The fast path's validated copies

    def ground_truth(self, *, require_annotations: bool = True) -> GroundTruth:
        """The validated :class:`~ovis_jax.GroundTruth` of ``dataset`` (built once, from the
        file's bytes when the object was made from a path and ``dataset`` was not re-indexed).
        """
        gt = self._cache.get("gt")
        if gt is None:
            gt = load_ground_truth(
                self._cache.get("source", self.dataset), require_annotations=False
            )
            self._cache["gt"] = gt
        if require_annotations and not gt.has_annotations:
            load_ground_truth(self.dataset)  # raises the loader's message
        return gt

    def results_for(self, gt: GroundTruth) -> Results:
        """The validated :class:`~ovis_jax.Results` of this results object against ``gt``
        (those built by ``loadRes`` when ``gt`` is the same ground truth)."""
        cached = self._cache.get("results")
        if cached is not None and cached[0] is gt:
            return cached[1]
        results = load_results(self.dataset.get("annotations", []), gt)
        self._cache["results"] = (gt, results)
        return results


def _annotated(index: int, item: Any, vids: dict) -> Any:
    """A copy of result ``index`` with what the official ``loadRes`` adds to it: ``areas``
    (pixel counts, None for a null frame), ``bboxes`` (if absent), ``id``, ``avg_area`` and
    ``iscrowd``."""
    if not isinstance(item, dict) or "segmentations" not in item:
        return item
    ann = dict(item)
    segs = ann["segmentations"]
    present = [t for t, seg in enumerate(segs) if seg]
    rles = [_compressed(segs[t], vids.get(ann.get("video_id"))) for t in present]
    areas: list = [None] * len(segs)
    boxes: list = [None] * len(segs)
    for t, rle in zip(present, rles, strict=True):
        # One frame at a time, as the official code does (pycocotools' batched ``area`` fails
        # for 256 or more masks).
        areas[t], boxes[t] = int(mask_utils.area(rle)), mask_utils.toBbox(rle)
    ann["areas"] = areas
    if "bboxes" not in ann:
        ann["bboxes"] = boxes
    ann["id"] = index + 1
    nonzero = [a for a in areas if a]
    ann["avg_area"] = np.array(nonzero).mean() if nonzero else 0
    ann["iscrowd"] = 0
    return ann


def _compressed(seg: Any, video: dict | None) -> dict:
    """A frame's mask as a compressed RLE (polygons and uncompressed counts converted)."""
    if isinstance(seg, dict) and not isinstance(seg.get("counts"), list):
        return seg
    if isinstance(seg, dict):
        return mask_utils.frPyObjects(seg, *seg["size"])
    return mask_utils.merge(mask_utils.frPyObjects(seg, video["height"], video["width"]))


class YTVOS(VisDataset):
    """The YouTube-VIS dataset class (``pycocotools.ytvos.YTVOS``); see :class:`VisDataset`."""


class OVIS(VisDataset):
    """The OVIS dataset class (``pycocotools.ovis.OVIS``); see :class:`VisDataset`."""
