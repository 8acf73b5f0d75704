"""Reading YAML and JSON files the way the Serverless Framework does.

serverless.yml files use CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub``) in
``resources`` and environment values; they are read as the long form (``{"Ref": ...}``) instead
of failing, as the Serverless Framework does. Syntax errors name the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from faasbox.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that also understands CloudFormation's short tags."""


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
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc}") from None


def parse_yaml(text: str, file: str) -> Any:
    """Parsed YAML; a syntax error becomes a ConfigError naming the line and column."""
    try:
        # _Loader is a SafeLoader: no arbitrary Python objects.
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(file, "", f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}") from None


def read_data_file(path: Path) -> Any:
    """A .json, .yml or .yaml file parsed; any other file as text."""
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                str(path), "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    if suffix in (".yml", ".yaml"):
        return parse_yaml(text, str(path))
    return text
