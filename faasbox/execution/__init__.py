"""Execution: worker processes, their limits, pools and logs.

The worker side (worker, protocol, context, handler_loading, jail) imports only the
stdlib; nothing here imports the gateway or the CLI.
"""
