"""Where a site's state lives on this machine: audit log, history store, alarm journal, side by side."""

from __future__ import annotations

import os
import re
from pathlib import Path


def site_state_folder(site_name: str) -> Path:
    """$XDG_STATE_HOME/twinview/<site> (default ~/.local/state/twinview/<site>), the name made safe as a folder."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    folder = re.sub(r"[^A-Za-z0-9_.\-]+", "_", site_name).strip("._")[:100] or "site"
    return Path(base) / "twinview" / folder
