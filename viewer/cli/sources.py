"""The composition root: a runtime with the sources and command transport a command line names.

Only the command line (and tests) build connectors; views get a runtime.
"""

from __future__ import annotations

from typing import Any

from twinview.connectors.base import Connector
from twinview.site import LoadedSite
from twinview.connectors.wire.topics import TopicMap
from twinview.twin.runtime import Runtime


def connectors_from_args(loaded: LoadedSite, args: Any) -> list[Connector]:
    """--mqtt, --replay and --ws-ingest sources; the simulator when none is named and --no-sim is absent."""
    site = loaded.site
    topic_map = TopicMap(site)
    connectors: list[Connector] = []
    mqtt_url = getattr(args, "mqtt", None)
    replay = getattr(args, "replay", None)
    ws_ingest = getattr(args, "ws_ingest", None)
    if mqtt_url:
        from twinview.connectors.mqtt.telemetry import MqttConnector

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
        from twinview.connectors.replay.recording import ReplayConnector

        connectors.append(ReplayConnector(replay, topic_map, speed=getattr(args, "replay_speed", 1.0)))
    if ws_ingest:
        from twinview.connectors.websocket.ingest import WebSocketIngest

        host, _, port = ws_ingest.rpartition(":")
        connectors.append(WebSocketIngest(host or "127.0.0.1", int(port), topic_map))
    if not connectors and not getattr(args, "no_sim", False):
        from twinview.connectors.simulator.plant import Simulator

        connectors.append(Simulator(site, batched=True))
    return connectors


def command_transport_from_args(loaded: LoadedSite, connectors: list[Connector], args: Any):
    """(transport, principal) for commands: MQTT when --mqtt is given, else the embedded simulator.

    With the simulator alone (the demo plant, no real devices) the viewer acts as a
    local operator; with a broker, nobody may actuate until signed in.
    """
    from twinview.security.auth import Principal

    mqtt_url = getattr(args, "mqtt", None)
    if mqtt_url:
        from twinview.connectors.mqtt.commands import MqttCommandTransport

        transport = MqttCommandTransport(
            mqtt_url,
            loaded.site.topic_prefix,
            ca_file=getattr(args, "ca", None),
            cert_file=getattr(args, "cert", None),
            key_file=getattr(args, "key", None),
        )
        transport.start()
        return transport, None
    simulators = [c for c in connectors if type(c).__name__ == "Simulator"]
    if simulators:
        from twinview.connectors.simulator.commands import SimulatorTransport

        return SimulatorTransport(simulators[0]), Principal("local-operator", "operator")
    return None, None


def runtime_from_args(loaded: LoadedSite, args: Any) -> Runtime:
    """The twin for a command line: its sources (the simulator unless another is named) and commands."""
    runtime = Runtime(loaded.site)
    for connector in connectors_from_args(loaded, args):
        runtime.add_connector(connector)
    transport, principal = command_transport_from_args(loaded, runtime.connectors, args)
    if transport is not None:
        runtime.enable_commands(transport, principal, getattr(args, "audit", None))
    enable_alarms_from_args(runtime, args)
    return runtime


def enable_alarms_from_args(runtime: Runtime, args: Any) -> Any:
    """The runtime evaluates the site's alarms wherever it runs; state and history in the site's alarm journal."""
    from twinview.twin.alarms import default_store_path
    from twinview.twin.audit import default_audit_path

    store = getattr(args, "alarm_store", None) or default_store_path(runtime.site.name)
    audit = getattr(args, "audit", None) or default_audit_path(runtime.site.name)
    engine = runtime.enable_alarms(store, audit)
    mqtt_url = getattr(args, "mqtt", None)
    if mqtt_url:  # active alarms as retained JSON under {prefix}/_alarms/... for other systems
        from twinview.connectors.mqtt.alarms import MqttAlarmPublisher

        publisher = MqttAlarmPublisher(runtime, mqtt_url, runtime.site.topic_prefix, ca_file=getattr(args, "ca", None),
                                       cert_file=getattr(args, "cert", None), key_file=getattr(args, "key", None))  # fmt: skip
        runtime.on_stop(publisher.stop)
        publisher.start()
    hooks = getattr(args, "alarm_webhook", None)
    if hooks:
        from twinview.connectors.webhook.alarms import AlarmWebhook, parse_webhooks

        webhook = AlarmWebhook(runtime, parse_webhooks(hooks))
        runtime.on_stop(webhook.stop)
        webhook.start()
    return engine
