"""Build the telemetry sources a command line names (the embedded simulator by default)."""

from __future__ import annotations

from typing import Any

from twinview.connectors.base import Connector
from twinview.site import LoadedSite
from twinview.twin.topics import TopicMap


def connectors_from_args(loaded: LoadedSite, twin: Any, args: Any) -> list[Connector]:
    """--mqtt, --replay and --ws-ingest sources; the simulator when none is named and --no-sim is absent."""
    site = loaded.site
    topic_map = TopicMap(site)
    connectors: list[Connector] = []
    mqtt_url = getattr(args, "mqtt", None)
    replay = getattr(args, "replay", None)
    ws_ingest = getattr(args, "ws_ingest", None)
    if mqtt_url:
        from twinview.connectors.mqtt import MqttConnector

        connectors.append(
            MqttConnector(
                mqtt_url,
                topic_map,
                protocol="3.1.1" if getattr(args, "mqtt_v311", False) else None,
                ca_file=getattr(args, "ca", None),
                cert_file=getattr(args, "cert", None),
                key_file=getattr(args, "key", None),
            )
        )
    if replay:
        from twinview.connectors.replay import ReplayConnector

        connectors.append(ReplayConnector(replay, topic_map, speed=getattr(args, "replay_speed", 1.0)))
    if ws_ingest:
        from twinview.connectors.websocket_ingest import WebSocketIngest

        host, _, port = ws_ingest.rpartition(":")
        connectors.append(WebSocketIngest(host or "127.0.0.1", int(port), topic_map))
    if not connectors and not getattr(args, "no_sim", False):
        from twinview.connectors.simulator import Simulator

        connectors.append(Simulator(site))
    return connectors
