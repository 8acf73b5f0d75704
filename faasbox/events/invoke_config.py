"""Event invoke configs: how Lambda treats a function's asynchronous invocations.

`MaximumRetryAttempts` (0-2, default 2), `MaximumEventAgeInSeconds` (60-21600, default
21600) and `DestinationConfig` {OnSuccess, OnFailure}, per function and qualifier. They come
from the Lambda API (Put/Update/Get/Delete/ListFunctionEventInvokeConfig, kept in their own
table of the registry's SQLite file) or, when the API set none, from serverless.yml
(`maximumRetryAttempts`, `maximumEventAge`, `destinations`, `onError`), which lands in the
function's `async_config`. The API's config wins, as a later call would on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasbox.errors import InvalidParameterValue
from faasbox.registry import revision
from faasbox.registry.models import LATEST, DeployedFunction
from faasbox.storage import Database, Step, connect, migrate

DEFAULT_RETRIES = 2
MAX_RETRIES = 2
DEFAULT_EVENT_AGE_S = 21600
MIN_EVENT_AGE_S = 60
MAX_EVENT_AGE_S = 21600

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (function, qualifier)
);
"""
MIGRATIONS: list[Step] = [SCHEMA]


@dataclass(frozen=True)
class AsyncConfig:
    """The effective settings of one function's async invocations."""

    maximum_retry_attempts: int = DEFAULT_RETRIES
    maximum_event_age_s: int = DEFAULT_EVENT_AGE_S
    on_success: str | None = None  # a destination: function name or ARN, or a queue ARN
    on_failure: str | None = None
    dead_letter: str | None = None  # `onError` (the DLQ): a queue ARN
    last_modified: float = field(default=0.0, compare=False)

    def to_api(self, function_arn: str) -> dict[str, Any]:
        destinations: dict[str, Any] = {}
        if self.on_success:
            destinations["OnSuccess"] = {"Destination": self.on_success}
        if self.on_failure:
            destinations["OnFailure"] = {"Destination": self.on_failure}
        return {
            "LastModified": self.last_modified,
            "FunctionArn": function_arn,
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_s,
            "DestinationConfig": destinations,
        }

    def to_row(self) -> str:
        return json.dumps(
            {
                "MaximumRetryAttempts": self.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": self.maximum_event_age_s,
                "OnSuccess": self.on_success,
                "OnFailure": self.on_failure,
            }
        )

    @classmethod
    def from_row(cls, text: str, last_modified: float) -> AsyncConfig:
        data = json.loads(text)
        return cls(
            data["MaximumRetryAttempts"],
            data["MaximumEventAgeInSeconds"],
            data.get("OnSuccess"),
            data.get("OnFailure"),
            last_modified=last_modified,
        )


def from_function(fn: DeployedFunction) -> AsyncConfig:
    """What serverless.yml said (the function's `async_config`), else Lambda's defaults."""
    data = fn.config.async_config or {}
    return AsyncConfig(
        maximum_retry_attempts=int(data.get("maximumRetryAttempts", DEFAULT_RETRIES)),
        maximum_event_age_s=int(data.get("maximumEventAge", DEFAULT_EVENT_AGE_S)),
        on_success=data.get("onSuccess"),
        on_failure=data.get("onFailure"),
        dead_letter=data.get("onError"),
    )


def _checked_int(value: Any, name: str, low: int, high: int) -> int:
    """`value` if an integer in [low, high]; else Lambda's validation message."""
    if type(value) is not int:
        constraint = "Member must be an integer"
    elif value < low:
        constraint = f"Member must have value greater than or equal to {low}"
    elif value > high:
        constraint = f"Member must have value less than or equal to {high}"
    else:
        return value
    member = name[0].lower() + name[1:]
    raise InvalidParameterValue(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _destination(config: Any, which: str) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("Destination", ""), str):
        raise InvalidParameterValue(f'DestinationConfig.{which} must be {{"Destination": ARN}}')
    destination = config.get("Destination") or None
    if destination is not None and not destination.startswith(("arn:aws:lambda:", "arn:aws:sqs:")):
        raise InvalidParameterValue(
            f"The destination ARN {destination} is invalid: faasbox delivers to a function "
            "(arn:aws:lambda:...) or a queue (arn:aws:sqs:...)"
        )
    return destination


