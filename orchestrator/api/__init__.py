"""The HTTP API (FastAPI): ``create_app()`` in :mod:`orchestrator.api.app`."""
