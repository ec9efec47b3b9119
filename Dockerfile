# One image for the demo services and the Brownout sidecar (docker-compose.yml).
#
# BASE: any Debian-like image with python3 (3.11) and its venv module. The default comes from
# Docker Hub; CI, which reaches no registry, builds one from Debian packages
# (scripts/base-images.sh: debootstrap + docker import) and passes --build-arg BASE=....
# Python packages: from deploy/wheelhouse/ alone when scripts/wheelhouse.sh has filled it
# (no network during the build), else from PyPI. Brownout itself is built from this tree.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
LABEL org.opencontainers.image.title=brownout brownout.stage=build
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/wheelhouse/ /wheels/
COPY pyproject.toml README.md /src/
COPY brownout /src/brownout
COPY proxy /src/proxy
COPY faults /src/faults
COPY experiments /src/experiments
# pip and setuptools install Brownout; they are removed after, so no build tool is left.
RUN set -eu; \
    python3 -m venv /opt/brownout/venv; \
    if ls /wheels/*.whl >/dev/null 2>&1; then from="--no-index --find-links /wheels"; else from=""; fi; \
    /opt/brownout/venv/bin/pip install -q $from "/src[demo]"; \
    /opt/brownout/venv/bin/python -m pip uninstall -q -y pip setuptools; \
    chmod -R a+rX /opt/brownout

FROM ${BASE}
LABEL org.opencontainers.image.title=brownout brownout.stage=final
ENV PATH=/opt/brownout/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BROWNOUT_DEMO_CACHE=/opt/brownout/demo-cache
COPY --from=build /opt/brownout/venv /opt/brownout/venv
# Train the demo model at build time, so containers start in seconds and all agree; then
# a user to run as (written directly: a minimal base has no useradd). Only the new files are
# chmod-ed: touching the venv would copy it into one more layer.
RUN set -eu; \
    python -m brownout.demo train >/dev/null; \
    chmod -R a+rX /opt/brownout/demo-cache; \
    echo 'brownout:x:10001:10001:Brownout:/nonexistent:/usr/sbin/nologin' >> /etc/passwd; \
    echo 'brownout:x:10001:' >> /etc/group

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 8080 8081 8082 8474 8475 6380 9000
CMD ["brownout", "--help"]
