"""The ticket lifecycle as an explicit state machine: which action is allowed in which status.

Pure data and one function, so the API, the IVR and the scheduler all refuse the same things and can say
what would have been allowed (the API answers 409 with that list).

    draft --submit--> received --answer_directly--> answered (closed at intake, from the knowledge base)
                               --reject-----------> not_accepted (with a reason)
                               --dispatch---------> dispatched --sign--> signed --start--> in_progress
                               --escalate---------> escalated (呈报 to the leader in charge)
    in_progress --reply--> reply_review --approve_reply--> replied --callback--> callback_done --close--> closed
                           reply_review --return_reply--> in_progress (the reviewer sends it back, 审核把关)
    closed --archive--> archived (read-only from then on)
    dispatched | signed --return_misrouted--> received (a unit sends back a ticket that is not theirs)
    replied | callback_done --reopen--> dispatched (重办 after an unsatisfied callback)
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    DRAFT = "draft"  # the IVR is still collecting, or the caller hung up before the end
    RECEIVED = "received"
    ANSWERED = "answered"
    NOT_ACCEPTED = "not_accepted"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    IN_PROGRESS = "in_progress"
    REPLY_REVIEW = "reply_review"  # the unit's reply waits for the reviewer; it does not count as sent yet
    REPLIED = "replied"
    CALLBACK_DONE = "callback_done"
    CLOSED = "closed"
    ARCHIVED = "archived"
    ESCALATED = "escalated"


class Action(StrEnum):
    SUBMIT = "submit"
    ANSWER_DIRECTLY = "answer_directly"
    REJECT = "reject"
    DISPATCH = "dispatch"
    SIGN = "sign"
    START = "start"
    REPLY = "reply"
    APPROVE_REPLY = "approve_reply"
    RETURN_REPLY = "return_reply"
    CALLBACK = "callback"
    CLOSE = "close"
    ARCHIVE = "archive"
    ESCALATE = "escalate"
    RETURN_MISROUTED = "return_misrouted"
    REOPEN = "reopen"


# Statuses in which the hotline may still escalate a case to the leader in charge.
_ESCALATABLE = (Status.RECEIVED, Status.DISPATCHED, Status.SIGNED, Status.IN_PROGRESS)

TRANSITIONS: dict[Status, dict[Action, Status]] = {
    Status.DRAFT: {Action.SUBMIT: Status.RECEIVED},
    Status.RECEIVED: {Action.ANSWER_DIRECTLY: Status.ANSWERED, Action.REJECT: Status.NOT_ACCEPTED,
                      Action.DISPATCH: Status.DISPATCHED},
    Status.DISPATCHED: {Action.SIGN: Status.SIGNED, Action.RETURN_MISROUTED: Status.RECEIVED},
    Status.SIGNED: {Action.START: Status.IN_PROGRESS, Action.RETURN_MISROUTED: Status.RECEIVED},
    Status.IN_PROGRESS: {Action.REPLY: Status.REPLY_REVIEW},
    Status.REPLY_REVIEW: {Action.APPROVE_REPLY: Status.REPLIED, Action.RETURN_REPLY: Status.IN_PROGRESS},
    Status.REPLIED: {Action.CALLBACK: Status.CALLBACK_DONE, Action.REOPEN: Status.DISPATCHED},
    Status.CALLBACK_DONE: {Action.CLOSE: Status.CLOSED, Action.REOPEN: Status.DISPATCHED},
    Status.CLOSED: {Action.ARCHIVE: Status.ARCHIVED},
    Status.ANSWERED: {Action.ARCHIVE: Status.ARCHIVED},
    Status.NOT_ACCEPTED: {Action.ARCHIVE: Status.ARCHIVED},
    Status.ARCHIVED: {},
    # An escalated case comes back with the leader's instruction and is dispatched or answered.
    Status.ESCALATED: {Action.DISPATCH: Status.DISPATCHED, Action.ANSWER_DIRECTLY: Status.ANSWERED},
}
for _status in _ESCALATABLE:
    TRANSITIONS[_status][Action.ESCALATE] = Status.ESCALATED


class InvalidTransition(ValueError):
    """The action is not allowed in the ticket's current status; `allowed` says what is."""

    def __init__(self, status: Status, action: Action, allowed: list[Action]):
        names = ", ".join(a.value for a in allowed) or "none"
        super().__init__(f"cannot {action.value} a ticket that is {status.value}; allowed: {names}")
        self.status = status
        self.action = action
        self.allowed = allowed


def allowed_actions(status: Status) -> list[Action]:
    return list(TRANSITIONS[Status(status)])


def next_status(status: Status, action: Action) -> Status:
    status, action = Status(status), Action(action)
    try:
        return TRANSITIONS[status][action]
    except KeyError:
        raise InvalidTransition(status, action, allowed_actions(status)) from None
