"""The default camera shows the whole model, whatever its shape; a render says no spurious 'error'."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from gltfgen import triangle_doc, write_site

from twinview.site import open_site

pytestmark = pytest.mark.gpu


def gray(image: np.ndarray) -> np.ndarray:
    """Model pixels (neutral grey) against the bluish background gradient."""
    rgb = image[:, :, :3].astype(int)
    return (np.abs(rgb[:, :, 2] - rgb[:, :, 0]) < 10) & (rgb.sum(axis=2) > 150)


@pytest.mark.parametrize("size", [(1280, 720), (640, 640), (400, 800)])
def test_one_triangle_is_framed_whole(tmp_path, size):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(open_site(write_site(tmp_path / "one", triangle_doc([{"name": "A", "mesh": 0}], [0]))))
    off = OffscreenView(view, size)
    view.fit()  # frame for this picture's shape
    image = off.render()
    model = gray(image)
    border = np.r_[model[0], model[-1], model[:, 0], model[:, -1]]
    assert model.mean() > 0.05, "the triangle should fill a fair part of the picture"
    assert not border.any(), "the triangle is cut off at the picture's edge"
    corners = view.project(view.geometry.positions, size)
    assert ((corners >= 0) & (corners <= size)).all(), corners


def test_render_without_xdg_runtime_dir_prints_no_error(tmp_path):
    site = write_site(tmp_path / "one", triangle_doc([{"name": "A", "mesh": 0}], [0]))
    env = dict(os.environ, RENDERCANVAS_FORCE_OFFSCREEN="1")
    env.pop("XDG_RUNTIME_DIR", None)
    for runtime_dir in (None, str(tmp_path / "missing")):
        if runtime_dir:
            env["XDG_RUNTIME_DIR"] = runtime_dir
        result = subprocess.run([sys.executable, "-m", "twinview.cli", "render", str(site), "--out", str(tmp_path / "x.png"),
                                 "--quality", "fast"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "error" not in (result.stdout + result.stderr).lower(), result.stderr
        assert result.stdout.strip() == f"wrote {tmp_path / 'x.png'} (1280x720)"
