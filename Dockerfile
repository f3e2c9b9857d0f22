# Keel's API and worker image (the same image runs `keel serve`, `keel worker` and `keel migrate`).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
# Editable install: Alembic finds migrations/ next to src/.
RUN pip install -e . && useradd --system --no-create-home keel
USER keel
EXPOSE 8000
CMD ["keel", "serve"]
