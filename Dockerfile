# Keel's API and worker image (the same image runs `keel serve`, `keel worker` and `keel migrate`).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
# Editable install (Alembic finds migrations/ next to src/), at the locked versions; torch's CPU build
# (the lock's torch==…+cpu) comes from PyTorch's own index.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c requirements.lock -e . \
    && useradd --system --no-create-home keel
USER keel
EXPOSE 8000
CMD ["keel", "serve"]
