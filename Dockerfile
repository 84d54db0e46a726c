# Canvass server image: non-root, migrates then serves; configure with DATABASE_URL (PostgreSQL in production).

# Front-end libraries for the console come from npm at build time (never committed, never from a CDN).
FROM node:20-bookworm-slim AS console
WORKDIR /build/server/console/web
COPY server/console/web/package.json server/console/web/package-lock.json server/console/web/copy-vendor.mjs ./
RUN npm ci --no-audit --no-fund && node copy-vendor.mjs

# The canvasser app's libraries and icons, the same way.
FROM node:20-bookworm-slim AS phone
WORKDIR /build/server/phone/web
COPY server/phone/web/package.json server/phone/web/package-lock.json server/phone/web/copy-vendor.mjs ./
RUN npm ci --no-audit --no-fund && node copy-vendor.mjs

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 canvass

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY sync ./sync
COPY geo ./geo
COPY fixtures ./fixtures
COPY bench ./bench
COPY --from=console /build/server/console/static/vendor ./server/console/static/vendor
COPY --from=phone /build/server/phone/static/vendor ./server/phone/static/vendor
RUN pip install . && mkdir -p /app/var && chown -R canvass:canvass /app

USER canvass
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1

# DATABASE_URL=postgresql://user:pass@host/db  CANVASS_SECRET_KEY=...  (see README: Configuration)
# Several uvicorn workers share one /metrics through prometheus-client's multiprocess mode (a fresh
# directory per start). compose.yaml runs one `canvass serve` process per container instead.
CMD ["sh", "-c", "canvass db upgrade && export PROMETHEUS_MULTIPROC_DIR=\"$(mktemp -d)\" && exec uvicorn --factory server.app:app_factory --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --proxy-headers"]
