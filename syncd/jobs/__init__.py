"""The job queue (rows with a due time, a key, a state and a lease) and the worker that runs it."""
