"""Shared fixtures. Real servers live in tests/fixtures/, one module each."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.pg_cluster",
    "tests.fixtures.bot",
    "tests.fixtures.dovecot",
    "tests.fixtures.imap_servers",
    "tests.fixtures.smtp_sink",
    "tests.fixtures.token_endpoint",
    "tests.fixtures.web",
    "tests.fixtures.pdfs",
]
