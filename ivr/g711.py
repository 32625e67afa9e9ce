"""G.711 (ITU-T) μ-law (PCMU) and A-law (PCMA) to and from 16-bit linear PCM.

pyVoIP decodes to 8-bit audio; the project keeps full 16-bit resolution, so the codecs live here.
The stdlib's audioop does the table work in C (one byte of G.711 per 16-bit sample, 8 kHz).
"""
from __future__ import annotations

import audioop  # stdlib on Python 3.11 (the charter's version); pydub relies on it too

SAMPLE_WIDTH = 2  # bytes per linear sample


def decode_pcmu(payload: bytes) -> bytes:
    """μ-law bytes → 16-bit signed little-endian PCM (twice as many bytes)."""
    return audioop.ulaw2lin(payload, SAMPLE_WIDTH)


def encode_pcmu(pcm: bytes) -> bytes:
    """16-bit signed little-endian PCM → μ-law bytes. An odd trailing byte is a caller error."""
    _check_pcm(pcm)
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


def decode_pcma(payload: bytes) -> bytes:
    """A-law bytes → 16-bit signed little-endian PCM."""
    return audioop.alaw2lin(payload, SAMPLE_WIDTH)


def encode_pcma(pcm: bytes) -> bytes:
    """16-bit signed little-endian PCM → A-law bytes."""
    _check_pcm(pcm)
    return audioop.lin2alaw(pcm, SAMPLE_WIDTH)


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
