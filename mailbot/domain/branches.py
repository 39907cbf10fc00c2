"""The branch directory: which branches exist and who their managers are."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailbot.domain.japanese import normalize

__all__ = ["Branch", "BranchDirectory", "branch_key"]

_SUFFIX = "支店"


def branch_key(text: str) -> str:
    """The form branch names are compared in: NFKC, no spaces, no trailing 支店."""
    key = normalize(text).replace(" ", "")
    if key.endswith(_SUFFIX) and len(key) > len(_SUFFIX):
        key = key[: -len(_SUFFIX)]
    return key.casefold()


@dataclass(frozen=True)
class Branch:
    """A branch as configured in ``[[branches]]``."""

    name: str
    aliases: tuple[str, ...] = ()
    region: str = "その他"
    managers: tuple[str, ...] = ()
    summary_recipients: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(branch_key(n) for n in (self.name, *self.aliases)))

    @property
    def weekly_recipients(self) -> tuple[str, ...]:
        return self.summary_recipients or self.managers


class BranchDirectory:
    """Looks branches up by name or alias, with or without 支店."""

    def __init__(self, branches: Iterable[Branch]) -> None:
        self._branches: tuple[Branch, ...] = tuple(branches)
        self._by_key: dict[str, Branch] = {}
        for branch in self._branches:
            for key in branch.keys:
                other = self._by_key.get(key)
                if other is not None and other is not branch:
                    raise ValueError(f"branch name or alias {key!r} is used by both {other.name} and {branch.name}")
                self._by_key[key] = branch
        # Longest first so "新宿南" wins over "新宿" when matching a prefix.
        self._keys_longest_first: Sequence[str] = sorted(self._by_key, key=len, reverse=True)

    def __iter__(self) -> Iterator[Branch]:
        return iter(self._branches)

    @property
    def branches(self) -> tuple[Branch, ...]:
        return self._branches

    def get(self, text: str) -> Branch | None:
        """The branch whose name or alias is exactly ``text``."""
        return self._by_key.get(branch_key(text))

    def match_prefix(self, text: str) -> Branch | None:
        """The branch whose name or alias starts ``text`` (subjects add trailing words)."""
        key = branch_key(text)
        for candidate in self._keys_longest_first:
            if key.startswith(candidate):
                return self._by_key[candidate]
        return None
