"""Order workflow: statuses, allowed transitions, and what counts as open."""

from __future__ import annotations

from chalicelib.domain.errors import AppError

REGISTERED, SCHEDULED, IN_PROGRESS, COMPLETED, CANCELLED = (
    "registered",
    "scheduled",
    "in_progress",
    "completed",
    "cancelled",
)
STATUSES: tuple[str, ...] = (REGISTERED, SCHEDULED, IN_PROGRESS, COMPLETED, CANCELLED)
OPEN_STATUSES = frozenset({REGISTERED, SCHEDULED, IN_PROGRESS})

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({REGISTERED, SCHEDULED}), SCHEDULED),
    "start": (frozenset({REGISTERED, SCHEDULED}), IN_PROGRESS),
    "complete": (frozenset({IN_PROGRESS}), COMPLETED),
    "cancel": (frozenset({REGISTERED, SCHEDULED, IN_PROGRESS}), CANCELLED),
    # "Redo": a finished or cancelled order starts over, as often as needed.
    "reopen": (frozenset({COMPLETED, CANCELLED}), REGISTERED),
}
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)


class InvalidTransition(AppError):
    status = 409
    key = "order.invalid_transition"


def next_status(current: str, action: str) -> str:
    """The status ``action`` leads to from ``current``, or InvalidTransition."""
    if action not in TRANSITIONS:
        raise InvalidTransition(action=action, status=current)
    allowed_from, target = TRANSITIONS[action]
    if current not in allowed_from:
        raise InvalidTransition(action=action, status=current)
    return target


def available_actions(current: str) -> list[str]:
    return [action for action, (sources, _) in TRANSITIONS.items() if current in sources]


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES
