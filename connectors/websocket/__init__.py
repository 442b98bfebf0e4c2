"""Samples pushed over a websocket."""
