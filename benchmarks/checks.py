"""Equality checks of one scenario: every backend's numbers against the official evaluator's
(where it ran) and against the reference backend's, to 1e-12.

- stats: the official stats list vs the stats of every command-line run and of every worker's
  first run (same length, same order; NaN equals NaN);
- precision and recall arrays: every worker's first run vs the reference worker's;
- warm runs: each worker checks its own warm runs against its first (``same_as_first``).
"""

from __future__ import annotations

import math
from typing import Any

from worker import TOL, max_abs_diff


def stats_diff(a: list[float] | None, b: list[float] | None) -> float:
    """Largest |a_i - b_i| of two stats lists (inf when lengths differ or a NaN is alone)."""
    if a is None or b is None or len(a) != len(b):
        return math.inf
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y)) if not (math.isnan(x) or math.isnan(y)) else math.inf
    return worst


def _item(what: str, diff: float) -> dict[str, Any]:
    return {"what": what, "max_diff": diff, "ok": diff <= TOL}


def _stats_items(rec: dict, backend: str, truth: list[float], truth_name: str) -> list[dict]:
    items = []
    pair = rec["cli"].get(backend) or {}
    rounds = pair.get("rounds") or [pair]
    for i, one in enumerate(rounds):
        for run in ("first", "second"):
            cli = one.get(run)
            if cli and "stats" in cli:
                where = f", round {i + 1}" if len(rounds) > 1 else ""
                items.append(
                    _item(
                        f"{backend} CLI {run} run{where} vs {truth_name} (stats)",
                        stats_diff(cli["stats"], truth),
                    )
                )
    worker = rec["inproc"].get(backend, {})
    if "stats" in worker:
        stats = list(worker["stats"].values())
        items.append(
            _item(f"{backend} in-process vs {truth_name} (stats)", stats_diff(stats, truth))
        )
    return items


def _array_items(rec: dict, backend: str) -> list[dict]:
    ref = rec["inproc"].get("reference", {}).get("arrays")
    mine = rec["inproc"].get(backend, {}).get("arrays")
    if backend == "reference" or ref is None or mine is None:
        return []
    diff = max(max_abs_diff(ref[0], mine[0]), max_abs_diff(ref[1], mine[1]))
    return [_item(f"{backend} vs reference (precision, recall arrays)", diff)]


def _warm_items(rec: dict, backend: str) -> list[dict]:
    runs = rec["inproc"].get(backend, {}).get("runs", [])
    bad = [i for i, r in enumerate(runs) if r.get("same_as_first") is False]
    if not bad:
        return []
    return [
        {
            "what": f"{backend} warm runs {bad} differ from its first run",
            "max_diff": math.inf,
            "ok": False,
        }
    ]


def truth_of(rec: dict) -> tuple[list[float] | None, str]:
    """The stats everything is compared with: the official's, else the reference CLI's, else the
    reference worker's."""
    official = rec.get("official") or {}
    if "stats" in official:
        return official["stats"], "official"
    ref_cli = rec["cli"].get("reference", {}).get("first") or {}
    if "stats" in ref_cli:
        return ref_cli["stats"], "reference CLI"
    ref = rec["inproc"].get("reference", {})
    return (list(ref["stats"].values()), "reference") if "stats" in ref else (None, "nothing")


def _official_items(rec: dict, truth: list[float] | None, truth_name: str) -> list[dict]:
    """Every other official run (rounds, alias modes) against the one the truth comes from."""
    if truth is None or truth_name != "official":
        return []
    runs = [("official", r) for r in (rec["official"].get("runs") or [])[1:]]
    for mode, alt in (rec.get("official_alt") or {}).items():
        runs += [(f"official ({mode} aliases)", r) for r in alt]
    return [
        _item(f"{what} run vs official (stats)", stats_diff(r["stats"], truth))
        for what, r in runs
        if "stats" in r
    ]


def check_scenario(rec: dict, backends: list[str]) -> dict[str, Any]:
    """{"truth": name, "items": [...], "by_backend": {backend: worst diff}, "ok": bool}."""
    truth, truth_name = truth_of(rec)
    items: list[dict] = _official_items(rec, truth, truth_name)
    by_backend: dict[str, float | None] = {}
    for b in backends:
        mine = _stats_items(rec, b, truth, truth_name) if truth is not None else []
        mine += _array_items(rec, b) + _warm_items(rec, b)
        items += mine
        by_backend[b] = max((i["max_diff"] for i in mine), default=None)
    return {
        "truth": truth_name,
        "items": items,
        "by_backend": by_backend,
        "ok": bool(items) and all(i["ok"] for i in items),
    }
