"""The simulated caller (softphone) testers drive against the IVR through the real SIP server.

SIP is the IVR node's own pyVoIP phone (ivr.sip.IvrPhone); media is ivr.media's stream and engine extended
with what only a caller does (RFC 4733 digits, recordings of what was heard and sent).
"""

from .phone import ActiveCall, CallSummary, Softphone, SoftphoneError

__all__ = ["ActiveCall", "CallSummary", "Softphone", "SoftphoneError"]
