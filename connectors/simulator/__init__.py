"""The embedded plant simulator: device models, the command side, and an MQTT device fleet."""
