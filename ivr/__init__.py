"""Telephony edge on pyVoIP: registration, calls, 20 ms PCM call sessions, DTMF, prompts, recording tap,
and the simulated caller (softphone). Knows nothing of tickets, menus or speech."""
