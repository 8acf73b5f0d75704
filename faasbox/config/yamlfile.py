"""Reading YAML and JSON files the way the Serverless Framework does.

The Serverless Framework reads YAML 1.2 (js-yaml), where ``on``, ``yes``, ``12:30`` and
``2024-01-01`` are strings; PyYAML reads YAML 1.1, where they are a bool, a bool, the int 750 and
a date. The loader here uses YAML 1.2's rules for plain scalars so values mean the same.
CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub``) are read as their long form
(``{"Ref": ...}``) instead of failing. Syntax errors name the line.

A file is bounded before it can cost much: its size (MAX_FILE_BYTES), its nesting depth
(MAX_DEPTH: deeper documents would exhaust Python's stack in the composer), and what its aliases
expand to (MAX_ALIAS_NODES nodes, MAX_ALIAS_BYTES of scalars): an alias shares its anchor's node
when parsed, but everything that walks the document afterwards walks every copy, so a few lines
of nested anchors ("billion laughs") would otherwise stand for billions of nodes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

try:
    from yaml._yaml import CParser

    _LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml
    _LIBYAML = False

from faasbox.errors import ConfigError

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
MAX_ALIAS_BYTES = 1024 * 1024
MAX_JSON_DEPTH = MAX_DEPTH


class _BoundedComposer(Composer):
    """The composer (events -> nodes), counting nesting depth and alias expansion."""

    # From the parser it is mixed with (libyaml's or PyYAML's).
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, scalar bytes)
        self._alias_nodes = 0
        self._alias_bytes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._count_alias(event, node)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(
                None,
                None,
                f"the document is nested deeper than {MAX_DEPTH} levels; a serverless.yml never "
                "needs that many: flatten it",
                self.peek_event().start_mark,
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._sizes[id(node)] = self._size_of(node)
        return node

    def _size_of(self, node: yaml.Node) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, len(node.value)
        children: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        nodes, size = 1, 0
        for child in children:
            # A child missing here is an alias to a node still being composed (it contains
            # itself); counted once, and refused by _count_alias.
            child_nodes, child_size = self._sizes.get(id(child), (1, 0))
            nodes, size = nodes + child_nodes, size + child_size
        return nodes, size

    def _count_alias(self, event: Any, node: yaml.Node | None) -> None:
        sizes = self._sizes.get(id(node)) if node is not None else None
        if sizes is None:
            raise ComposerError(
                None,
                None,
                f"the alias *{event.anchor} refers to a node that contains it; write the "
                "value out instead",
                event.start_mark,
            )
        self._alias_nodes += sizes[0]
        self._alias_bytes += sizes[1]
        if self._alias_nodes > MAX_ALIAS_NODES or self._alias_bytes > MAX_ALIAS_BYTES:
            raise ComposerError(
                None,
                None,
                f"the aliases expand to more than {MAX_ALIAS_NODES} nodes or "
                f"{MAX_ALIAS_BYTES // 1024} KB (the limit is reached at *{event.anchor}); "
                "nested anchors that multiply (a 'billion laughs') are refused: write the "
                "values out, or use fewer aliases",
                event.start_mark,
            )


if _LIBYAML:

    class _Loader(_BoundedComposer, CParser, SafeConstructor, Resolver):
        """A safe loader (no arbitrary Python objects): libyaml's parser (five times faster
        than PyYAML's on a large file) under the bounded composer, with YAML 1.2 plain scalars
        and CloudFormation's short tags."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # PyYAML built without libyaml

    class _Loader(_BoundedComposer, Reader, Scanner, Parser, SafeConstructor, Resolver):  # type: ignore[no-redef]
        """The same, on PyYAML's own reader, scanner and parser."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


_YAML_1_1_ONLY = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp")}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_1_1_ONLY]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _cloudformation_tag(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {key: value}


_Loader.add_multi_constructor("!", _cloudformation_tag)


def read_text(path: Path) -> str:
    """The file's text, refused past MAX_FILE_BYTES before reading it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(
                str(path),
                "",
                f"the file is larger than {MAX_FILE_BYTES // 1024} KB, the limit for a "
                "configuration file; move data out of it (a serverless.yml is rarely over "
                "a few tens of KB)",
            )
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc}") from None


def parse_yaml(text: str, file: str) -> Any:
    """Parsed YAML; a syntax error becomes a ConfigError naming the line and column."""
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(file, "", f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}") from None
    except RecursionError:  # a second line behind MAX_DEPTH
        raise ConfigError(
            file, "", f"the document is nested too deeply (limit {MAX_DEPTH})"
        ) from None


def _check_depth(value: Any, file: str) -> None:
    """JSON's parser nests deeper than anything walking it afterwards can: bound it too."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ConfigError(
                file, "", f"the document is nested deeper than {MAX_JSON_DEPTH} levels: flatten it"
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def read_data_file(path: Path) -> Any:
    """A .json, .yml or .yaml file parsed; any other file as text."""
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ConfigError(
                str(path), "", f"the document is nested deeper than {MAX_JSON_DEPTH} levels"
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                str(path), "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        _check_depth(data, str(path))
        return data
    if suffix in (".yml", ".yaml"):
        return parse_yaml(text, str(path))
    return text
