"""Live telemetry all the way to pixels: mosquitto_pub -> broker -> MqttConnector -> twin -> GPU."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from broker import mosquitto_pub, wait_until
from sitegen import grid_site, top_down

from twinview.site import open_site

pytestmark = [pytest.mark.gpu, pytest.mark.broker]


def settle(live, predicate, timeout: float) -> bool:
    """Run frames (update) until predicate holds."""

    def frame_then_check():
        live.step()
        return predicate()

    return wait_until(frame_then_check, timeout)


def aim(view, index):
    p = view.geometry.device_centers[index].copy()
    p[1] = 1.0
    p[2] += 0.32
    return p


def test_published_values_change_the_device_pixel_and_an_outage_greys_it(broker, tmp_path):
    from twinview.cli.sources import runtime_from_args
    from twinview.scene.binding import SceneBinding
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    loaded = open_site(grid_site(tmp_path / "grid"))
    view = SiteView(loaded)
    top_down(view)
    off = OffscreenView(view, (320, 240))
    live = runtime_from_args(loaded, SimpleNamespace(mqtt=broker.url, replay=None, ws_ingest=None, no_sim=True,
                                                      audit=str(tmp_path / "audit.jsonl")))
    SceneBinding(live, view)
    live.start()
    try:
        connector = live.connectors[0]
        assert connector.wait_subscribed(10)
        x, y = view.project(aim(view, 4)[None], off.size)[0]

        def pixel():
            live.step()
            return off.render()[int(y), int(x), :3].astype(int)

        # No data yet: the device is drawn as "no data" (grey, striped), not in a colour.
        r, g, b = pixel()
        assert max(r, g, b) - min(r, g, b) < 30

        mosquitto_pub(broker, "grid/B-1-1/temp", "5")  # cold: dark end of the heat map
        assert settle(live, lambda: live.point_state("B-1-1", "temp").value == 5.0, 10)
        cold = pixel()
        mosquitto_pub(broker, "grid/B-1-1/temp", '{"value": 95, "ts": %f}' % time.time())  # hot: bright yellow end
        assert settle(live, lambda: live.point_state("B-1-1", "temp").value == 95.0, 10)
        hot = pixel()
        assert hot.sum() > cold.sum() + 150, (cold, hot)
        assert hot[0] > hot[2] + 50, f"hot is warm-coloured: {hot}"

        # A payload that is not a number is bad: counted, shown, and the next good value still lands.
        mosquitto_pub(broker, "grid/B-1-1/temp", "NaN")
        assert settle(live, lambda: live.point_state("B-1-1", "temp").quality.name == "BAD", 10)
        assert connector.stats.bad + live.state.counters["bad"] >= 1
        mosquitto_pub(broker, "grid/B-1-1/temp", "40")
        assert settle(live, lambda: live.point_state("B-1-1", "temp").value == 40.0, 10)
        assert live.point_state("B-1-1", "temp").quality.name == "GOOD"

        # The broker goes away: the value is no longer current and must not look current.
        broker.kill()
        assert settle(live, lambda: live.point_state("B-1-1", "temp").quality.name == "STALE", 15)
        r, g, b = pixel()
        assert max(r, g, b) - min(r, g, b) < 40, f"stale shows grey, got {(r, g, b)}"
    finally:
        live.stop()
