"""Checking a ``schedule`` event at load time, so a bad expression fails the deploy with its
key path instead of a rule that never fires."""

from __future__ import annotations

from faasbox.config.fields import Context
from faasbox.config.keypath import KeyPath
from faasbox.events.schedules import IGNORED_KEYS, ScheduleEventError, rule_specs


def check_schedule(ctx: Context, body: object, path: KeyPath) -> None:
    try:
        rule_specs(body)
    except ScheduleEventError as e:
        where = (*path, *e.key.split(".")) if e.key else path
        raise ctx.error(where, str(e)) from None
    if isinstance(body, dict):
        for key in sorted(IGNORED_KEYS & set(body)):
            ctx.warn((*path, key), "ignored: faasbox runs schedules as EventBridge rules, in UTC")
