"""The real parts behind callflows.ports, for app.wiring to build `CallServices` from.

One module per port: each wraps exactly one other package (tickets, asr, recordings, ivr), so the edge
packages keep knowing nothing of each other and the call flows nothing of them.
"""
