"""SIGKILL a real writer process mid-write; reopen; everything older than one second before the kill is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from history_data import assert_state_equals, brute_state, concat, step_batch
from twinview.history import SegmentStore

WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from history_data import step_batch
from twinview.history import SegmentStore
store = SegmentStore(sys.argv[1], block_samples=3000, checkpoint_every=3)
ids = store.ids([f"D-{i}/p" for i in range(300)])
k = 0
while True:
    i, t, v, q = step_batch(k)
    store.append(ids[i], t, v, q)
    print(f"{time.time():.6f} {k}", flush=True)  # batch k acknowledged
    k += 1
    time.sleep(0.002)
"""


def test_sigkill_mid_write_keeps_everything_older_than_one_second(tmp_path):
    root = tmp_path / "h"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acks: list[tuple[float, int]] = []
    try:
        start = None
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            wall, k = line.split()
            acks.append((float(wall), int(k)))
            start = start or float(wall)
            # well past a few sealed blocks and checkpoints, so the kill lands among all of them
            if float(wall) - start > 3.0 and len(list((root / "blocks").glob("*.tvb"))) >= 4:
                break
    finally:
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    due = max(k for wall, k in acks if wall <= killed_at - 1.0)
    last = acks[-1][1]
    with SegmentStore(root) as store:
        assert store.ids([f"D-{i}/p" for i in range(300)]).tolist() == list(range(300))
        written = [step_batch(k) for k in range(due + 1)]
        stored_n = store.stats().written
        assert stored_n >= sum(b[0].size for b in written)
        assert stored_n <= sum(step_batch(k)[0].size for k in range(last + 2))
        ts = np.unique(concat(written)[1])
        for at in (ts[0], ts[len(ts) // 3], ts[len(ts) // 2] + 0.05, ts[-1]):
            assert_state_equals(store.state_at(at), brute_state(written, at))
        # one point's raw series over the whole prefix: every sample, in order
        ids, t, v, q = concat(written)
        s = store.series(7, float(t[0]), float(t[-1]), max_points=10**6)
        assert np.array_equal(s.t, t[ids == 7]) and np.array_equal(s.v, v[ids == 7])
        assert not list(root.glob("wal/*.wal"))[1:]  # recovered write-ahead files were sealed into blocks
