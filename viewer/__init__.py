"""twinview: an open 3D digital-twin viewer."""

__version__ = "0.1.0"
