#!/usr/bin/env python
"""The in-process timing of one backend on one scenario, in a fresh process of its own.

    python benchmarks/worker.py --backend cpu --gt GT.json --results R.json --repeat 3 --out W.json

Runs ``ovis_jax.evaluate(gt_path, results_path, backend=B)`` 1 + ``--repeat`` times: the first
run (imports before it are timed apart) and the warm ones. Each run records its wall clock, the
stage split the evaluator reports itself (``result.timings``, whatever keys are there) and the
backend that ran (``result.backend``). The output JSON is rewritten after every run, so a worker
that is killed (timeout, out of memory) still leaves what it finished; precision and recall of
the first run go to ``W.json.npz`` for the cross-backend comparison. ``--backend floor`` only
times ``json.load`` of the two files (the stdlib parse floor).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # the first-run clock starts here, before any heavy import

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

TOL = 1e-12


def peak_rss_mb() -> float | None:
    """``VmHWM`` of this process (its own address space: ``ru_maxrss`` would include the parent's
    peak, which a child inherits across fork + exec on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def write_json(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest |a - b| over two arrays (NaN = NaN; a shape mismatch or a lone NaN is inf)."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    d = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
    if np.isnan(d).any():
        return math.inf
    return float(d.max()) if d.size else 0.0


def time_floor(args: argparse.Namespace, out: dict[str, Any]) -> None:
    for _ in range(1 + args.repeat):
        t = time.perf_counter()
        for path in (args.gt, args.results):
            with open(path, encoding="utf-8") as f:
                json.load(f)
        out["runs"].append({"total": time.perf_counter() - t})
        gc.collect()
    out["peak_rss_mb"] = peak_rss_mb()


def one_run(args: argparse.Namespace, evaluate, profiler=None) -> tuple[dict[str, Any], Any]:
    """One end-to-end evaluation from the file paths: (record, result)."""
    if profiler is not None:
        profiler.enable()
    t = time.perf_counter()
    result = evaluate(args.gt, args.results, backend=args.backend)
    total = time.perf_counter() - t
    if profiler is not None:
        profiler.disable()
    timings = {str(k): float(v) for k, v in (getattr(result, "timings", None) or {}).items()}
    run = {"total": total, "timings": timings, "ran": getattr(result, "backend", args.backend)}
    return run, result


def record_result(out: dict[str, Any], run: dict, result: Any, first: Any, npz: str) -> Any:
    """Stores the first run's numbers; checks a later run against them. Returns the first."""
    import numpy as np

    if first is None:
        out["stats"] = {k: float(v) for k, v in result.stats.items()}
        np.savez(npz, precision=result.precision, recall=result.recall)
        return result
    same = (
        list(result.stats) == list(first.stats)
        and all(max_abs_diff(result.stats[k], first.stats[k]) <= TOL for k in first.stats)
        and max_abs_diff(result.precision, first.precision) <= TOL
        and max_abs_diff(result.recall, first.recall) <= TOL
    )
    run["same_as_first"] = bool(same)
    return first


def enable_xla_cache(cache_dir: str) -> None:
    """JAX's persistent compilation cache, as the command line sets it (``--xla-cache``: used by
    ``--quick`` to share compilations between scenarios; the library itself never sets it)."""
    import jax

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def time_backend(args: argparse.Namespace, out: dict[str, Any]) -> None:
    t = time.perf_counter()
    from ovis_jax import evaluate

    if args.xla_cache and args.backend == "jax":
        enable_xla_cache(args.xla_cache)
    out["import_s"] = time.perf_counter() - t
    profiler = None
    first = None
    for i in range(1 + args.repeat):
        if args.profile_out and i == args.repeat and i > 0:
            import cProfile

            profiler = cProfile.Profile()
        run, result = one_run(args, evaluate, profiler)
        if i == 0:
            run["since_start"] = time.perf_counter() - T0
            run["peak_rss_mb"] = peak_rss_mb()
        first = record_result(out, run, result, first, args.out + ".npz")
        out["runs"].append(run)
        out["peak_rss_mb"] = peak_rss_mb()
        write_json(out, args.out)
        del result
        gc.collect()
    if profiler is not None:
        profiler.dump_stats(args.profile_out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", required=True, help="an ovis_jax backend, or 'floor'")
    p.add_argument("--gt", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--repeat", type=int, default=3, help="warm runs after the first")
    p.add_argument("--out", required=True, help="JSON record (rewritten after every run)")
    p.add_argument("--profile-out", help="cProfile the last warm run into this file")
    p.add_argument("--xla-cache", help="turn on JAX's persistent compilation cache in this dir")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: dict[str, Any] = {"backend": args.backend, "runs": [], "pid": os.getpid()}
    if args.backend == "floor":
        time_floor(args, out)
    else:
        time_backend(args, out)
    write_json(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
