"""EventBridge's schedule expressions: ``rate(N unit)`` and six-field ``cron(...)``, in UTC.

Cron fields are AWS's: ``Minutes Hours Day-of-month Month Day-of-week Year``, with ``,`` ``-``
``*`` ``/``, ``?`` in one of the two day fields (exactly one must be ``?``), ``L`` and ``W``
(day-of-month), ``L`` and ``#`` (day-of-week), day-of-week 1-7 = SUN-SAT and a year field.

The fire times come from cronsim (Debian cron's semantics), with what AWS does differently
adapted here: day-of-week numbers are shifted from AWS's 1-7 to cron's 0-6; ``?`` becomes
``*`` (so the other day field alone decides, as AWS's rule that one of them is ``?`` means);
a bare day-of-week ``L`` (Saturday, the week's last day) becomes ``6``; a range that wraps
(``20-2`` in Hours, as in AWS's own example) is split in two; ``nW`` (the weekday nearest day
n, within the month) and the Year field are not cron's, and are applied here as filters on
cronsim's times.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
YEARS = range(1970, 2200)
FIELD_NAMES = ("Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
NEAREST_WEEKDAY = re.compile(r"^(\d{1,2})W$")
_EXPRESSION = re.compile(r"^\s*(rate|cron)\((.*)\)\s*$", re.DOTALL)


class ScheduleExpressionError(ValueError):
    """An expression EventBridge would refuse; the message says what is wrong."""


@dataclass(frozen=True)
class Rate:
    """``rate(N unit)``: every N units, counted from when the rule was created."""

    expression: str
    value: int
    unit: str  # minute, hour or day (singular)

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.value * RATE_UNITS[self.unit])

    def next_after(self, after: datetime, start: datetime) -> datetime | None:
        """The first fire time later than `after`: start + k * interval, k >= 1."""
        if after < start:
            return start + self.interval
        periods = (after - start) // self.interval + 1
        return start + periods * self.interval


@dataclass(frozen=True)
class Cron:
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, in UTC."""

    expression: str
    cron5: str  # the first five fields as cronsim reads them
    nearest_weekday_of: int | None  # day-of-month ``nW``
    years: frozenset[int] | None  # None: every year

    def next_after(self, after: datetime, start: datetime | None = None) -> datetime | None:
        """The first fire time later than `after` (None when there is none left)."""
        after = after.astimezone(UTC).replace(microsecond=0)
        last_year = max(self.years) if self.years is not None else YEARS[-1]
        while after.year <= last_year:
            try:
                candidate = next(CronSim(self.cron5, after))
            except StopIteration:  # cronsim found nothing within 50 years
                return None
            if self.years is not None and candidate.year not in self.years:
                later = [y for y in self.years if y > candidate.year]
                if not later:
                    return None
                after = datetime(min(later), 1, 1, tzinfo=UTC) - timedelta(seconds=1)
                continue
            if self.nearest_weekday_of is not None and candidate.day != nearest_weekday(
                candidate.year, candidate.month, self.nearest_weekday_of
            ):
                next_day = datetime(candidate.year, candidate.month, candidate.day, tzinfo=UTC)
                after = next_day + timedelta(days=1) - timedelta(seconds=1)
                continue
            return candidate
        return None


Schedule = Rate | Cron


def parse_schedule(text: str) -> Schedule:
    """A ``rate(...)`` or ``cron(...)`` expression, checked as EventBridge checks it."""
    match = _EXPRESSION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ScheduleExpressionError(
            f"expected rate(value unit) or cron(six fields), got {text!r}"
        )
    kind, body = match.groups()
    return parse_rate(text.strip(), body) if kind == "rate" else parse_cron(text.strip(), body)


def parse_rate(expression: str, body: str) -> Rate:
    parts = body.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
        raise ScheduleExpressionError(
            f"{expression}: expected rate(value unit) with a positive whole value, "
            "e.g. rate(5 minutes)"
        )
    value, unit = int(parts[0]), parts[1].lower()
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in RATE_UNITS:
        raise ScheduleExpressionError(
            f"{expression}: unit must be minute(s), hour(s) or day(s), got {parts[1]!r}"
        )
    # AWS: a value of 1 takes the singular unit, any other value the plural.
    wanted = singular if value == 1 else singular + "s"
    if unit != wanted:
        raise ScheduleExpressionError(
            f"{expression}: with a value of {value} the unit is {wanted!r}, as EventBridge "
            f"requires: rate({value} {wanted})"
        )
    return Rate(expression, value, singular)


