"""The one exception tree of faasbox.

Errors are raised with what went wrong in words a person can act on; they are mapped to HTTP
(AWS-shaped bodies) in faasbox.gateway and to exit codes in faasbox.cli, nowhere else::

    FaasboxError
     ├── ConfigError                 a serverless.yml that cannot be used (file, key path, why)
     ├── DeployError                 code that cannot be packaged or stored
     │    └── CodeTooLarge           over Lambda's package limits
     ├── ServiceError                a request to a Lambda-style API that cannot be served
     │    ├── ResourceNotFound       no such function / version           404
     │    ├── ResourceConflict       already exists / in use              409
     │    ├── InvalidParameterValue  a parameter out of range             400
     │    ├── InvalidRequestContent  a payload that is not JSON           400
     │    ├── RequestTooLarge        a payload over the limit             413
     │    └── TooManyRequests        concurrency exhausted, queue full    429
     └── ServerUnreachable           the CLI cannot reach a running server

Failures *of a function* (its exceptions, timeouts, crashes) are not exceptions here: they are
results of an invocation (faasbox.runtime.invocation.InvocationResult), as on Lambda, where a
handler error is a 200 with X-Amz-Function-Error.
"""

from __future__ import annotations


class FaasboxError(Exception):
    """Base of every error faasbox raises on purpose."""


class ConfigError(FaasboxError):
    """A serverless.yml that cannot be used; names the file, the key path and what was expected."""

    def __init__(self, file: str, key_path: str, message: str) -> None:
        self.file = file
        self.key_path = key_path
        self.message = message
        where = f"{file}: {key_path}" if key_path else file
        super().__init__(f"{where}: {message}")


class DeployError(FaasboxError):
    """Code that cannot be packaged or stored."""


class CodeTooLarge(DeployError):
    """A deployment package over Lambda's limits (50 MB zipped, 250 MB unzipped)."""


class ServiceError(FaasboxError):
    """An error answered on the Lambda-style APIs with AWS's shape: status, type, message."""

    status: int = 400
    aws_type: str = "ServiceException"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ResourceNotFound(ServiceError):
    status = 404
    aws_type = "ResourceNotFoundException"


class ResourceConflict(ServiceError):
    status = 409
    aws_type = "ResourceConflictException"


class InvalidParameterValue(ServiceError):
    status = 400
    aws_type = "InvalidParameterValueException"


class InvalidRequestContent(ServiceError):
    status = 400
    aws_type = "InvalidRequestContentException"


class RequestTooLarge(ServiceError):
    status = 413
    aws_type = "RequestTooLargeException"


class TooManyRequests(ServiceError):
    status = 429
    aws_type = "TooManyRequestsException"

    def __init__(self, message: str, reason: str = "ConcurrentInvocationLimitExceeded") -> None:
        super().__init__(message)
        self.reason = reason


class ServerUnreachable(FaasboxError):
    """The CLI could not reach a running faasbox server."""
