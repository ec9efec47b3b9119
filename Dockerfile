# One image for the demo services and the Brownout sidecar (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BROWNOUT_DEMO_CACHE=/opt/brownout/demo-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY faults ./faults
COPY proxy ./proxy
COPY brownout ./brownout
RUN pip install ".[demo]"

# Train the demo model at build time, so containers start in a second and all agree.
RUN python -m brownout.demo train && chmod -R a+rX /opt/brownout

USER 65534:65534
EXPOSE 8000 8080 8081 8082 8474 8475 6380 9000
CMD ["brownout", "--help"]
