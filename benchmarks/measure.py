#!/usr/bin/env python
"""Whole-process measurements: wall clock and peak RSS of one command, and the commands timed.

Every timed command runs under a small launcher process (this file run as a script):

    python benchmarks/measure.py --out M.json --timeout S -- COMMAND...

which starts COMMAND, reaps it with ``os.wait4`` and writes its wall clock, exit status and
``ru_maxrss``. On Linux a child inherits its parent's peak RSS across fork + exec, so the peak is
only the command's own when its parent is small: the launcher is (~10-20 MB), the benchmark's
main process (which may have generated gigabytes of data) is not. ``wait4``'s ``ru_maxrss``
also covers the descendants the command waited for (the largest single process of the tree).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
OFFICIAL = HERE / "official.py"


# --------------------------------------------------------------------------------------------
# Launcher (child side)


def launch(cmd: list[str], timeout: float | None, stderr_path: str) -> dict[str, Any]:
    """Runs ``cmd`` (stdout discarded, stderr to a file) and returns its measurements."""
    with open(stderr_path, "wb") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()

        killer = threading.Timer(timeout, kill) if timeout else None
        if killer is not None:
            killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        if killer is not None:
            killer.cancel()
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # bytes / KiB
    return {
        "wall_s": wall,
        "returncode": rc,
        "timed_out": fired.is_set(),
        "peak_rss_mb": usage.ru_maxrss / scale,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
    }


def _launcher_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="run COMMAND, write its wall clock and peak RSS")
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--stderr", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    rec = launch(cmd, args.timeout, args.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rec, f)
    return 0


# --------------------------------------------------------------------------------------------
# Parent side


def run_measured(
    cmd: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Runs ``cmd`` under the launcher: {wall_s, returncode, timed_out, peak_rss_mb, error?}."""
    with tempfile.TemporaryDirectory(prefix="bench-measure-") as tmp:
        out, err = os.path.join(tmp, "m.json"), os.path.join(tmp, "stderr")
        launcher = [sys.executable, str(Path(__file__).resolve()), "--out", out]
        launcher += ["--stderr", err] + (["--timeout", str(timeout)] if timeout else [])
        full_env = None if env is None else {**os.environ, **env}
        # A neutral working directory: `python -m ovis_jax.eval` run from the repository root
        # would import the working tree's package ahead of a --snapshot on PYTHONPATH.
        subprocess.run([*launcher, "--", *cmd], env=full_env, cwd=tmp, check=False)
        rec: dict[str, Any] = {"returncode": None}
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                rec = json.load(f)
        if rec.get("returncode") != 0:
            tail = Path(err).read_text(errors="replace")[-3000:] if os.path.exists(err) else ""
            why = "timed out" if rec.get("timed_out") else f"exit status {rec.get('returncode')}"
            # (a negative status is a signal: report.explain says which)
            rec["error"] = f"{why}\n{tail}".strip()
    rec["command"] = " ".join(["python", *cmd[1:]] if cmd[0] == sys.executable else cmd)
    return rec


def _read_stats(path: str, rec: dict[str, Any]) -> None:
    """Adds the ``stats`` of a ``--json`` output (a dict for ours, a list for the official)."""
    if rec.get("returncode") == 0 and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        stats = doc["stats"]
        rec["stats"] = list(stats.values()) if isinstance(stats, dict) else list(stats)
        rec["stat_names"] = list(stats) if isinstance(stats, dict) else None
        rec["format"] = doc.get("format")


def time_cli(backend: str, meta: dict, cache: Path, *, timeout: float | None) -> dict[str, Any]:
    """``python -m ovis_jax.eval`` as a whole process, with its compilation caches under
    ``cache`` (``cache/xla`` for JAX, ``NUMBA_CACHE_DIR=cache/numba``)."""
    json_out = str(cache / f"cli-{backend}-{time.monotonic_ns()}.json")
    cmd = [sys.executable, "-m", "ovis_jax.eval", "--gt", meta["gt_path"]]
    cmd += ["--results", meta["results_path"], "--backend", backend, "--json", json_out, "-q"]
    cmd += ["--cache-dir", str(cache / "xla")]
    rec = run_measured(cmd, env={"NUMBA_CACHE_DIR": str(cache / "numba")}, timeout=timeout)
    _read_stats(json_out, rec)
    return rec


def time_cli_pair(
    backend: str, meta: dict, root: Path, *, timeout: float | None, shared: bool = False
) -> dict:
    """The first run with empty caches (numba and XLA, in a new directory under ``root``) and the
    second run with the caches that the first one filled; ``shared``: both use the caches in
    ``root`` as they are (``--quick``)."""
    if shared:
        first = time_cli(backend, meta, root, timeout=timeout)
        return {"first": first, "second": time_cli(backend, meta, root, timeout=timeout)}
    with tempfile.TemporaryDirectory(prefix=f"bench-cache-{backend}-", dir=root) as cache:
        first = time_cli(backend, meta, Path(cache), timeout=timeout)
        second = time_cli(backend, meta, Path(cache), timeout=timeout)
    return {"first": first, "second": second}


def time_official(
    official_dir: str, meta: dict, *, timeout: float | None, aliases: str = "numpy"
) -> dict[str, Any]:
    """``benchmarks/official.py``: the user's copy of the official evaluator, whole process;
    ``aliases``: where its NumPy aliases live (``official.py --aliases``)."""
    with tempfile.TemporaryDirectory(prefix="bench-official-") as tmp:
        json_out = os.path.join(tmp, "official.json")
        cmd = [sys.executable, str(OFFICIAL), "--official", official_dir, "--aliases", aliases]
        cmd += ["--gt", meta["gt_path"], "--results", meta["results_path"], "--json", json_out]
        occlusion = meta.get("params", {}).get("occlusion")
        if occlusion is not None:  # as a user runs the OVIS or the YouTube-VIS script
            cmd += ["--format", "ovis" if occlusion else "ytvis"]
        rec = run_measured(cmd, timeout=timeout)
        _read_stats(json_out, rec)
    rec["aliases"] = aliases
    return rec


def run_worker(
    backend: str,
    meta: dict,
    *,
    repeat: int,
    timeout: float | None,
    env: dict[str, str] | None = None,
    profile_out: str | None = None,
    xla_cache: str | None = None,
) -> dict[str, Any]:
    """``worker.py`` (in-process timing) of one backend; its record plus ``arrays`` (precision,
    recall of the first run) and the whole process's measurements under ``process``."""
    with tempfile.TemporaryDirectory(prefix=f"bench-worker-{backend}-") as tmp:
        out = os.path.join(tmp, "worker.json")
        cmd = [sys.executable, str(WORKER), "--backend", backend, "--gt", meta["gt_path"]]
        cmd += ["--results", meta["results_path"], "--repeat", str(repeat), "--out", out]
        cmd += ["--profile-out", profile_out] if profile_out else []
        cmd += ["--xla-cache", xla_cache] if xla_cache else []
        proc = run_measured(cmd, env=env, timeout=timeout)
        rec: dict[str, Any] = {"runs": []}
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                rec = json.load(f)
        rec["arrays"] = _load_arrays(out + ".npz")
    rec["process"] = proc
    if proc.get("error"):
        rec["error"] = proc["error"]
    return rec


def _load_arrays(path: str) -> tuple[Any, Any] | None:
    if not os.path.exists(path):
        return None
    import numpy as np

    with np.load(path) as z:
        return z["precision"], z["recall"]


if __name__ == "__main__":
    sys.exit(_launcher_main(sys.argv[1:]))
