"""The embedded history store: what went in comes out, at any past instant, here and in other processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from history_data import assert_state_equals, brute_state, concat, demo_batches
from twinview.history import Retention, SegmentStore, StoreLocked, default_store_path, open_store
from twinview.history import segments as seg_mod
from twinview.history.api import DAY, GOOD, ROLLUP_SECONDS
from twinview.history.config import retention_for_site, retention_from_manifest


def _fill(store, names, batches):
    ids = store.ids(names)
    for i, t, v, q in batches:
        store.append(ids[i], t, v, q)
    return ids


def _instants(batches):
    ts = np.unique(concat(batches)[1])
    return [ts[0] - 1.0, ts[0], ts[len(ts) // 7] + 0.05, ts[len(ts) // 3], ts[len(ts) // 2] - 0.001,
            ts[-len(ts) // 5], ts[-1], ts[-1] + 100]


def test_state_at_past_instants_equals_what_was_written(tmp_path):
    names, batches = demo_batches()
    # small blocks and frequent checkpoints, so every path is taken: checkpoint, anchors, straddling blocks, tail
    store = SegmentStore(tmp_path / "h", block_samples=700, checkpoint_every=2)
    ids = _fill(store, names, batches[: len(batches) * 3 // 4])
    stored = [(ids[i], t, v, q) for i, t, v, q in batches]
    for i, t, v, q in batches[len(batches) * 3 // 4 :]:  # the rest stays partly in the unsealed tail
        store.append(ids[i], t, v, q)
    assert store.stats().extra["blocks"] >= 3 and list((tmp_path / "h" / "ckpt").glob("*.tvb"))
    for at in _instants(batches):
        assert_state_equals(store.state_at(at), brute_state(stored, at))
    reader = open_store(tmp_path / "h", "demo", readonly=True)  # sees sealed blocks and the write-ahead tail
    for at in _instants(batches):
        assert_state_equals(reader.state_at(at), brute_state(stored, at))
    store.close()
    reopened = SegmentStore(tmp_path / "h")
    assert reopened.ids(names).tolist() == ids.tolist()
    for at in _instants(batches):
        assert_state_equals(reopened.state_at(at), brute_state(stored, at))
    only = reopened.state_at(_instants(batches)[3], ids=ids[:5])
    assert set(only.ids.tolist()) <= set(ids[:5].tolist())
    reopened.close()


def test_late_samples_and_ties_keep_the_newest(tmp_path):
    with SegmentStore(tmp_path / "h", block_samples=4) as store:
        a, b = store.ids(["A/x", "B/x"])
        store.append([a, b], [100.0, 100.0], [1.0, 2.0], [0, 0])
        store.append([a, b], [200.0, 200.0], [3.0, 4.0], [0, 0])
        store.flush()
        store.append([a], [150.0], [9.0], [3])  # late: older than what is stored
        store.append([b], [200.0], [5.0], [0])  # same time again: the later arrival wins
        store.flush()
        s = store.state_at(199.0)
        assert s.v.tolist() == [9.0, 2.0] and s.q.tolist() == [3, 0]
        assert store.state_at(1000.0).v.tolist() == [3.0, 5.0]
        assert len(store.state_at(99.0)) == 0


def test_series_raw_equals_samples_and_rollups_equal_aggregates(tmp_path, monkeypatch):
    names, batches = demo_batches()
    with SegmentStore(tmp_path / "h", block_samples=900) as store:
        ids = _fill(store, names, batches)
        store.flush()
        all_ids, t, v, q = concat([(ids[i], tt, vv, qq) for i, tt, vv, qq in batches])
        pid = int(ids[np.argmax(np.bincount(concat(batches)[0]))])  # the busiest point
        m = all_ids == pid
        t0, t1 = float(t[m][3]), float(t[m][-4])
        s = store.series(pid, t0, t1, max_points=100_000)
        sel = m & (t >= t0) & (t <= t1)
        assert s.level == "raw" and np.array_equal(s.t, t[sel]) and np.array_equal(s.v, v[sel])
        binned = store.series(pid, t0, t1, max_points=5)
        good = sel & (q == GOOD) & np.isfinite(v)
        assert binned.level == "raw-binned" and int(binned.count.sum()) == int(good.sum())
        # long ranges never read raw samples: force it by allowing no raw blocks at all
        monkeypatch.setattr(seg_mod, "RAW_BLOCK_LIMIT", 0)
        monkeypatch.setattr(seg_mod.codec.Block, "decode", lambda *a, **k: pytest.fail("read raw samples"))
        r = store.series(pid, float(t.min()) - 3600, float(t.max()) + 1, max_points=1000)
        assert r.level == "rollup" and r.bucket_seconds == ROLLUP_SECONDS
        good = m & (q == GOOD) & np.isfinite(v)
        buckets = np.floor(t[good] / ROLLUP_SECONDS) * ROLLUP_SECONDS
        for k, b in enumerate(r.t.tolist()):
            in_b = buckets == b
            assert r.count[k] == in_b.sum()
            assert r.vmin[k] == v[good][in_b].min() and r.vmax[k] == v[good][in_b].max()
            assert r.v[k] == pytest.approx(v[good][in_b].mean())


def test_names_are_stable_across_reopen_and_manifest_edits(tmp_path):
    with SegmentStore(tmp_path / "h") as store:
        first = store.ids(["P-1/speed", "P-1/state", "T-1/level"]).tolist()
    with SegmentStore(tmp_path / "h") as store:
        # points reordered, one removed, one added: old ids unchanged, the new one gets a fresh id
        again = store.ids(["T-1/level", "P-2/speed", "P-1/speed"]).tolist()
        assert again == [first[2], 3, first[0]]
        assert store.point_names([first[1], 3]) == ["P-1/state", "P-2/speed"]
        with pytest.raises(ValueError):
            store.append([7], [1.0], [1.0], [0])  # an id that was never handed out


def test_one_writer_many_readers(tmp_path):
    with SegmentStore(tmp_path / "h"):
        with pytest.raises(StoreLocked):
            SegmentStore(tmp_path / "h")
        reader = SegmentStore(tmp_path / "h", readonly=True)
        with pytest.raises(PermissionError):
            reader.append([0], [1.0], [1.0], [0])


READER = """
import json, sys
from twinview.history import open_store
s = open_store(sys.argv[1], "demo", readonly=True)
st = s.state_at(float(sys.argv[2]))
print(json.dumps({"ids": st.ids.tolist(), "t": st.t.tolist(), "v": st.v.tolist(), "q": st.q.tolist(),
                  "names": s.point_names(st.ids[:3])}))
