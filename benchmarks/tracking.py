"""Tracking metrics (HOTA, CLEAR, Identity): TrackEval 1.3.0's whole process vs ours.

On one scenario's files (default ``ovis-valid``, generated and cached by
``benchmarks/scenarios.py``), interleaved, ``--rounds`` times each:

* **TrackEval**: its own process (``tools/trackeval_golden.py``'s runner: import, load, HOTA +
  CLEAR + Identity for ``datasets.YouTubeVIS``) on the files converted once for its loader;
* **ours, whole process**: the command line users run, ``python -m ovis_jax.eval --gt G
  --results R --metrics ap,hota,clear,identity --backend cpu -q`` on the original files
  (import, load, the AP and the tracking metrics);
* **ours, in process**: the same ``evaluate`` call from the paths in this (warm) process, and
  ``tracking_metrics`` alone on the loaded files.

Peak RSS of the whole processes is each child's own (``os.wait4``). Prints a Markdown table
(medians, min-max, speed-up against TrackEval's median). TrackEval runs in a separate venv::

    python3 -m venv /tmp/te_venv && /tmp/te_venv/bin/pip install trackeval==1.3.0 pycocotools
    python benchmarks/tracking.py --python /tmp/te_venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import scenarios  # noqa: E402


def _ours(gt_path: str, res_path: str) -> list[str]:
    """Our command line with the tracking metrics beside the AP."""
    return [sys.executable, "-m", "ovis_jax.eval", "--gt", gt_path, "--results", res_path,
            "--metrics", "ap,hota,clear,identity", "--backend", "cpu", "-q"]  # fmt: skip


def _golden_tool():
    """``tools/trackeval_golden.py`` (converter and TrackEval runner), loaded by path."""
    spec = importlib.util.spec_from_file_location("_trackeval_golden", REPO / "tools" /
                                                  "trackeval_golden.py")  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Started by a small launcher: a child forked from this (large) process would report this
# process's peak RSS as its own (Linux keeps the high-water mark across fork and exec).
LAUNCH = """
import os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - t, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def _child(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (fails loudly on an error)."""
    out = subprocess.run([sys.executable, "-c", LAUNCH, *argv], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    wall, peak, code = float(out[0]), float(out[1]), int(out[2])
    if code:
        raise RuntimeError(f"{argv[:3]} exited with {code}")
    return wall, peak


def _in_process(gt_path: str, res_path: str) -> tuple[float, float]:
    """Seconds of ``evaluate`` from the paths, and of ``tracking_metrics`` on loaded data."""
    from ovis_jax import evaluate
    from ovis_jax._src.io.vis import load_ground_truth, load_results
    from ovis_jax._src.metrics.tracking.api import tracking_metrics

    t = time.perf_counter()
    evaluate(gt_path, res_path, backend="cpu", metrics=("hota", "clear", "identity"))
    whole = time.perf_counter() - t
    gt = load_ground_truth(gt_path)
    res = load_results(res_path, gt)
    t = time.perf_counter()
    tracking_metrics(gt, res)
    return whole, time.perf_counter() - t


def _row(name: str, times: list[float], base: float, rss: list[float] | None) -> str:
    med = statistics.median(times)
    peak = f"{max(rss):.0f}" if rss else "-"
    return (f"| {name} | {med:.2f} | {min(times):.2f}-{max(times):.2f} | "
            f"{base / med:.1f}x | {peak} |")  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/tmp/te_venv/bin/python", help="TrackEval's python")
    ap.add_argument("--scenario", default="ovis-valid")
    ap.add_argument("--data-dir", type=Path, default=REPO / "benchmarks" / "_data")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    (sc,) = scenarios.select(args.scenario, quick=False)
    meta = scenarios.ensure_data(sc, args.data_dir)
    gt_path, res_path = meta["gt_path"], meta["results_path"]
    tool = _golden_tool()
    from ovis_jax._src.io.vis import load_ground_truth, load_results

    times: dict[str, list[float]] = {k: [] for k in ("te", "ours", "eval", "track")}
    rss: dict[str, list[float]] = {"te": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="trackeval_bench_") as tmp:
        gt = load_ground_truth(gt_path)
        tool.convert(gt, load_results(res_path, gt), Path(tmp))
        del gt
        runner = Path(tmp) / "runner.py"
        runner.write_text(tool.RUNNER)
        _child(_ours(gt_path, res_path))  # numba cache, page cache
        commands = {"te": [args.python, str(runner), tmp], "ours": _ours(gt_path, res_path)}
        for r in range(args.rounds):
            for key, cmd in commands.items():
                wall, peak = _child(cmd)
                times[key].append(wall)
                rss[key].append(peak)
            whole, track = _in_process(gt_path, res_path)
            times["eval"].append(whole)
            times["track"].append(track)
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                  file=sys.stderr, flush=True)  # fmt: skip
    base = statistics.median(times["te"])
    print(f"Scenario `{sc.name}`: {meta['videos']} videos, {meta['frames']} frames, "
          f"{meta['gt_tracks']} gt tracks, {meta['results']} results; {args.rounds} rounds, "
          f"interleaved; {os.cpu_count()} cores.\n")  # fmt: skip
    print("| run | median s | min-max s | speed-up | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    print(_row("TrackEval 1.3.0, whole process", times["te"], base, rss["te"]))
    cli = "ours, whole process (`python -m ovis_jax.eval --metrics ap,hota,clear,identity`)"
    print(_row(cli, times["ours"], base, rss["ours"]))
    print(_row("ours, in process: evaluate from paths (load + AP + tracking)", times["eval"],
               base, None))  # fmt: skip
    print(_row("ours, in process: `tracking_metrics` on loaded data", times["track"], base, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
