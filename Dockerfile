# mailbot's image: the bot (`mailbot run`, the default) or the workbench (`mailbot web`),
# with the config mounted read-only at /config and the state in the volume /var/lib/mailbot:
#   docker run -v ./config:/config:ro -v mailbot-data:/var/lib/mailbot mailbot
#   docker run -v ./config:/config:ro -v mailbot-data:/var/lib/mailbot -p 8025:8025 mailbot web
# Relative paths in the config (sqlite:///mailbot.sqlite3, Maildir, outbox, raw mail)
# resolve against MAILBOT_STATE_DIR, not /config. Operator's guide: docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump and pg_restore for `mailbot backup` / `mailbot restore` on PostgreSQL (Debian's
# client: it dumps servers of its own major version and older ones).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client >/dev/null \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so the owner of a bind-mounted state directory can be set on the host.
RUN groupadd --system --gid 10001 mailbot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mailbot --no-create-home \
      --shell /usr/sbin/nologin mailbot \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/mailbot

WORKDIR /app
# The dependency layer: rebuilt only when constraints.txt (`make constraints`) changes.
COPY constraints.txt ./
RUN python -m pip install --no-deps -r constraints.txt

COPY pyproject.toml README.md ./
COPY mailbot ./mailbot
COPY templates ./templates
COPY migrations ./migrations
# The build backend is in the dependency layer; -c refuses a dependency constraints.txt lacks.
RUN python -m pip install --no-build-isolation --no-index -c constraints.txt . \
 && rm -rf /app/build

USER 10001:10001
WORKDIR /var/lib/mailbot
ENV MAILBOT_CONFIG=/config/config.toml MAILBOT_STATE_DIR=/var/lib/mailbot MAILBOT_WEB_HOST=0.0.0.0
VOLUME ["/var/lib/mailbot"]
EXPOSE 8025
# The bot's health (exit 1 on a problem: no poll for three intervals, refused login,
# unanswered requests). The workbench's container checks /healthz instead (deploy/compose.yaml).
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 CMD ["mailbot", "status"]
# Exec form: mailbot is PID 1 and gets SIGTERM itself, during the schema upgrade too.
ENTRYPOINT ["mailbot"]
CMD ["run", "--upgrade"]
