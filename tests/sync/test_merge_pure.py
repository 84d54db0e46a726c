"""Merge rules: commutative, associative, idempotent; conflict losers independent of order."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.clock import HLC, format_hlc
from sync.merge import (
    ConflictRecord,
    FieldState,
    conflict_losers,
    derive_flags,
    fold_field_edits,
    merge_events,
    merge_field_edit,
    merge_field_states,
)
from sync.protocol import EditField, RecordAnswer, RecordObservation


def stamp(ms: int, counter: int = 0, node: str = "n") -> str:
    return format_hlc(HLC(ms, counter, node))


@st.composite
def edit_histories(draw: st.DrawFn) -> list[EditField]:
    """Edits of one field by a few devices; each is based on None or an earlier edit it saw."""
    count = draw(st.integers(1, 9))
    edits: list[EditField] = []
    used: set[str] = set()
    for _ in range(count):
        node = draw(st.sampled_from(["p1", "p2", "p3", "org"]))
        base = draw(
            st.one_of(st.none(), st.sampled_from([e.hlc for e in edits]) if edits else st.none())
        )
        floor = int(base[:13]) if base else 0
        hlc = stamp(floor + draw(st.integers(0, 50)), draw(st.integers(0, 3)), node)
        if hlc in used or (base is not None and hlc <= base):
            continue
        used.add(hlc)
        value = draw(st.one_of(st.none(), st.sampled_from(["a", "b", "07700 900123"])))
        edits.append(
            EditField(
                entity="person", entity_id=7, field="phone", value=value, hlc=hlc, base_hlc=base
            )
        )
    return edits


def loser_hlcs(state: FieldState | None) -> set[str]:
    return {c.hlc for c in conflict_losers(state)}


@given(edit_histories(), st.randoms(use_true_random=False))
def test_any_order_and_duplicates_give_the_same_state(edits: list[EditField], rnd) -> None:  # type: ignore[no-untyped-def]
    reference = fold_field_edits(edits)
    shuffled = list(edits) + [rnd.choice(edits) for _ in range(3)]  # duplicates
    rnd.shuffle(shuffled)
    assert fold_field_edits(shuffled) == reference
    assert reference is not None
    assert reference.winner == max(edits, key=lambda e: e.hlc)


@given(edit_histories(), st.randoms(use_true_random=False))
def test_incremental_conflicts_equal_final_losers_in_any_order(edits: list[EditField], rnd) -> None:  # type: ignore[no-untyped-def]
    order = list(edits)
    rnd.shuffle(order)
    state: FieldState | None = None
    open_conflicts: set[str] = set()
    for edit in order:
        result = merge_field_edit(state, edit)
        if result.conflict is not None:
            open_conflicts.add(result.conflict.hlc)
        if result.resolved is not None:
            open_conflicts.discard(result.resolved.hlc)
        state = result.new_state
    assert open_conflicts == loser_hlcs(state)
    # definition: losers are edits that are neither the winner nor anyone's base
    bases = {e.base_hlc for e in edits}
    winner = max(e.hlc for e in edits)
    assert loser_hlcs(state) == {e.hlc for e in edits if e.hlc != winner and e.hlc not in bases}


@given(edit_histories(), st.data())
def test_state_join_is_commutative_associative_idempotent(
    edits: list[EditField], data: st.DataObject
) -> None:
    parts = [data.draw(st.lists(st.sampled_from(edits), max_size=6)) for _ in range(3)]
    a, b, c = (fold_field_edits(p) for p in parts)
    assert merge_field_states(a, b) == merge_field_states(b, a)
    assert merge_field_states(merge_field_states(a, b), c) == merge_field_states(
        a, merge_field_states(b, c)
    )
    assert merge_field_states(a, a) == a
    assert merge_field_states(merge_field_states(a, b), c) == fold_field_edits(
        [*parts[0], *parts[1], *parts[2]]
    )


def edit(value: str, hlc: str, base: str | None) -> EditField:
    return EditField(
        entity="address", entity_id=1, field="access_note", value=value, hlc=hlc, base_hlc=base
    )


def test_sequential_overwrite_is_not_a_conflict() -> None:
    first = merge_field_edit(None, edit("gate code 12", stamp(1), None))
    second = merge_field_edit(first.new_state, edit("gate code 34", stamp(2), stamp(1)))
    assert second.outcome == "applied" and second.conflict is None
    assert second.new_state.value == "gate code 34"
    assert conflict_losers(second.new_state) == ()


def test_concurrent_edits_keep_the_loser_either_way_round() -> None:
    base = edit("old", stamp(1), None)
    phone_a = edit("A", stamp(5, node="a"), stamp(1))
    phone_b = edit("B", stamp(7, node="b"), stamp(1))
    s0 = merge_field_edit(None, base).new_state
    ab = merge_field_edit(merge_field_edit(s0, phone_a).new_state, phone_b)
    assert ab.outcome == "applied"
    assert ab.conflict == ConflictRecord(
        entity="address",
        entity_id=1,
        field="access_note",
        value="A",
        hlc=phone_a.hlc,
        base_hlc=stamp(1),
        winner_value="B",
        winner_hlc=phone_b.hlc,
    )
    ba = merge_field_edit(merge_field_edit(s0, phone_b).new_state, phone_a)
    assert ba.outcome == "conflict" and ba.conflict is not None and ba.conflict.hlc == phone_a.hlc
    assert ab.new_state == ba.new_state


def test_edit_based_on_a_loser_resolves_it() -> None:
    a = edit("A", stamp(5, node="a"), None)
    b = edit("B", stamp(7, node="b"), None)
    state = fold_field_edits([a, b])
    assert loser_hlcs(state) == {a.hlc}
    fix = merge_field_edit(state, edit("A+B", stamp(9, node="org"), a.hlc))
    assert fix.resolved is not None and fix.resolved.hlc == a.hlc
    # b is now a loser: the organiser's edit never saw it
    assert fix.conflict is not None and fix.conflict.hlc == b.hlc


def test_replayed_edit_is_duplicate() -> None:
    a = edit("A", stamp(5), None)
    state = merge_field_edit(None, a).new_state
    again = merge_field_edit(state, a)
    assert again.outcome == "duplicate" and again.new_state == state


# ---------------------------------------------------------------- events

answers = st.builds(
    RecordAnswer,
    id=st.sampled_from([uuid.UUID(int=i) for i in range(6)]),
    address_id=st.integers(1, 3),
    question_key=st.sampled_from(["vote", "issue"]),
    value=st.one_of(st.booleans(), st.integers(0, 5), st.text(max_size=3)),
    at=st.integers(0, 99).map(stamp),
)


@given(st.lists(answers), st.lists(answers), st.lists(answers))
def test_merge_events_is_a_semilattice(a, b, c) -> None:  # type: ignore[no-untyped-def]
    ab = merge_events(a, b)
    assert ab == merge_events(b, a)
    assert merge_events(ab, c) == merge_events(a, merge_events(b, c))
    assert merge_events(ab, ab) == ab
    assert set(ab) == {e.id for e in a} | {e.id for e in b}


# ---------------------------------------------------------------- flags


def obs(n: int, kind: str, ms: int, person: int | None = 1) -> RecordObservation:
    return RecordObservation(
        id=uuid.UUID(int=n),
        address_id=10,
        person_id=person,
        kind=kind,  # type: ignore[arg-type]
        at=stamp(ms),
    )


def dnv(observations: list[RecordObservation]) -> bool:
    return derive_flags(observations)[(10, 1)].do_not_visit


def test_set_wins_over_a_clear_that_never_saw_it() -> None:
    s1 = obs(1, "do_not_visit", 10)
    clear = obs(2, "do_not_visit_cleared", 20)
    assert dnv([s1]) and not dnv([s1, clear])
    offline_set = obs(3, "do_not_visit", 15)  # made before the clear but accepted after it
    assert dnv([s1, clear, offline_set])
    assert not dnv([s1, offline_set, clear])  # seen by the clear: cleared
    stale_clear = obs(5, "do_not_visit_cleared", 5)  # older than the set in force: does not count
    assert dnv([s1, stale_clear])
    assert derive_flags([s1, clear])[(10, 1)].cleared_hlc == clear.at


sets = st.builds(lambda n, ms: obs(n, "do_not_visit", ms), st.integers(0, 5), st.integers(0, 50))
clears = st.builds(
    lambda n, ms: obs(n, "do_not_visit_cleared", ms), st.integers(6, 9), st.integers(0, 50)
)
others = st.builds(
    lambda n, ms, k: obs(n, k, ms, person=None),
    st.integers(10, 12),
    st.integers(0, 50),
    st.sampled_from(["moved_away", "deceased"]),
)


def unique(observations: list[RecordObservation]) -> list[RecordObservation]:
    return list(merge_events((), observations).values())


@given(st.lists(st.one_of(sets, clears, others), max_size=12), st.randoms(use_true_random=False))
@settings(max_examples=200)
def test_replayed_observations_change_nothing(observations, rnd) -> None:  # type: ignore[no-untyped-def]
    once = list({o.id: o for o in observations}.values())
    replayed = list(once)
    for o in rnd.sample(once, k=len(once) // 2):
        replayed.insert(
            rnd.randint(replayed.index(o) + 1, len(replayed)), o
        )  # only after the first copy
    assert {
        k: (v.do_not_visit, v.set_hlc, v.cleared_hlc) for k, v in derive_flags(replayed).items()
    } == {k: (v.do_not_visit, v.set_hlc, v.cleared_hlc) for k, v in derive_flags(once).items()}


@given(
    st.lists(sets, min_size=1, max_size=6),
    st.lists(clears, max_size=4),
    st.randoms(use_true_random=False),
)
def test_sets_commute_with_sets_and_clears_with_clears(set_list, clear_list, rnd) -> None:  # type: ignore[no-untyped-def]
    set_list, clear_list = unique(set_list), unique(clear_list)
    shuffled_sets, shuffled_clears = list(set_list), list(clear_list)
    rnd.shuffle(shuffled_sets)
    rnd.shuffle(shuffled_clears)
    a = derive_flags([*set_list, *clear_list])[(10, 1)]
    b = derive_flags([*shuffled_sets, *shuffled_clears])[(10, 1)]
    assert (a.do_not_visit, a.set_hlc) == (b.do_not_visit, b.set_hlc)
    # the flag is off iff some clear is later than every set
    latest_set = max(s.at for s in set_list)
    assert a.do_not_visit == (not any(c.at > latest_set for c in clear_list))


@given(st.lists(st.one_of(sets, clears), max_size=10), sets)
def test_a_set_accepted_last_is_always_in_force(history, last_set) -> None:  # type: ignore[no-untyped-def]
    history = [o for o in unique(history) if o.id != last_set.id]
    assert dnv([*history, last_set])
