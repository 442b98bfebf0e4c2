"""Create pygfx renderers with settings that suit the device: full quality on a GPU,
affordable settings on a software rasterizer (lavapipe), where pygfx's defaults
(2x supersampling plus DDAA) cost seconds per frame."""

from __future__ import annotations

import pygfx as gfx


def is_software_adapter() -> bool:
    """True when wgpu runs on a CPU adapter (e.g. Mesa's lavapipe)."""
    try:
        info = gfx.renderers.wgpu.get_shared().adapter.info
    except Exception:
        return False
    return str(info.get("adapter_type", "")).lower() == "cpu" or "llvmpipe" in str(info.get("vendor", "")).lower()


def make_renderer(canvas, quality: str = "auto") -> gfx.WgpuRenderer:
    """quality: 'fast' (tests, benchmarks), 'high' (screenshots), or 'auto' (interactive)."""
    if quality == "auto":
        quality = "interactive-cpu" if is_software_adapter() else "high"
    if quality == "fast":
        return gfx.WgpuRenderer(canvas, pixel_scale=1, ppaa="none")
    if quality == "interactive-cpu":
        return gfx.WgpuRenderer(canvas, pixel_scale=1, ppaa="fxaa")
    return gfx.WgpuRenderer(canvas, pixel_scale=2, ppaa="default")
