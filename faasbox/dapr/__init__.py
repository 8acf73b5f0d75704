"""Dapr's building blocks on faasbox: the state API (SQLite, PostgreSQL), service invocation
between serverless.yml services and pub/sub, served on Dapr's HTTP (3500) and gRPC (50001)
ports the way a `daprd` sidecar serves them (docs/dapr.md)."""
