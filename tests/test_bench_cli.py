"""`twinview bench` runs end to end and prints its tables (figures are not asserted: machines are noisy)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_scene_and_pipeline_print_tables():
    result = subprocess.run(
        [sys.executable, "-m", "twinview.cli", "bench", "--only", "scene,pipeline", "--devices", "60", "--frames", "2",
         "--size", "160x120"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "ours (" in out and "baseline: one Mesh per node" in out
    assert "to GPU buffers" in out and "samples/s" in out and "1% of devices change" in out
    assert "baseline: per-device path" in out  # the columnar runtime is timed beside the path it replaced
    rows = [line for line in out.splitlines() if line.startswith(("ours", "baseline"))]
    assert len(rows) >= 4
