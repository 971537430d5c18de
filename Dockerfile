FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv

RUN useradd --create-home --uid 10001 app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY scripts ./scripts
RUN pip install -e . && chown -R app /srv

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["manage", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
