"""`twinview bench --only history` runs end to end on a small site and prints the candidates side by side."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_history_prints_candidates():
    env = dict(os.environ, TWINVIEW_BENCH_HISTORY_DEVICES="300", TWINVIEW_BENCH_HISTORY_SAMPLES="40000",
               TWINVIEW_BENCH_HISTORY_SIZE_DEVICES="100", TWINVIEW_BENCH_HISTORY_MONTH_DEVICES="2")
    out = subprocess.run([sys.executable, "-m", "twinview.cli", "bench", "--only", "history"], capture_output=True,
                         text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines()
            if line.startswith(("segments", "sqlite", "duckdb")) and " / " in line]
    assert [r[0] for r in rows] == ["segments", "sqlite", "duckdb"]
    assert "written == received: yes" in out.stdout and "nothing older than 1 s lost: yes" in out.stdout
