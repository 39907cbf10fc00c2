# mailbot: runs the scheduler (`mailbot run`) with the config mounted at /config.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mailbot ./mailbot
COPY templates ./templates
COPY migrations ./migrations
RUN pip install . && useradd --system --home /var/lib/mailbot --create-home mailbot

USER mailbot
WORKDIR /var/lib/mailbot
ENV MAILBOT_CONFIG=/config/config.toml
VOLUME ["/config", "/var/lib/mailbot"]
# Apply migrations, then run the scheduler in the foreground (SIGTERM stops it cleanly).
CMD ["sh", "-c", "mailbot db upgrade && exec mailbot run"]
