"""Bundled demo site and the script that generates it."""
