"""The ``mailbot`` command line: :mod:`.main` assembles the parser from one module per command group
(:mod:`.cases`, :mod:`.quarantine`, :mod:`.outbox`, :mod:`.unis`, :mod:`.progress`, :mod:`.ops`, …), which
share :mod:`.common` and :mod:`.tables` and never import one another.

Deliberately empty: importing :mod:`.tables` (as the demo does) must not pull in every command group.
"""
