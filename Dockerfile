FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --home-dir /var/lib/nvr nvr
WORKDIR /opt/nvr/src
COPY pyproject.toml README.md ./
COPY nvr ./nvr
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
USER nvr
ENV NVR_DATA_DIR=/var/lib/nvr
EXPOSE 8080 8554
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["nvr", "serve"]
