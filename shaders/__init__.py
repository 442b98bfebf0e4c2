"""Shader sources (WGSL) for twinview materials."""
