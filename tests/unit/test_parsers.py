"""The parsers raise nothing but the plugin's own error, whatever the service sends (``read/pprof.py``).

Numbers of any length (Python refuses to convert more than 4,300 digits), sample rates that overflow a
float, and bombs that inflate or split into millions of records: each is refused or read, never a crash.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_goleak.errors import ProfileError
from pytest_goleak.read.pprof import (
    MAX_HEAP_SITES,
    MAX_STACK_FRAMES,
    MAX_STACKS,
    index_goroutines,
    parse_goroutine_dump,
    parse_goroutine_profile,
    parse_heap_profile,
)

HEAP = """heap profile: 1: 2048 [3: 4096] @ heap/1048576
1: 2048 [3: 4096] @ 0x1 0x2
#\t0x1\tmain.cache+0x1\t/src/main.go:42

# runtime.MemStats
# HeapAlloc = 123456
# Sys = 7000000
# HeapIdle = 5000
# HeapReleased = 1000
"""

DUMP = """goroutine 7 gp=0x1 m=nil [chan send, 3 minutes]:
main.worker(0x1)
\t/src/main.go:12 +0x1d
created by main.start in goroutine 1
\t/src/main.go:30 +0x5
"""

INDEX = "<tr><td>12</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>"

numbers = st.one_of(
    st.integers(0, 10**30).map(str),
    st.integers(4000, 6000).map(lambda n: "9" * n),  # past Python's int-string limit
)


def _with(text: str, old: str, new: str) -> bytes:
    return text.replace(old, new).encode()


@settings(max_examples=60, deadline=None)
@given(number=numbers, where=st.sampled_from(["2048", "123456", "1048576", "42", "7000000"]))
def test_a_heap_profile_with_a_number_of_any_length_is_read_or_refused(number: str, where: str) -> None:
    data = _with(HEAP, where, number)
    try:
        heap = parse_heap_profile(data)
    except ProfileError:
        return
    heap.sites()  # the evidence too


@settings(max_examples=60, deadline=None)
@given(number=numbers, where=st.sampled_from(["7", "12", "30", "1"]))
def test_a_dump_with_a_number_of_any_length_is_parsed(number: str, where: str) -> None:
    parse_goroutine_dump(DUMP.replace(where, number))
    parse_goroutine_dump(DUMP.replace(where, number), mentioning={"main.worker"})


@settings(max_examples=60, deadline=None)
@given(number=numbers)
def test_an_index_with_a_number_of_any_length_gives_a_count_or_none(number: str) -> None:
    count = index_goroutines(INDEX.replace("12", number).encode())
    assert count is None or count == int(number)


def test_a_sample_rate_that_overflows_a_float_is_refused() -> None:
    with pytest.raises(ProfileError):
        parse_heap_profile(_with(HEAP, "1048576", "1" * 400))


@pytest.mark.parametrize(
    ("record", "times", "message"),
    [
        (b"1 @\n\n", MAX_STACKS + 1, "over 100,000 stacks"),  # 5 bytes a stack: gigabytes as objects
        (b"1 @ 0x1\n" + b"#\t0x1\tmain.f+0x1\t:1\n" * (MAX_STACK_FRAMES + 1) + b"\n", 1, "over 2,048 frames"),
    ],
)
def test_a_goroutine_profile_of_millions_of_tiny_records_is_refused_before_it_is_split(
    record: bytes, times: int, message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_goroutine_profile(b"goroutine profile: total 1\n" + record * times)


def test_a_goroutine_profile_of_too_many_distinct_frames_is_refused() -> None:
    def record(n: int) -> bytes:  # 200 frames, each on a line of its own
        return b"1 @ 0x1\n" + b"".join(b"#\t0x1\tmain.f+0x1\t:%d\n" % (n * 200 + i) for i in range(200)) + b"\n"

    stacks = MAX_STACKS // 200 + 2
    with pytest.raises(ProfileError, match="over 100,000 distinct frames"):
        parse_goroutine_profile(b"goroutine profile: total %d\n" % stacks + b"".join(map(record, range(stacks))))


def test_a_heap_profile_of_millions_of_records_keeps_a_bounded_number_of_sites() -> None:
    record = b"1: 2048 [1: 2048] @ 0x1\n#\t0x1\tmain.f+0x1\t/src/main.go:1\n"
    data = HEAP.split("\n", 1)[0].encode() + b"\n" + record * (MAX_HEAP_SITES * 2) + HEAP.split("\n\n", 1)[1].encode()
    assert len(parse_heap_profile(data).sites()) == MAX_HEAP_SITES


def test_the_heap_profiles_memstats_give_what_the_runtime_holds_and_holds_idle() -> None:
    heap = parse_heap_profile(HEAP.encode())
    assert (heap.live_bytes, heap.runtime_held, heap.runtime_idle) == (123456, 7000000 - 1000, 5000 - 1000)
    assert parse_heap_profile(HEAP.replace("# HeapIdle = 5000\n", "").encode()).runtime_idle == 0
