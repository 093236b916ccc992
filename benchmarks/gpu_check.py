"""The GPU check: golden cases on the device, stage timings, streaming ``update``; one table.

Run on a machine with an accelerator (see benchmarks/README.md, "GPU check")::

    python benchmarks/gpu_check.py --out gpu_check.md

1. every golden case of ``tests/data/official_stats.json`` (regenerated from its recipe, as
   tests/test_official.py does) evaluated with ``backend="jax"`` and its stats compared with
   the official numbers (1e-12);
2. the stages of ``result.timings`` on the ovis-valid and crowded scenarios of
   benchmarks/scenarios.py, first call (compilation included) and warm (median of
   ``--repeat``), and the stats compared with the ``cpu`` backend's;
3. :meth:`ovis_jax.streaming.StreamingEvaluator.update` on one video of the ovis-valid ground
   truth with ``max_predictions`` random dense predictions, first and warm (waiting for the
   device).

It prints one Markdown table and writes it to ``--out``. ``--tiny`` runs the same logic on two
golden cases and two-video versions of the scenarios (the test suite runs it on the CPU).
Exit status 1 when a number differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "official_stats.json"
TOL = 1e-12
TINY_CASES = ("demo", "handmade_iou_ties")


def _module(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def check_golden(backend: str, *, tiny: bool) -> tuple[list[list[str]], bool]:
    """Rows of the golden-case check and whether every case is equal."""
    import ovis_jax

    tool = _module("_official_golden", REPO / "tools" / "official_golden.py")
    cases = json.loads(GOLDEN.read_text())["cases"]
    if tiny:
        cases = [c for c in cases if c["recipe"]["name"] in TINY_CASES]
    bad, worst, t0 = [], 0.0, time.perf_counter()
    for case in cases:
        gt, results = tool.generate(case["recipe"])
        got = ovis_jax.evaluate(gt, results, backend=backend)
        diff = np.abs(np.array(list(got.stats.values())) - np.array(case["stats"]))
        worst = max(worst, float(diff.max(initial=0.0)))
        if got.format != case["format"] or diff.shape[0] != len(case["stats"]) or worst > TOL:
            bad.append(case["recipe"]["name"])
    ok = not bad
    note = f"{len(cases) - len(bad)}/{len(cases)} equal, max diff {worst:.1e}"
    if bad:
        note += f"; DIFFER: {', '.join(bad[:5])}"
    wall = time.perf_counter() - t0
    return [["golden cases (official stats)", backend, _ms(wall), "", note]], ok


def _scenarios(tiny: bool, data_dir: Path):
    scen = _module("_bench_scenarios", REPO / "benchmarks" / "scenarios.py")
    pool = scen.QUICK_SCENARIOS if tiny else scen.FULL_SCENARIOS
    chosen = [s for s in pool if s.name in ("ovis-valid", "crowded")]
    if tiny:
        chosen = [
            dataclasses.replace(s, num_videos=2, frames=(3, 4), sizes=((24, 32),)) for s in chosen
        ]
    return [(s.name, scen.ensure_data(s, data_dir, log=lambda *a, **k: None)) for s in chosen]


def time_stages(backend: str, *, tiny: bool, repeat: int, data_dir: Path):
    """Rows of per-stage timings (first, warm median) and whether the stats equal ``cpu``'s."""
    import ovis_jax

    rows, ok, first_gt = [], True, None
    for name, meta in _scenarios(tiny, data_dir):
        gt = ovis_jax.load_ground_truth(meta["gt_path"])
        res = ovis_jax.load_results(meta["results_path"], gt)
        first_gt = first_gt or gt
        runs = []
        for _ in range(1 + repeat):
            t = time.perf_counter()
            out = ovis_jax.evaluate(gt, res, backend=backend)
            runs.append((dict(out.timings), time.perf_counter() - t))
        cpu = ovis_jax.evaluate(gt, res, backend="cpu")
        diff = max(abs(out.stats[k] - cpu.stats[k]) for k in cpu.stats)
        ok &= diff <= TOL and out.backend == backend
        for stage in runs[0][0]:
            warm = statistics.median(r[0].get(stage, 0.0) for r in runs[1:])
            rows.append([f"{name}: {stage}", backend, _ms(runs[0][0][stage]), _ms(warm), ""])
        note = f"AP {out.stats['AP']:.4f}, |diff vs cpu| {diff:.1e}"
        warm = statistics.median(r[1] for r in runs[1:])
        rows.append([f"{name}: evaluate() total", backend, _ms(runs[0][1]), _ms(warm), note])
    return rows, ok, first_gt


def time_streaming(gt, *, tiny: bool, repeat: int) -> list[list[str]]:
    """Rows of ``StreamingEvaluator.update`` on one video (random dense predictions)."""
    import jax

    from ovis_jax.streaming import StreamingEvaluator

    n = 4 if tiny else 20
    ev = StreamingEvaluator(gt, max_predictions=n)
    video = gt.videos[0]
    rng = np.random.default_rng(0)
    masks = rng.random((1, n, video.length, video.height, video.width)) < 0.3
    scores = rng.random((1, n)).astype(np.float32)
    labels = np.full((1, n), int(gt.category_ids[0]))
    ids = np.array([video.id])
    masks_d, scores_d, labels_d = (jax.device_put(x) for x in (masks, scores, labels))
    times = []
    for _ in range(1 + repeat):
        state = ev.init()
        jax.block_until_ready(state)
        t = time.perf_counter()
        state = ev.update(state, ids, masks_d, scores_d, labels_d)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    what = f"{n} preds × {video.length}×{video.height}×{video.width}"
    warm = statistics.median(times[1:])
    return [["streaming update (1 video)", "jax", _ms(times[0]), _ms(warm), what]]


def table(rows: list[list[str]], header: str) -> str:
    """The Markdown table of ``rows`` under a one-line ``header``."""
    head = ["check / stage", "backend", "first (ms)", "warm (ms)", "note"]
    lines = [header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--tiny", action="store_true", help="tiny data: the logic, on any CPU")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per measurement")
    parser.add_argument("--backend", default="jax", help="the backend checked (default jax)")
    parser.add_argument(
        "--data-dir", type=Path, default=REPO / "benchmarks" / "_data", help="scenario data"
    )
    args = parser.parse_args(argv)
    import jax

    devices = ", ".join(str(d) for d in jax.devices())
    rows, ok = check_golden(args.backend, tiny=args.tiny)
    stage_rows, ok_stages, gt = time_stages(
        args.backend, tiny=args.tiny, repeat=max(args.repeat, 1), data_dir=args.data_dir
    )
    rows += stage_rows + time_streaming(gt, tiny=args.tiny, repeat=max(args.repeat, 1))
    ok &= ok_stages
    header = (
        f"GPU check on {devices} (jax {jax.__version__}{', tiny data' if args.tiny else ''}): "
        f"{'all numbers equal' if ok else 'NUMBERS DIFFER'}"
    )
    text = table(rows, header)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
