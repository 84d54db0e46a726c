"""Hybrid logical clock: monotonic, causal, sortable encoding, bounded skew."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.clock import (
    HLC,
    ClockSkewError,
    HybridClock,
    check_skew,
    format_hlc,
    parse,
)

nodes = st.from_regex(r"[A-Za-z0-9._:~-]{1,12}", fullmatch=True)
stamps = st.builds(
    HLC,
    wall_ms=st.integers(0, 10**13 - 1),
    counter=st.integers(0, 10**6 - 1),
    node=nodes,
)


@given(stamps)
def test_encoding_round_trips(stamp: HLC) -> None:
    assert parse(format_hlc(stamp)) == stamp


@given(stamps, stamps)
def test_string_order_is_clock_order(a: HLC, b: HLC) -> None:
    assert (format_hlc(a) < format_hlc(b)) == (a < b)
    assert (format_hlc(a) == format_hlc(b)) == (a == b)


@pytest.mark.parametrize(
    "text", ["", "1-2-x", "0000000000001-000001-", "0000000000001-000001-a b", "x" * 30]
)
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


class FakeWall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@given(st.lists(st.tuples(st.sampled_from(["now", "recv"]), st.integers(-5000, 5000)), max_size=60))
def test_now_and_receive_are_strictly_monotonic(ops: list[tuple[str, int]]) -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = HybridClock("a", wall, max_skew_ms=None)
    previous = clock.now()
    for kind, delta in ops:
        wall.ms += delta // 10  # the wall clock may jump backwards
        if kind == "now":
            stamp = clock.now()
        else:
            remote = HLC(wall.ms + delta, abs(delta) % 7, "b")
            stamp = clock.receive(remote)
            assert stamp > remote  # causality: after everything received
        assert stamp > previous
        previous = stamp


def test_receive_standard_cases() -> None:
    wall = FakeWall(1000)
    clock = HybridClock("a", wall, max_skew_ms=None)
    assert clock.now() == HLC(1000, 0, "a")
    assert clock.now() == HLC(1000, 1, "a")
    assert clock.receive(HLC(1000, 5, "b")) == HLC(1000, 6, "a")  # same ms: max counter + 1
    assert clock.receive(HLC(1200, 3, "b")) == HLC(1200, 4, "a")  # remote ahead
    assert clock.receive(HLC(900, 9, "b")) == HLC(1200, 5, "a")  # local ahead
    wall.ms = 2000
    assert clock.receive(HLC(1500, 9, "b")) == HLC(2000, 0, "a")  # physical ahead


def test_future_stamp_beyond_skew_is_refused_and_does_not_move_clock() -> None:
    wall = FakeWall(1_000_000)
    clock = HybridClock("server", wall, max_skew_ms=60_000)
    before = clock.now()
    with pytest.raises(ClockSkewError):
        clock.receive(HLC(1_000_000 + 60_001, 0, "phone"))
    assert clock.last == before
    assert clock.now() == HLC(before.wall_ms, before.counter + 1, "server")
    # exactly at the bound is accepted
    accepted = clock.receive(HLC(1_060_000, 0, "phone"))
    assert accepted == HLC(1_060_000, 1, "server")


def test_check_skew() -> None:
    assert check_skew("0000000001000-000000-x", 500, 500)
    assert not check_skew("0000000001001-000000-x", 500, 500)
    assert check_skew(HLC(0, 0, "x"), 10**12, 0)  # the past is always fine


def test_counter_overflow_borrows_a_millisecond() -> None:
    clock = HybridClock("a", FakeWall(5), max_skew_ms=None, last=HLC(5, 999_999, "a"))
    assert clock.now() == HLC(6, 0, "a")


def test_clock_restored_from_last_stamp_never_goes_back() -> None:
    first = HybridClock("a", FakeWall(10_000))
    stamp = first.now()
    restarted = HybridClock("a", FakeWall(5_000), last=stamp)  # wall clock reset after restart
    assert restarted.now() > stamp
