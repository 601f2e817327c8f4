# syntax=docker/dockerfile:1
# The exporter image: the coordinator's code plus the ML stack, for the Linux export queue
#   benchfarm worker --queues export.linux
# Build from the repository root:  docker build -f docker/exporter.Dockerfile -t benchfarm-exporter .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first and from the CPU index: the default index resolves torch to a multi-GB CUDA
# build. Its own layer, so a code change does not re-download it. 2.13.0+cpu satisfies the
# project's torch==2.13.0 pin, so the install below keeps it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app
COPY pyproject.toml ./
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY device_inventory ./device_inventory
RUN pip install ".[exporter]" && python -c "import torch, executorch, orchestrator; print('torch', torch.__version__)"

# An unprivileged user owning only the data volume.
RUN useradd --create-home --uid 10001 benchfarm \
    && mkdir -p /data/artifacts \
    && chown -R benchfarm:benchfarm /data
USER benchfarm
ENV BENCHFARM_HOME=/data \
    BENCHFARM_ARTIFACTS=/data/artifacts
VOLUME ["/data/artifacts"]
CMD ["benchfarm", "worker", "--queues", "export.linux"]
