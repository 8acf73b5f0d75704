"""faasbox: a self-hosted serverless platform with Lambda-compatible APIs."""

__version__ = "0.1.0"
