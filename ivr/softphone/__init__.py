"""The simulated caller (softphone) testers drive against the IVR through the real SIP server.

pyVoIP carries SIP; media (G.711 both ways, RFC 4733 DTMF, recording) is the project's own.
"""

from .phone import ActiveCall, CallSummary, Softphone, SoftphoneError

__all__ = ["ActiveCall", "CallSummary", "Softphone", "SoftphoneError"]