def parse_cron(expression: str, body: str) -> Cron:
    fields = body.upper().split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{expression}: expected six fields (Minutes Hours Day-of-month Month Day-of-week "
            f"Year), got {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{expression}: exactly one of Day-of-month and Day-of-week must be '?' "
            "(e.g. cron(0 10 * * ? *) or cron(0 18 ? * MON-FRI *))"
        )
    nearest = NEAREST_WEEKDAY.match(dom)
    if nearest is not None and not 1 <= int(nearest.group(1)) <= 31:
        raise ScheduleExpressionError(f"{expression}: Day-of-month {dom} is out of 1-31")
    if "W" in dom and dom != "LW" and nearest is None:
        raise ScheduleExpressionError(
            f"{expression}: W takes one day of the month (e.g. 15W) or L (LW), got {dom!r}"
        )
    if "#" in dow and "," in dow:
        raise ScheduleExpressionError(
            f"{expression}: a Day-of-week with # takes one expression only, got {dow!r}"
        )
    for index in (0, 1, 3):
        _check_plain_field(expression, index, fields[index])
    try:
        cron5 = _cron5(minutes, hours, dom, month, dow, nearest is not None)
    except ScheduleExpressionError as e:
        raise ScheduleExpressionError(f"{expression}: {e}") from None
    cron = Cron(
        expression,
        cron5,
        int(nearest.group(1)) if nearest is not None else None,
        _years(expression, year),
    )
    try:
        CronSim(cron5, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as e:
        raise ScheduleExpressionError(f"{expression}: {_aws_field_message(str(e))}") from None
    return cron


def _cron5(minutes: str, hours: str, dom: str, month: str, dow: str, nearest: bool) -> str:
    """The first five fields as cron reads them (see the module's docstring)."""
    return " ".join(
        (
            _unwrap_ranges(minutes, 0, 59),
            _unwrap_ranges(hours, 0, 23),
            "*" if dom == "?" or nearest else _unwrap_ranges(dom, 1, 31),
            _unwrap_ranges(month, 1, 12, MONTH_NAMES),
            "*" if dow == "?" else _cron_day_of_week(dow),
        )
    )


def nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday (Mon-Fri) nearest `day` of the month, never crossing into another month."""
    last = calendar.monthrange(year, month)[1]
    day = min(day, last)
    weekday = calendar.weekday(year, month, day)  # 0 = Monday
    if weekday == 5:  # Saturday: the Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is next month
        return day + 1 if day < last else day - 2
    return day


def _check_plain_field(expression: str, index: int, text: str) -> None:
    """Minutes, Hours and Month take , - * / and numbers (Month also JAN-DEC) only."""
    allowed = set("0123456789,-*/") | (set("ABCDEFGJLMNOPRSTUVY") if index == 3 else set())
    if not text or set(text) - allowed:
        raise ScheduleExpressionError(
            f"{expression}: {FIELD_NAMES[index]} {text!r} may use only , - * / and "
            f"{FIELD_RANGES[index][0]}-{FIELD_RANGES[index][1]}"
            + (" or JAN-DEC" if index == 3 else "")
        )


def _unwrap_ranges(text: str, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    """`a-b` with a > b (a range through the end of the field, as AWS allows: ``20-2`` in
    Hours is 20-23 and 0-2) as two ranges cron reads; everything else unchanged. `names`
    stand for low, low + 1, ..."""
    terms = []
    for term in text.split(","):
        span, slash, _ = term.partition("/")
        start, dash, end = span.partition("-")
        if dash and not slash and _number(start, names, low) > _number(end, names, low) >= 0:
            terms.append(f"{start}-{high},{low}-{end}")
        else:
            terms.append(term)
    return ",".join(terms)


def _number(text: str, names: tuple[str, ...], first: int) -> int:
    if text in names:
        return names.index(text) + first
    return int(text) if text.isdigit() else -1


def _cron_day_of_week(text: str) -> str:
    """AWS's Day-of-week (1-7 = SUN-SAT) in cron's numbering (0-6 = SUN-SAT)."""
    terms = []
    for term in text.split(","):
        span, slash, step = term.partition("/")
        if span == "L":  # the last day of the week: Saturday
            span = "6"
        elif "#" in span:
            day, _, nth = span.partition("#")
            span = f"{_cron_day(text, day)}#{nth}"
        elif span.endswith("L"):
            span = _cron_day(text, span[:-1]) + "L"
        elif "-" in span:
            first, _, last = span.partition("-")
            span = f"{_cron_day(text, first)}-{_cron_day(text, last)}"
        elif span != "*":
            span = _cron_day(text, span)
        terms.append(span + slash + step)
    return _unwrap_ranges(",".join(terms), 0, 6, DAY_NAMES)


def _cron_day(field: str, day: str) -> str:
    if day in DAY_NAMES:
        return day
    if day.isdigit() and 1 <= int(day) <= 7:
        return str(int(day) - 1)
    raise ScheduleExpressionError(f"Day-of-week {field!r}: {day!r} is not 1-7 or SUN-SAT")


def _years(expression: str, text: str) -> frozenset[int] | None:
    """The Year field as a set of years (None for ``*``)."""
    if text == "*":
        return None
    years: set[int] = set()
    for term in text.split(","):
        span, slash, step_text = term.partition("/")
        try:
            step = int(step_text) if slash else 1
            if span == "*":
                first, last = YEARS[0], YEARS[-1]
            else:
                start, dash, end = span.partition("-")
                first = int(start)
                last = int(end) if dash else (YEARS[-1] if slash else first)
        except ValueError:
            raise ScheduleExpressionError(
                f"{expression}: Year {text!r} may use only , - * / and 1970-2199"
            ) from None
        if step < 1 or not (YEARS[0] <= first <= YEARS[-1] and YEARS[0] <= last <= YEARS[-1]):
            raise ScheduleExpressionError(f"{expression}: Year {text!r} is out of 1970-2199")
        years.update(range(first, last + 1, step))
    if not years:
        raise ScheduleExpressionError(f"{expression}: Year {text!r} names no year")
    return frozenset(years)


def _aws_field_message(message: str) -> str:
    """cronsim's "Bad day-of-week" in AWS's field names."""
    for cron_name, aws_name in (
        ("second", "Minutes"),
        ("minute", "Minutes"),
        ("hour", "Hours"),
        ("day-of-month", "Day-of-month"),
        ("month", "Month"),
        ("day-of-week", "Day-of-week"),
    ):
        if message == f"Bad {cron_name}":
            return f"the {aws_name} field is not valid"
    return message
