"""The truth benchmark's scenarios as tests: every fault shown within its deadline, nothing shown optimistically."""

from __future__ import annotations

import pytest
from broker import require_mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    require_mosquitto()
    from twinview.bench.faults import run_faults

    return {o.fault: o for o in run_faults(tmp_path_factory.mktemp("faults"))}


FAULTS = [
    "point silent", "NaN value", "out-of-range value", "timestamp from 1970", "timestamp 3 s ahead",
    "timestamp 3600 s ahead", "duplicated + reordered", "device hangs (last will)", "broker killed (SIGKILL)",
    "command rejected", "command answer lost", "command unheard", "command unheard, value already reported",
    "command while broker down", "twin restarted (late join)", "QoS 1 commands over 10 broker kills",
]


def test_every_fault_is_injected(outcomes):
    assert list(outcomes) == FAULTS


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_shown_in_time_and_never_optimistically(outcomes, fault):
    o = outcomes[fault]
    assert o.verdict == "ok", (o.shown_s, o.deadline_s, o.recovered_s, o.optimistic, o.note)
