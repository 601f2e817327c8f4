"""Scheduled runs: the schedules file, Celery beat on RedBeat, the nightly trigger."""
