"""Every malformed input raises FormatError naming the item and what was expected (README, "Where
ovis_jax differs from the official code"); results of unknown categories only warn; inputs are never
mutated."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax import FormatError, load_ground_truth, load_results


def raises(fn, *args, expect: tuple[str, ...]) -> str:
    """Asserts ``fn(*args)`` raises FormatError whose message contains every string of
    ``expect``; returns the message."""
    with pytest.raises(FormatError) as info:
        fn(*args)
    message = str(info.value)
    for part in expect:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def results_error(gt: dict, results: list, *expect: str) -> str:
    return raises(load_results, results, load_ground_truth(gt), expect=expect)


def gt_error(gt, *expect: str) -> str:
    return raises(load_ground_truth, gt, expect=expect)


def coco_string(counts: list[int]) -> str:
    """COCO compressed RLE string of arbitrary run lengths (pycocotools' rleToString, in Python),
    to build strings pycocotools would never produce, e.g. with a negative run."""
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = x != -1 if ch & 0x10 else x != 0
            out.append(chr((ch | 0x20 if more else ch) + 48))
    return "".join(out)


def encoded(r0: int, r1: int, c0: int, c1: int) -> str:
    """``pycocotools.mask.encode`` of a 10x10 box, the string to hand-edit."""
    m = np.zeros((10, 10), dtype=np.uint8, order="F")
    m[r0:r1, c0:c1] = 1
    return mask_utils.encode(m)["counts"].decode()


def test_coco_string_matches_pycocotools():
    m = np.zeros((10, 10), dtype=np.uint8, order="F")
    m[2:8, 3:9] = 1
    flat = m.flatten(order="F")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], edges])).tolist()
    assert sum(counts) == 100
    assert coco_string(counts) == mask_utils.encode(m)["counts"].decode()


# --------------------------------------------------------------------------------------------
# Not JSON, wrong top-level types, missing keys


@pytest.mark.parametrize("which", ["gt", "results"])
def test_not_json(tmp_path, tiny, which):
    gt, _ = tiny
    bad = tmp_path / "garbage.json"
    bad.write_bytes(b'{"videos": [1, 2,, \x00garbage')
    if which == "gt":
        gt_error(str(bad), "ground truth file", "garbage.json", "not valid JSON")
    else:
        results_error(gt, str(bad), "results file", "garbage.json", "not valid JSON")


def test_missing_file_is_an_os_error(tmp_path):
    """A file that cannot be read is an OSError (not a format problem), naming the file."""
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        load_ground_truth(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(("magic", "kind"), [(b"PK\x03\x04rest", "zip"), (b"\x1f\x8brest", "gzip")])
def test_corrupt_archive_is_named(tmp_path, tiny, magic, kind):
    gt, _ = tiny
    path = tmp_path / "results.json"
    path.write_bytes(magic)
    with pytest.raises(FormatError, match=f"results file .*results.json': corrupt {kind}"):
        load_results(str(path), load_ground_truth(gt))


def test_misspelled_key_is_suggested(tiny):
    gt, results = tiny
    results[0]["segmentation"] = results[0].pop("segmentations")
    with pytest.raises(
        FormatError,
        match="missing key 'segmentations' \\(the item has 'segmentation': did you mean",
    ):
        load_results(results, load_ground_truth(gt))


def test_deeply_nested_value_gives_a_short_message(tiny):
    gt, results = tiny
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    results[0]["score"] = deep
    with pytest.raises(FormatError) as e:
        load_results(results, load_ground_truth(gt))
    assert "'score' must be a finite number" in str(e.value) and len(str(e.value)) < 200


def test_deeply_nested_file_is_not_json(tmp_path, tiny):
    gt, _ = tiny
    path = tmp_path / "deep.json"
    path.write_text("[" * 2000 + "]" * 2000)
    with pytest.raises(FormatError, match="results file"):
        load_results(str(path), load_ground_truth(gt))


def test_warnings_for_silent_surprises(tiny):
    gt, results = tiny
    loaded = load_results({"annotations": results}, load_ground_truth(gt))
    assert any("JSON object" in w for w in loaded.warnings)
    twice = load_results(results + results, load_ground_truth(gt))
    assert any(w.startswith("4 result(s) are exact duplicates") for w in twice.warnings)
    gt["annotations"] = []
    empty = load_ground_truth(gt)
    assert any("no annotations" in w for w in empty.warnings)


def test_gt_is_a_list(tiny):
    gt, _ = tiny
    gt_error([gt], "ground truth", "expected a JSON object", "got list")


def test_results_dict_without_annotations(tiny):
    gt, results = tiny
    results_error(gt, {"results": results}, "results", "expected a JSON list", "got dict")


def test_results_dict_with_annotations_is_accepted(tiny):
    gt, results = tiny
    loaded = load_results({"annotations": results}, load_ground_truth(gt))
    assert loaded.score.tolist() == [r["score"] for r in results]


def test_gt_missing_videos(tiny):
    gt, _ = tiny
    del gt["videos"]
    gt_error(gt, "ground truth", "missing top-level key 'videos'")


def test_annotation_missing_segmentations(tiny):
    gt, _ = tiny
    del gt["annotations"][2]["segmentations"]
    gt_error(gt, "annotations[2] (video_id 2)", "missing key 'segmentations'")


def test_result_missing_score(tiny):
    gt, results = tiny
    del results[3]["score"]
    results_error(gt, results, "results[3] (video_id 2)", "missing key 'score'")


# --------------------------------------------------------------------------------------------
# Segmentations: list length, mask size, RLE contents


def test_gt_segmentations_wrong_length(tiny):
    gt, _ = tiny
    gt["annotations"][2]["segmentations"].append(None)
    gt_error(
        gt,
        "annotations[2] (video_id 2)",
        "'segmentations' has 3 entries, expected 2",
        "length of video 2",
    )


def test_results_segmentations_wrong_length(tiny):
    gt, results = tiny
    results[1]["segmentations"].pop()
    results_error(
        gt,
        results,
        "results[1] (video_id 1)",
        "'segmentations' has 2 entries, expected 3",
        "length of video 1",
    )


@pytest.mark.parametrize("which", ["gt", "results"])
def test_mask_size_differs_from_video(tiny, which):
    gt, results = tiny
    if which == "gt":
        gt["annotations"][1]["segmentations"][2]["size"] = [10, 12]
        gt_error(
            gt,
            "annotations[1] (video_id 1), frame 2",
            "mask size [10, 12]",
            "[height, width] = [10, 10]",
        )
    else:
        results[2]["segmentations"][0]["size"] = [12, 10]
        results_error(
            gt,
            results,
            "results[2] (video_id 2), frame 0",
            "mask size [12, 10]",
            "[height, width] = [10, 10]",
        )


def _with_counts(tiny, counts) -> tuple[dict, list]:
    """Results whose results[2] (video 2), frame 0 has the given counts."""
    gt, results = tiny
    results[2]["segmentations"][0] = {"size": [10, 10], "counts": counts}
    return gt, results


@pytest.mark.parametrize("char", ["~", " ", "p", "/", "\x7f"])
def test_rle_bad_character(tiny, char):
    s = encoded(5, 10, 5, 10)
    gt, results = _with_counts(tiny, s[:3] + char + s[4:])
    results_error(gt, results, "results[2] (video_id 2), frame 0", "character outside '0'..'o'")


def test_rle_non_ascii_character(tiny):
    s = encoded(5, 10, 5, 10)
    gt, results = _with_counts(tiny, s[:3] + "é" + s[4:])
    results_error(gt, results, "results[2] (video_id 2), frame 0", "non-ASCII")


def test_rle_truncated(tiny):
    s = encoded(5, 10, 5, 10)  # its first value (55) takes two characters
    assert (ord(s[0]) - 48) & 0x20, "the first character must have the continuation bit"
    gt, results = _with_counts(tiny, s[:1])
    results_error(gt, results, "results[2] (video_id 2), frame 0", "ends in the middle of a value")


def test_rle_value_too_long(tiny):
    gt, results = _with_counts(tiny, "o" * 8 + "0")
    results_error(gt, results, "results[2] (video_id 2), frame 0", "longer than 7 characters")


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s[:-1], id="last-run-dropped"),
        pytest.param(lambda s: s + "5", id="extra-run"),
        pytest.param(lambda s: s[:1] + "9" + s[2:], id="first-run-changed"),
        pytest.param(lambda s: "", id="empty"),
    ],
)
def test_rle_runs_do_not_sum_to_frame_size(tiny, edit):
    s = encoded(5, 10, 5, 10)  # "g1550000000": 55 takes two characters, the rest one each
    gt, results = _with_counts(tiny, edit(s))
    results_error(
        gt,
        results,
        "results[2] (video_id 2), frame 0",
        "RLE run lengths sum to",
        "expected 100 (height x width",
    )


def test_rle_longer_than_frame_in_gt(tiny):
    gt, _ = tiny
    # A corrupt string that pycocotools would "decode" past the end of a 10x10 frame.
    gt["annotations"][0]["segmentations"][1]["counts"] = coco_string([0, 5, 5, 5, 5, 5, 500])
    gt_error(gt, "annotations[0] (video_id 1), frame 1", "sum to 525, expected 100")


def test_rle_negative_run_hand_edited(tiny):
    s = encoded(0, 5, 0, 5)  # "0550000000b1": runs 0, 5, 5, then differences to run i - 2
    edited = s[:2] + "O" + s[3:]  # run 2 (stored as is) becomes 'O', which is -1
    gt, results = _with_counts(tiny, edited)
    results_error(gt, results, "results[2] (video_id 2), frame 0", "negative run length")


def test_rle_negative_run_with_correct_sum(tiny):
    # Sums to exactly 100, so only the sign check can catch it.
    gt, results = _with_counts(tiny, coco_string([50, -10, 60]))
    results_error(gt, results, "results[2] (video_id 2), frame 0", "negative run length")


def test_uncompressed_rle_wrong_sum(tiny):
    gt, _ = tiny
    gt["annotations"][2]["segmentations"][1] = {"size": [10, 10], "counts": [50, 5, 5]}
    gt_error(gt, "annotations[2] (video_id 2), frame 1", "sum to 60, expected 100 (height x width")


def test_uncompressed_rle_negative(tiny):
    gt, _ = tiny
    gt["annotations"][2]["segmentations"][1] = {"size": [10, 10], "counts": [60, -10, 50]}
    gt_error(gt, "annotations[2] (video_id 2), frame 1", "non-negative integers")


def test_uncompressed_rle_valid_is_accepted(tiny):
    gt, _ = tiny
    gt["annotations"][2]["segmentations"][1] = {"size": [10, 10], "counts": [50, 5, 45]}
    loaded = load_ground_truth(gt)
    assert loaded.masks.area.tolist()[-1] == 5


# --------------------------------------------------------------------------------------------
# Ids, scores, occlusion


def test_gt_unknown_video_id(tiny):
    gt, _ = tiny
    gt["annotations"][1]["video_id"] = 9
    gt_error(gt, "annotations[1] (video_id 9)", "unknown video_id 9", "not in 'videos'")


def test_result_unknown_video_id(tiny):
    gt, results = tiny
    results[3]["video_id"] = 7
    results_error(gt, results, "results[3] (video_id 7)", "unknown video_id 7")


@pytest.mark.parametrize(
    ("score", "shown"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        ("0.5", "'0.5'"),
        (None, "None"),
        (True, "True"),
    ],
)
def test_result_non_finite_or_non_numeric_score(tiny, score, shown):
    gt, results = tiny
    results[3]["score"] = score
    results_error(
        gt, results, "results[3] (video_id 2)", "'score' must be a finite number", f"got {shown}"
    )


def test_duplicated_annotation_ids(tiny):
    gt, _ = tiny
    gt["annotations"][2]["id"] = 1
    gt_error(gt, "annotations[2] (video_id 2)", "duplicated annotation id 1", "also annotations[0]")


def test_duplicated_video_ids(tiny):
    gt, _ = tiny
    gt["videos"].append(dict(gt["videos"][0]))
    gt_error(gt, "videos[2] (video_id 1)", "duplicated video id 1")


def test_invalid_occlusion_label(tiny):
    gt, _ = tiny
    gt["annotations"][1]["occlusion"][2] = "partial_occlusion"
    gt_error(
        gt,
        "annotations[1] (video_id 1), frame 2",
        "'partial_occlusion'",
        "no_occlusion",
        "slight_occlusion",
        "severe_occlusion",
    )


def test_invalid_occlusion_label_unhashable(tiny):
    gt, _ = tiny
    gt["annotations"][1]["occlusion"][2] = ["severe_occlusion"]
    gt_error(gt, "annotations[1] (video_id 1), frame 2", "occlusion")


def test_result_score_too_large_for_a_float(tiny):
    gt, results = tiny
    results[3]["score"] = 10**400  # what json.loads gives for a 401-digit integer
    results_error(gt, results, "results[3] (video_id 2)", "'score' must be a finite number")


def test_annotation_missing_occlusion_when_others_have_it(tiny):
    gt, _ = tiny
    del gt["annotations"][2]["occlusion"]
    gt_error(
        gt,
        "annotations[2] (video_id 2)",
        "missing key 'occlusion'",
        "other annotations have occlusion labels",
    )


# --------------------------------------------------------------------------------------------
# Not errors


def test_results_of_unknown_categories_warn_and_still_evaluate(tiny):
    gt, results = tiny
    full = ovis_jax.evaluate(gt, results, backend="reference")
    extra = copy.deepcopy(results[0])
    results += [
        dict(extra, category_id=42),
        dict(extra, category_id=42, score=0.1),
        dict(extra, category_id=7),
    ]
    result = ovis_jax.evaluate(gt, results, backend="reference")
    (warning,) = [w for w in result.warnings if "category_id not in the ground truth" in w]
    assert warning.startswith("3 result(s)")
    assert "(7, 42)" in warning
    assert result.stats == full.stats
    loaded = load_results(results, load_ground_truth(gt))
    assert loaded.num_unknown_category == 3
    assert loaded.result_id.tolist() == [1, 2, 3, 4]  # ids still count file positions


def test_loading_and_evaluating_never_mutate_the_inputs(tiny):
    gt, results = tiny
    # Include every segmentation form that loading converts: uncompressed RLE and polygons.
    gt["annotations"][2]["segmentations"][1] = {"size": [10, 10], "counts": [50, 5, 45]}
    gt["annotations"][0]["segmentations"][1] = [[1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0]]
    results[1]["segmentations"][1] = {"size": [10, 10], "counts": [22, 3, 75]}
    gt_copy, results_copy = copy.deepcopy(gt), copy.deepcopy(results)
    result = ovis_jax.evaluate(gt, results, backend="reference")
    assert gt == gt_copy
    assert results == results_copy
    assert result.stats["AP"] > 0
    loaded_gt = load_ground_truth(gt)
    load_results(results, loaded_gt)
    assert gt == gt_copy
    assert results == results_copy


def test_polygon_far_outside_the_frame(tiny):
    gt, _ = tiny
    gt["annotations"][0]["segmentations"][0] = [[-1e9, 2.0, 3e9, 4.0, 5.0, 5.0]]
    gt_error(gt, "annotations[0] (video_id 1), frame 0", "polygon coordinate out of range")


def test_null_annotation(tiny):
    gt, _ = tiny
    gt["annotations"][0] = None
    gt_error(gt, "annotations[0]", "expected a JSON object, got NoneType")


def test_loading_restores_the_garbage_collector_state(tiny):
    import gc

    gt, results = tiny
    assert gc.isenabled()
    loaded = load_ground_truth(gt)
    assert gc.isenabled()
    gc.disable()
    try:
        ovis_jax.load_results(results, loaded)
        assert not gc.isenabled()
    finally:
        gc.enable()
    gt["videos"] = "oops"
    with pytest.raises(ovis_jax.FormatError):
        load_ground_truth(gt)
    assert gc.isenabled()  # restored on errors too


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (
            "category",
            2**63,
            "categories[0]: 'id' must be an integer (64-bit), got 9223372036854775808",
        ),
        ("video", -(2**63) - 1, "videos[0]: 'id' must be an integer (64-bit)"),
        ("annotation", 2**64, "annotations[0] (video_id 1): 'id' must be an integer (64-bit)"),
    ],
)
def test_ids_beyond_64_bits_are_named(tiny, where, value, expected):
    gt, _ = tiny
    {"category": gt["categories"], "video": gt["videos"], "annotation": gt["annotations"]}[where][
        0
    ]["id"] = value
    with pytest.raises(FormatError) as e:
        load_ground_truth(gt)
    assert expected in str(e.value)


def test_result_category_beyond_64_bits(tiny):
    gt, results = tiny
    results[1]["category_id"] = 2**63
    with pytest.raises(FormatError, match=r"results\[1\] \(video_id 1\): 'category_id' must be"):
        load_results(results, load_ground_truth(gt))


def test_frames_of_2_31_pixels_or_more_are_refused(tiny):
    """Every backend counts pixel positions in 32 bits somewhere: refused, never wrong numbers."""
    gt, _ = tiny
    gt["videos"][0].update(height=1, width=3_000_000_000)
    with pytest.raises(FormatError, match=r"videos\[0\] \(video_id 1\): frames of 1 x 3000000000"):
        load_ground_truth(gt)
    gt["videos"][0].update(height=46341, width=46341)  # 2,147,488,281 > 2^31 - 1
    with pytest.raises(FormatError, match="at most 2\\^31 - 1"):
        load_ground_truth(gt)


def test_video_id_given_as_a_string_says_so(tiny):
    gt, results = tiny
    results[0]["video_id"] = "1"
    with pytest.raises(FormatError) as e:
        load_results(results, load_ground_truth(gt))
    assert (
        str(e.value)
        == "results[0] (video_id '1'): 'video_id' must be an integer, got the string '1'"
    )
