"""The one exception tree of faasbox.

Errors are raised with what went wrong in words a person can act on; they are mapped to HTTP
(AWS-shaped bodies) in faasbox.gateway and to exit codes in faasbox.cli, nowhere else::

    FaasboxError
     ├── ConfigError                 a serverless.yml that cannot be used (file, key path, why)
     ├── DeployError                 code that cannot be packaged or stored
     │    ├── CodeTooLarge           over Lambda's package limits
     │    ├── InvalidZip             a zip that cannot be unzipped (corrupt, truncated)
     │    └── DependencyInstallError requirements.txt or package.json not installable
     ├── ServiceError                a request to a Lambda-style API that cannot be served
     │    ├── ResourceNotFound       no such function / version           404
     │    ├── ResourceConflict       already exists / in use              409
     │    ├── InvalidParameterValue  a parameter out of range             400
     │    ├── InvalidRequestContent  a payload that is not JSON           400
     │    ├── RequestTooLarge        a payload over the limit             413
     │    ├── TooManyRequests        concurrency exhausted, queue full    429
     │    ├── ValidationFailed       a parameter breaking the API's constraints  400
     │    ├── PreconditionFailed     a RevisionId that is not the current one    412
     │    ├── RequestEntityTooLarge  a deployment package over the limit         413
     │    ├── UnknownOperation       a Lambda API route faasbox does not serve   404
     │    ├── InvalidRuntime         a function whose runtime faasbox does not run 502
     │    └── AuthenticationError    not signed by an access key faasbox issued  403
     │         ├── MissingAuthenticationToken   no signature at all
     │         ├── IncompleteSignature          a signature missing a part or malformed
     │         ├── UnrecognizedClient           an access key faasbox does not know
     │         └── InvalidSignature             a wrong signature, or outside the clock skew
     ├── ServerUnreachable           the CLI cannot reach a running server
     └── AccessKeyError              the access key store or its master key cannot be used

Failures *of a function* (its exceptions, timeouts, crashes) are not exceptions here: they are
results of an invocation (faasbox.execution.invoker.InvocationResult), as on Lambda, where a
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


class InvalidRuntime(ServiceError):
    """Invoking a function whose runtime faasbox does not run (one stored before its
    runtime was checked); Lambda's InvalidRuntimeException."""

    status = 502
    aws_type = "InvalidRuntimeException"


class ServerUnreachable(FaasboxError):
    """The CLI could not reach a running faasbox server."""


class AuthenticationError(ServiceError):
    """A request to a signed API (Lambda, management) that is not signed right by a known key."""

    status = 403
    aws_type = "AccessDeniedException"


class MissingAuthenticationToken(AuthenticationError):
    aws_type = "MissingAuthenticationTokenException"


class IncompleteSignature(AuthenticationError):
    aws_type = "IncompleteSignatureException"


class UnrecognizedClient(AuthenticationError):
    aws_type = "UnrecognizedClientException"


class InvalidSignature(AuthenticationError):
    aws_type = "InvalidSignatureException"


class AccessKeyError(FaasboxError):
    """The access key store or its master key cannot be used (missing, unreadable, wrong)."""


class InvalidZip(DeployError):
    """A deployment package that cannot be unzipped: not a zip, truncated or corrupt."""


class ValidationFailed(ServiceError):
    """A request breaking a constraint of the API's model (a pattern, a range, a required
    member), answered as AWS's request validation answers it."""

    status = 400
    aws_type = "ValidationException"


class PreconditionFailed(ServiceError):
    """An update or publish naming a RevisionId that is no longer the function's current one."""

    status = 412
    aws_type = "PreconditionFailedException"


class RequestEntityTooLarge(ServiceError):
    """A deployment package over Lambda's upload limit (50 MB zipped)."""

    status = 413
    aws_type = "RequestEntityTooLargeException"


class UnknownOperation(ServiceError):
    """A method and path of the Lambda API that faasbox does not serve."""

    status = 404
    aws_type = "UnknownOperationException"


class DependencyInstallError(DeployError):
    """requirements.txt or package.json could not be installed (pip's or npm's message)."""
