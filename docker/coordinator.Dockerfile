# syntax=docker/dockerfile:1
# The coordinator image, without the ML stack: four roles chosen by the command
#   benchfarm db upgrade | benchfarm api | benchfarm scheduler | benchfarm worker --queues coordinator
# Build from the repository root:  docker build -f docker/coordinator.Dockerfile -t benchfarm-coordinator .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY device_inventory ./device_inventory
# the base install is the coordinator; the build fails if anything pulled the ML stack in
RUN pip install ".[coordinator]" \
    && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'executorch')))" \
    && python -c "import orchestrator.worker, orchestrator.api.app, orchestrator.scheduling.beat"

# An unprivileged user owning only the data volume.
RUN useradd --create-home --uid 10001 benchfarm \
    && mkdir -p /data/artifacts \
    && chown -R benchfarm:benchfarm /data
USER benchfarm
ENV BENCHFARM_HOME=/data \
    BENCHFARM_ARTIFACTS=/data/artifacts
VOLUME ["/data/artifacts"]
EXPOSE 8000
CMD ["benchfarm", "api"]
