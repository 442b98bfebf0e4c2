"""The PostgreSQL recorder against a real server started here (Debian's postgresql package: initdb, pg_ctl)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'twinview[history-pg]')")

from twinview.history import open_store  # noqa: E402
from twinview.history.api import DAY  # noqa: E402


def _bindir() -> Path | None:
    candidates = []
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        candidates.append(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql: initdb, pg_ctl)")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="twinview-pg-"))
    if as_root:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    root.chmod(0o755)
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, port = root / "data", _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                    "-t", "60", "start"], check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _batches(n_points=50, steps=120, start=1_767_225_600.0, step=10.0, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        ids = rng.choice(n_points, size=n_points // 2, replace=False).astype(np.int32)
        t = np.full(ids.size, round(start + k * step, 3))
        v = np.round(20 + 5 * np.sin(k / 10 + ids) + rng.normal(0, 0.1, ids.size), 2)
        q = (rng.random(ids.size) < 0.05).astype(np.uint8) * 3
        out.append((ids, t, v, q))
    return out


def _brute_state(batches, at):
    last = {}
    for ids, t, v, q in batches:
        for i, tt, vv, qq in zip(ids.tolist(), t.tolist(), v.tolist(), q.tolist()):
            if tt <= at and (i not in last or tt >= last[i][0]):
                last[i] = (tt, vv, qq)
    return last


def test_postgres_round_trip_state_series_and_sharing(pg_url):
    batches = _batches()
    names = [f"D-{i}/temp" for i in range(50)]
    with open_store(pg_url, "plant-a") as store:
        ids = store.ids(names)
        assert store.ids(names).tolist() == ids.tolist()  # stable
        for i, t, v, q in batches:
            store.append(ids[i], t, v, q)
        st = store.stats()
        assert st.written == sum(b[0].size for b in batches)
        # a second process-like client (another connection) sees the same history
        with open_store(pg_url, "plant-a", readonly=True) as reader:
            assert reader.ids(names, create=False).tolist() == ids.tolist()
            for at in (batches[0][1][0] - 1, batches[10][1][0], batches[77][1][0] + 5, 1e10):
                got = reader.state_at(at)
                want = _brute_state([(ids[i], t, v, q) for i, t, v, q in batches], at)
                assert sorted(want) == got.ids.tolist()
                for k, pid in enumerate(got.ids.tolist()):
                    tt, vv, qq = want[pid]
                    assert got.t[k] == pytest.approx(tt, abs=1e-6) and got.v[k] == vv and got.q[k] == qq
            t0, t1 = batches[20][1][0], batches[60][1][0]
            got = reader.samples(t0, t1)
            want_n = sum(int(i.size) for i, t, v, q in batches if t0 < t[0] <= t1)
            assert got[0].size == want_n and np.all(np.diff(got[1]) >= 0)
            s = reader.series(int(ids[3]), batches[0][1][0], batches[-1][1][0])
            raw = [(t[j], v[j]) for i, t, v, q in batches for j in range(i.size) if i[j] == 3]
            assert s.level == "raw" and len(s) == len(raw)
            assert np.allclose(s.v, [r[1] for r in raw])
    # another site's names get their own ids in the same database
    with open_store(pg_url, "plant-b") as other:
        other_ids = other.ids(names[:3])
        assert set(other_ids.tolist()).isdisjoint(set(ids.tolist()))
        assert len(other.state_at(1e10)) == 0


def test_postgres_rollups_and_retention(pg_url):
    now = 1_767_225_600.0 + 40 * DAY
    names = ["R-1/flow", "R-2/flow"]
    with open_store(pg_url, "plant-r") as store:
        ids = store.ids(names)
        t = np.arange(now - 35 * DAY, now, 600.0)  # every 10 minutes for 35 days
        for k, pid in enumerate(ids):
            store.append(np.full(t.size, pid, np.int32), t, np.round(np.sin(t / 3600) + k, 3), np.zeros(t.size, np.uint8))
        s = store.series(int(ids[0]), now - 30 * DAY, now, max_points=1000)
        assert s.level == "rollup" and 0 < len(s) <= 1000
        assert int(s.count.sum()) == int(((t >= np.floor((now - 30 * DAY) / 600) * 600) & (t <= now)).sum())
        store.retention(raw_days=7, rollup_days=30)
        dropped = store.apply_retention(now)
        assert dropped["samples"] == 2 * int((t < now - 7 * DAY).sum())
        assert store.stats().written == 2 * int((t >= now - 7 * DAY).sum())
        raw = store.series(int(ids[1]), now - 8 * DAY, now - 6 * DAY + 1, max_points=10_000)  # two days: rollups
        rolled = store.series(int(ids[1]), now - 40 * DAY, now, max_points=10_000)
        # rollups older than 30 days are gone, younger ones (older than the raw cutoff too) are kept
        assert rolled.level == "rollup" and rolled.t.min() >= now - 30 * DAY - 600
        assert int(rolled.count.sum()) == int((t >= now - 30 * DAY).sum())
        assert int(raw.count.sum()) > 0
        day = store.series(int(ids[1]), now - DAY / 2, now)
        assert day.level == "raw" and len(day) == int((t >= now - DAY / 2).sum())
