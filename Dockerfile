# The c2cwsgiutils base image: the package and its dependencies in a venv, the console scripts on
# PATH, environment defaults; it serves as www-data. An app adds its code and production.ini in /app.
# See the README, section "Docker image".
ARG BASE_IMAGE=debian:trixie-slim

# Python, shared by the build and the runtime stages so that the venv's interpreter path holds.
FROM ${BASE_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log

FROM python AS build
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/c2cwsgiutils
ENV PATH=/opt/c2cwsgiutils/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, from pyproject.toml alone, so that a change of code or README does not
# download them again. The optional secrets are for builders behind a TLS-inspecting proxy or with a
# package mirror: a CA bundle (pipcert) and an index URL (pipindex); without them pip uses PyPI.
# setuptools stays: Pyramid 2 imports pkg_resources, which setuptools 80.9 deprecates with a
# UserWarning printed at every start, and setuptools 82 removes.
COPY pyproject.toml /src/
RUN --mount=type=secret,id=pipcert --mount=type=secret,id=pipindex \
    if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi; \
    if [ -s /run/secrets/pipindex ]; then PIP_INDEX_URL="$(cat /run/secrets/pipindex)"; export PIP_INDEX_URL; fi; \
    mkdir /src/c2cwsgiutils && touch /src/c2cwsgiutils/__init__.py /src/README.md \
    && pip install --quiet --upgrade pip "setuptools<80.9" \
    && pip install --quiet '/src[all]' \
    && pip uninstall --quiet --yes c2cwsgiutils \
    && rm -rf /src/c2cwsgiutils /src/README.md /src/build /src/*.egg-info
COPY README.md /src/
COPY c2cwsgiutils /src/c2cwsgiutils
RUN pip install --quiet --no-deps --no-build-isolation /src && pip check
COPY image/healthcheck.py /opt/c2cwsgiutils/bin/c2cwsgiutils_healthcheck
RUN sed -i '1s|.*|#!/opt/c2cwsgiutils/bin/python3|' /opt/c2cwsgiutils/bin/c2cwsgiutils_healthcheck \
    && chmod 755 /opt/c2cwsgiutils/bin/c2cwsgiutils_healthcheck

FROM python AS runtime
COPY --from=build /opt/c2cwsgiutils /opt/c2cwsgiutils
# /app belongs to root: the app's code and configuration are not writable by the process serving it.
RUN mkdir /app
WORKDIR /app
# Defaults of the environment-only settings (tests/tooling/test_dockerfile.py keeps them equal to the
# package's); override any with `docker run -e NAME=value`. Settings that also have an ini key get
# no default here: the environment wins over the ini file, so it would hide the app's own
# production.ini. Secrets (LOG_VIEW_SECRET...) have none either: what they protect stays off.
# C2CWSGIUTILS_USER alone differs from the package's default (unset: serve as whoever starts it).
ENV PATH=/opt/c2cwsgiutils/bin:$PATH \
    VIRTUAL_ENV=/opt/c2cwsgiutils \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_TYPE=console \
    LOG_HOST=localhost \
    LOG_PORT=514 \
    LOG_LEVEL=INFO \
    C2CWSGIUTILS_LOG_LEVEL=INFO \
    SQL_LOG_LEVEL=WARNING \
    GUNICORN_LOG_LEVEL=INFO \
    OTHER_LOG_LEVEL=WARNING \
    C2CWSGIUTILS_LOGGING=ini \
    C2CWSGIUTILS_CONFIG=/app/production.ini \
    GUNICORN_BIND=:8080 \
    GUNICORN_THREADS=4 \
    GUNICORN_TIMEOUT=30 \
    GUNICORN_GRACEFUL_TIMEOUT=30 \
    GUNICORN_KEEPALIVE=2 \
    GUNICORN_ACCESS_LOG=- \
    C2CWSGIUTILS_PID_FILE=/tmp/c2cwsgiutils.pid \
    C2CWSGIUTILS_USER=33:33
EXPOSE 8080
# $C2C_BASE_PATH/health (liveness: touches no dependency) on the first TCP address of GUNICORN_BIND;
# any HTTP answer below 500 counts as healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["c2cwsgiutils_healthcheck"]
# No USER: an app's Dockerfile written for the original image (COPY . /app, RUN pip install -e /app,
# RUN c2cwsgiutils_genversion.py) runs its steps as root. The serving processes are not root:
# started as root, c2cwsgiutils_run becomes C2CWSGIUTILS_USER (www-data) before gunicorn starts;
# started as another user (docker run --user, Kubernetes' runAsUser), it keeps that one.
CMD ["c2cwsgiutils_run"]

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/camptocamp/c2cwsgiutils
ARG CREATED=unknown
LABEL org.opencontainers.image.title="c2cwsgiutils" \
      org.opencontainers.image.description="Base image for Pyramid WSGI services with the c2cwsgiutils toolkit" \
      org.opencontainers.image.licenses="BSD-2-Clause" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}"
