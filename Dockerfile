# The modelctl controller. Build: docker build -t modelctl .   (docker-compose.yml builds it too)
# gRPC on 50051, Prometheus /metrics on 9464; data (SQLite, artifacts, admin.token) on the /data volume.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY client ./client
COPY server ./server
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELCTL_SERVER_GRPC_ADDRESS=0.0.0.0:50051 \
    MODELCTL_SERVER_METRICS_ADDRESS=0.0.0.0:9464 \
    MODELCTL_SERVER_DATA_DIR=/data
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin modelctl \
    && mkdir -p /data && chown modelctl:modelctl /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER modelctl
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051 9464
# The standard grpc.health.v1 service, asked by a small Python probe (no grpcurl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "modelctl_server.healthcheck", "--timeout", "4"]
ENTRYPOINT ["modelctl-server"]
