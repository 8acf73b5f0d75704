"""Lambda's limits and defaults (DESIGN.md), the defaults of every configurable bound."""

from __future__ import annotations

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240
MAX_TIMEOUT_S = 900

# A function created through the Lambda API without these gets Lambda's defaults...
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
# ...one from serverless.yml the Serverless Framework's.
FRAMEWORK_MEMORY_MB = 1024
FRAMEWORK_TIMEOUT_S = 6.0

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # request and response of a RequestResponse invoke
ASYNC_PAYLOAD_LIMIT = 256 * 1024  # an Event invoke's payload
ZIPPED_CODE_LIMIT = 50 * 1024 * 1024
UNZIPPED_CODE_LIMIT = 250 * 1024 * 1024  # code and layers, unzipped
ENVIRONMENT_LIMIT = 4096  # bytes of the variables as JSON, as Lambda counts them
MIN_EPHEMERAL_STORAGE_MB = 512
MAX_EPHEMERAL_STORAGE_MB = 10240
INIT_TIMEOUT_S = 10.0  # the INIT phase
