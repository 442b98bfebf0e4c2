"""A real mosquitto for tests: start on a free port, kill, restart on the same port.

The broker itself lives in twinview.connectors.mqtt.localbroker (benchmarks use it too);
this module adds the pytest side: skip when the binary is missing, and helpers
that drive the real mosquitto_pub / mosquitto_sub command-line clients.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from twinview.connectors.mqtt.localbroker import LocalBroker, mosquitto_binary

__all__ = ["LocalBroker", "require_mosquitto", "mosquitto_pub", "start_mosquitto_sub", "wait_until"]


def require_mosquitto() -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not found (Debian: apt-get install mosquitto mosquitto-clients)")


def _client_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found (Debian: apt-get install mosquitto-clients)")
    return path


def mosquitto_pub(
    broker: LocalBroker,
    topic: str,
    payload: bytes | str | None = None,
    *,
    lines: list[str] | None = None,
    qos: int = 1,
    retain: bool = False,
    v5: bool = True,
    tmp: Path | None = None,
) -> None:
    """Publish with the real mosquitto_pub CLI: one payload (text or binary via -f) or one message per line (-l)."""
    cmd = [_client_binary("mosquitto_pub"), "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if v5:
        cmd += ["-V", "mqttv5"]
    if retain:
        cmd.append("-r")
    stdin = None
    if lines is not None:
        cmd.append("-l")
        stdin = ("\n".join(lines) + "\n").encode()
    elif isinstance(payload, bytes):
        assert tmp is not None, "binary payloads go through a file"
        f = tmp / f"payload-{time.monotonic_ns()}.bin"
        f.write_bytes(payload)
        cmd += ["-f", str(f)]
    elif payload is None:
        cmd.append("-n")
    else:
        cmd += ["-m", payload]
    subprocess.run(cmd, input=stdin, check=True, timeout=10, capture_output=True)


def start_mosquitto_sub(broker: LocalBroker, topic: str, *extra: str) -> subprocess.Popen:
    """A long-running mosquitto_sub (e.g. with --will-topic to play a device with a last will)."""
    cmd = [_client_binary("mosquitto_sub"), "-h", broker.host, "-p", str(broker.port), "-t", topic, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
