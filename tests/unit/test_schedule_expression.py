"""Unit tests of faasbox.events.schedule_expression: the examples of EventBridge's "Schedule
expressions using rate or cron" page yield the times the page describes, and what EventBridge
refuses is refused with a message that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from faasbox.events.schedule_expression import (
    ScheduleExpressionError,
    nearest_weekday,
    parse_schedule,
)

# Wednesday 2 December 2026, 01:09:30 UTC.
START = datetime(2026, 12, 2, 1, 9, 30, tzinfo=UTC)


def fires(expression: str, count: int, after: datetime = START) -> list[str]:
    schedule = parse_schedule(expression)
    times: list[str] = []
    moment: datetime | None = after
    for _ in range(count):
        assert moment is not None
        moment = schedule.next_after(moment, after)
        if moment is None:
            break
        times.append(moment.strftime("%a %Y-%m-%d %H:%M"))
    return times


# AWS's documented examples, with the times their descriptions mean from START.
AWS_EXAMPLES = [
    # Run at 10:00 am (UTC+0) every day
    ("cron(0 10 * * ? *)", ["Wed 2026-12-02 10:00", "Thu 2026-12-03 10:00"]),
    # Run at 12:15 pm (UTC+0) every day
    ("cron(15 12 * * ? *)", ["Wed 2026-12-02 12:15", "Thu 2026-12-03 12:15"]),
    # Run at 6:00 pm (UTC+0) every Monday through Friday
    (
        "cron(0 18 ? * MON-FRI *)",
        [
            "Wed 2026-12-02 18:00",
            "Thu 2026-12-03 18:00",
            "Fri 2026-12-04 18:00",
            "Mon 2026-12-07 18:00",
        ],
    ),
    # Run at 8:00 am (UTC+0) every first day of the month
    ("cron(0 8 1 * ? *)", ["Fri 2027-01-01 08:00", "Mon 2027-02-01 08:00"]),
    # Run every 15 minutes
    ("cron(0/15 * * * ? *)", ["Wed 2026-12-02 01:15", "Wed 2026-12-02 01:30"]),
    # Run every 10 minutes Monday through Friday
    ("cron(0/10 * ? * MON-FRI *)", ["Wed 2026-12-02 01:10", "Wed 2026-12-02 01:20"]),
    # Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC+0)
    (
        "cron(0/5 8-17 ? * MON-FRI *)",
        ["Wed 2026-12-02 08:00", "Wed 2026-12-02 08:05"],
    ),
    # Run every 30 minutes Monday through Friday between 8:00 pm and 2:00 am the next day:
    # the range of hours wraps past midnight.
    (
        "cron(0/30 20-2 ? * MON-FRI *)",
        [
            "Wed 2026-12-02 01:30",
            "Wed 2026-12-02 02:00",
            "Wed 2026-12-02 02:30",
            "Wed 2026-12-02 20:00",
        ],
    ),
    # Run at 9:00 am (UTC+0) on the first Monday of each month (2 = Monday: 1-7 is SUN-SAT)
    ("cron(0 9 ? * 2#1 *)", ["Mon 2026-12-07 09:00", "Mon 2027-01-04 09:00"]),
    # The official aws-python-scheduled-cron example: every 2nd minute, Monday to Friday
    ("cron(0/2 * ? * MON-FRI *)", ["Wed 2026-12-02 01:10", "Wed 2026-12-02 01:12"]),
]


@pytest.mark.parametrize(("expression", "expected"), AWS_EXAMPLES)
def test_aws_documented_examples(expression: str, expected: list[str]) -> None:
    assert fires(expression, len(expected)) == expected


def test_day_of_week_numbers_are_sunday_to_saturday() -> None:
    assert fires("cron(0 0 ? * 1 *)", 1) == ["Sun 2026-12-06 00:00"]
    assert fires("cron(0 0 ? * 7 *)", 1) == ["Sat 2026-12-05 00:00"]
    assert fires("cron(0 0 ? * 6L *)", 2) == ["Fri 2026-12-25 00:00", "Fri 2027-01-29 00:00"]
    assert fires("cron(0 0 ? * L *)", 1) == ["Sat 2026-12-05 00:00"]  # the week's last day
    assert fires("cron(0 0 ? * FRI-MON *)", 3) == [
        "Fri 2026-12-04 00:00",
        "Sat 2026-12-05 00:00",
        "Sun 2026-12-06 00:00",
    ]


def test_last_day_and_weekdays_of_the_month() -> None:
    assert fires("cron(0 0 L * ? *)", 3) == [
        "Thu 2026-12-31 00:00",
        "Sun 2027-01-31 00:00",
        "Sun 2027-02-28 00:00",
    ]
    # LW: the month's last weekday (31 January 2027 is a Sunday).
    assert fires("cron(0 0 LW * ? *)", 2) == ["Thu 2026-12-31 00:00", "Fri 2027-01-29 00:00"]
    # 3W: the weekday nearest the 3rd: Sunday 3 January 2027 -> Monday the 4th.
    assert fires("cron(0 12 3W * ? *)", 2) == ["Thu 2026-12-03 12:00", "Mon 2027-01-04 12:00"]
    # Nearest weekdays never cross into another month.
    assert nearest_weekday(2027, 5, 1) == 3  # Saturday 1 May -> Monday 3 May
    assert nearest_weekday(2027, 10, 31) == 29  # Sunday 31 October -> Friday 29th
    assert nearest_weekday(2027, 2, 31) == 26  # past the end: the last day, Sunday -> Friday


def test_year_field() -> None:
    assert fires("cron(0 0 1 1 ? 2030)", 2) == ["Tue 2030-01-01 00:00"]
    assert fires("cron(0 0 1 1 ? 2030-2034/2)", 5) == [
        "Tue 2030-01-01 00:00",
        "Thu 2032-01-01 00:00",
        "Sun 2034-01-01 00:00",
    ]
    assert fires("cron(0 0 1 1 ? 2020)", 1) == []  # over: never again
    assert fires("cron(0 0 29 2 ? 2027,2029)", 1) == []  # no 29 February in those years


def test_rate_counts_from_its_start() -> None:
    rate = parse_schedule("rate(5 minutes)")
    start = START - timedelta(minutes=12)
    assert rate.next_after(START, start) == start + timedelta(minutes=15)
    assert rate.next_after(start, start) == start + timedelta(minutes=5)
    assert rate.next_after(start - timedelta(hours=1), start) == start + timedelta(minutes=5)
    assert fires("rate(1 day)", 2) == ["Thu 2026-12-03 01:09", "Fri 2026-12-04 01:09"]
    assert fires("rate(2 hours)", 1) == ["Wed 2026-12-02 03:09"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "with a value of 1 the unit is 'minute'"),
        ("rate(5 minute)", "with a value of 5 the unit is 'minutes'"),
        ("rate(0 minutes)", "positive whole value"),
        ("rate(1.5 hours)", "positive whole value"),
        ("rate(30 seconds)", "minute(s), hour(s) or day(s)"),
        ("cron(0 10 * * * *)", "exactly one of Day-of-month and Day-of-week must be '?'"),
        ("cron(0 10 ? * ? *)", "exactly one of Day-of-month and Day-of-week must be '?'"),
        ("cron(0 10 * * ?)", "expected six fields"),
        ("cron(60 10 * * ? *)", "the Minutes field is not valid"),
        ("cron(0 24 * * ? *)", "the Hours field is not valid"),
        ("cron(0 10 32 * ? *)", "the Day-of-month field is not valid"),
        ("cron(0 10 * 13 ? *)", "the Month field is not valid"),
        ("cron(0 10 ? * 0 *)", "'0' is not 1-7 or SUN-SAT"),
        ("cron(0 10 ? * 8 *)", "'8' is not 1-7 or SUN-SAT"),
        ("cron(0 10 ? * 3#1,6#3 *)", "with # takes one expression only"),
        ("cron(0 10 ? * 2#6 *)", "the Day-of-week field is not valid"),
        ("cron(0 10 * * ? 1969)", "out of 1970-2199"),
        ("cron(0 10 1W,15W * ? *)", "W takes one day of the month"),
        ("every day", "expected rate(value unit) or cron(six fields)"),
    ],
)
def test_what_eventbridge_refuses(expression: str, message: str) -> None:
    with pytest.raises(
        ScheduleExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_schedule(expression)
