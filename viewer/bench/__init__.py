"""`twinview bench`: figures that matter, each against a baseline measured in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .table import print_table


def _worker(module: str, *args: str) -> dict:
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{module} failed: {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scene(sizes: list[int], frames: int, size: tuple[int, int], workdir: Path) -> None:
    from twinview.site.synthetic import generate_site

    rows = []
    for n in sizes:
        site = workdir / f"site-{n}"
        if not (site / "site.toml").exists():
            generate_site(site, n, seed=0)
        size_arg = f"{size[0]}x{size[1]}"
        ours = _worker("twinview.bench.scene", str(site), "--mode", "ours", "--frames", str(frames), "--size", size_arg)
        # Few frames for the baseline: at 20k meshes one frame takes seconds.
        base_frames = str(max(2, min(frames, 5 if n > 5000 else frames)))
        base = _worker("twinview.bench.scene", str(site), "--mode", "per-mesh", "--frames", base_frames, "--size", size_arg)
        def row(label, r, versus):
            return [label, f"{r['devices']:,}", f"{r['load_s']:.2f}", f"{r['first_ms']:.0f}", f"{r['frame_ms']:.1f}",
                    f"{r['python_ms']:.2f}", f"{r['peak_mb']:.0f}", versus]

        def versus(r):
            return (f"{base['python_ms'] / max(r['python_ms'], 1e-6):.0f}x less Python, "
                    f"{base['frame_ms'] / r['frame_ms']:.2f}x as fast")

        rows.append(row(f"ours ({ours['draws']} draws)", ours, versus(ours)))
        rows.append(row("baseline: one Mesh per node", base, "baseline"))
        for share in (0.01, 1.0):
            r = _worker("twinview.bench.scene", str(site), "--mode", "ours", "--frames", str(frames), "--size", size_arg,
                        "--changing", str(share))
            rows.append(row(f"ours, {share:.0%} devices change/frame", r,
                            f"{r['frame_ms'] / ours['frame_ms']:.2f}x static frame"))
    print_table(
        f"Scene ({size[0]}x{size[1]}, offscreen, median of {frames} frames; Python = scene preparation before GPU submit)",
        ["renderer", "devices", "load s", "first frame ms", "frame ms", "Python ms", "peak MB", "comparison"],
        rows,
    )
    print("frame ms includes GPU work; without a GPU (lavapipe) that is rasterizing on the CPU and grows with\n"
          "triangles for both renderers. Python ms is the part that one Mesh per node makes grow with the site.")


def run_bench(args) -> int:
    sizes = [int(s) for s in str(args.devices).split(",") if s.strip()]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    with tempfile.TemporaryDirectory(prefix="twinview-bench-") as tmp:
        workdir = Path(tmp)
        if not only or "scene" in only:
            bench_scene(sizes, args.frames, args.size, workdir)
        if not only or only & {"ingest", "pipeline"}:
            from .telemetry import bench_telemetry

            bench_telemetry(workdir, sizes, only)
        if not only or "alarms" in only:
            from .alarms import bench_alarms

            bench_alarms(sizes)
        if not only or "web" in only:
            try:
                from .web import bench_web
            except ImportError:
                bench_web = None
            if bench_web is not None:
                bench_web(workdir, sizes)
        if not only or "faults" in only:
            from .faults import bench_faults

            bench_faults(workdir / "faults")
        if not only or "history" in only:
            from .history import bench_history_from_env

            bench_history_from_env(workdir)
        if not only or "detect" in only:
            from .detect import bench_detect

            bench_detect(workdir / "detect")
    return 0
