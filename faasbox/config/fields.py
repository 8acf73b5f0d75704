"""Typed reads from a parsed serverless.yml, failing with the file, the key path and what was
expected, and collecting warnings in the same shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from faasbox.config.keypath import KeyPath, format_path
from faasbox.errors import ConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A NUL cannot be passed to a process (every invocation would fail); other control characters
# are refused too, except tab and line breaks, which multi-line values (PEM keys) need.
_ENV_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def env_control_character(text: str) -> str | None:
    """The first control character an environment variable must not hold, as U+XXXX."""
    found = _ENV_CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


@dataclass
class Context:
    """The file being read and the warnings found so far."""

    file: str
    warnings: list[str] = field(default_factory=list)

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(self.file, format_path(path), message)

    def warn(self, path: KeyPath, message: str) -> None:
        self.note(f"{format_path(path)}: {message}")

    def note(self, text: str) -> None:
        """A warning already starting with its key path."""
        text = f"{self.file}: {text}"
        # A provider-level setting is checked once per function; say it once.
        if text not in self.warnings:
            self.warnings.append(text)


Model = TypeVar("Model", bound=BaseModel)


def construct(ctx: Context, path: KeyPath, model: type[Model], /, **values: Any) -> Model:
    """``model(**values)``; values are checked before, so a failure here is reported, not lost."""
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ctx.error((*path, *error["loc"]), error["msg"]) from None


def show(value: object) -> str:
    """A value as a person reading the YAML would recognise it in an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def mapping(ctx: Context, value: object, path: KeyPath, expected: str) -> dict[str, Any]:
    """A mapping with string keys; ``expected`` describes it for the error message."""
    if not isinstance(value, dict):
        raise ctx.error(path, f"expected {expected}, got {show(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ctx.error((*path, key), f"expected a text key, got {show(key)}")
    return value


def string(ctx: Context, value: object, path: KeyPath, expected: str = "a string") -> str:
    if not isinstance(value, str) or not value:
        raise ctx.error(path, f"expected {expected}, got {show(value)}")
    return value


def string_list(ctx: Context, value: object, path: KeyPath, expected: str) -> list[str]:
    if not isinstance(value, list):
        raise ctx.error(path, f"expected a list of {expected}, got {show(value)}")
    return [string(ctx, item, (*path, index), expected) for index, item in enumerate(value)]


def integer(
    ctx: Context, value: object, path: KeyPath, low: int, high: int | None, unit: str = ""
) -> int:
    """An int in [low, high]; digit strings count, as Serverless coerces them (``${env:MEM}``)."""
    number: int | None = None
    # A bool is an int to Python, but never a size or a count to a person.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value)
    ):
        number = int(value)
    if number is None or number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        suffix = f" ({unit})" if unit else ""
        raise ctx.error(path, f"expected an integer {bounds}{suffix}, got {show(value)}")
    return number


def seconds(ctx: Context, value: object, path: KeyPath, maximum: float) -> float:
    """A duration in seconds, > 0 and <= maximum; fractions allowed."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not 0 < number <= maximum:
        raise ctx.error(
            path,
            f"expected a number of seconds greater than 0 and at most {maximum:g}, "
            f"got {show(value)}",
        )
    return number


def environment(ctx: Context, value: object, path: KeyPath) -> dict[str, str]:
    """Environment variables as Lambda gets them: names checked, values as text."""
    if value is None:
        return {}
    variables = mapping(ctx, value, path, "a mapping of environment variable names to values")
    result: dict[str, str] = {}
    for name, raw in variables.items():
        where = (*path, name)
        if not _ENV_NAME.fullmatch(name):
            raise ctx.error(where, "expected an environment variable name of letters, digits and _")
        if isinstance(raw, dict):
            # Usually a CloudFormation value (Ref, Fn::GetAtt) that only AWS can compute.
            ctx.warn(where, f"{raw!r} cannot be computed outside AWS; the variable is not set")
            continue
        if isinstance(raw, list):
            raise ctx.error(where, f"expected a text, number or boolean value, got {show(raw)}")
        text = as_text(raw)
        bad = env_control_character(text)
        if bad is not None:
            raise ctx.error(
                where,
                f"the value holds the control character {bad}, which a process environment "
                "cannot carry; remove it (line breaks and tabs are fine)",
            )
        result[name] = text
    return result


def as_text(value: object) -> str:
    """A scalar as text the way the Serverless Framework (JavaScript) writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
