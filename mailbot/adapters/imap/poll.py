"""The bookkeeping of one poll: which UIDs were offered and settled (the watermark), and the read-ahead of bodies.

No I/O: :class:`~mailbot.adapters.imap.source.ImapSource` keeps one per
``fetch_new()`` and asks it where the cursor may move and which bodies to
fetch in one command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Poll"]

# Message bodies asked for in one FETCH: the intake files a batch of 25 per
# transaction; a window of the same size saves a round trip per message while
# holding at most 32 MB that a crash would make us fetch again.
_PREFETCH_COUNT = 25
_PREFETCH_BYTES = 32 * 1024 * 1024


@dataclass
class Poll:
    """Bookkeeping of one fetch_new() round: the watermark and the read-ahead of bodies."""

    uidvalidity: int
    base: int  # last_uid stored when the poll started (0 after a UIDVALIDITY change)
    offered: list[int] = field(default_factory=list)  # ascending, known-by-Message-ID ones too
    offered_set: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)
    settled: int = 0  # offered[:settled] are all done
    highest: int = 0
    # The read-ahead: RFC822.SIZE of every message found, the UIDs whose bodies
    # are fetched ahead (all the poll yields, in order, known-by-Message-ID ones
    # left out), and the bodies fetched ahead of their load().
    sizes: dict[int, int] = field(default_factory=dict)
    queue: list[int] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)  # uid -> index in queue
    ahead: dict[int, bytes] = field(default_factory=dict)

    def offer(self, uid: int) -> None:
        self.offered.append(uid)
        self.offered_set.add(uid)

    def settle(self, uid: int) -> int | None:
        """Mark ``uid`` done; return the new watermark if it moved."""
        if uid not in self.offered_set or uid in self.done:
            return None
        self.done.add(uid)
        before = self.settled
        while self.settled < len(self.offered) and self.offered[self.settled] in self.done:
            self.settled += 1
        if self.settled == before:
            return None
        return self.offered[self.settled - 1]

    def line_up(self, uids: Sequence[int]) -> None:
        """Set the messages whose bodies are fetched ahead, in the order they are yielded."""
        self.queue = list(uids)
        self.position = {uid: index for index, uid in enumerate(self.queue)}

    def window(self, uid: int, max_message_bytes: int) -> list[int]:
        """``uid`` and the next offered messages, for one FETCH: at most a batch, and a bounded size."""
        wanted = [uid]
        position = self.position.get(uid)
        if position is None:
            return wanted
        total = self.sizes.get(uid, 0)
        for other in self.queue[position + 1 : position + _PREFETCH_COUNT]:
            size = self.sizes.get(other)
            if size is None or size > max_message_bytes or total + size > _PREFETCH_BYTES:
                break
            if other in self.done or other in self.ahead:
                continue
            wanted.append(other)
            total += size
        return wanted
