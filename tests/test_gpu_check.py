"""benchmarks/gpu_check.py runs its logic end to end (tiny data, on whatever JAX device is
present: the CPU here) and reports every number equal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_tiny(tmp_path):
    path = REPO / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("_gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "table.md"
    rc = module.main(
        ["--tiny", "--repeat", "1", "--out", str(out), "--data-dir", str(tmp_path / "data")]
    )
    text = out.read_text()
    assert rc == 0, text
    assert "all numbers equal" in text
    assert "2/2 equal" in text
    for row in ("ovis-valid: evaluate() total", "crowded: matching", "streaming update"):
        assert row in text
