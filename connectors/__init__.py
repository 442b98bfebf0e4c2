"""Telemetry sources and command sinks: simulator, MQTT, websocket ingest, replay."""
