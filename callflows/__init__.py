"""Call flows as data: the YAML format, its validator and the interpreter that drives one call session."""
