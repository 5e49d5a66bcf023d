# Two images from one file:
#   docker build --target serve -t digitlab-serve .   # onnxruntime only: no torch, no compilers
#   docker build --target train -t digitlab-train .   # adds the CPU build of torch ([train] extra)
# compose.yaml builds both. No `# syntax=` line: the builtin frontend needs no registry
# beyond the base image.

ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

# --- wheel: build digitlab once, install it in both runtime stages ---------------------
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: what both images share ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIGITLAB_MODEL_DIR=/models \
    DIGITLAB_DATA_DIR=/data/mnist \
    DIGITLAB_REPORT_DIR=/tmp/reports
RUN groupadd --system --gid 10001 digitlab \
 && useradd --system --uid 10001 --gid digitlab --home-dir /home/digitlab --create-home digitlab \
 && mkdir -p /models /data/mnist /reports \
 && chown digitlab:digitlab /models /data/mnist /reports
WORKDIR /home/digitlab

# --- serve: the API ------------------------------------------------------------------------
FROM runtime AS serve
COPY --from=wheel /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
USER digitlab
ENV DIGITLAB_HOST=0.0.0.0 DIGITLAB_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["digitlab", "serve"]

# --- train: the one-shot trainer (and migrations, promotions, scoring) --------------------
FROM runtime AS train
# The CPU build of torch: the default build bundles CUDA (gigabytes this image never uses).
# A build argument, so a build behind a mirror can point elsewhere (compose passes it
# from .env).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY --from=wheel /wheels /wheels
RUN pip install "$(ls /wheels/*.whl)[train]" && rm -rf /wheels
USER digitlab
CMD ["digitlab", "train", "--if-missing"]
