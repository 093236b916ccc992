"""The benchmark harness runs end to end in quick mode (tiny data, ~30-60 s).

``python benchmarks/bench.py --quick`` generates tiny versions of the four scenarios, runs the
floor, the reference and the JAX backend each in its own subprocess, checks that the backends
agree to 1e-12 (exit status 1 otherwise) and writes the Markdown table.
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


@pytest.mark.skipif(not BENCH.exists(), reason="benchmarks/bench.py not present")
def test_quick_benchmark_runs_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "R.md"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--out",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = out.read_text(encoding="utf-8")
    assert "## End to end" in text and "## Targets" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for name in SCENARIOS:
        # One row in the scenario table, the end-to-end table and the stage table (at least).
        assert sum(line.startswith(f"| {name} |") for line in rows) >= 3, name
    end_to_end = text.split("## End to end", 1)[1].split("##", 1)[0]
    for name in SCENARIOS:
        (row,) = [line for line in end_to_end.splitlines() if line.startswith(f"| {name} |")]
        assert row.rstrip().endswith("| yes |"), row  # the backends' numbers agree
    assert "equality reference vs jax: OK" in proc.stdout
    assert "MISMATCH" not in proc.stdout
    # Quick mode never touches the committed results.
    assert "wrote " + str(out) in proc.stdout