"""


def test_another_process_reads_while_this_one_writes(tmp_path):
    names, batches = demo_batches()
    store = SegmentStore(tmp_path / "h", block_samples=1000)
    ids = _fill(store, names, batches[:-20])
    written = [(ids[i], t, v, q) for i, t, v, q in batches[:-20]]
    stop = threading.Event()

    def keep_writing():  # ingest goes on while the other process reads
        for i, t, v, q in batches[-20:]:
            if stop.is_set():
                return
            store.append(ids[i], t + 10_000, v, q)

    th = threading.Thread(target=keep_writing)
    th.start()
    at = float(concat(batches)[1][-30])
    out = subprocess.run([sys.executable, "-c", READER, str(tmp_path / "h"), str(at)], capture_output=True, text=True,
                         timeout=120)
    stop.set()
    th.join()
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = brute_state(written, at)
    assert got["ids"] == sorted(want)
    assert got["t"] == [want[i][0] for i in got["ids"]] and got["q"] == [want[i][2] for i in got["ids"]]
    assert np.array_equal(np.array(got["v"]), np.array([want[i][1] for i in got["ids"]]), equal_nan=True)
    assert got["names"] == [names[list(ids).index(i)] for i in got["ids"][:3]]
    store.close()


def test_torn_write_ahead_tail_is_dropped_and_the_rest_kept(tmp_path):
    store = SegmentStore(tmp_path / "h")
    ids = store.ids(["A/x", "B/x"])
    for k in range(3):
        store.append(ids, [100.0 + k, 100.0 + k], [float(k), float(k) + 0.5], [0, 0])
    # what a crash leaves: the folder as it is now, with the last record cut short
    crash = tmp_path / "crash"
    shutil.copytree(tmp_path / "h", crash)
    store.close()
    wal = sorted((crash / "wal").glob("*.wal"))[-1]
    wal.write_bytes(wal.read_bytes()[:-7])
    with SegmentStore(crash) as again:
        assert again.state_at(1e9).v.tolist() == [1.0, 1.5]
        assert again.stats().written == 4


def _days(store, names, now, days, step=600.0):
    ids = store.ids(names)
    t = np.arange(now - days * DAY, now, step)
    for k, pid in enumerate(ids):
        for chunk in np.array_split(t, 8):
            store.append(np.full(chunk.size, pid, np.int32), chunk, np.round(np.sin(chunk / 7200) + k, 3),
                         np.zeros(chunk.size, np.uint8))
    return ids, t


def test_retention_drops_what_is_due_and_nothing_else_while_ingest_goes_on(tmp_path):
    now = 1_767_225_600.0 + 100 * DAY
    store = SegmentStore(tmp_path / "h", block_seconds=DAY / 2, clock=lambda: now, maintenance_interval=1e9,
                         checkpoint_every=3)
    ids, t = _days(store, ["A/x", "B/x"], now, 10)
    store.flush()
    before = store.series(int(ids[0]), now - 10 * DAY, now, max_points=10**6)
    store.retention(raw_days=3, rollup_days=6)
    assert (tmp_path / "h" / "store.toml").exists()
    # ingest goes on while retention is applied
    go = threading.Event()

    def more():
        go.wait()
        for k in range(50):
            store.append(ids, [now + k, now + k], [1.0, 2.0], [0, 0])

    th = threading.Thread(target=more)
    th.start()
    go.set()
    dropped = store.apply_retention(now)
    th.join()
    store.flush()
    raw_cut, roll_cut = now - 3 * DAY, now - 6 * DAY
    kept = int((t >= raw_cut).sum())
    assert dropped["samples"] == 2 * (t.size - kept)
    assert store.stats().written == 2 * kept + 100
    # raw: exactly the samples at or after the cutoff remain
    s = store.series(int(ids[0]), now - 10 * DAY, now - 1, max_points=10**6)
    assert s.level == "raw" or s.level == "rollup"
    raw = store.series(int(ids[0]), raw_cut, now - 1, max_points=10**6)
    assert raw.level == "raw" and np.array_equal(raw.t, t[t >= raw_cut])
    assert len(store.state_at(raw_cut - 1)) == 0
    ckpts = list((tmp_path / "h" / "ckpt").glob("*.tvb"))
    assert ckpts and all(int(f.stem.split("-")[2]) / 1000 >= raw_cut for f in ckpts)
    assert_state_equals(store.state_at(raw_cut + DAY), {int(p): (float(t[t <= raw_cut + DAY][-1]),
                        float(np.round(np.sin(t[t <= raw_cut + DAY][-1] / 7200) + k, 3)), 0)
                        for k, p in enumerate(ids)})
    # rollups: buckets that ended before the rollup cutoff are gone, younger ones kept whole
    monkeypatch_limit = seg_mod.RAW_BLOCK_LIMIT
    try:
        seg_mod.RAW_BLOCK_LIMIT = 0
        r = store.series(int(ids[0]), now - 10 * DAY, now - 1, max_points=10**6)
    finally:
        seg_mod.RAW_BLOCK_LIMIT = monkeypatch_limit
    assert r.level == "rollup"
    assert r.t.min() >= roll_cut - ROLLUP_SECONDS
    assert int(r.count.sum()) == int((t >= np.floor(roll_cut / ROLLUP_SECONDS) * ROLLUP_SECONDS).sum())
    assert before.level in ("raw", "raw-binned", "rollup")
    store.close()
    # the setting outlives the process
    again = SegmentStore(tmp_path / "h", clock=lambda: now)
    assert again.retention_policy == Retention(3.0, 6.0)
    again.close()


def test_retention_from_the_site_folder_and_default_location(tmp_path, monkeypatch):
    (tmp_path / "site.toml").write_text("[site]\nname = 'x'\n")
    assert retention_for_site(tmp_path) is None
    (tmp_path / "history.toml").write_text("[retention]\nraw_days = 14\nrollup_days = 400\n")
    assert retention_for_site(tmp_path) == Retention(14.0, 400.0)
    with SegmentStore(tmp_path / "h", retention=retention_for_site(tmp_path)):
        pass
    with SegmentStore(tmp_path / "h") as again:  # the store keeps it
        assert again.retention_policy == Retention(14.0, 400.0)
    (tmp_path / "history.toml").unlink()
    (tmp_path / "site.toml").write_text("[site]\nname = 'x'\n\n[history]\nraw_days = 14\nrollup_days = 400\n")
    assert retention_from_manifest(tmp_path) == Retention(14.0, 400.0)
    (tmp_path / "site.toml").write_text("[history]\nraw_days = -1\n")
    with pytest.raises(ValueError):
        retention_from_manifest(tmp_path)
    monkeypatch.delenv("TWINVIEW_STORE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_store_path("Water plant/1") == tmp_path / "state" / "twinview" / "Water_plant_1" / "history"
    monkeypatch.setenv("TWINVIEW_STORE", str(tmp_path / "elsewhere"))
    assert default_store_path("x") == Path(tmp_path / "elsewhere")


def test_recorder_maps_runtime_indices_to_stable_ids(tmp_path):
    from twinview.history.recorder import Recorder

    with SegmentStore(tmp_path / "h") as store:
        rec = Recorder(store, ["A/x", "B/x", "C/x"])
        rec.record([0, 2], [10.0, 10.0], [1.0, 3.0], [0, 0])
        rec.remap(["C/x", "D/x", "A/x"])  # manifest edited: B gone, D new, order changed
        rec.record([0, 1, 2], [20.0] * 3, [30.0, 40.0, 10.0], [0, 0, 0])
        st = store.state_at(100.0)
        assert dict(zip(store.point_names(st.ids), st.v.tolist())) == {"A/x": 10.0, "C/x": 30.0, "D/x": 40.0}
        raw = store.series(store.ids(["A/x"])[0], 0, 100, level="raw")
        assert raw.v.tolist() == [1.0, 10.0]


def test_readers_stay_consistent_while_blocks_are_sealed(tmp_path):
    """Batch k sets every point to k at time k. Whatever a reader sees mid-seal must be one consistent past:
    every point at the same k, never older than what was acknowledged before the read, and rollups that count
    each sample once."""
    points = 50
    store = SegmentStore(tmp_path / "h", block_samples=400, checkpoint_every=2)
    ids = store.ids([f"D-{i}/x" for i in range(points)])
    acked = [0]
    done = threading.Event()

    def write():
        for k in range(1, 400):
            store.append(ids, np.full(points, float(k)), np.full(points, float(k)), np.zeros(points, np.uint8))
            acked[0] = k
        done.set()

    reader = SegmentStore(tmp_path / "h", readonly=True)
    th = threading.Thread(target=write)
    th.start()
    checks = 0
    try:
        while not done.is_set() or checks < 5:
            before = acked[0]
            for r in (reader, store):
                st = r.latest()
                if before:
                    assert len(st) == points
                    assert np.all(st.t == st.v) and np.all(st.t == st.t[0]) and st.t[0] >= before
                    roll = r.series(int(ids[3]), 0.0, 1e6, level="rollup")
                    assert before <= int(roll.count.sum()) <= acked[0] + 1  # + the batch being appended
            checks += 1
    finally:
        th.join()
    assert checks >= 5
    store.close()


def test_samples_replay_a_window_in_time_order(tmp_path):
    names, batches = demo_batches()
    with SegmentStore(tmp_path / "h", block_samples=800) as store:
        ids = _fill(store, names, batches)
        all_ids, t, v, q = concat([(ids[i], tt, vv, qq) for i, tt, vv, qq in batches])
        ts = np.unique(t)
        t0, t1 = float(ts[len(ts) // 4]), float(ts[len(ts) * 3 // 4])
        got = store.samples(t0, t1)
        sel = (t > t0) & (t <= t1)
        assert np.array_equal(got[1], t[sel]) and got[0].size == sel.sum()
        # per point, the same values in the same order as written
        for pid in np.unique(all_ids[sel])[:20].tolist():
            assert np.array_equal(got[2][got[0] == pid], v[sel & (all_ids == pid)], equal_nan=True)
        one = store.samples(t0, t1, ids=[int(all_ids[sel][0])])
        assert np.array_equal(one[1], t[sel & (all_ids == all_ids[sel][0])])
        # state at t0 plus the window replayed gives the state at t1
        start = store.state_at(t0)
        cur = {i: (tt, vv, qq) for i, tt, vv, qq in zip(start.ids.tolist(), start.t.tolist(), start.v.tolist(),
                                                         start.q.tolist())}
        for i, tt, vv, qq in zip(*(c.tolist() for c in got)):
            cur[i] = (tt, vv, qq)
        assert_state_equals(store.state_at(t1), cur)
