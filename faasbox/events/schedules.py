"""Schedule rules: what a function's ``schedule`` events ask for, and the event each fire sends.

A ``schedule`` event is an expression (``schedule: rate(10 minutes)``) or the Serverless
Framework's object form: ``rate`` (one expression or a list), ``enabled``, ``name``,
``description``, and at most one of ``input`` (the event, as given), ``inputPath`` (a part of
the Scheduled Event) and ``inputTransformer`` (``inputPathsMap`` + ``inputTemplate``). Without
them a fire sends EventBridge's "Scheduled Event".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faasbox.config.spec import ACCOUNT_ID
from faasbox.events.schedule_expression import Schedule, ScheduleExpressionError, parse_schedule

if TYPE_CHECKING:  # the config package checks schedule events with this module
    from faasbox.registry.models import DeployedFunction

OBJECT_KEYS = frozenset(
    {"rate", "enabled", "name", "description", "input", "inputPath", "inputTransformer"}
)
IGNORED_KEYS = frozenset({"method", "timezone"})  # EventBridge Scheduler's; times here are UTC
RULE_NAME = re.compile(r"^[\w.\-]{1,64}$")
PLACEHOLDER = re.compile(r"<([\w.\-]+)>")


class ScheduleEventError(ValueError):
    """A ``schedule`` event faasbox cannot run; `key` is where (under the event), or ''."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ScheduleRule:
    name: str
    function: str  # the deployed function's name
    schedule: Schedule
    enabled: bool = True
    description: str = ""
    region: str = "us-east-1"
    input: str | None = None  # JSON text, sent as the event
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def expression(self) -> str:
        return self.schedule.expression

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{self.name}"


@dataclass(frozen=True)
class RuleSpec:
    """One rule of a ``schedule`` event, before it is bound to a deployed function."""

    expression: str
    schedule: Schedule
    name: str | None
    enabled: bool
    description: str
    input: str | None
    input_path: str | None
    input_transformer: dict[str, Any] | None


def rule_specs(body: object) -> list[RuleSpec]:
    """The rules one ``schedule`` event's body asks for (ScheduleEventError when it is wrong)."""
    if isinstance(body, str):
        return [RuleSpec(body, _parse(body, ""), None, True, "", None, None, None)]
    if not isinstance(body, dict):
        raise ScheduleEventError(
            "", "expected rate(...) / cron(...) or a mapping with rate, enabled, input, ..."
        )
    unknown = set(body) - OBJECT_KEYS - IGNORED_KEYS
    if unknown:
        raise ScheduleEventError(
            sorted(unknown)[0], f"unknown key; expected one of {', '.join(sorted(OBJECT_KEYS))}"
        )
    rates = body.get("rate")
    expressions = rates if isinstance(rates, list) else [rates]
    if not expressions or not all(isinstance(e, str) for e in expressions):
        raise ScheduleEventError("rate", "expected rate(...) / cron(...), or a list of them")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleEventError("enabled", "expected true or false")
    name, description = body.get("name"), body.get("description", "")
    if name is not None and (not isinstance(name, str) or not RULE_NAME.match(name)):
        raise ScheduleEventError("name", "expected 1-64 letters, digits, '.', '-' or '_'")
    if not isinstance(description, str):
        raise ScheduleEventError("description", "expected a string")
    given = [k for k in ("input", "inputPath", "inputTransformer") if k in body]
    if len(given) > 1:
        raise ScheduleEventError(given[1], "give only one of input, inputPath, inputTransformer")
    input_text = _input_text(body["input"]) if "input" in body else None
    input_path = body.get("inputPath")
    if input_path is not None and (not isinstance(input_path, str) or _path(input_path) is None):
        raise ScheduleEventError("inputPath", "expected a JSON path such as $.detail")
    transformer = _transformer(body["inputTransformer"]) if "inputTransformer" in body else None
    return [
        RuleSpec(
            text,
            _parse(text, "rate"),
            name if name is None or len(expressions) == 1 else f"{name}-{index}",
            enabled,
            description,
            input_text,
            input_path,
            transformer,
        )
        for index, text in enumerate(expressions, 1)
    ]


def schedule_problem(events: Iterable[dict[str, Any]]) -> str | None:
    """What is wrong with the first ``schedule`` event that cannot run (None: all can)."""
    for index, event in enumerate(events):
        if isinstance(event, dict) and "schedule" in event:
            try:
                rule_specs(event["schedule"])
            except ScheduleEventError as e:
                where = f"events[{index}].schedule" + (f".{e.key}" if e.key else "")
                return f"{where}: {e}"
    return None


