"""Hybrid logical clock (HLC): wall time in ms, a logical counter, and a node id.

Why: phones are offline for hours and their wall clocks drift. An HLC stays
close to physical time (so "last writer wins" means what people expect) but
never goes backwards and always orders an event after everything its node has
seen (``receive``), so a write made after seeing another always wins over it.

Encoding: ``"{wall_ms:013d}-{counter:06d}-{node}"``. The first two parts are
fixed width, so comparing two encoded strings lexicographically gives exactly
the HLC order (wall, then counter, then node id). That lets databases index
and compare HLCs as plain text.

Algorithm (Kulkarni et al., 2014):

* ``now()``: ``l' = max(l, wall)``; counter is ``c + 1`` if ``l'`` did not
  change, else 0.
* ``receive(m)``: ``l' = max(l, m.l, wall)``; counter is ``max(c, m.c) + 1``
  if ``l' == l == m.l``, ``c + 1`` if only ``l' == l``, ``m.c + 1`` if only
  ``l' == m.l``, else 0.
* A remote stamp more than ``max_skew_ms`` ahead of our wall clock is refused
  (``ClockSkewError``) and leaves the clock untouched, so one phone with a
  wrong date cannot drag every replica into the future.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Final, NamedTuple

WALL_DIGITS: Final = 13
COUNTER_DIGITS: Final = 6
MAX_WALL_MS: Final = 10**WALL_DIGITS - 1
MAX_COUNTER: Final = 10**COUNTER_DIGITS - 1
DEFAULT_MAX_SKEW_MS: Final = 5 * 60 * 1000
"""Five minutes: how far into the future a remote stamp may be before it is refused."""

_NODE_RE: Final = re.compile(r"^[A-Za-z0-9._:~-]{1,64}$")
_HLC_RE: Final = re.compile(r"^([0-9]{13})-([0-9]{6})-([A-Za-z0-9._:~-]{1,64})$")


class ClockSkewError(ValueError):
    """A remote HLC is further into the future than the allowed skew."""


class HLC(NamedTuple):
    """One hybrid logical clock stamp; tuple order is HLC order."""

    wall_ms: int
    counter: int
    node: str

    def encode(self) -> str:
        """The sortable text form, e.g. ``1700000000000-000003-phone-7``."""
        return format_hlc(self)

    def __str__(self) -> str:
        return format_hlc(self)


def validate_node(node: str) -> str:
    """Return ``node`` if it is a valid node id (1-64 chars of ``A-Za-z0-9._:~-``)."""
    if not _NODE_RE.match(node):
        raise ValueError(f"invalid HLC node id: {node!r}")
    return node


def format_hlc(stamp: HLC) -> str:
    """Encode an HLC so that string order equals clock order."""
    if not 0 <= stamp.wall_ms <= MAX_WALL_MS or not 0 <= stamp.counter <= MAX_COUNTER:
        raise ValueError(f"HLC out of range: {stamp!r}")
    validate_node(stamp.node)
    return f"{stamp.wall_ms:0{WALL_DIGITS}d}-{stamp.counter:0{COUNTER_DIGITS}d}-{stamp.node}"


def parse(text: str) -> HLC:
    """Decode an encoded HLC; raises ``ValueError`` on anything malformed."""
    match = _HLC_RE.match(text)
    if match is None:
        raise ValueError(f"malformed HLC: {text!r}")
    return HLC(int(match.group(1)), int(match.group(2)), match.group(3))


def _as_hlc(stamp: HLC | str) -> HLC:
    return parse(stamp) if isinstance(stamp, str) else stamp


def check_skew(remote: HLC | str, server_wall_ms: int, max_skew_ms: int) -> bool:
    """True if ``remote`` is at most ``max_skew_ms`` ahead of ``server_wall_ms`` (acceptable)."""
    return _as_hlc(remote).wall_ms - server_wall_ms <= max_skew_ms


def system_wall_ms() -> int:
    """The system's wall clock in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class HybridClock:
    """A node's hybrid logical clock; thread-safe; wall clock injectable for tests."""

    def __init__(
        self,
        node: str,
        wall: Callable[[], int] = system_wall_ms,
        max_skew_ms: int | None = DEFAULT_MAX_SKEW_MS,
        *,
        last: HLC | str | None = None,
    ) -> None:
        self.node = validate_node(node)
        self.wall = wall
        self.max_skew_ms = max_skew_ms
        self._lock = threading.Lock()
        start = _as_hlc(last) if last is not None else None
        self._wall_ms = start.wall_ms if start else 0
        self._counter = start.counter if start else 0

    @property
    def last(self) -> HLC:
        """The most recent stamp issued or absorbed (without advancing the clock)."""
        return HLC(self._wall_ms, self._counter, self.node)

    def _set(self, wall_ms: int, counter: int) -> HLC:
        if counter > MAX_COUNTER:  # counter exhausted: borrow a millisecond, stays monotonic
            wall_ms, counter = wall_ms + 1, 0
        self._wall_ms, self._counter = wall_ms, counter
        return HLC(wall_ms, counter, self.node)

    def now(self) -> HLC:
        """A new stamp, strictly greater than every stamp this clock issued or received."""
        with self._lock:
            physical = self.wall()
            if physical > self._wall_ms:
                return self._set(physical, 0)
            return self._set(self._wall_ms, self._counter + 1)

    def rewind(self, wall_ms: int) -> HLC:
        """Reset the last stamp to ``(wall_ms, 0)`` if it is ahead of it: the one permitted backwards
        move, after a server said this clock was far ahead (sync contract B; an edit still orders
        after its ``base_hlc`` because it receives it before stamping)."""
        with self._lock:
            if self._wall_ms > wall_ms:
                self._wall_ms, self._counter = wall_ms, 0
            return HLC(self._wall_ms, self._counter, self.node)

    def receive(self, remote: HLC | str, *, trusted: bool = False) -> HLC:
        """Absorb a remote stamp and return a new local stamp greater than both.

        Raises ``ClockSkewError`` (clock unchanged) if ``remote`` is further in
        the future than ``max_skew_ms`` allows, unless ``trusted`` (a stamp the
        server already accepted: a phone must order its edits after it).
        """
        other = _as_hlc(remote)
        with self._lock:
            physical = self.wall()
            if (
                not trusted
                and self.max_skew_ms is not None
                and not check_skew(other, physical, self.max_skew_ms)
            ):
                raise ClockSkewError(
                    f"remote clock {format_hlc(other)} is more than {self.max_skew_ms} ms "
                    f"ahead of local wall clock {physical}"
                )
            local_ms, local_c = self._wall_ms, self._counter
            new_ms = max(local_ms, other.wall_ms, physical)
            if new_ms == local_ms == other.wall_ms:
                counter = max(local_c, other.counter) + 1
            elif new_ms == local_ms:
                counter = local_c + 1
            elif new_ms == other.wall_ms:
                counter = other.counter + 1
            else:
                counter = 0
            return self._set(new_ms, counter)

    def observe(self, remote: HLC | str) -> None:
        """Absorb a remote stamp if it is within the skew bound; silently ignore it otherwise."""
        try:
            self.receive(remote)
        except ClockSkewError:
            pass
