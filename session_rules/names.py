"""Names hidden from peers: under the group rule, members know each other as "Member N".

Numbers are given in order of first arrival and kept for the whole session, so "Member 2" who
drops out and comes back is still "Member 2" (a new number would look like a new person).
"""

from __future__ import annotations


class MemberNumbers:
    """Each member's stable stand-in name for this session."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def alias(self, pid: str) -> str:
        """The member's stand-in name, given on first asking and never changed."""
        number = self._numbers.get(pid)
        if number is None:
            number = len(self._numbers) + 1
            self._numbers[pid] = number
        return f"Member {number}"

    def known(self, pid: str) -> bool:
        return pid in self._numbers
