"""Devices that nest in the model: the innermost owns its subtree, the outer device the rest.

Before, the first device in the manifest took every node below it: the pump and motor
inside a line showed the line's colour, had no label and could not be picked.
"""

from __future__ import annotations

import numpy as np
import pytest

from nestgen import nested_site
from sitegen import top_down

from twinview.site import check_site, node_owners, open_site

COLORS = {"LINE": (1.0, 0.0, 0.0, 1.0), "P1": (0.0, 1.0, 0.0, 1.0), "M1": (0.0, 0.0, 1.0, 1.0), "P2": (1.0, 1.0, 0.0, 1.0)}
# A point on each device's top that no other device covers, seen from above.
TOPS = {"LINE": (3.5, 0.2, 0.0), "P1": (-2.0, 1.2, -0.3), "M1": (-2.0, 0.7, 1.2), "P2": (2.0, 1.2, 0.0)}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return open_site(nested_site(tmp_path_factory.mktemp("nested")))


def test_innermost_device_owns_its_subtree(loaded):
    owners = node_owners(loaded.site, loaded.model)
    ids = [d.id for d in loaded.site.devices]
    assert {n: ids[i] for n, i in owners.items()} == {"Line": "LINE", "Pump1": "P1", "Motor1": "M1", "Pump2": "P2"}


def test_manifest_order_does_not_matter(tmp_path):
    from nestgen import NESTED_TOML

    head, _, devices = NESTED_TOML.partition("[[devices]]")
    blocks = ["[[devices]]" + b for b in devices.split("[[devices]]")]
    site = open_site(nested_site(tmp_path / "reversed", head + "".join(reversed(blocks))))
    ids = [d.id for d in site.site.devices]
    assert ids[0] == "P2"
    assert {n: ids[i] for n, i in node_owners(site.site, site.model).items()}["Motor1"] == "M1"
    assert [p for p in check_site(tmp_path / "reversed") if p.severity == "error"] == []


@pytest.mark.gpu
def test_each_nested_device_shows_its_colour_label_and_is_picked(loaded):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(loaded)
    off = OffscreenView(view, (640, 480))
    top_down(view, height=12.0)
    idx = np.arange(len(view.device_ids))
    view.set_looks(idx, np.asarray([COLORS[d] for d in view.device_ids], np.float32), np.zeros(len(idx), np.uint32))
    for d in view.device_ids:
        view.labels.set_text(view.index_of(d), d)
    image = off.render()
    for device, point in TOPS.items():
        x, y = view.project(np.asarray([point]), (640, 480))[0]
        pixel = image[int(y), int(x), :3].astype(int)
        want = (np.asarray(COLORS[device][:3]) * 255).astype(int)
        assert (np.abs(pixel - want) < 90).all() and pixel[want == 0].max() < 90, f"{device} at ({x:.0f},{y:.0f}): {pixel}"
        assert off.pick(x, y) == view.index_of(device), device
    assert np.isfinite(view.geometry.device_bounds).all(), "every device has its own bounds (a label anchor)"
    assert sorted(view.labels.slot_of) == sorted(idx.tolist()), "every device's label shows"
    view.select(view.index_of("M1"))
    selected = off.render()
    x, y = view.project(np.asarray([TOPS["M1"]]), (640, 480))[0]
    assert not np.array_equal(selected[int(y), int(x)], image[int(y), int(x)]), "selecting the motor highlights it"
    x, y = view.project(np.asarray([TOPS["P1"]]), (640, 480))[0]
    assert np.array_equal(selected[int(y), int(x)], image[int(y), int(x)]), "and not the pump around it"


def test_an_outer_device_left_with_nothing_of_its_own_is_a_warning(tmp_path):
    """A line that is a bare group of its pumps would be a ghost: no colour, no label, nothing to pick."""
    root = nested_site(tmp_path / "ghost", line_mesh=False)
    warnings = [str(p) for p in check_site(root) if p.severity == "warning"]
    assert any(
        "devices[0] (LINE).node: everything with geometry below node 'Line' belongs to the devices nested in it "
        "(M1, P1, P2): this device has nothing of its own to colour, label or pick" in w for w in warnings
    ), warnings
    assert not [str(p) for p in check_site(nested_site(tmp_path / "solid")) if "nothing of its own" in p.message]


def test_the_web_page_gets_each_nested_device_once(loaded):
    """The GLB the page loads holds every triangle of the model once, under the device that owns it."""
    from twinview.web.export import build_gltf

    doc, _ = build_gltf(loaded)
    by_device: dict[str, int] = {}
    for node in doc["nodes"]:
        device = (node.get("extras") or {}).get("device")
        if device is None or "mesh" not in node:
            continue
        for prim in doc["meshes"][node["mesh"]]["primitives"]:
            by_device[device] = by_device.get(device, 0) + doc["accessors"][prim["indices"]]["count"] // 3
    model = loaded.model
    owners = node_owners(loaded.site, model)
    ids = [d.id for d in loaded.site.devices]
    expected: dict[str, int] = {}
    for name, i in owners.items():
        expected[ids[i]] = expected.get(ids[i], 0) + sum(len(g.faces) for g in model.nodes[name].geometry)
    assert by_device == {k: v for k, v in expected.items() if v}
