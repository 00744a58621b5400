# caramba image: the `caramba` command with every component (API + dashboard, MCP, A2A, engine).
#
#   docker build -t caramba .                                       # CPU (default)
#   docker build -t caramba:cuda \
#     --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# BASE is any image with apt (python3.11 is installed when the base lacks it); the CUDA
# torch wheel comes from TORCH_INDEX_URL. Run a CUDA image with `--gpus all`.
# Used by docker-compose.yml; the image holds no secrets (tokens and API keys come from .env).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    GRAPHITI_TELEMETRY_ENABLED=false \
    CARAMBA_WORKSPACE=/workspace \
    PATH=/opt/venv/bin:$PATH

# python3.11 on bases that do not ship it (e.g. nvidia/cuda on Ubuntu 22.04)
RUN if ! command -v python3.11 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3.11 -m venv /opt/venv \
    && pip install --upgrade pip

WORKDIR /opt/caramba
# torch first, from the chosen index (CPU wheel by default, never a CUDA build by accident)
COPY pyproject.toml README.md ./
RUN pip install torch==2.13.0 --index-url ${TORCH_INDEX_URL}
COPY . .
RUN pip install -e . && useradd --create-home --uid 1000 caramba \
    && mkdir -p /workspace && chown caramba /workspace

USER caramba
WORKDIR /workspace
VOLUME ["/workspace"]
EXPOSE 8080 8765 9000
ENTRYPOINT ["python", "/opt/caramba/docker/entrypoint.py"]
CMD ["caramba", "serve", "--host", "0.0.0.0", "--port", "8080"]
