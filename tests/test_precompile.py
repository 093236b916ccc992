"""The first run's helper process (``backends/cpu/precompile.py``, issue 20): it compiles the
signatures an evaluation really uses, into the cache the main process reads, and the command
line's numbers do not depend on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ovis_jax
from ovis_jax._src.backends.cpu import kernels, precompile
from ovis_jax.testing import random_dataset


def test_signatures_are_those_an_evaluation_compiles():
    gt, res = random_dataset(seed=3, num_videos=3)
    ovis_jax.evaluate(gt, res, backend="cpu")
    for name, sig in precompile.signatures().items():
        assert tuple(sig) in [tuple(s) for s in getattr(kernels, name).signatures], name


def test_without_a_child_waiting_and_stopping_do_nothing():
    precompile.wait_for("group_intersections")
    precompile.stop()


def _env(cache: Path) -> dict:
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache)}


def test_child_fills_the_cache_and_reports_each_kernel(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "ovis_jax._src.backends.cpu.precompile"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["group_intersections", "accumulate"]
    saved = {f.name.split("-")[0] for f in tmp_path.rglob("*.nbi")}
    assert {"kernels.accumulate", "kernels.group_intersections"} <= saved
    assert not {"segjson._walk_all", "scan.scan_strings", "kernels.match_groups"} & saved


def test_first_run_with_the_child_equals_a_warm_run(tmp_path):
    cache = tmp_path / "cache"
    runs = []
    for name in ("first.json", "second.json"):
        cmd = [sys.executable, "-m", "ovis_jax.eval", "--demo", "-q", "--json",
               str(tmp_path / name)]  # fmt: skip
        p = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, check=False)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        runs.append(json.loads((tmp_path / name).read_text()))
    assert runs[0]["stats"] == runs[1]["stats"] and len(runs[0]["stats"]) == 18
    names = {f.name.split("-")[0] for f in cache.rglob("*.nbi")}
    assert {"kernels.group_intersections", "kernels.accumulate"} <= names
