"""Storing call audio: per-leg WAV files, formats via pydub, retention, serving with range requests."""
