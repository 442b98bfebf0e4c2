"""The wire: payload decoding, the topic contract and routing of raw messages to points."""