def apply_request(base: AsyncConfig | None, body: dict[str, Any]) -> AsyncConfig:
    """A Put (base None: unset members take their defaults) or an Update (members not in
    the request keep `base`'s values), checked as Lambda checks them."""
    start = base or AsyncConfig()
    retries = start.maximum_retry_attempts
    age = start.maximum_event_age_s
    on_success, on_failure = start.on_success, start.on_failure
    if "MaximumRetryAttempts" in body:
        retries = _checked_int(body["MaximumRetryAttempts"], "MaximumRetryAttempts", 0, MAX_RETRIES)
    if "MaximumEventAgeInSeconds" in body:
        age = _checked_int(
            body["MaximumEventAgeInSeconds"],
            "MaximumEventAgeInSeconds",
            MIN_EVENT_AGE_S,
            MAX_EVENT_AGE_S,
        )
    if "DestinationConfig" in body:
        destinations = body["DestinationConfig"]
        if not isinstance(destinations, dict):
            raise InvalidParameterValue("DestinationConfig must be an object")
        if "OnSuccess" in destinations or base is None:
            on_success = _destination(destinations.get("OnSuccess"), "OnSuccess")
        if "OnFailure" in destinations or base is None:
            on_failure = _destination(destinations.get("OnFailure"), "OnFailure")
    return AsyncConfig(retries, age, on_success, on_failure, last_modified=time.time())


class InvokeConfigStore:
    """The configs the Lambda API set, served from memory (read for every async run)."""

    def __init__(self, database: Database | Path) -> None:
        self._db = connect(database, "event_invoke_configs")
        migrate(self._db, "event_invoke_configs", MIGRATIONS)
        revision.ensure(self._db)
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str], AsyncConfig] = {}
        self.reload()

    def reload(self) -> None:
        """Read the configs again (at start, and when another gateway changed them: the
        deploy revision moved)."""
        with self._lock:
            self._configs = {
                (function, qualifier): AsyncConfig.from_row(text, modified)
                for function, qualifier, text, modified in self._db.execute(
                    "SELECT function, qualifier, config, last_modified FROM event_invoke_configs"
                )
            }

    def get(self, function: str, qualifier: str | None) -> AsyncConfig | None:
        return self._configs.get((function, qualifier or LATEST))

    def list(self, function: str) -> list[tuple[str, AsyncConfig]]:
        return sorted((q, c) for (f, q), c in self._configs.items() if f == function)

    def put(self, function: str, qualifier: str | None, config: AsyncConfig) -> None:
        key = (function, qualifier or LATEST)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO event_invoke_configs (function, qualifier, config,"
                    " last_modified) VALUES (?, ?, ?, ?) ON CONFLICT (function, qualifier)"
                    " DO UPDATE SET config = excluded.config,"
                    " last_modified = excluded.last_modified",
                    (*key, config.to_row(), config.last_modified),
                )
                revision.bump(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._configs[key] = config

    def delete(self, function: str, qualifier: str | None) -> bool:
        key = (function, qualifier or LATEST)
        with self._lock:
            self._db.execute(
                "DELETE FROM event_invoke_configs WHERE function = ? AND qualifier = ?", key
            )
            revision.bump(self._db)
            return self._configs.pop(key, None) is not None

    def effective(self, fn: DeployedFunction, qualifier: str | None) -> AsyncConfig:
        """What an async invocation of `fn` (as invoked: `qualifier`) follows: the API's
        config, else serverless.yml's. The DLQ is serverless.yml's either way."""
        own = from_function(fn)
        api = self.get(fn.name, qualifier)
        if api is None:
            return own
        return AsyncConfig(
            api.maximum_retry_attempts,
            api.maximum_event_age_s,
            api.on_success,
            api.on_failure,
            own.dead_letter,
            api.last_modified,
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
