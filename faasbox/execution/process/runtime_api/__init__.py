"""The Lambda Runtime API worker, for `provided` functions (stdlib only: it runs in the jail)."""
