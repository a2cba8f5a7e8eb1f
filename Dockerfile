FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --home-dir /var/lib/nvr nvr
WORKDIR /opt/nvr/src
COPY pyproject.toml README.md ./
COPY nvr ./nvr
COPY migrations ./migrations
COPY setup.py ./
# gcc for the replay fast path (nvr/playback/_wire.c), removed again in the same layer
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir -e . \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/*
USER nvr
ENV NVR_DATA_DIR=/var/lib/nvr
EXPOSE 8080 8554
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["nvr", "serve"]
