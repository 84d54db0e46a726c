"""Sign-in backoff that slows guessing without letting a stranger lock anyone out.

Failures are counted per (account, source address): after `free_failures` of
them each further attempt from that address for that account must wait
`BASE_SECONDS * 2**n` (capped), even with the right password. Someone guessing
the admin's password from elsewhere is slowed; the admin, signing in from
their own address, is not. A looser budget per address (`free_failures *
PER_ADDRESS_FACTOR` failures over any accounts) slows password spraying.
Unknown addresses are counted exactly like real accounts, so backoff reveals
nothing. Counters live in the worker's memory, bounded in size, forgotten once
quiet for the cap.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

BASE_SECONDS = 30
PER_ADDRESS_FACTOR = 10
MAX_ENTRIES = 100_000


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float


class SignInThrottle:
    """Exponential backoff keyed on (account, address), plus a looser per-address budget."""

    def __init__(self, free_failures: int, max_delay_seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.free_failures = max(1, free_failures)
        self.max_delay = max(1, max_delay_seconds)
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def _keys(self, account: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (account.strip().lower(), address), ("", address)

    def _get(self, key: tuple[str, str], now: float) -> _Failures | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry.last > self.max_delay and now >= entry.blocked_until:
            del self._entries[key]
            return None
        return entry

    def retry_after(self, account: str, address: str) -> int:
        """Seconds this address must wait before trying this account again (0: go ahead)."""
        now = self.clock()
        waits = [entry.blocked_until - now for key in self._keys(account, address) if (entry := self._get(key, now))]
        return max(0, math.ceil(max(waits, default=0)))

    def failed(self, account: str, address: str) -> None:
        """Count a failed sign-in and, past the free failures, start or lengthen the wait."""
        now = self.clock()
        for key, free in zip(self._keys(account, address), (self.free_failures, self.free_failures * PER_ADDRESS_FACTOR), strict=True):
            entry = self._get(key, now) or _Failures(0, now, now)
            entry.count += 1
            entry.last = now
            if entry.count >= free:
                entry.blocked_until = now + min(self.max_delay, BASE_SECONDS * 2 ** min(entry.count - free, 20))
            self._entries[key] = entry
            self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def succeeded(self, account: str, address: str) -> None:
        """A right password clears this account's count from this address (the per-address budget stays)."""
        self._entries.pop(self._keys(account, address)[0], None)
