"""The pure domain: values and rules, no I/O. Nothing here imports store/, api/ or Google."""
