"""Notification rules N1–N13 as functions of state and time.

Callers pass the task before and after a change, the people involved and `now`; the rules
return a Decision that storage applies in one transaction. Timers are re-checked when they
fire (`on_timer`), so a stale timer that slipped past a cancellation still sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from syncd.domain.model import Channel, Kind, Recipient, Task


@dataclass(frozen=True)
class Notify:
    """A center entry for `user_id`, plus deliveries on the channels the rules allow."""

    user_id: str
    task_id: str
    kind: Kind
    occurrence: str  # with (user, task, kind) the N11 identity: a deadline, an assignment, a completion
    actor_id: str | None = None
    center_only: bool = False  # N2


@dataclass(frozen=True)
class Timer:
    kind: Kind  # TASK_DUE or TASK_OVERDUE
    user_id: str
    task_id: str
    occurrence: str
    at: datetime


@dataclass(frozen=True)
class Withdraw:
    """Cancel pending timers and remove center entries of a task (for one user, or everyone)."""

    task_id: str
    user_id: str | None
    kinds: frozenset[Kind]
    remove_entries: bool = True


@dataclass
class Decision:
    notify: list[Notify] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    withdraw: list[Withdraw] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    due_soon: timedelta = timedelta(minutes=5)
    email_grace: timedelta = timedelta(seconds=60)


TASK_ENTRY_KINDS = frozenset({Kind.TASK_ASSIGNED, Kind.TASK_DUE, Kind.TASK_OVERDUE})
TIMER_KINDS = frozenset({Kind.TASK_DUE, Kind.TASK_OVERDUE})


def local_instant(day: date, at: time, tz: str) -> datetime:
    """`day` at wall-clock `at` in `tz`. A time skipped by a DST jump resolves forward (fold=0)."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz))


def due_instant(task: Task, who: Recipient) -> datetime | None:
    """When `task_due` is meant for: N4 (due_at − lead) is applied by the caller; N6 here."""
    if task.due_at is not None:
        return task.due_at
    if task.due_date is not None:
        return local_instant(task.due_date, who.all_day_notify_at, who.timezone)
    return None


def overdue_instant(task: Task, who: Recipient) -> datetime | None:
    """N8: timed at due_at; whole-day at the local midnight that ends due_date."""
    if task.due_at is not None:
        return task.due_at
    if task.due_date is not None:
        return local_instant(task.due_date + timedelta(days=1), time(0, 0), who.timezone)
    return None


def due_fire_at(task: Task, who: Recipient, now: datetime, policy: Policy) -> datetime | None:
    """N4/N6/N12: when `task_due` fires, or None if its moment has passed (only N8 remains)."""
    if task.due_at is not None:
        if task.due_at <= now:
            return None
        return max(now, task.due_at - policy.due_soon)
    at = due_instant(task, who)
    if at is None or overdue_instant(task, who) <= now:  # type: ignore[operator]
        return None
    return max(now, at)


def _timers(task: Task, who: Recipient, now: datetime, policy: Policy) -> list[Timer]:
    key = task.deadline_key
    if key is None or not task.is_open:
        return []
    timers = []
    due = due_fire_at(task, who, now, policy)
    if due is not None:
        timers.append(Timer(Kind.TASK_DUE, who.id, task.id, key, due))
    overdue = overdue_instant(task, who)
    assert overdue is not None
    timers.append(Timer(Kind.TASK_OVERDUE, who.id, task.id, key, max(now, overdue)))
    return timers


def _assigned(task: Task, setter: str) -> Notify:
    return Notify(
        user_id=task.responsible_id,
        task_id=task.id,
        kind=Kind.TASK_ASSIGNED,
        occurrence=f"assignment-{task.assignment_seq}",
        actor_id=setter,
        center_only=setter == task.responsible_id,  # N2
    )


def _completed(task: Task) -> list[Notify]:
    """N9: the author hears of a completion by anyone else."""
    if task.completed_at is None or task.completed_by in (None, task.author_id):
        return []
    return [
        Notify(
            user_id=task.author_id,
            task_id=task.id,
            kind=Kind.TASK_COMPLETED,
            occurrence=task.completed_at.isoformat(),
            actor_id=task.completed_by,
        )
    ]


