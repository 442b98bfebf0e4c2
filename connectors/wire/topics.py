"""Which device and point a topic belongs to, and how to turn a message on it into events."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

from twinview.connectors.base import Availability, Sample

from twinview.site.manifest import PointSpec, Site
from twinview.connectors.wire.decode import DecodeError, MissingValue, check_value, decode, parse_timestamp, payload_text

ONLINE = {"online", "true", "1", "up", "connected"}
OFFLINE = {"offline", "false", "0", "down", "disconnected", "lost"}


class TopicMap:
    """topic -> [(device id, PointSpec)] and availability topic -> device id, built from a Site.

    Several points may share one topic (one JSON object carrying several fields,
    each point picking its own json_value). A message on a shared topic may carry
    only some of them: a point whose field is absent is left alone, unless no
    point found its field, which makes the message bad for all of them.
    """

    def __init__(self, site: Site):
        self.site = site
        points: dict[str, list[tuple[str, PointSpec]]] = defaultdict(list)
        self.by_point: dict[tuple[str, str], PointSpec] = {}
        for device in site.devices:
            for p in device.points:
                points[p.topic].append((device.id, p))
                self.by_point[(device.id, p.id)] = p
        self.points: dict[str, list[tuple[str, PointSpec]]] = dict(points)
        self.availability: dict[str, str] = {d.availability_topic: d.id for d in site.devices if d.availability_topic}
        self.counters: Counter[str] = Counter()  # e.g. "future_ts", "ignored_ts"
        self._lock = threading.Lock()

    def point_keys(self) -> list[tuple[str, str]]:
        """Every (device, point) this map feeds: for TwinState.set_feed(connector.name, ...)."""
        return list(self.by_point)

    def __contains__(self, topic: str) -> bool:
        return topic in self.points or topic in self.availability

    def knows(self, topic: str) -> bool:
        return topic in self

    def events(self, topic: str, payload: bytes | str, recv_ts: float) -> list[Sample | Availability] | None:
        """Events for one message; None when the site does not know the topic.

        Never raises for a point topic: a bad payload becomes Sample(error=...),
        with the value kept when it decoded but was out of range. A bad
        availability payload raises DecodeError (there is no point to mark).
        """
        targets = self.points.get(topic)
        if targets is None:
            device = self.availability.get(topic)
            if device is None:
                return None
            return [Availability(device, parse_availability(payload), recv_ts)]
        if len(targets) == 1:
            device, spec = targets[0]
            return [self.sample(device, spec, payload, recv_ts)]
        out: list[Sample | Availability] = []
        for device, spec in targets:
            sample = self.sample(device, spec, payload, recv_ts, partial=True)
            if sample is not None:
                out.append(sample)
        if out:
            return out
        reason = f"no value for any point of {topic}"
        return [Sample(device, spec.id, None, recv_ts, None, reason) for device, spec in targets]

    def sample(self, device: str, spec: PointSpec, payload: bytes | str, recv_ts: float, partial: bool = False) -> Sample | None:
        """Decode one payload into a Sample (bad payload -> Sample with error).

        partial: the topic is shared, so a payload without this point's field gives None.
        """
        try:
            value, source_ts, note = decode(spec, payload, recv_ts)
        except MissingValue as exc:
            if partial:
                return None
            return Sample(device, spec.id, None, recv_ts, None, exc.reason)
        except DecodeError as exc:
            return Sample(device, spec.id, exc.value, recv_ts, None, exc.reason)
        except RecursionError:
            return Sample(device, spec.id, None, recv_ts, None, "too deeply nested")
        if note:
            self._note(note)
        return Sample(device, spec.id, value, recv_ts, source_ts)

    def sample_from_value(self, device: str, point: str, raw: object, ts: object, recv_ts: float) -> Sample | None:
        """A Sample from an already-parsed value (websocket {"device", "point", "value"}); None if unknown."""
        spec = self.by_point.get((device, point))
        if spec is None:
            return None
        try:
            value = check_value(spec, raw)
        except DecodeError as exc:
            return Sample(device, point, exc.value, recv_ts, None, exc.reason)
        source_ts = None
        if ts is not None:
            source_ts, note = parse_timestamp(ts, recv_ts)
            if note:
                self._note(note)
        return Sample(device, point, value, recv_ts, source_ts)

    def _note(self, note: str) -> None:
        key = "future_ts" if "future" in note else "ignored_ts"
        with self._lock:
            self.counters[key] += 1

    def subscriptions(self, exact_limit: int = 200) -> list[tuple[str, int]]:
        """MQTT topic filters with QoS covering every topic of the site.

        Up to `exact_limit` topics are subscribed one by one, each with its
        point's QoS. Above that, topics under the site's prefix are covered by
        one "{prefix}/#" at the highest QoS any of them asks for; topics outside
        the prefix stay exact.
        """
        qos: dict[str, int] = {t: max(p.qos for _, p in targets) for t, targets in self.points.items()}
        for t in self.availability:
            qos[t] = max(qos.get(t, 0), 1)
        prefix = self.site.topic_prefix.strip("/")
        if len(qos) <= exact_limit:
            return sorted(qos.items())
        if prefix:
            under = {t: q for t, q in qos.items() if t.startswith(prefix + "/")}
            rest = {t: q for t, q in qos.items() if t not in under}
            if len(rest) > exact_limit:
                return [("#", max(qos.values()))]
            subs = [(f"{prefix}/#", max(under.values(), default=0))] if under else []
            return subs + sorted(rest.items())
        # No prefix: group by each topic's first level.
        groups: dict[str, int] = {}
        for t, q in qos.items():
            head = t.split("/", 1)[0]
            groups[head] = max(groups.get(head, 0), q)
        if len(groups) > exact_limit:
            return [("#", max(qos.values()))]
        return sorted((f"{h}/#", q) for h, q in groups.items())


def parse_availability(payload: bytes | str) -> bool:
    """True for online, False for offline; DecodeError otherwise."""
    text = payload_text(payload).strip('"').lower()
    if text in ONLINE:
        return True
    if text in OFFLINE:
        return False
    raise DecodeError(f"availability must be 'online' or 'offline', got {text[:24]!r}")
