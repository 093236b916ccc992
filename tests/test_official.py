"""Every backend == the official OVIS / YouTube-VIS evaluator (all stats, 1e-12).

The official numbers are in ``tests/data/official_stats.json``, written by
``tools/official_golden.py`` with the official code (which is never committed: see
``benchmarks/official.py``). Each case holds a recipe that regenerates its input exactly; this
test regenerates it, evaluates it with every backend in ``ovis_jax.BACKENDS`` and compares the
stats, and the precision / recall arrays with the official ones (exactly where the file holds
their run-length encoding, by a digest of the values rounded to 10 decimals otherwise).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

import ovis_jax

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "official_stats.json"
TOL = 1e-12


def _golden_tool():
    name = "_official_golden"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "official_golden.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


GOLDEN_DOC = json.loads(GOLDEN.read_text())
CASES = {c["recipe"]["name"]: c for c in GOLDEN_DOC["cases"]}


@functools.lru_cache(maxsize=4)
def _inputs(name: str, raw: bool) -> str:
    """The case's input as JSON text (cached: regenerated once, parsed fresh per use)."""
    tool = _golden_tool()
    recipe = CASES[name]["recipe"]
    gt, results = tool.generate_raw(recipe) if raw else tool.generate(recipe)
    return json.dumps([gt, results])


def _check(name: str, backend: str, raw: bool = False) -> list[str]:
    case = CASES[name]
    gt, results = json.loads(_inputs(name, raw))
    got = ovis_jax.evaluate(gt, results, backend=backend)
    what = f"{name} [{backend}]{' untransformed' if raw else ''}"
    assert got.format == case["format"], f"{what}: format {got.format} vs {case['format']}"
    want = np.array(case["stats"])
    have = np.array(list(got.stats.values()))
    assert want.shape == have.shape, f"{what}: {have.size} stats, official {want.size}"
    if not np.allclose(want, have, rtol=0, atol=TOL):
        raise AssertionError(
            f"{what}: stats differ from the official evaluator\n"
            f" keys     {list(got.stats)}\n official {want.tolist()}\n"
            f" ovis_jax {have.tolist()}\n diff     {(have - want).tolist()}"
        )
    problems = []
    for key, arr in (("precision", got.precision), ("recall", got.recall)):
        fp = case[key]
        if case["format"] == "ytvis":  # the official arrays have no occlusion axis
            arr = arr.reshape(fp["shape"])
        if list(arr.shape) != fp["shape"]:
            problems.append(f"{key} shape {list(arr.shape)} vs official {fp['shape']}")
            continue
        if "runs" in fp:
            off = _golden_tool().unrle(fp)
            bad = np.argwhere(np.abs(arr - off) > TOL)
            if bad.size:
                i = tuple(int(x) for x in bad[0])
                problems.append(
                    f"{key} differs at {len(bad)} entries; first {i}: official {off[i]!r} "
                    f"ovis_jax {arr[i]!r}"
                )
        elif _golden_tool().digest(arr) != fp["sha256_round10"]:
            problems.append(f"{key} digest differs from the official array's")
    assert not problems, f"{what}: " + "; ".join(problems)
    return list(got.warnings)


#: Checked on every run: small cases that still cover both formats, crowds, score and IoU ties,
#: area and occlusion boundaries, > 100 results per pair, polygon / uncompressed ground truth,
#: unknown categories and realistic masks. The other cases are marked ``slow`` (JAX compiles
#: for each new shape bucket; the whole file takes minutes on a small CPU).
QUICK = (
    "demo",
    "handmade_iou_ties",
    "handmade_result_area_boundary",
    "random_ovis_14",
    "random_ovis_23",
    "random_ovis_27",
    "random_ovis_47",
    "random_ovis_54",
    "random_ytvis_108",
    "random_ytvis_116",
    "random_ytvis_117",
    "random_unknown_cats_200",
    "random_unknown_cats_202",
    "ovis_like_ovis_2",
    "ovis_like_ytvis_4",
)


def _params(names):
    return [pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _params(CASES))
def test_matches_official(name: str) -> None:
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    for backend in ovis_jax.BACKENDS:
        _check(name, backend)


TRANSFORMED = [n for n, c in CASES.items() if c["recipe"].get("transform")]


@pytest.mark.parametrize("name", _params(TRANSFORMED))
def test_all_null_occlusion_scores_zero(name: str) -> None:
    """README, where we differ: a track with only null occlusion labels gets occ_score 0.0 (the
    official code divides by zero). The golden numbers of these cases come from the input with those
    tracks labelled no_occlusion (occ_score 0.0); the untransformed input must give the same
    numbers, with a warning."""
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)
    for backend in ovis_jax.BACKENDS:
        warnings = _check(name, backend, raw=True)
        assert any("occlusion" in w for w in warnings), f"{name} [{backend}]: no warning"


def test_golden_file_is_complete() -> None:
    """The golden file covers both formats and the corner cases it is meant to."""
    formats = {c["format"] for c in CASES.values()}
    assert formats == {"ovis", "ytvis"}
    feats = {f for c in CASES.values() for f in c["features"]}
    for f in ("crowd", "score_ties", "area_boundary", ">100_results_per_pair", "polygon_gt"):
        assert f in feats, f
    assert "demo" in CASES
    assert set(QUICK) <= set(CASES)
    assert set(QUICK) & set(TRANSFORMED)
