"""Call flows as data: the YAML format, its validator and the interpreter that drives one call session.

model (typed nodes) <- loader (YAML with line numbers) <- validator (whole-flow checks) <- bundle (a flow and
its sub-flows) <- registry (hot reload) <- handler (per call) -> interpreter (runs a call through `ports`).
templates and tts/prompts turn prompt text into 8 kHz audio; `python -m callflows` checks, draws and times flows.
"""
