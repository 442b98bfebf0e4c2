"""MQTT: telemetry in (paho), commands out (MQTT 5), and a private broker for tests and benchmarks."""
