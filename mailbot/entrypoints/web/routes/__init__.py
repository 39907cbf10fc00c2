"""One module per page group, each with its ``ROUTES``; :mod:`mailbot.entrypoints.web.app` puts them together."""
