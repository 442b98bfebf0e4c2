"""Prometheus text format for `twinview serve`'s /metrics: what the twin received, applied, refused and why.

Read from the bridge's thread: counters are plain integers the runtime's thread
writes, so a scrape sees each one whole (never torn), possibly a step behind.
"""

from __future__ import annotations

from typing import Any

from twinview.twin.runtime import Runtime
from twinview.twin.vocabulary import Quality

LINK_STATES = ("connecting", "up", "degraded", "down")


def _name(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


class Metrics:
    """Builds the /metrics page for one runtime and its web bridge."""

    def __init__(self, runtime: Runtime, bridge: Any = None):
        self.runtime = runtime
        self.bridge = bridge

    def __call__(self) -> str:
        rt = self.runtime
        s = rt.state
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP twinview_{name} {help_text}")
            out.append(f"# TYPE twinview_{name} {kind}")
            for labels, value in samples:
                out.append(f"twinview_{name}{labels} {value}")

        metric("samples_received_total", "counter", "Messages connectors received, by connector.",
               [(f'{{connector="{_name(c.name)}"}}', _stat(c, "received")) for c in rt.connectors])
        metric("samples_applied_total", "counter", "Good samples applied to the twin.", [("", s.samples)])
        metric("samples_bad_total", "counter", "Samples that could not be trusted (decode, type, range).", [("", s.bad)])
        metric("samples_out_of_order_total", "counter", "Samples older than the point's latest, not applied.",
               [("", s.out_of_order)])
        metric("samples_unknown_total", "counter", "Samples for points the site does not have.", [("", s.unknown)])
        metric("samples_dropped_total", "counter", "Messages a connector dropped or could not route, by connector.",
               [(f'{{connector="{_name(c.name)}"}}', _stat(c, "unknown_topic")) for c in rt.connectors])
        counts = s.quality_counts()
        metric("points", "gauge", "Points by quality.", [(f'{{quality="{q.label}"}}', counts[q.label]) for q in Quality])
        links = rt.link_states()
        metric("link_up", "gauge", "1 when a connector's link is in this state.",
               [(f'{{connector="{_name(c.name)}",state="{st}"}}', int(getattr(links.get(c.name), "state", "") == st))
                for c in rt.connectors for st in LINK_STATES])  # fmt: skip
        if rt.commands is not None:
            outcomes: dict[str, int] = {}
            try:
                recent = rt.commands.recent(n=10_000)
            except RuntimeError:  # the runtime's thread changed it mid-copy: this scrape goes without
                recent = []
            for cmd in recent:
                outcomes[str(cmd.state)] = outcomes.get(str(cmd.state), 0) + 1
            metric("commands", "gauge", "Commands this server remembers, by state.",
                   [(f'{{state="{k}"}}', v) for k, v in sorted(outcomes.items())])
        metric("errors_total", "counter", "Counted errors, by kind (audit writes, event handlers, steps).",
               [(f'{{kind="{_name(k)}"}}', v) for k, v in rt.counted_errors().items()])
        metric("step_seconds", "gauge", "Duration of the runtime's last step (a frame's twin work).",
               [("", round(rt.stats.step_seconds, 6))])
        metric("steps_total", "counter", "Runtime steps.", [("", rt.stats.steps)])
        if self.bridge is not None:
            metric("web_clients", "gauge", "Pages connected.", [("", self.bridge.client_count())])
        return "\n".join(out) + "\n"


def _stat(connector: Any, key: str) -> int:
    stats = getattr(connector, "stats", None)
    return int(stats.snapshot().get(key, 0)) if stats is not None else 0
