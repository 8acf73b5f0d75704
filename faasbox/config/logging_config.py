"""``logs`` of a function and ``provider.logs.lambda``: Lambda's advanced logging controls, as
the Serverless Framework writes them (logFormat, applicationLogLevel, systemLogLevel,
logGroup), to Lambda's LoggingConfig (faasbox.lambda_.log_format).

A function's own settings win key by key over the provider's. The levels need
``logFormat: JSON``, as on Lambda, which refuses them with Text: a function's own levels
without it are an error, the provider's are ignored (with a warning) for Text functions.
"""

from __future__ import annotations

from typing import Any

from faasbox.config.fields import Context, mapping, show, string
from faasbox.config.keypath import KeyPath
from faasbox.lambda_ import log_format

# The Framework's key -> LoggingConfig's, and the values each takes.
KEYS = {
    "logFormat": ("LogFormat", log_format.LOG_FORMATS),
    "applicationLogLevel": ("ApplicationLogLevel", log_format.APPLICATION_LOG_LEVELS),
    "systemLogLevel": ("SystemLogLevel", log_format.SYSTEM_LOG_LEVELS),
    "logGroup": ("LogGroup", None),
}
LEVEL_KEYS = ("applicationLogLevel", "systemLogLevel")
# Other keys of provider.logs: API Gateway's access logs, which change nothing here.
PROVIDER_OTHER_KEYS = frozenset({"restApi", "httpApi", "websocket", "frameworkLambda"})


def provider_logging(ctx: Context, provider: dict[str, Any]) -> dict[str, str]:
    """``provider.logs.lambda`` as LoggingConfig (without the check that levels need JSON:
    a function may set ``logFormat: JSON`` itself)."""
    if provider.get("logs") is None:
        return {}
    where: KeyPath = ("provider", "logs")
    logs = mapping(ctx, provider["logs"], where, "a mapping such as {lambda: {logFormat: JSON}}")
    for key in logs:
        if key != "lambda" and key not in PROVIDER_OTHER_KEYS:
            ctx.warn((*where, key), f"faasbox does not support {key!r} and ignores it")
    if logs.get("lambda") is None:
        return {}
    return _settings(ctx, logs["lambda"], (*where, "lambda"))


def function_logging(
    ctx: Context, doc: dict[str, Any], path: KeyPath, inherited: dict[str, str]
) -> dict[str, str]:
    """The function's LoggingConfig: its ``logs`` over the provider's."""
    where: KeyPath = (*path, "logs")
    own = _settings(ctx, doc["logs"], where) if doc.get("logs") is not None else {}
    config = {**inherited, **own}
    if log_format.is_json(config):
        return config
    own_levels = [k for k in LEVEL_KEYS if KEYS[k][0] in own]
    if own_levels:
        raise ctx.error(
            where,
            f"{' and '.join(own_levels)} need logFormat: JSON (Lambda filters the levels of "
            "JSON logs only)",
        )
    inherited_levels = [k for k in LEVEL_KEYS if KEYS[k][0] in config]
    if inherited_levels:
        ctx.warn(
            ("provider", "logs", "lambda"),
            f"{' and '.join(inherited_levels)} "
            f"{'apply' if len(inherited_levels) > 1 else 'applies'} with logFormat: JSON only; "
            "ignored for the functions whose logs are Text",
        )
    return {k: v for k, v in config.items() if k not in ("ApplicationLogLevel", "SystemLogLevel")}


def _settings(ctx: Context, value: object, where: KeyPath) -> dict[str, str]:
    doc = mapping(ctx, value, where, "a mapping such as {logFormat: JSON}")
    config: dict[str, str] = {}
    for key, item in doc.items():
        if key not in KEYS:
            ctx.warn((*where, key), f"faasbox does not support {key!r} and ignores it")
            continue
        name, allowed = KEYS[key]
        text = string(ctx, item, (*where, key), "a string")
        if allowed is not None:
            # Lambda's values, in any case (JSON, json; INFO, info).
            match = next((a for a in allowed if a.lower() == text.lower()), None)
            if match is None:
                raise ctx.error(
                    (*where, key), f"expected one of {', '.join(allowed)}, got {show(item)}"
                )
            text = match
        config[name] = text
    return config