def rules_of(fn: DeployedFunction) -> list[ScheduleRule]:
    """The schedule rules of a deployed function, named as given or `NAME-schedule-N`."""
    rules: list[ScheduleRule] = []
    index = 0
    for event in fn.config.events:
        if "schedule" not in event:
            continue
        index += 1
        specs = rule_specs(event["schedule"])
        for number, spec in enumerate(specs, 1):
            default = f"{fn.name}-schedule-{index}" + (f"-{number}" if len(specs) > 1 else "")
            rules.append(
                ScheduleRule(
                    name=spec.name or default,
                    function=fn.name,
                    schedule=spec.schedule,
                    enabled=spec.enabled,
                    description=spec.description,
                    region=fn.config.region,
                    input=spec.input,
                    input_path=spec.input_path,
                    input_transformer=spec.input_transformer,
                )
            )
    return rules


def all_rules(functions: Iterable[DeployedFunction]) -> list[ScheduleRule]:
    """Every function's rules; a function whose events no longer parse has none (its deploy
    was checked; this keeps one bad row from stopping every schedule)."""
    rules: list[ScheduleRule] = []
    for fn in functions:
        try:
            rules += rules_of(fn)
        except ScheduleEventError:
            continue
    return rules


def scheduled_event(rule: ScheduleRule, fire_time: datetime, event_id: str) -> dict[str, Any]:
    """EventBridge's Scheduled Event for one fire of `rule`."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": fire_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": rule.region,
        "resources": [rule.arn],
        "detail": {},
    }


def target_payload(rule: ScheduleRule, event: dict[str, Any]) -> bytes:
    """What the function receives: `input`, the part of the event at `inputPath`, the
    transformed event, or the event itself."""
    if rule.input is not None:
        return rule.input.encode()
    if rule.input_path is not None:
        return json.dumps(_select(event, rule.input_path)).encode()
    if rule.input_transformer is not None:
        return _transform(rule, event).encode()
    return json.dumps(event).encode()


def _parse(text: str, key: str) -> Schedule:
    try:
        return parse_schedule(text)
    except ScheduleExpressionError as e:
        raise ScheduleEventError(key, str(e)) from None


def _input_text(value: object) -> str:
    """`input` as JSON text: a mapping or list as given, or a string that is JSON text (as
    CloudFormation's Input is)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            raise ScheduleEventError("input", "expected a mapping, or a string of JSON") from None
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    raise ScheduleEventError("input", "expected a mapping, or a string of JSON")


def _transformer(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("inputTemplate"), str):
        raise ScheduleEventError(
            "inputTransformer", "expected a mapping with inputTemplate (and inputPathsMap)"
        )
    paths = value.get("inputPathsMap") or {}
    if not isinstance(paths, dict) or not all(
        isinstance(p, str) and _path(p) is not None for p in paths.values()
    ):
        raise ScheduleEventError(
            "inputTransformer.inputPathsMap", "expected names mapped to JSON paths ($.detail)"
        )
    return {"inputPathsMap": dict(paths), "inputTemplate": value["inputTemplate"]}


_STEP = re.compile(r"\.([A-Za-z_$][\w\-$]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _path(text: str) -> list[str | int] | None:
    """A JSON path of names and indexes (``$``, ``$.detail``, ``$.resources[0]``), or None."""
    if not text.startswith("$"):
        return None
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            return None
        name, index, quoted, double = match.groups()
        steps.append(int(index) if index is not None else (name or quoted or double or ""))
        position = match.end()
    return steps


def _select(event: Any, path: str) -> Any:
    """The value at `path`; None (JSON null) where the event has nothing there."""
    value = event
    for step in _path(path) or []:
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        if not in_list and not (isinstance(value, dict) and step in value):
            return None
        value = value[step]
    return value


def _transform(rule: ScheduleRule, event: dict[str, Any]) -> str:
    """EventBridge's input transformer: each ``<name>`` of the template replaced by its value
    (inside a JSON string: the text itself; elsewhere: the value as JSON). A template that is
    not JSON is sent as a JSON string, since a Lambda event must be JSON."""
    assert rule.input_transformer is not None
    values = {
        name: _select(event, path) for name, path in rule.input_transformer["inputPathsMap"].items()
    }
    values |= {
        "aws.events.rule-arn": rule.arn,
        "aws.events.rule-name": rule.name,
        "aws.events.event.ingestion-time": event["time"],
        "aws.events.event": event,
        "aws.events.event.json": event,
    }
    template: str = rule.input_transformer["inputTemplate"]
    text = _fill(template, values)
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(_fill(template, values, in_json=False))
    return text


def _fill(template: str, values: dict[str, Any], in_json: bool = True) -> str:
    out: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(template):
        before = template[position : match.start()]
        out.append(before)
        position = match.end()
        name = match.group(1)
        if name not in values:
            out.append(match.group(0))
            continue
        value = values[name]
        inside_string = in_json and "".join(out).replace('\\"', "").count('"') % 2 == 1
        if isinstance(value, str) and (inside_string or not in_json):
            out.append(json.dumps(value)[1:-1] if inside_string else value)
        else:
            out.append(json.dumps(value))
    out.append(template[position:])
    return "".join(out)
