"""The booking state machine: every allowed transition and who may make it. Pure, no I/O.

    pending_payment -> confirmed | expired | cancelled
    confirmed       -> completed | no_show | cancelled
    completed, cancelled, expired, no_show: terminal

`system` is the app acting on its own: the payment orchestration (confirm, expire) and the
housekeeping sweeper (expire). Admins may make every allowed transition; nobody may make any other.

Once the session has started (now >= start) only its outcome is left to record: the mentor marks
it completed or no_show, and only an admin may still cancel it (check_cancellation_time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, get_args

from shared.errors import Conflict, Forbidden

Status = Literal["pending_payment", "confirmed", "completed", "cancelled", "expired", "no_show"]
STATUSES: tuple[Status, ...] = get_args(Status)
Actor = Literal["student", "mentor", "admin", "system"]

# The statuses whose bookings hold their slot; the exclusion constraints of 0004_bookings.sql
# name the same two.
HOLDS_SLOT: frozenset[Status] = frozenset({"pending_payment", "confirmed"})

TRANSITIONS: Mapping[tuple[Status, Status], frozenset[Actor]] = {
    ("pending_payment", "confirmed"): frozenset({"system", "admin"}),
    ("pending_payment", "expired"): frozenset({"system", "admin"}),
    ("pending_payment", "cancelled"): frozenset({"student", "mentor", "admin"}),
    ("confirmed", "completed"): frozenset({"mentor", "admin"}),
    ("confirmed", "no_show"): frozenset({"mentor", "admin"}),
    ("confirmed", "cancelled"): frozenset({"student", "mentor", "admin"}),
}


# Who may still cancel a booking whose start has passed.
CANCELS_AFTER_START: frozenset[Actor] = frozenset({"admin"})


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "The booking cannot move from its current status to the one asked for"

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"a {current} booking cannot become {target}", extra={"from": current, "to": target})


class TransitionNotAllowed(Forbidden):
    code = "transition_not_allowed"
    title = "Your role in this booking may not make this change"

    def __init__(self, current: Status, target: Status, actor: Actor) -> None:
        super().__init__(
            f"a {actor} may not move a {current} booking to {target}",
            extra={"from": current, "to": target, "actor": actor},
        )


class SessionStarted(Conflict):
    code = "session_started"
    title = "The session has started: mark it completed or no-show instead of cancelling it"

    def __init__(self, start: datetime) -> None:
        super().__init__(extra={"start": start.isoformat()})


def is_allowed(current: Status, target: Status) -> bool:
    return (current, target) in TRANSITIONS


def is_terminal(status: Status) -> bool:
    return not any(current == status for current, _ in TRANSITIONS)


def check_transition(current: Status, target: Status, actor: Actor) -> None:
    """Raise InvalidTransition (409) outside the table, TransitionNotAllowed (403) for the wrong actor."""
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        raise InvalidTransition(current, target)
    if actor not in allowed:
        raise TransitionNotAllowed(current, target, actor)


def check_cancellation_time(actor: Actor, start: datetime, now: datetime) -> None:
    """Raise SessionStarted (409) when `actor` cancels at or after the start and is not an admin."""
    if now >= start and actor not in CANCELS_AFTER_START:
        raise SessionStarted(start)
