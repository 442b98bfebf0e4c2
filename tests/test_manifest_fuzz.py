"""Whatever a manifest contains, loading it ends in a Site or a SiteError listing problems: never a crash."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinview.site import SiteError, load_manifest

KEYS = st.sampled_from([
    "site", "types", "devices", "name", "model", "id", "type", "node", "points", "overlays", "commands", "kind",
    "point", "range", "alarm", "states", "period", "map", "stops", "axis", "to", "args", "success", "equals",
    "role", "interlock", "meta", "camera", "position", "target", "qos", "min", "max", "unknown_key",
])  # fmt: skip
SCALARS = st.one_of(
    st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["#ff0000", "pump", "viridis", "number", "enum", "rotate", "color", "operator", "$speed"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def to_toml(data: dict) -> str:
    """A tiny TOML writer for generated data (inline tables and arrays only)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"

    return "\n".join(f"{k} = {value(v)}" for k, v in data.items()) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_manifest_loads_or_reports_problems(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    text = to_toml(data)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the writer produced something TOML rejects; the loader's TOML errors are tested elsewhere
    (root / "site.toml").write_text(text, encoding="utf-8")
    try:
        site, warnings = load_manifest(root)
    except SiteError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
    else:
        assert site.name is not None


BASE = {
    "site": {"name": "Fuzz", "model": "m.glb", "topic_prefix": "f", "camera": {"position": [1, 2, 3], "target": [0, 0, 0]}},
    "types": {"pump": {
        "points": [{"id": "speed", "unit": "rpm", "range": [0, 3000], "period": 2},
                   {"id": "state", "kind": "enum", "states": ["on", "off"], "alarm_states": ["off"]}],
        "overlays": [{"kind": "color", "point": "speed", "map": "viridis", "range": [0, 3000]},
                     {"kind": "rotate", "point": "speed", "node": "impeller", "to": [0, 5]},
                     {"kind": "label", "points": ["speed"], "format": "{speed:.0f}"}],
        "commands": [{"name": "set_speed", "role": "operator", "interlock": "speed < 2000",
                      "args": [{"name": "speed", "min": 0, "max": 3000}],
                      "success": {"point": "speed", "equals": "$speed", "tolerance": 5}}],
    }},
    "devices": [{"id": "P-1", "type": "pump", "name": "Pump 1", "meta": {"vendor": "X"}},
                {"id": "P-2", "type": "pump", "node": "P-2"}],
}  # fmt: skip


def paths(data, prefix=()):
    """Every path to a value in nested dicts and lists."""
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from paths(v, prefix + (i,))


ALL_PATHS = [p for p in paths(BASE) if p]


def replaced(data, path, new):
    import copy

    out = copy.deepcopy(data)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def test_the_unmutated_base_manifest_is_valid(tmp_path):
    (tmp_path / "site.toml").write_text(to_toml(BASE), encoding="utf-8")
    site, _ = load_manifest(tmp_path)
    assert [d.id for d in site.devices] == ["P-1", "P-2"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), VALUES), min_size=1, max_size=3))
def test_a_valid_manifest_with_any_field_replaced_loads_or_reports(tmp_path_factory, changes):
    data = BASE
    for path, new in changes:
        try:
            data = replaced(data, path, new)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    text = to_toml(data)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    root = tmp_path_factory.mktemp("mut")
    (root / "site.toml").write_text(text, encoding="utf-8")
    try:
        load_manifest(root)
    except SiteError as exc:
        assert exc.problems
