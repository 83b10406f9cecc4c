# ses-sender: one image for every process (`serve`, `dispatch`, `project`, `migrate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service runs as this unprivileged user; nothing in the image needs root at run time.
RUN useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin ses-sender

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY projections ./projections
COPY sql ./sql
RUN pip install .

USER ses-sender
WORKDIR /home/ses-sender
ENV DATA_DIR=/home/ses-sender/data \
    LOG_FORMAT=json

EXPOSE 3000
ENTRYPOINT ["ses-sender"]
CMD ["serve"]
