"""mailbot: intake bot for the f-desk mailbox."""
