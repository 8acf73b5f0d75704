"""Giving Serverless Framework variables their values throughout a parsed serverless.yml.

Sources resolved offline: ``env`` (environment variables), ``opt`` (CLI options such as
``--stage``), ``self`` (a path into the document itself), ``sls:stage`` (the resolved stage),
``aws:region`` (the resolved region) and ``aws:accountId`` (faasbox's one local account),
``file(path)`` (another YAML/JSON file, relative to the service folder) and ``param`` (``--param``
from the CLI, else the ``params:`` section for the stage, else its ``default``). Sources that need
AWS (``ssm``, ``cf``, ``s3``, ...) are errors.

As in the Serverless Framework v3, ``provider.stage`` and ``provider.region`` read as ``dev`` and
``us-east-1`` when the file leaves them out, so ``${opt:stage, self:provider.stage}`` resolves;
``${self:provider.stage}`` is what the file says (or the default), never the ``--stage`` option.

A string that is exactly one variable takes the referenced value with its type (``512`` stays an
int, a mapping stays a mapping); a variable inside longer text is written into it as text.
Values are resolved lazily and memoised by key path, which is also how cycles are detected: a
path asked for while it is being resolved refers back to itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from faasbox.config.fields import as_text, show
from faasbox.config.keypath import KeyPath, format_path
from faasbox.config.spec import ACCOUNT_ID, DEFAULT_REGION, DEFAULT_STAGE
from faasbox.config.syntax import (
    Literal,
    Nested,
    Reference,
    Source,
    Variable,
    VariableSyntaxError,
    find_variables,
)
from faasbox.config.yamlfile import read_data_file
from faasbox.errors import ConfigError

SUPPORTED_SOURCES = ("env", "opt", "self", "sls", "aws", "file", "param")
# What the framework assumes for provider settings a file leaves out (its Service class does).
_PROVIDER_DEFAULTS = {"provider.stage": DEFAULT_STAGE, "provider.region": DEFAULT_REGION}
_JAVASCRIPT = frozenset({".js", ".cjs", ".mjs", ".ts"})


class _Missing:
    """A source without a value, and why: the next fallback is tried, or the reason reported."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Resolver:
    """Resolves the variables of one serverless.yml document."""

    def __init__(
        self,
        document: dict[str, Any],
        *,
        file: Path,
        options: Mapping[str, str],
        env: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> None:
        self._document = document
        self._file = file
        self._options = options
        self._env = env
        self._params = dict(params or {})
        self._resolved: dict[KeyPath, Any] = {}
        self._active: list[KeyPath] = []
        self._files: dict[Path, Any] = {}
        self._reading: list[Path] = []
        self._stage: str | None = None

    def resolve(self) -> dict[str, Any]:
        """The whole document with every variable replaced by its value."""
        result: dict[str, Any] = self._resolve_node(self._document, ())
        return result

    def stage(self) -> str:
        """``--stage``, else ``provider.stage``, else ``dev``: what ``${sls:stage}`` gives."""
        if self._stage is None:
            option = self._options.get("stage")
            if option:
                self._stage = option
            else:
                value = self._lookup_self("provider.stage")
                missing = isinstance(value, _Missing) or value == ""
                self._stage = DEFAULT_STAGE if missing else as_text(value)
        return self._stage

    def region(self) -> str:
        """``--region``, else ``provider.region``, else ``us-east-1``: what ``${aws:region}``
        gives and where the functions are deployed."""
        option = self._options.get("region")
        if option:
            return option
        value = self._lookup_self("provider.region")
        return DEFAULT_REGION if isinstance(value, _Missing) or value == "" else as_text(value)

    # -- walking the document ---------------------------------------------------------------

    def _resolve_node(self, node: Any, path: KeyPath) -> Any:
        if path in self._resolved:
            return self._resolved[path]
        if path in self._active:
            chain = [*self._active[self._active.index(path) :], path]
            raise self._error(
                path,
                "circular variable reference: " + " -> ".join(format_path(p) for p in chain),
            )
        self._active.append(path)
        try:
            value = self._resolve_value(node, path, detached=False)
        finally:
            self._active.pop()
        self._resolved[path] = value
        return value

    def _resolve_value(self, node: Any, path: KeyPath, *, detached: bool) -> Any:
        """``node`` resolved; ``detached`` for content from other files, which has no key paths
        of its own in the document (errors name the key path that included it)."""
        if isinstance(node, dict):
            if detached:
                return {k: self._resolve_value(v, path, detached=True) for k, v in node.items()}
            return {k: self._resolve_node(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            if detached:
                return [self._resolve_value(v, path, detached=True) for v in node]
            return [self._resolve_node(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self._resolve_string(node, path)
        return node

    def _resolve_string(self, text: str, path: KeyPath) -> Any:
        try:
            variables = find_variables(text)
        except VariableSyntaxError as exc:
            raise self._error(path, str(exc)) from None
        if not variables:
            return text
        if len(variables) == 1 and variables[0].start == 0 and variables[0].end == len(text):
            return self._evaluate(variables[0], path)
        pieces: list[str] = []
        position = 0
        for variable in variables:
            value = self._evaluate(variable, path)
            if isinstance(value, dict | list):
                raise self._error(
                    path,
                    f"{variable.text} is {show(value)}, which cannot be written into a longer "
                    "string; use the variable as the whole value",
                )
            pieces += [text[position : variable.start], as_text(value)]
            position = variable.end
        pieces.append(text[position:])
        return "".join(pieces)

    def _text(self, text: str, path: KeyPath) -> str:
        """A variable's address or parameter, which may itself contain variables."""
        value = self._resolve_string(text, path)
        if isinstance(value, dict | list):
            raise self._error(path, f"{text} is {show(value)}; expected text here")
        return as_text(value)

    def _evaluate(self, variable: Variable, path: KeyPath) -> Any:
        reasons: list[str] = []
        for source in variable.sources:
            value = self._source_value(source, path)
            if not isinstance(value, _Missing):
                return value
            reasons.append(value.reason)
        raise self._error(
            path,
            f"cannot resolve {variable.text}: {', '.join(reasons)} and no default was given",
        )

    # -- sources ------------------------------------------------------------------------------

    def _source_value(self, source: Source, path: KeyPath) -> Any:
        if isinstance(source, Literal):
            return source.value
        if isinstance(source, Nested):
            return self._resolve_string(source.text, path)
        params = tuple(self._text(param, path) for param in source.params)
        address = None if source.address is None else self._text(source.address, path)
        if source.type == "file":
            return self._file_source(source, params, address, path)
        name = address or ""
        if source.type != "self" and not name:
            raise self._error(path, f"{source.text} needs a name after the colon")
        if source.type == "env":
            value = self._env.get(name)
            return _Missing(f"environment variable {name} is not set") if value is None else value
        if source.type == "opt":
            value = self._options.get(name)
            return _Missing(f"option --{name} was not given") if value is None else value
        if source.type == "self":
            return self._lookup_self(name)
        if source.type == "sls" and name == "stage":
            return self.stage()
        if source.type == "sls":
            raise self._error(path, f"{source.text}: only ${{sls:stage}} is available offline")
        if source.type == "aws":
            return self._aws(source, name, path)
        if source.type == "param":
            return self._param(name)
        raise self._error(
            path,
            f"the {source.type!r} variable source (${{{source.text}}}) is not supported offline; "
            f"faasbox resolves {', '.join(SUPPORTED_SOURCES)}: put the value in an environment "
            "variable and use ${env:NAME}",
        )

    def _lookup_self(self, address: str) -> Any:
        segments = address.split(".") if address else []
        value = _walk(self._document, segments, self._resolve_node)
        if segments == ["service"] and isinstance(value, dict) and "name" in value:
            value = value["name"]  # the old `service: {name: x}` form
        if value is None and address in _PROVIDER_DEFAULTS:
            return _PROVIDER_DEFAULTS[address]
        return _Missing(f"{address} is not set in {self._file.name}") if value is None else value

    def _aws(self, source: Reference, name: str, path: KeyPath) -> str:
        if name == "region":
            return self.region()
        if name == "accountId":
            return ACCOUNT_ID
        raise self._error(
            path,
            f"{source.text}: faasbox knows ${{aws:region}} and ${{aws:accountId}}; "
            "put other values in an environment variable and use ${env:NAME}",
        )

    def _param(self, name: str) -> Any:
        if name in self._params:  # --param wins over params: in the file
            return self._params[name]
        stage = self.stage()
        for scope in (stage, "default"):
            value = self._lookup_self(f"params.{scope}.{name}")
            if not isinstance(value, _Missing):
                return value
        return _Missing(
            f"parameter {name} is not set by --param, in params.{stage} or params.default"
        )

    def _file_source(
        self, source: Reference, params: tuple[str, ...], address: str | None, path: KeyPath
    ) -> Any:
        if not params or not params[0]:
            raise self._error(path, f"{source.text} needs a file name: ${{file(./other.yml)}}")
        target = (self._file.parent / params[0]).resolve()
        if target.suffix.lower() in _JAVASCRIPT:
            raise self._error(
                path, f"{source.text}: faasbox does not run JavaScript; use a .yml or .json file"
            )
        if not target.is_file():
            return _Missing(f"file {params[0]} does not exist")
        data_dir = _data_dir_holding(target)
        if data_dir is not None:
            raise self._error(
                path,
                f"{source.text} is inside faasbox's data dir ({data_dir}), which holds the "
                "server's keys and every function's code; faasbox does not read it into a "
                "service",
            )
        if target in self._reading:
            raise self._error(path, f"circular variable reference: {params[0]} includes itself")
        if target not in self._files:
            self._files[target] = read_data_file(target)
        self._reading.append(target)
        try:
            value = _walk(
                self._files[target],
                address.split(".") if address else [],
                lambda node, _: self._resolve_value(node, path, detached=True),
            )
        finally:
            self._reading.pop()
        if value is None:
            return _Missing(f"{address} is not set in {params[0]}")
        return value

    def _error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(str(self._file), format_path(path), message)


def _walk(node: Any, segments: list[str], resolve: Callable[[Any, KeyPath], Any]) -> Any:
    """The resolved value at ``segments`` below ``node``, or None.

    Only the nodes on the way are resolved (a string on the way may be a variable that yields
    a mapping), so that looking up ``custom.a`` does not resolve all of ``custom``.
    """
    path: KeyPath = ()
    resolved = False
    for segment in segments:
        if not resolved and isinstance(node, str):
            node, resolved = resolve(node, path), True
        if isinstance(node, dict):
            key: object = segment
            if segment not in node and segment.isdigit() and int(segment) in node:
                key = int(segment)
            if key not in node:
                return None
            node = node[key]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            key = int(segment)
            node = node[int(segment)]
        else:
            return None
        path = (*path, key)
    return node if resolved else resolve(node, path)


DATA_DIR_MARKERS = ("registry.sqlite3", "master.key")


def _data_dir_holding(target: Path) -> Path | None:
    """The faasbox data dir `target` lies in (a folder with a registry or master key)."""
    for folder in target.parents:
        if any((folder / marker).exists() for marker in DATA_DIR_MARKERS):
            return folder
    return None
