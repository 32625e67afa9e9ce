"""The real parts behind callflows.ports, for server.py to build `CallServices` from.

One module per port: each wraps exactly one other package (tickets, asr, recordings, ivr), so the edge
packages keep knowing nothing of each other and of call flows.
"""
