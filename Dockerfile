# medmij-dvza: the DVZA application image (gunicorn, non-root). TLS normally ends at a proxy in front
# (deploy/nginx.conf); see README "Production". Build: docker build -t medmij-dvza .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY dvza ./dvza
COPY fhir_api ./fhir_api
COPY oauth ./oauth
COPY medmij_lists ./medmij_lists
COPY certs ./certs
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DVZA_INSTANCE_PATH=/var/lib/dvza \
    DVZA_BIND=0.0.0.0:8080 \
    DVZA_INTERNAL_BIND=0.0.0.0:9100 \
    DVZA_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && groupadd --system dvza && useradd --system --gid dvza --home-dir /var/lib/dvza --create-home dvza
USER dvza
WORKDIR /var/lib/dvza
# 8080: the app (behind the proxy); 9100: /metrics and /readyz details for operators only, never published
EXPOSE 8080 9100
# /healthz answers when the process serves; /readyz also checks the database and list freshness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['DVZA_BIND'].rsplit(':',1)[1], timeout=4)" || exit 1
CMD ["dvza", "serve"]
