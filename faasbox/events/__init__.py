"""Asynchronous invocations: the durable event queue, Lambda's retries and destinations.

- `store`: the queue's table in the registry's SQLite file (WAL); every accepted event is a
  committed row before its 202; workers take rows with a lease (a visibility timeout).
- `invoke_config`: the event invoke configs (MaximumRetryAttempts, MaximumEventAgeInSeconds,
  destinations), from the Lambda API or serverless.yml.
- `records`: the destination records in AWS's shape.
- `sqs`, `sqs_shapes`, `sqs_source`: queues as SQS does them, on the same store, and `sqs` events.
- `dispatcher`: `EventQueue`, the one entry point that accepts an Event invocation durably
  (`EventQueue.enqueue`) and the loop that runs queued events through the invoker.
"""