def on_change(
    before: Task | None, after: Task, actor_id: str, responsible: Recipient, now: datetime,
    policy: Policy,
) -> Decision:
    """What a task upsert or completion means (N1–N4, N6–N9). Same state in → nothing out (N11)."""
    d = Decision()
    if before is None:
        d.notify.append(_assigned(after, after.author_id))  # N1 / N2
        if after.is_open:
            d.timers += _timers(after, responsible, now, policy)
        else:
            d.notify += _completed(after)
        return d

    reassigned = before.responsible_id != after.responsible_id
    if reassigned:  # N3
        d.withdraw.append(Withdraw(after.id, before.responsible_id, frozenset(Kind)))
        d.notify.append(_assigned(after, actor_id))
    if before.is_open and not after.is_open:  # N9
        d.withdraw.append(Withdraw(after.id, after.responsible_id, TASK_ENTRY_KINDS))
        d.notify += _completed(after)
        return d
    if not after.is_open:
        return d
    moved = before.deadline_key != after.deadline_key
    reopened = not before.is_open
    if moved and not reassigned:  # N7: old timers go; entries already sent stay
        d.withdraw.append(Withdraw(after.id, after.responsible_id, TIMER_KINDS, remove_entries=False))
    if reassigned or moved or reopened:
        d.timers += _timers(after, responsible, now, policy)
    return d


def on_delete(task: Task) -> Decision:
    """N10: everything pending is cancelled and the task's entries leave every center."""
    return Decision(withdraw=[Withdraw(task.id, None, frozenset(Kind))])


def on_timer(task: Task | None, timer: Timer, who: Recipient, now: datetime) -> Notify | None:
    """A timer fires only if the task still stands as it did when the timer was set (N7, N9,
    N10, N3), and a `task_due` whose deadline has passed is dropped for N8 (N12)."""
    if task is None or not task.is_open:
        return None
    if task.responsible_id != timer.user_id or task.deadline_key != timer.occurrence:
        return None
    if timer.kind is Kind.TASK_DUE:
        deadline = overdue_instant(task, who) if task.due_date is not None else task.due_at
        if deadline is None or deadline <= now:
            return None
    return Notify(timer.user_id, task.id, timer.kind, timer.occurrence)


def channels_for(note: Notify, who: Recipient) -> list[Channel]:
    """SPEC §2 and §4: the channels an entry goes out on beside the center."""
    if note.center_only:
        return []
    return [ch for ch in Channel if who.wants(ch, note.kind)]


def email_send_at(note: Notify, entry_at: datetime, deadline: datetime | None,
                  policy: Policy) -> datetime:
    """N5: the task_due email waits the grace period, but still leaves before the deadline."""
    if note.kind is not Kind.TASK_DUE:
        return entry_at
    at = entry_at + policy.email_grace
    if deadline is not None and at >= deadline:
        at = max(entry_at, deadline - timedelta(seconds=1))
    return at


def on_recipient_change(task: Task, who: Recipient, now: datetime, policy: Policy) -> Decision:
    """The responsible's time zone or whole-day hour changed: whole-day timers move (N6, N8)."""
    if task.due_date is None or not task.is_open:
        return Decision()
    return Decision(
        withdraw=[Withdraw(task.id, who.id, TIMER_KINDS, remove_entries=False)],
        timers=_timers(task, who, now, policy),
    )


def reminder_is_stale(kind: Kind, occurrence: str, tz: str, now: datetime) -> bool:
    """N12: a `task_due` message not yet out when its deadline passes is never sent late.
    `occurrence` is the deadline it was for: an instant, or a whole-day date."""
    if kind is not Kind.TASK_DUE:
        return False
    if "T" in occurrence:
        deadline = datetime.fromisoformat(occurrence)
    else:
        deadline = local_instant(date.fromisoformat(occurrence) + timedelta(days=1), time(0, 0), tz)
    return deadline <= now
