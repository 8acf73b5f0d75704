"""The members of Lambda API requests, checked as Lambda checks them.

What breaks the constraints of botocore's lambda model (a pattern, a range, a required member)
is a ValidationException worded as AWS words it (`1 validation error detected: Value '64' at
'memorySize' failed to satisfy constraint: ...`); what Lambda itself refuses is an
InvalidParameterValueException; a body that is not JSON, or a member of the wrong type, an
InvalidRequestContentException. Used by faasbox.gateway.control_plane; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import platform
import re
from typing import Any

from faasbox.config.fields import env_control_character
from faasbox.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RequestEntityTooLarge,
    ValidationFailed,
)
from faasbox.execution import runtimes
from faasbox.lambda_ import log_format
from faasbox.lambda_.limits import (
    ENVIRONMENT_LIMIT,
    MAX_EPHEMERAL_STORAGE_MB,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_EPHEMERAL_STORAGE_MB,
    MIN_MEMORY_MB,
    ZIPPED_CODE_LIMIT,
)
from faasbox.registry import FunctionConfig
from faasbox.registry.models import FUNCTION_NAME, split_function_name

Body = dict[str, Any]

MAX_NAME_LENGTH = 64
# A request carrying a 50 MB zip in base64 is this long; Lambda refuses longer ones.
REQUEST_LIMIT = math.ceil(ZIPPED_CODE_LIMIT * 4 / 3)

NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
QUALIFIER_PATTERN = r"(|[a-zA-Z0-9$_-]+)"
ENV_KEY_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
RESERVED_VARIABLES = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
}
HOST_ARCHITECTURE = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def configure(config: FunctionConfig, request: Body) -> FunctionConfig:
    """`config` with the settings common to CreateFunction and UpdateFunctionConfiguration
    that `request` sets, each checked as Lambda checks it."""
    changes: dict[str, Any] = {}
    memory = get(request, "MemorySize", int)
    if memory is not None:
        check_range(memory, "memorySize", MIN_MEMORY_MB, MAX_MEMORY_MB)
        changes["memory_size"] = memory
    timeout = get(request, "Timeout", int)
    if timeout is not None:
        check_range(timeout, "timeout", 1, MAX_TIMEOUT_S)
        changes["timeout"] = float(timeout)
    description = get(request, "Description", str)
    if description is not None:
        check_length(description, "description", 256)
        changes["description"] = description
    role = get(request, "Role", str)
    if role is not None:
        changes["role"] = checked_role(role)
    runtime = get(request, "Runtime", str)
    if runtime is not None:
        if runtimes.lookup(runtime) is None:
            raise InvalidParameterValue(
                f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must "
                f"satisfy enum value set: [{runtimes.enum_names()}]. faasbox runs "
                f"{runtimes.described()}"
            )
        changes["runtime"] = runtime
    handler = get(request, "Handler", str)
    if handler is not None:
        check_length(handler, "handler", 128)
        if not re.fullmatch(r"[^\s]+", handler):
            raise constraint(
                handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+"
            )
        changes["handler"] = handler
    environment = get(request, "Environment", dict)
    if environment is not None:
        changes["environment"] = checked_environment(environment)
    tracing = get(request, "TracingConfig", dict)
    if tracing is not None and tracing.get("Mode") is not None:
        mode = tracing["Mode"]
        if mode not in ("Active", "PassThrough"):
            raise constraint(
                mode,
                "tracingConfig.mode",
                "Member must satisfy enum value set: [Active, PassThrough]",
            )
        changes["tracing_mode"] = mode
    logging_config = get(request, "LoggingConfig", dict)
    if logging_config is not None:
        changes["logging_config"] = checked_logging_config(logging_config)
    storage = get(request, "EphemeralStorage", dict)
    if storage is not None:
        size = storage.get("Size")
        if isinstance(size, bool) or not isinstance(size, int):
            raise constraint(size, "ephemeralStorage.size", "Member must not be null")
        check_range(
            size, "ephemeralStorage.size", MIN_EPHEMERAL_STORAGE_MB, MAX_EPHEMERAL_STORAGE_MB
        )
        changes["ephemeral_storage"] = size
    layers = get(request, "Layers", list)
    if layers is not None:
        if not all(isinstance(arn, str) for arn in layers):
            raise InvalidRequestContent(
                "Could not parse request body into json: Layers must be a list of ARNs"
            )
        # Whether each names a version published here is the registry's check.
        changes["layers"] = list(layers)
    if get(request, "FileSystemConfigs", list):
        raise InvalidParameterValue("faasbox does not mount file systems (FileSystemConfigs)")
    check_architectures(request)
    return dataclasses.replace(config, **changes)


def checked_environment(environment: Body) -> dict[str, str]:
    variables = environment.get("Variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise InvalidRequestContent(
            "Could not parse request body into json: Environment.Variables must map names "
            "to strings"
        )
    for key in variables:
        if not re.fullmatch(ENV_KEY_PATTERN, key):
            raise ValidationFailed(
                "1 validation error detected: Value at 'environment.variables' failed to "
                "satisfy constraint: Map keys must satisfy constraint: [Member must satisfy "
                f"regular expression pattern: {ENV_KEY_PATTERN}]"
            )
    for key, value in variables.items():
        bad = env_control_character(value)
        if bad is not None:
            raise InvalidParameterValue(
                f"Environment variable {key} holds the control character {bad}, which a "
                "process environment cannot carry; remove it"
            )
    reserved = sorted(k for k in variables if k in RESERVED_VARIABLES)
    if reserved:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are "
            f"currently not supported for modification. Reserved keys used in this request: "
            f"{', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > ENVIRONMENT_LIMIT:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured}"
        )
    return dict(variables)


def check_architectures(request: Body) -> None:
    architectures = get(request, "Architectures", list)
    if architectures is None:
        return
    shown = f"[{', '.join(map(str, architectures))}]"
    if len(architectures) != 1:
        raise constraint(shown, "architectures", "Member must have length less than or equal to 1")
    if architectures[0] not in ("x86_64", "arm64"):
        raise constraint(
            shown,
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: "
            "[x86_64, arm64], Member must not be null]",
        )
    if architectures[0] != HOST_ARCHITECTURE:
        raise InvalidParameterValue(
            f"faasbox runs functions on this machine's architecture ({HOST_ARCHITECTURE}); "
            f"{architectures[0]} is not available"
        )


def zip_file(code: Body, raw: bytes, operation: str) -> bytes:
    if len(raw) > REQUEST_LIMIT:
        raise RequestEntityTooLarge(
            f"Request must be smaller than {REQUEST_LIMIT} bytes for the {operation} operation"
        )
    encoded = get(code, "ZipFile", str)
    if encoded is None:
        if any(code.get(k) for k in ("S3Bucket", "S3Key", "ImageUri")):
            raise InvalidParameterValue(
                "faasbox takes code as a zip in the request (ZipFile); S3Bucket/S3Key and "
                "ImageUri are not supported"
            )
        raise InvalidParameterValue("Please provide the function's code as a zip (ZipFile)")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidRequestContent(
            f"Could not parse request body into json: ZipFile is not base64: {e}"
        ) from None
    if len(data) > ZIPPED_CODE_LIMIT:
        raise RequestEntityTooLarge(f"Zipped size must be smaller than {ZIPPED_CODE_LIMIT} bytes")
    return data


# --- request members and their constraints ---


def parse_body(raw: bytes) -> Body:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequestContent(f"Could not parse request body into json: {e}") from None
    if not isinstance(data, dict):
        raise InvalidRequestContent("Could not parse request body into json: not an object")
    return data


TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def get(request: Body, key: str, kind: type) -> Any:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise InvalidRequestContent(
            f"Could not parse request body into json: {key} must be {TYPE_NAMES[kind]}"
        )
    return value


def required(request: Body, key: str, kind: type, field: str) -> Any:
    value = get(request, key, kind)
    if value is None:
        raise ValidationFailed(
            f"1 validation error detected: Value null at '{field}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return value


LOGGING_FIELDS = {
    "LogFormat": ("logFormat", log_format.LOG_FORMATS),
    "ApplicationLogLevel": ("applicationLogLevel", log_format.APPLICATION_LOG_LEVELS),
    "SystemLogLevel": ("systemLogLevel", log_format.SYSTEM_LOG_LEVELS),
    "LogGroup": ("logGroup", None),
}


def checked_logging_config(value: Body) -> dict[str, str]:
    """LoggingConfig as Lambda checks it: its enums, and levels with JSON only."""
    config: dict[str, str] = {}
    for key, item in value.items():
        if key not in LOGGING_FIELDS or item is None:
            continue
        field, allowed = LOGGING_FIELDS[key]
        if not isinstance(item, str):
            raise InvalidRequestContent(
                f"Could not parse request body into json: LoggingConfig.{key} must be a string"
            )
        if allowed is not None and item not in allowed:
            raise constraint(
                item,
                f"loggingConfig.{field}",
                f"Member must satisfy enum value set: [{', '.join(allowed)}]",
            )
        if key == "LogGroup":
            check_length(item, "loggingConfig.logGroup", 512)
        config[key] = item
    if not log_format.is_json(config) and (
        "ApplicationLogLevel" in config or "SystemLogLevel" in config
    ):
        raise InvalidParameterValue(
            'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel '
            'from your request or change the LogFormat to "JSON" and try again.'
        )
    return config


def constraint(value: Any, field: str, rule: str) -> ValidationFailed:
    return ValidationFailed(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {rule}"
    )


def check_range(value: int, field: str, low: int, high: int) -> None:
    if value < low:
        raise constraint(value, field, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise constraint(value, field, f"Member must have value less than or equal to {high}")


def check_length(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise constraint(value, field, f"Member must have length less than or equal to {limit}")


def check_name(value: str) -> None:
    """A function name, ARN or partial ARN as the API's paths take them."""
    if len(value) > 256:
        raise constraint(value, "functionName", "Member must have length less than or equal to 256")
    if not FUNCTION_NAME.fullmatch(value):
        raise constraint(
            value, "functionName", f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
        )


def create_name(value: str) -> str:
    """The name of a function to create: a name or an unqualified (partial) ARN."""
    if len(value) > 140:
        raise constraint(value, "functionName", "Member must have length less than or equal to 140")
    match = re.fullmatch(NAME_PATTERN, value)
    name, qualifier = split_function_name(value)
    if match is None or qualifier is not None:
        raise constraint(
            value, "functionName", f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_NAME_LENGTH}"
        )
    return name


def checked_role(value: str) -> str:
    if not re.fullmatch(ROLE_PATTERN, value):
        raise constraint(
            value, "role", f"Member must satisfy regular expression pattern: {ROLE_PATTERN}"
        )
    return value


def qualifier(query: dict[str, str]) -> str | None:
    qualifier = query.get("Qualifier")
    if qualifier is not None and (
        len(qualifier) > 128 or not re.fullmatch(QUALIFIER_PATTERN, qualifier)
    ):
        raise constraint(
            qualifier,
            "qualifier",
            f"Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}",
        )
    return qualifier or None
