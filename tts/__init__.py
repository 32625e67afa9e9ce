"""Text to speech, the project's one espeak-ng edge: prompts synthesised once and cached as 8 kHz WAV files.

An edge like asr or recordings: it imports only the audio contract (pcm) and knows nothing of calls, flows
or tickets. The call flows reach it through their PromptAudio port (callflows.prompts.PromptLibrary is
handed a PromptSynthesizer by app/); ivr's tools (the demo menu, the simulated caller) use it directly,
while ivr's protocol modules (sip, media, session, node) never do.
"""
from .cache import PromptCache
from .espeak import SynthesisError, speak
from .languages import SPEEDS, VOICES, PromptSynthesizer, spoken_text, to_pinyin, voice_for

__all__ = ["PromptCache", "PromptSynthesizer", "SPEEDS", "SynthesisError", "VOICES", "speak", "spoken_text",
           "to_pinyin", "voice_for"]
