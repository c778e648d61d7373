"""Job schedules: one text in the stage file (standard 5-field cron, ``@daily``-style macros or ``rate(...)``, UTC),
turned into what each target runs (EventBridge Scheduler expression, Kubernetes CronJob schedule) and the shortest
time between two runs (a job must finish before its next run starts; job-schedule-invalid)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
RATE = re.compile(r"^rate\((\d{1,4}) (minute|minutes|hour|hours|day|days)\)$")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# field name, lowest, highest, names
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
DAY = 86400


class ScheduleError(ValueError):
    """Why a schedule text cannot be used, written as the fix."""


@dataclass(frozen=True)
class Schedule:
    text: str
    cron: str  # 5 fields, UTC: the Kubernetes CronJob schedule
    eventbridge: str  # cron(6 fields) or rate(...): the EventBridge Scheduler expression (UTC)
    min_interval_seconds: int  # the shortest gap between two runs

    @property
    def min_interval_minutes(self) -> int:
        return self.min_interval_seconds // 60


def parse_schedule(text: str) -> Schedule:
    text = " ".join(text.split())
    if text in MACROS:
        return _from_cron(text, MACROS[text])
    rate = RATE.match(text)
    if rate:
        return _from_rate(text, int(rate.group(1)), rate.group(2).rstrip("s"))
    if text.startswith("cron("):
        raise ScheduleError(
            "write the 5-field form without cron(...), e.g. '0 3 * * *' (minute hour day month weekday, UTC)"
        )
    return _from_cron(text, text)


def _from_rate(text: str, amount: int, unit: str) -> Schedule:
    seconds = amount * {"minute": 60, "hour": 3600, "day": DAY}[unit]
    if amount < 1:
        raise ScheduleError("a rate is at least 1, e.g. rate(15 minutes)")
    if unit == "minute" and 60 % amount == 0:
        cron = f"*/{amount} * * * *" if amount > 1 else "* * * * *"
    elif unit == "hour" and 24 % amount == 0:
        cron = f"0 */{amount} * * *" if amount > 1 else "0 * * * *"
    elif unit == "day" and amount == 1:
        cron = "0 0 * * *"
    else:
        raise ScheduleError(
            f"{text} has no cron equivalent for Kubernetes; use minutes that divide 60, hours that divide 24, "
            "1 day, or a cron expression"
        )
    plural = unit if amount == 1 else f"{unit}s"
    return Schedule(text, cron, f"rate({amount} {plural})", seconds)


def _from_cron(text: str, cron: str) -> Schedule:
    fields = cron.split(" ")
    if len(fields) != 5:
        raise ScheduleError(
            "a schedule is 5 cron fields (minute hour day month weekday, UTC), @hourly/@daily/@weekly/@monthly, "
            "or rate(N minutes|hours|days)"
        )
    values = [_expand(field, *spec) for field, spec in zip(fields, FIELDS, strict=True)]
    dom, dow = fields[2], fields[4]
    if dom != "*" and dow != "*":
        raise ScheduleError("set a day of month or a day of week, not both (EventBridge cannot express either-or)")
    return Schedule(text, cron, _eventbridge(fields), _min_interval(values[0], values[1], dom, dow))


def _expand(field: str, name: str, low: int, high: int, names: tuple[str, ...]) -> list[int]:
    out: set[int] = set()
    for item in field.split(","):
        match = re.fullmatch(r"(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(\d+))?", item)
        if not match:
            raise ScheduleError(f"{name} field {item!r} is not cron syntax (e.g. 5, 1-5, */15, MON-FRI)")
        span, step = match.group(1), int(match.group(2) or 1)
        if step < 1:
            raise ScheduleError(f"{name} step must be at least 1")
        if span == "*":
            start, end = low, high
        else:
            first, _, last = span.partition("-")
            start = _number(first, name, low, high, names)
            end = _number(last, name, low, high, names) if last else (high if match.group(2) else start)
            if end < start:
                raise ScheduleError(f"{name} range {span} runs backwards")
        out.update(range(start, end + 1, step))
    return sorted(out)


def _number(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if token.upper() in names:
        return names.index(token.upper()) + (1 if name == "month" else 0)
    if not token.isdigit() or not low <= int(token) <= high:
        raise ScheduleError(f"{name} {token!r} is outside {low}-{high}")
    return int(token)


def _eventbridge(fields: list[str]) -> str:
    minute, hour, dom, month, dow = fields
    minute, hour = (f.replace("*/", "0/") for f in (minute, hour))
    if dow == "*":
        dom_out, dow_out = dom.replace("*/", "1/"), "?"
    else:
        dom_out, dow_out = "?", re.sub(r"\d+", lambda m: str(int(m.group()) % 7 + 1), dow.upper())
    return f"cron({minute} {hour} {dom_out} {month.upper().replace('*/', '1/')} {dow_out} *)"


def _min_interval(minutes: list[int], hours: list[int], dom: str, dow: str) -> int:
    """Shortest gap between two runs: exact within a day; a schedule that runs once a day counts as a day."""
    times = sorted(h * 3600 + m * 60 for h in hours for m in minutes)
    if len(times) == 1:
        return DAY
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if dom == "*" and dow == "*":
        gaps.append(times[0] + DAY - times[-1])
    return min(gaps)
