"""The syntax of Serverless Framework variables: finding and parsing ``${...}`` in a string.

A variable is ``${source}`` or ``${source, fallback, ...}`` where a source is ``type:address``,
``type(param, ...)`` or ``type(param, ...):address`` (``env:HOME``, ``file(./x.yml):key``), and
a fallback is another source, a whole nested variable (``${env:B, 'z'}``) or a literal: a quoted
string, a number, ``true``, ``false`` or ``null``. Anything else in ``${...}`` (CloudFormation's
``${AWS::Region}`` or ``${MyBucket.Arn}`` in ``Fn::Sub``) is not ours and is left as it is.

This module only parses; faasbox.config.variables gives the variables their values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_START = re.compile(r"\s*[A-Za-z][A-Za-z0-9.]*\s*(?:\(|:(?!:))")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9.]*")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
# A quote opens a string literal only where a value starts, so that an apostrophe inside an
# address (or in plain text around a variable) does not swallow the closing brace.
_VALUE_STARTS = frozenset(",(:")


class VariableSyntaxError(ValueError):
    """A ``${...}`` that looks like a variable but cannot be parsed; the message says why."""


@dataclass(frozen=True)
class Literal:
    """A fallback value written in place: ``'dev'``, ``512``, ``true``."""

    value: str | int | float | bool | None


@dataclass(frozen=True)
class Reference:
    """``type(params):address``; params and address may themselves contain variables."""

    type: str
    params: tuple[str, ...]
    address: str | None
    text: str


@dataclass(frozen=True)
class Nested:
    """A whole variable used as a fallback, as in ``${opt:stage, ${self:provider.stage}}``."""

    text: str


Source = Literal | Reference | Nested


@dataclass(frozen=True)
class Variable:
    """One ``${...}`` found at ``text[start:end]``, with its sources in fallback order."""

    start: int
    end: int
    text: str
    sources: tuple[Source, ...]


def find_variables(text: str) -> list[Variable]:
    """Every top-level variable in ``text``, left to right (nested ones stay inside them)."""
    found: list[Variable] = []
    pos = text.find("${")
    while pos != -1:
        close = _closing_brace(text, pos)
        body = text[pos + 2 : close] if close != -1 else text[pos + 2 :]
        if not _START.match(body):
            # Not ours (CloudFormation's ${AWS::Region}); ours may still be nested inside it.
            pos = text.find("${", pos + 2)
            continue
        if close == -1:
            raise VariableSyntaxError(f"variable {text[pos:]!r} is missing its closing '}}'")
        whole = text[pos : close + 1]
        found.append(Variable(pos, close + 1, whole, _parse_sources(body, whole)))
        pos = text.find("${", close + 1)
    return found


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` at ``start``, or -1."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif text.startswith("${", i):
            depth += 1
            i += 2
            continue
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        elif char in "'\"" and _opens_value(text, i):
            quote = char
        i += 1
    return -1


def _opens_value(text: str, index: int) -> bool:
    before = text[:index].rstrip()
    return bool(before) and before[-1] in _VALUE_STARTS


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is outside quotes, parentheses and ``${}``."""
    parts: list[str] = []
    depth = 0
    quote = ""
    last = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif text.startswith("${", i):
            depth += 1
            i += 2
            continue
        elif char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        elif char in "'\"" and (i == 0 or _opens_value(text, i)):
            quote = char
        elif char == separator and depth == 0:
            parts.append(text[last:i])
            last = i + 1
        i += 1
    parts.append(text[last:])
    return parts


def _parse_sources(body: str, whole: str) -> tuple[Source, ...]:
    items = [item.strip() for item in _split(body, ",")]
    sources: list[Source] = [_parse_reference(items[0], whole)]
    for index, item in enumerate(items[1:], start=1):
        source = _parse_fallback(item, whole)
        if isinstance(source, Literal) and index != len(items) - 1:
            raise VariableSyntaxError(f"in {whole}: the literal default {item} must come last")
        sources.append(source)
    return tuple(sources)


def _parse_fallback(item: str, whole: str) -> Source:
    if not item:
        raise VariableSyntaxError(f"in {whole}: a default is empty")
    if item[0] in "'\"":
        return Literal(_unquote(item, whole))
    if _NUMBER.fullmatch(item):
        return Literal(int(item) if _INTEGER.fullmatch(item) else float(item))
    if item in _KEYWORDS:
        return Literal(_KEYWORDS[item])
    if item.startswith("${") and _closing_brace(item, 0) == len(item) - 1:
        return Nested(item)
    if _START.match(item):
        return _parse_reference(item, whole)
    raise VariableSyntaxError(
        f"in {whole}: cannot read the default {item!r}; quote a literal default, e.g. '{item}'"
    )


def _parse_reference(item: str, whole: str) -> Reference:
    match = _TYPE.match(item)
    if match is None:
        raise VariableSyntaxError(f"{whole} does not start with a source such as env: or self:")
    rest = item[match.end() :].lstrip()
    params: tuple[str, ...] = ()
    if rest.startswith("("):
        close = _closing_paren(rest)
        if close == -1:
            raise VariableSyntaxError(f"in {whole}: '(' is not closed")
        inner = rest[1:close].strip()
        params = (
            tuple(_unquote_param(p.strip(), whole) for p in _split(inner, ",")) if inner else ()
        )
        rest = rest[close + 1 :].lstrip()
    address: str | None = None
    if rest.startswith(":"):
        address = rest[1:].strip()
        if address[:1] in ("'", '"'):
            address = _unquote(address, whole)
    elif rest:
        raise VariableSyntaxError(f"in {whole}: unexpected {rest!r} after the source")
    return Reference(match.group(), params, address, item)


def _closing_paren(text: str) -> int:
    depth = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _unquote_param(param: str, whole: str) -> str:
    return _unquote(param, whole) if param[:1] in ("'", '"') else param


def _unquote(item: str, whole: str) -> str:
    quote = item[0]
    if len(item) < 2 or item[-1] != quote:
        raise VariableSyntaxError(f"in {whole}: the string {item} is not closed with {quote}")
    return item[1:-1].replace("\\" + quote, quote).replace("\\\\", "\\")
