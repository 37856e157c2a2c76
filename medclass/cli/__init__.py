"""The ``medclass`` command: thin wrappers that parse, call the public functions, and print."""
