"""`twinview history` reads a store (even one that is being written) as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import numpy as np

from twinview.cli import demo_site_path
from twinview.history import SegmentStore
from twinview.site.manifest import load_manifest


def _run(*args):
    return subprocess.run([sys.executable, "-m", "twinview.cli", "history", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_history_cli_series_and_state(tmp_path):
    site, _ = load_manifest(demo_site_path())
    dev = site.devices[0]
    names = [f"{dev.id}/{p.id}" for p in dev.points] + [f"{site.devices[1].id}/{site.devices[1].points[0].id}"]
    now = time.time()
    t = np.round(now - 3600 + np.arange(0, 3600, 10.0), 3)
    store = SegmentStore(tmp_path / "h")
    ids = store.ids(names)
    for k, pid in enumerate(ids):
        store.append(np.full(t.size, pid, np.int32), t, np.round(np.arange(t.size) * 0.5 + k, 1),
                     np.zeros(t.size, np.uint8))
    store.flush()  # and keep it open: the CLI reads while the writer holds the store

    out = _run(demo_site_path(), "--device", dev.id, "--point", dev.points[0].id, "--since", "30m",
               "--store", tmp_path / "h", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    want = t[t >= now - 1800]
    assert [r["t"] for r in rows] == want.tolist() or [r["t"] for r in rows] == want[1:].tolist()
    assert {r["device"] for r in rows} == {dev.id} and {r["point"] for r in rows} == {dev.points[0].id}
    assert rows[-1]["value"] == (t.size - 1) * 0.5 and rows[-1]["quality"] == "good"

    out = _run(demo_site_path(), "--device", dev.id, "--since", "2h", "--store", tmp_path / "h")
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(table) == t.size * len(dev.points)

    out = _run(demo_site_path(), "--at", str(t[100] + 1), "--store", tmp_path / "h", "--format", "json")
    assert out.returncode == 0, out.stderr
    state = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(state) == len(names) and all(r["t"] == t[100] for r in state)

    out = _run(demo_site_path(), "--device", "no-such-device", "--store", tmp_path / "h")
    assert out.returncode == 2 and "no recorded points" in out.stderr
    store.close()
