"""Progress of long work is logged (never printed) with a machine-readable payload."""

from __future__ import annotations

import logging

import ovis_jax
from ovis_jax._src import progress
from ovis_jax.testing import synthetic


def test_report_rate_limited_and_carries_payload(caplog):
    log = logging.getLogger("ovis_jax.test_progress")
    with caplog.at_level(logging.INFO, logger="ovis_jax.test_progress"):
        for i in range(1, 101):
            progress.report(log, i, 100, "things")
    payloads = [r.progress for r in caplog.records]
    assert len(payloads) == 20  # every 5 %
    assert payloads[-1] == (100, 100, "things")
    assert all(0 < d <= t for d, t, _ in payloads)


def test_reference_reports_progress_per_video(caplog, capsys):
    gt, results = synthetic.random_dataset(seed=2, num_videos=3)
    with caplog.at_level(logging.INFO, logger="ovis_jax"):
        ovis_jax.evaluate(gt, results, backend="reference")
    done = [r.progress for r in caplog.records if hasattr(r, "progress")]
    assert [d for d in done if d[2] == "videos matched"][-1] == (3, 3, "videos matched")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # the library prints nothing
