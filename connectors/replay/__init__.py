"""Recordings: write telemetry to JSONL and play it back."""
