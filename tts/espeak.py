"""The one place the project runs espeak-ng: text in, 8 kHz 16-bit mono PCM out (pcm's format).

Prompts of the call flows, the demo menu and the simulated caller's "microphone" all come through here, so
the voice parameters and the conversion to the telephone format are decided once.
"""
from __future__ import annotations

import io
import shutil
import subprocess

from pydub import AudioSegment

from pcm import to_pcm

TIMEOUT_SECONDS = 60  # a stuck synthesiser must not hang a call thread or a test for ever


class SynthesisError(RuntimeError):
    """espeak-ng is missing, or failed for this voice and text; the message says which."""


def speak(text: str, voice: str, words_per_minute: int) -> bytes:
    """`text` spoken by espeak-ng's `voice` at `words_per_minute`, as 8 kHz 16-bit mono PCM."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SynthesisError("espeak-ng is not installed (Debian package espeak-ng); cannot synthesise speech")
    result = subprocess.run([binary, "-v", voice, "-s", str(words_per_minute), "--stdout", "--", text],
                            capture_output=True, check=False, timeout=TIMEOUT_SECONDS)
    if result.returncode != 0 or not result.stdout:
        raise SynthesisError(f"espeak-ng failed for voice {voice!r}: "
                             f"{result.stderr.decode(errors='replace').strip() or 'no audio'}")
    return to_pcm(AudioSegment.from_file(io.BytesIO(result.stdout), format="wav"))
