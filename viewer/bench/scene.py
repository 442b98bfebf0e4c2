"""Scene benchmarks: load time, frame time and peak memory, ours against one Mesh per device.

Each measurement runs in its own process (python -m twinview.bench.scene ...)
so peak memory (ru_maxrss) belongs to that configuration alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frames(draw, n: int, prep) -> dict:
    """Median frame time, and its Python part: scene preparation before GPU submission.

    The Python part is what grows with the number of objects; the rest is GPU
    work (on lavapipe, rasterizing on the CPU) and reading the image back.
    """
    t = time.perf_counter()
    draw()
    first = time.perf_counter() - t
    times, preps = [], []
    for _ in range(n):
        t = time.perf_counter()
        draw()
        times.append(time.perf_counter() - t)
        preps.append(prep())
    return {"first_ms": first * 1000, "frame_ms": statistics.median(times) * 1000, "python_ms": statistics.median(preps) * 1000}


def measure(site_dir: Path, mode: str, frames: int, size: tuple[int, int], changing: float = 0.0) -> dict:
    """One configuration: mode 'ours' (two SiteMesh draws) or 'per-mesh' (one gfx.Mesh per model node)."""
    import numpy as np

    from twinview.site import open_site

    t0 = time.perf_counter()
    loaded = open_site(site_dir)
    t_model = time.perf_counter() - t0
    if mode == "ours":
        from twinview.scene.offscreen import OffscreenView
        from twinview.scene.view import SiteView

        view = SiteView(loaded)
        load_s = time.perf_counter() - t0
        off = OffscreenView(view, size)
        n = len(view.device_ids)
        rng = np.random.default_rng(0)
        k = int(round(n * changing))

        def draw():
            if k:
                idx = rng.choice(n, size=k, replace=False) if k < n else np.arange(n)
                rgba = np.c_[rng.random((k, 3)), np.ones(k)].astype(np.float32)
                view.set_looks(idx, rgba, np.zeros(k))
            off.render()

        stats = _frames(draw, frames, lambda: off.prep_seconds)
    else:
        stats, load_s = _per_mesh(loaded, frames, size, t0)
    return {
        "mode": mode,
        "devices": len(loaded.site.devices),
        "load_s": load_s,
        "model_s": t_model,
        **stats,
        "peak_mb": _peak_rss_mb(),
        "changing": changing,
        "draws": len(view.meshes) if mode == "ours" else None,
    }


def _per_mesh(loaded, frames: int, size: tuple[int, int], t0: float):
    """The naive baseline: each device node becomes its own gfx.Mesh with a Phong material."""
    import numpy as np
    import pygfx as gfx
    from rendercanvas.offscreen import RenderCanvas

    scene = gfx.Scene()
    sun = gfx.DirectionalLight()
    sun.local.position = (1, 2, 1)
    scene.add(gfx.AmbientLight(0.4), sun)
    model = loaded.model
    # Every node with geometry is its own Mesh: device bodies, moving parts and scenery alike,
    # so both renderers fill the same pixels.
    for node in model.nodes.values():
        for g in node.geometry:
            geo = gfx.Geometry(positions=g.positions, normals=g.normals, indices=g.faces.astype(np.uint32))
            color = tuple(g.colors[0] / 255.0)
            scene.add(gfx.Mesh(geo, gfx.MeshPhongMaterial(color=color, pick_write=True)))
    from twinview.scene.view import frame_site

    camera = gfx.PerspectiveCamera(45, size[0] / size[1])
    camera.world.reference_up = (0, 1, 0)
    frame_site(camera, model.bounds, loaded.site)  # the same view as ours: same pixels to fill
    load_s = time.perf_counter() - t0
    canvas = RenderCanvas(size=size, pixel_ratio=1)
    renderer = gfx.WgpuRenderer(canvas, pixel_scale=1, ppaa="none")
    prep = [0.0]

    def render():
        t0 = time.perf_counter()
        renderer.render(scene, camera, flush=False)
        prep[0] = time.perf_counter() - t0
        renderer.flush()

    def draw():
        canvas.request_draw(render)
        canvas.draw()

    return _frames(draw, frames, lambda: prep[0]), load_s


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("site")
    p.add_argument("--mode", choices=("ours", "per-mesh"), default="ours")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", default="640x360")
    p.add_argument("--changing", type=float, default=0.0)
    a = p.parse_args(argv)
    w, h = (int(v) for v in a.size.split("x"))
    print(json.dumps(measure(Path(a.site), a.mode, a.frames, (w, h), a.changing)))


if __name__ == "__main__":
    main(sys.argv[1:])
