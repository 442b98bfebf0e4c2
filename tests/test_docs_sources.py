"""What the docs say about the command line is what it does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from twinview.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_site_format_agree_on_generate_site_and_both_parse():
    shapes = {}
    for doc in ("README.md", "docs/site-format.md"):
        found = re.findall(r"twinview generate-site [^`\n]*?(?=\s{2,}|`|$)", (ROOT / doc).read_text(), re.M)
        assert found, doc
        for line in found:
            words = shlex.split(line)[2:]
            shape = tuple("N" if prev == "--devices" else w if w.startswith("-") else "OUT" for prev, w in zip([""] + words, words))
            args = build_parser().parse_args(["generate-site"] + ["7" if prev == "--devices" else w for prev, w in zip([""] + words, words)])
            assert args.devices == 7 and args.out
            shapes[shape] = doc
    assert len(shapes) == 1, f"the docs disagree on the argument order: {shapes}"


def test_a_named_source_replaces_the_simulator_as_documented():
    from twinview.cli.sources import connectors_from_args
    from twinview.site import open_site

    loaded = open_site(ROOT / "tests" / "data" / "minimal_site")
    base = dict(mqtt=None, replay=None, ws_ingest=None, no_sim=False)
    names = lambda **kw: [type(c).__name__ for c in connectors_from_args(loaded, SimpleNamespace(**{**base, **kw}))]  # noqa: E731
    assert names() == ["Simulator"]
    assert names(mqtt="mqtt://127.0.0.1:1") == ["MqttConnector"]
    assert names(no_sim=True) == []
    text = (ROOT / "docs" / "site-format.md").read_text()
    assert "**Naming any source turns the embedded simulator\noff**" in text
