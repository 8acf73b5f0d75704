raise RuntimeError("cannot start: missing configuration")
