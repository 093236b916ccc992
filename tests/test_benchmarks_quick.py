"""The benchmark harness runs end to end in quick mode (tiny data, well under a minute when the
machine is idle).

``python benchmarks/bench.py --quick`` generates tiny versions of the four scenarios, times every
backend as a whole command-line process (on one scenario) and in process (on all four), checks
that all backends agree to 1e-12 (exit status 1 otherwise) and renders the Markdown tables. The
official evaluator is not needed: without ``--official`` its columns read "not run".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
SCENARIOS = ("ovis-valid", "crowded", "large-vocab", "long-videos")


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
@pytest.mark.skipif(not BENCH.exists(), reason="benchmarks/bench.py not present")
def test_quick_benchmark_runs_and_writes_the_tables(tmp_path: Path) -> None:
    import ovis_jax

    out = tmp_path / "R.md"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    cmd = [sys.executable, str(BENCH), "--quick", "--out", str(out)]
    cmd += ["--data-dir", str(tmp_path / "data")]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "wrote " + str(out) in proc.stdout  # quick mode never touches the committed results
    text = out.read_text(encoding="utf-8")
    for title in ("Scenarios", "Whole process", "In process", "Stage split", "Equality", "Targets"):
        assert f"## {title}" in text, title
    backends = [b for b in ("reference", "cpu", "jax") if b in ovis_jax.BACKENDS]
    whole = _section(text, "Whole process")
    for name in SCENARIOS:
        assert f"| {name} | official | not run |" in whole, name
    for b in backends:  # the command line is timed on ovis-valid in quick mode
        (row,) = [r for r in whole.splitlines() if r.startswith(f"| ovis-valid | {b} |")]
        assert row.rstrip().endswith("| yes |"), row  # equal to the reference's numbers
    inproc = _section(text, "In process")
    for name in SCENARIOS:
        for b in backends:
            (row,) = [r for r in inproc.splitlines() if r.startswith(f"| {name} | {b} |")]
            assert "error" not in row and "not run" not in row.split("|")[5], row
    for name in SCENARIOS:
        assert f"[{name}] equality: OK" in proc.stdout, name
        assert f"- {name}: OK" in _section(text, "Equality"), name
    assert "MISMATCH" not in proc.stdout
    assert "not measured (the official evaluator did not run" in _section(text, "Targets")
