"""The coordinator's domain, one module per step a job passes through:

submit (a run and its jobs) → exports (artifact routing, export outcome) → dispatch (an attempt
and its message) → record (agent reports) → finalize (the run, once); reap (dead leases, lost
messages, straggler runs) and cancel beside them. ``outbox`` carries messages and events out
after the commit; ``events`` are the hooks through which higher layers (PR verification,
webhooks) take part without the coordinator importing them. Celery tasks
(``orchestrator.tasks``) are thin wrappers around these functions.
"""
