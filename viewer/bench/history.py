"""`twinview bench --only history`: the history store candidates side by side, on simulated telemetry.

Data: the project's plant simulator over a generated site (76,000 devices, about
100,000 points; one simulated minute, replayed with shifted times as often as
needed), and for the 30-day chart a 20-device site simulated for 30 days at one
step a minute. Each candidate runs in its own writer process:

- ingest: the writer appends the batches as fast as it can (and reports its CPU time,
  to show what recording 100,000 samples/s costs a viewer on the same machine) while this process
  (another process, as the CLI or a second viewer would be) reads the latest
  state every half second; samples/s counts until everything is durable;
  written / received compares what the reopened store holds with what was sent.
- bytes/sample: an hour of a 2,000-device site (about 2,600 points, each every ~10 s),
  the store's folder after a clean close over the samples in it.
- state at T: the last value at or before T of every point (median of 3, warm).
- 30-day chart: one point over 30 days as at most 1000 buckets (median of 3, warm).
- kill -9: a writer paced at 100,000 samples/s is killed with SIGKILL; the store
  is reopened and every sample acknowledged more than one second before the
  kill must be there.

Run as a worker: python -m twinview.bench.history MODE ...
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .table import print_table

CANDIDATES = ("segments", "sqlite", "duckdb")
PASS_SECONDS = 60.0  # simulated seconds per pass over the data
KILL_RATE = 100_000  # samples/s for the kill test
TARGETS = {"ingest": 100_000, "bytes": 4.0, "state_ms": 100.0, "chart_ms": 50.0}


# --- data -----------------------------------------------------------------------------------


def _save(path: Path, names, batches) -> None:
    ids, t, v, q = (np.concatenate(c) for c in zip(*batches))
    bounds = np.cumsum([0] + [b[0].size for b in batches])
    np.savez(path, ids=ids, t=t, v=v, q=q, bounds=bounds)
    path.with_suffix(".names").write_text("\n".join(names) + "\n", "utf-8")


def _load(path: Path):
    d = np.load(path)
    names = path.with_suffix(".names").read_text("utf-8").splitlines()
    b = d["bounds"]
    cols = d["ids"], d["t"], d["v"], d["q"]
    batches = [tuple(c[b[k] : b[k + 1]] for c in cols) for k in range(b.size - 1)]
    return names, batches


def prepare(workdir: Path, devices: int, size_devices: int = 2000, month_devices: int = 20) -> tuple[Path, Path, Path]:
    from twinview.bench.simdata import simulated_batches, synthetic_site

    live = workdir / f"history-live-{devices}.npz"
    if not live.exists():
        site = synthetic_site(workdir, devices)
        _save(live, *simulated_batches(site, PASS_SECONDS, step=0.1))
    hour = workdir / f"history-hour-{size_devices}.npz"
    if not hour.exists():
        site = synthetic_site(workdir, size_devices)
        _save(hour, *simulated_batches(site, 3600.0, step=0.5))
    month = workdir / f"history-month-{month_devices}.npz"
    if not month.exists():
        site = synthetic_site(workdir, month_devices)
        names, batches = simulated_batches(site, 30 * 86400.0, step=60.0)
        # one batch per simulated hour: the history is what is measured here, not 43,200 tiny transactions
        _save(month, names, [tuple(np.concatenate(c) for c in zip(*batches[k : k + 60]))
                             for k in range(0, len(batches), 60)])
    return live, hour, month


# --- worker side ------------------------------------------------------------------------------


def _open(kind: str, store: str, **options):
    from twinview.history.candidates import open_candidate

    return open_candidate(kind, store, **options)


def _replay(batches, total: int):
    """Batches again and again, each pass PASS_SECONDS later, until `total` samples."""
    sent, k = 0, 0
    while sent < total:
        for ids, t, v, q in batches:
            yield ids, t + k * PASS_SECONDS, v, q
            sent += ids.size
            if sent >= total:
                return
        k += 1


def worker_ingest(kind: str, store: str, data: str, total: int, block_seconds: float) -> dict:
    names, batches = _load(Path(data))
    options = {"block_seconds": block_seconds} if kind == "segments" else {}
    s = _open(kind, store, **options)
    ids = s.ids(names)
    received = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i, t, v, q in _replay(batches, total):
        s.append(ids[i], t, v, q)
        received += i.size
    s.flush()
    s.close()
    # process_time counts every thread of this process: append and the background compactor
    return {"received": received, "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def worker_paced(kind: str, store: str, data: str) -> None:
    """Append at KILL_RATE samples/s until killed, printing 'wall_time acknowledged' after each append."""
    names, batches = _load(Path(data))
    s = _open(kind, store)
    ids = s.ids(names)
    acked = 0
    start = time.time()
    print(f"{time.time():.6f} 0", flush=True)
    for i, t, v, q in _replay(batches, 10**12):
        s.append(ids[i], t, v, q)
        acked += i.size
        print(f"{time.time():.6f} {acked}", flush=True)
        ahead = start + acked / KILL_RATE - time.time()
        if ahead > 0:
            time.sleep(ahead)


# --- parent side ---------------------------------------------------------------------------------


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "twinview.bench.history", *map(str, args)]


def _ingest_with_reader(kind, store: Path, data: Path, total: int, block_seconds: float = 60.0) -> dict:
    proc = subprocess.Popen(_cmd("ingest", kind, store, data, total, block_seconds), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reader = _Reader(kind, store)
    while proc.poll() is None:
        reader.read()
        time.sleep(0.25)
    out, err = proc.communicate()
    reads, failures, why = reader.reads, reader.failures, reader.why
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} ingest failed: {err.strip().splitlines()[-3:]}")
    r = json.loads(out.strip().splitlines()[-1])
    r.update(reads=reads, read_failures=failures, read_error=why)
    return r


class _Reader:
    """Reads the latest state of a store that another process is writing, counting what worked."""

    def __init__(self, kind: str, store: Path):
        self.kind, self.store = kind, store
        self.reads = self.failures = 0
        self.why = ""

    def read(self) -> None:
        if not any(self.store.glob("*")):
            return  # the writer has not created it yet
        try:
            r = _open(self.kind, str(self.store), readonly=True)
            r.state_at(1e12)
            if hasattr(r, "close"):
                r.close()
            self.reads += 1
        except Exception as e:  # noqa: BLE001 - a candidate that cannot be read concurrently says so here
            self.failures += 1
            self.why = f"{type(e).__name__}: {e}"[:80]


def _size_parts(root: Path) -> dict:
    from twinview.history.segments import disk_bytes

    blocks = disk_bytes(root / "blocks") + disk_bytes(root / "ckpt") + disk_bytes(root / "wal")
    names = (root / "points.tsv").stat().st_size
    total = disk_bytes(root)
    return {"blocks": blocks, "rollups": total - blocks - names, "names": names}


def _median_ms(fn, runs: int = 3) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _kill_test(kind: str, store: Path, data: Path, seconds: float = 4.0) -> dict:
    proc = subprocess.Popen(_cmd("paced", kind, store, data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    acks: list[tuple[float, int]] = []
    deadline = None
    reader = _Reader(kind, store)
    next_read = time.time() + 0.5
    while True:
        if time.time() >= next_read:  # another process reads while this one writes
            reader.read()
            next_read = time.time() + 0.25
        line = proc.stdout.readline()
        if not line:
            break
        wall, n = line.split()
        acks.append((float(wall), int(n)))
        if deadline is None:
            deadline = float(wall) + seconds
        if float(wall) >= deadline:
            break
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    expected = max([n for w, n in acks if w <= killed_at - 1.0], default=0)
    acked = acks[-1][1] if acks else 0
    from twinview.history.candidates import count_samples

    s = _open(kind, str(store))
    found = count_samples(s)
    s.close()
    return {"expected": expected, "acked": acked, "found": found, "lost": max(0, expected - found),
            "reads": reader.reads, "read_failures": reader.failures}


def bench_history(workdir: Path, devices: int = 76_000, samples: int = 2_000_000,
                  candidates=CANDIDATES, size_devices: int = 2000, month_devices: int = 20) -> dict:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("history: duckdb is not installed (pip install 'twinview[history-bench]'); measuring without it")
        candidates = [c for c in candidates if c != "duckdb"]
    t_prep = time.perf_counter()
    live, hour, month = prepare(workdir, devices, size_devices, month_devices)
    prep_s = time.perf_counter() - t_prep
    names, batches = _load(live)
    npoints = len(names)
    start = float(batches[0][1][0])
    results = {}
    for kind in candidates:
        base = workdir / f"history-{kind}"
        store = base / "live"
        ing = _ingest_with_reader(kind, store, live, samples)
        s = _open(kind, str(store), readonly=True)
        st = s.stats()
        # size: an hour of a 2,000-device site (about 2,600 points every ~10 s), as stored after a clean close
        hstore = base / "hour"
        hnames, hbatches = _load(hour)
        _ingest_with_reader(kind, hstore, hour, sum(b[0].size for b in hbatches))
        h = _open(kind, str(hstore), readonly=True)
        hst = h.stats()
        parts = _size_parts(hstore) if kind == "segments" else None
        if hasattr(h, "close"):
            h.close()
        passes = samples / sum(b[0].size for b in batches)
        at = start + PASS_SECONDS * passes / 2
        state = s.state_at(at)
        state_ms = _median_ms(lambda: s.state_at(at))
        if hasattr(s, "close"):
            s.close()
        # 30-day chart: the month set
        mstore = base / "month"
        mnames, mbatches = _load(month)
        _ingest_with_reader(kind, mstore, month, sum(b[0].size for b in mbatches))
        m = _open(kind, str(mstore), readonly=True)
        pid = int(m.ids([mnames[1]])[0])
        t1 = float(mbatches[-1][1][-1])
        t0 = t1 - 30 * 86400.0
        chart = m.series(pid, t0, t1, 1000)
        chart_ms = _median_ms(lambda: m.series(pid, t0, t1, 1000))
        if hasattr(m, "close"):
            m.close()
        kill = _kill_test(kind, base / "kill", live)
        results[kind] = {
            "rate": ing["received"] / ing["seconds"], "received": ing["received"], "written": st.written,
            "core_share": ing["cpu_s"] / ing["received"] * TARGETS["ingest"],
            "bytes": hst.bytes / max(hst.written, 1), "size_samples": hst.written, "size_parts": parts,
            "live_bytes": st.bytes / max(st.written, 1), "state_ms": state_ms, "state_points": len(state),
            "chart_ms": chart_ms, "chart_buckets": len(chart), "chart_level": chart.level,
            "reads": ing["reads"] + kill["reads"], "read_failures": ing["read_failures"] + kill["read_failures"],
            "read_error": ing["read_error"],
            **{f"kill_{k}": v for k, v in kill.items() if not k.startswith("read")},
        }
    rows = []
    for kind, r in results.items():
        reads = f"{r['reads']} ok" if not r["read_failures"] else f"{r['reads']} ok, {r['read_failures']} refused"
        rows.append([
            kind + (" (default)" if kind == "segments" else ""), f"{r['rate']:,.0f}", f"{r['core_share']:.0%}",
            f"{r['written']:,} / {r['received']:,}", f"{r['bytes']:.2f}",
            f"{r['state_ms']:.0f} ({r['state_points']:,} pts)", f"{r['chart_ms']:.1f} ({r['chart_level']})", reads,
            f"{r['kill_lost']:,} of {r['kill_expected']:,}",
        ])
    print_table(
        f"History store candidates ({npoints:,} points, {samples:,} simulated samples; data prepared in {prep_s:.0f} s)",
        ["store", "ingest samples/s", "CPU at 100k/s", "written / received", "bytes/sample", "state at T ms", "30-day chart ms",
         "reads by another process while writing", "lost after kill -9 (older than 1 s)"],
        rows,
    )
    print("CPU at 100k/s: the writer process's CPU time (all threads) per 100,000 samples, as a share of one core:\n"
          "what recording costs a viewer that ingests 100,000 samples/s on the same machine.")
    seg = results.get("segments")
    if seg and seg["size_parts"]:
        n = seg["size_samples"]
        print(f"bytes/sample: an hour of {len(_load(hour)[0]):,} points ({n:,} samples) after a clean close; "
              "segments: " + ", ".join(f"{k} {v / n:.2f}" for k, v in seg["size_parts"].items()) +
              f"; on the {npoints:,}-point set, {seg['live_bytes']:.2f} (200 s of data: names and rollup rows not yet "
              "amortized)")
    if seg:
        checks = [
            ("ingest >= 100,000 samples/s", seg["rate"] >= TARGETS["ingest"]),
            ("written == received", seg["written"] == seg["received"]),
            ("<= 4 bytes/sample", seg["bytes"] <= TARGETS["bytes"]),
            ("state at T <= 100 ms", seg["state_ms"] <= TARGETS["state_ms"]),
            ("30-day chart <= 50 ms", seg["chart_ms"] <= TARGETS["chart_ms"]),
            ("nothing older than 1 s lost", seg["kill_lost"] == 0),
            ("read while writing", seg["reads"] > 0 and seg["read_failures"] == 0),
        ]
        print("segments against the targets: " + "; ".join(f"{n}: {'yes' if ok else 'NO'}" for n, ok in checks))
        others = [k for k in results if k != "segments"]
        for k in others:
            o = results[k]
            print(f"  vs {k}: ingest {seg['rate'] / o['rate']:.1f}x, size {o['bytes'] / seg['bytes']:.1f}x smaller, "
                  f"state at T {o['state_ms'] / max(seg['state_ms'], 1e-9):.1f}x faster, "
                  f"30-day chart {o['chart_ms'] / max(seg['chart_ms'], 1e-9):.1f}x faster")
        print(flush=True)
    return results


def bench_history_from_env(workdir: Path) -> dict:
    """Sizes from TWINVIEW_BENCH_HISTORY_DEVICES (76000: about 100,000 points), _SAMPLES (2,000,000)
    _SIZE_DEVICES (2000: the site whose hour of telemetry measures bytes/sample) and _MONTH_DEVICES
    (20: the site simulated for 30 days for the chart)."""
    devices = int(os.environ.get("TWINVIEW_BENCH_HISTORY_DEVICES", "76000"))
    samples = int(os.environ.get("TWINVIEW_BENCH_HISTORY_SAMPLES", "2000000"))
    size_devices = int(os.environ.get("TWINVIEW_BENCH_HISTORY_SIZE_DEVICES", "2000"))
    month_devices = int(os.environ.get("TWINVIEW_BENCH_HISTORY_MONTH_DEVICES", "20"))
    return bench_history(workdir, devices, samples, size_devices=size_devices, month_devices=month_devices)


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "ingest":
        kind, store, data, total, block_seconds = argv[1:6]
        print(json.dumps(worker_ingest(kind, store, data, int(total), float(block_seconds))))
        return 0
    if mode == "paced":
        worker_paced(*argv[1:4])
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
