"""The Lambda vocabulary, written once: limits (`limits`), fault names and the error objects
and messages Lambda gives for them (`faults`), and the START/END/REPORT log lines (`report`).

Everything here is plain data and pure functions (stdlib only), so every layer can use it:
config validation, the registry, the gateway and each executor.
"""
