"""Offline speech recognition with Vosk: model registry per language, streaming and grammar recognisers,
full-call transcripts. Knows nothing of telephony or tickets."""
