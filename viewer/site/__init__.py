"""Site folders: the manifest (devices, points, overlays, commands) and the model they bind to."""

from .errors import ModelError, Problem, SiteError
from .loader import LoadedSite, check_binding, check_site, find_part, node_owners, open_site
from .manifest import CommandSpec, Device, PointSpec, Site, load_manifest
from .model import SiteModel, load_model

__all__ = [
    "CommandSpec", "Device", "LoadedSite", "ModelError", "PointSpec", "Problem", "Site", "SiteError",
    "SiteModel", "check_binding", "check_site", "find_part", "load_manifest", "node_owners", "load_model", "open_site",
]
