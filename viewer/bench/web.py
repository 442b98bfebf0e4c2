"""Web fan-out benchmark: the bridge's per-client deltas against a bare websockets broadcast.

A server process publishes changes of a synthetic site at 10 Hz (a share of
all devices per tick, each entry encoded as the bridge encodes it); N websocket
clients in this process receive everything. Measured over the same window:
server CPU (process CPU time / wall time) and the delay from a change to its
receipt by a client (p50 / p99 over every change batch and client).

Baseline, same run and same bytes: a server that encodes each tick's message
once and hands it to websockets' broadcast() for every client, with no per-client
state (no coalescing for slow clients, no snapshots for late joiners).

Run one server worker by hand: python -m twinview.bench.web serve --mode ours --devices 20000 --port 8799
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from .table import print_table

TICK_HZ = 10.0
SHARE = 0.01  # devices changing per tick
SECONDS = 4.0
CLIENTS = (10, 50)
_SEQ = re.compile(rb'"seq":(\d+)')


# --- server side (a separate process, so its CPU time is its own) -------------------------


def _entries(ids: list[str], idx: list[int], now: float) -> dict:
    from twinview.twin.looks import DeviceLook

    looks = {}
    points = {}
    for i in idx:
        looks[i] = DeviceLook((0.9, 0.35, 0.0, 1.0), 0, (0.5,), f"{now % 1000:.1f} degC")
        points[i] = [("temp", round(now % 1000, 3), "good", now, False), ("state", "running", "good", now, False)]
    return looks, points


def serve(mode: str, devices: int, clients: int, share: float, seconds: float, port: int) -> dict:
    """Wait for `clients` connections, publish for `seconds`, report CPU and publish times."""
    from twinview.web.protocol import device_entry, devices_message

    ids = [f"D{i:05d}" for i in range(devices)]
    k = max(1, int(round(devices * share)))
    publish_times: dict[int, float] = {}
    ready = threading.Event()

    if mode == "ours":
        from twinview.web.bridge import WebBridge

        bridge = WebBridge(ids, port=port, max_rate=TICK_HZ).start()
        looks, points = _entries(ids, list(range(devices)), time.time())
        bridge.publish_changes(looks, points)  # a full first snapshot
        # ready to measure once every client has its first snapshot (3 MB each at 20,000 devices)
        count = lambda: min(bridge.client_count(), bridge.stats.snapshots)  # noqa: E731

        def publish(seq: int, idx: list[int]) -> None:
            looks, points = _entries(ids, idx, time.time())
            publish_times[seq + 1] = time.monotonic()  # the bridge's seq after this publish
            bridge.publish_changes(looks, points)

        stop = bridge.stop
    else:
        from websockets.asyncio.server import broadcast, serve as ws_serve

        loop_box: dict = {}
        conns: set = set()

        async def handler(ws):
            conns.add(ws)
            try:
                await ws.wait_closed()
            finally:
                conns.discard(ws)

        async def main():
            loop_box["loop"] = asyncio.get_running_loop()
            loop_box["stop"] = asyncio.Event()
            async with ws_serve(handler, "127.0.0.1", port, compression=None, max_size=2**20):
                ready.set()
                await loop_box["stop"].wait()

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        ready.wait(10)
        count = lambda: len(conns)  # noqa: E731

        def publish(seq: int, idx: list[int]) -> None:
            looks, points = _entries(ids, idx, time.time())
            publish_times[seq + 1] = time.monotonic()  # as for ours: the change, before encoding
            frags = [device_entry(ids[i], looks[i].rgba, looks[i].flags, looks[i].label, looks[i].motions, points[i]) for i in idx]
            message = devices_message("delta", seq + 1, frags).encode()
            loop_box["loop"].call_soon_threadsafe(lambda: broadcast(conns, message))

        def stop() -> None:
            loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
            thread.join(5)

    _entries(ids, [0], time.time())  # imports done before the measured window
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + 60
    while count() < clients and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # let the first messages settle before measuring

    cpu0, wall0 = time.process_time(), time.monotonic()
    seq = 1 if mode == "ours" else 0
    offset = 0
    next_t = wall0
    while time.monotonic() - wall0 < seconds:
        idx = [(offset + j) % devices for j in range(k)]
        offset = (offset + k) % devices
        publish(seq, idx)
        seq += 1
        next_t += 1.0 / TICK_HZ
        time.sleep(max(0.0, next_t - time.monotonic()))
    time.sleep(0.3)  # the last tick's delivery
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    stop()
    return {"cpu": cpu, "wall": wall, "changes_per_tick": k, "publish": publish_times}


# --- client side ----------------------------------------------------------------------------


async def _clients(port: int, n: int) -> list[list[tuple[int, float, int]]]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def one(log: list) -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None, compression=None, open_timeout=30) as ws:
            try:
                async for data in ws:
                    now = time.monotonic()
                    raw = data if isinstance(data, bytes) else data[:64].encode()
                    m = _SEQ.search(raw[:64])
                    if m is not None:
                        log.append((int(m.group(1)), now, len(data)))
            except ConnectionClosed:
                pass

    logs: list[list] = [[] for _ in range(n)]
    await asyncio.gather(*(one(log) for log in logs), return_exceptions=True)
    return logs


def _run(mode: str, devices: int, clients: int, share: float, seconds: float) -> dict:
    from twinview.connectors.mqtt.localbroker import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "twinview.bench.web", "serve", "--mode", mode, "--devices", str(devices),
           "--clients", str(clients), "--share", str(share), "--seconds", str(seconds), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"web bench server did not start: {proc.stderr.read()[-500:]}")
        logs = asyncio.run(_clients(port, clients))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"web bench server failed: {err.strip().splitlines()[-1:] if err else ''}")
    result = json.loads(out.strip().splitlines()[-1])
    publish = {int(s): t for s, t in result["publish"].items()}
    delays = []
    received_bytes = 0
    complete = 0
    for log in logs:
        seen = 0
        got = set()
        for seq, t, size in log:
            fresh = [s for s in publish if seen < s <= seq]  # change batches this message delivered
            delays.extend(t - publish[s] for s in fresh)
            got.update(fresh)
            if fresh:
                received_bytes += size
            seen = max(seen, seq)
        complete += got == set(publish)
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000 if delays else float("nan")  # noqa: E731
    return {
        "cpu_pct": 100.0 * result["cpu"] / result["wall"],
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "changes_per_tick": result["changes_per_tick"],
        "mb_per_s": received_bytes / result["wall"] / 1e6,
        "complete": complete,
    }


def bench_web(workdir: Path, sizes: list[int], clients: tuple[int, ...] = CLIENTS, share: float = SHARE,
              seconds: float = SECONDS) -> None:
    """Print the fan-out table: ours vs bare broadcast, for each site size and client count."""
    rows = []
    for devices in sizes:
        for n in clients:
            ours = _run("ours", devices, n, share, seconds)
            base = _run("broadcast", devices, n, share, seconds)
            for name, r in (("ours (per-client deltas)", ours), ("bare broadcast", base)):
                rows.append([
                    name, f"{devices:,}", str(n), f"{r['changes_per_tick'] * TICK_HZ:,.0f}", f"{r['cpu_pct']:.0f}",
                    f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['mb_per_s']:.1f}", f"{r['complete']}/{n}",
                    f"{ours['cpu_pct'] / base['cpu_pct']:.2f}x CPU" if r is ours else "baseline",
                ])
    print_table(
        f"Web fan-out ({TICK_HZ:.0f} Hz ticks, {share:.0%} of devices change per tick, {seconds:.0f} s per run)",
        ["server", "devices", "clients", "changes/s", "server CPU %", "delay p50 ms", "delay p99 ms", "MB/s out",
         "got all", "vs baseline"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m twinview.bench.web")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("serve", help="one server worker (used by bench_web)")
    s.add_argument("--mode", choices=("ours", "broadcast"), required=True)
    s.add_argument("--devices", type=int, default=20000)
    s.add_argument("--clients", type=int, default=10)
    s.add_argument("--share", type=float, default=SHARE)
    s.add_argument("--seconds", type=float, default=SECONDS)
    s.add_argument("--port", type=int, required=True)
    b = sub.add_parser("run", help="the whole table")
    b.add_argument("--devices", default="1000,20000")
    b.add_argument("--clients", default="10,50")
    b.add_argument("--seconds", type=float, default=SECONDS)
    args = p.parse_args(argv)
    if args.what == "serve":
        result = serve(args.mode, args.devices, args.clients, args.share, args.seconds, args.port)
        print(json.dumps(result), flush=True)
        return 0
    sizes = [int(v) for v in args.devices.split(",") if v.strip()]
    clients = tuple(int(v) for v in args.clients.split(",") if v.strip())
    bench_web(Path("."), sizes, clients, seconds=args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
