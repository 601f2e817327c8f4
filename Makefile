# Reliability suite: chaos scenarios against real Redis, Celery workers, agents and DB.
PYTHON ?= python

.PHONY: chaos
chaos:
	$(PYTHON) -m pytest -m chaos tests/reliability -q

# Debian packages the SSH-host and browser tests use (they skip without them)
.PHONY: test-deps
test-deps:
	apt-get install -y --no-install-recommends $$(grep -v '^#' .ci/apt-packages.txt)
