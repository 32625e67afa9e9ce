"""Callers the 110 desk hands over to the hotline (两个平台双向联动, 第三条): recognised by the calling number
(From) or by the number dialled (the request's To), as [callflows] police_referral_numbers lists them. Such a
call skips the emergency guidance and its ticket records who referred it (`referred_by`)."""
from __future__ import annotations

from collections.abc import Collection

POLICE_DESK = "110"


def referral_vars(referral_numbers: Collection[str], caller: str, called: str) -> dict[str, str]:
    """The flow variables of a call from `caller` to `called`: `referred_by` when the 110 desk handed it over."""
    if caller in referral_numbers or called in referral_numbers:
        return {"referred_by": POLICE_DESK}
    return {}
