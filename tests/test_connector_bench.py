"""The ingest benchmark functions run and report consistent counts (speed itself is not asserted)."""

from __future__ import annotations

import pytest

from broker import require_mosquitto
from twinview.bench.ingest import bench_latency, bench_mqtt_ingest, bench_pipeline


@pytest.mark.broker
def test_mqtt_ingest_and_latency_report_counts():
    require_mosquitto()
    r = bench_mqtt_ingest(messages=600, devices=50, qos=1)
    for side in ("bare", "pipeline"):
        assert r[side]["sent"] == 600
        assert r[side]["delivered"] == 600  # QoS 1 on loopback: nothing lost
        assert r[side]["msgs_per_s"] > 0
    assert r["pipeline"]["bad"] == 0
    lat = bench_latency(messages=150, rate=300.0, devices=20)
    assert lat["delivered"] == 150
    assert lat["p50_ms"] is not None and lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]


def test_in_process_pipeline_reports_its_stages():
    r = bench_pipeline(devices=400, seconds=2.0)
    assert r["samples"] >= r["points"]  # at least the first full report
    assert r["samples"] > 0 and r["samples_per_s"] > 0
    assert r["sim_s"] > 0 and r["step_s"] > 0
