# Reliability suite: chaos scenarios against real Redis, Celery workers, agents and DB.
PYTHON ?= python

.PHONY: chaos
chaos:
	$(PYTHON) -m pytest -m chaos tests/reliability -q
