"""Profile fetching and decoding, on real profiles from the running example service.

The fuzz tests mutate those real bytes: whatever a broken service or proxy
sends, the parsers raise the plugin's own ProfileError and nothing else.
"""

from __future__ import annotations

import gzip
import math
import re
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_goleak.errors import GoleakError, ProfileError, ServiceError
from pytest_goleak.judge.identity import identity, is_own
from pytest_goleak.read.pprof import (
    Frame,
    PprofClient,
    Stack,
    encode_goroutine_profile,
    parse_goroutine_dump,
    parse_goroutine_profile,
    parse_heap_profile,
    parse_heap_sites,
)
from pytest_goleak.service.started import GoService


@pytest.fixture(scope="module")
def pprof(goleak_service: GoService) -> PprofClient:
    client = PprofClient(goleak_service.pprof_url, goleak_service.request_timeout)
    yield client
    client.close()


@pytest.fixture(scope="module")
def real(pprof: PprofClient, goleak_service: GoService) -> dict[str, bytes]:
    # One 8 MiB page kept in the cache: an allocation that big is always sampled,
    # so the heap profile has at least one site.
    httpx.get(goleak_service.url + "/leaky/cache", params={"kb": 8192}, trust_env=False)
    return {
        "goroutine": pprof.fetch("goroutine", {"debug": 1}),
        "heap": pprof.fetch("heap", {"gc": 1, "debug": 1}),
        "dump": pprof.fetch("goroutine", {"debug": 2}),
    }


def test_goroutine_profile_decodes_with_symbols(real: dict[str, bytes]) -> None:
    profile = parse_goroutine_profile(real["goroutine"])
    identities = {identity(group.stack) for group in profile.groups}
    # The service's main goroutine is always there.
    assert "main.main" in identities
    assert profile.total >= 2
    frames = [frame for group in profile.groups for frame in group.stack]
    assert any(frame.file.endswith(".go") and frame.line > 0 for frame in frames)


def test_heap_profile_reads_exact_live_bytes(real: dict[str, bytes]) -> None:
    heap = parse_heap_profile(real["heap"])
    live = int(re.search(rb"# HeapAlloc = (\d+)", real["heap"]).group(1))  # type: ignore[union-attr]
    assert heap.live_bytes == live > 0
    sites = heap.sites()
    assert sites and all(site.inuse_bytes > 0 and site.stack for site in sites)


def test_goroutine_dump_has_states_and_creators(real: dict[str, bytes]) -> None:
    dump = parse_goroutine_dump(real["dump"].decode())
    assert dump, "no goroutine parsed from a real dump"
    main = [g for g in dump if identity(g.stack) == "main.main"]
    assert len(main) == 1 and main[0].goid == 1
    created = [g for g in dump if g.created_by is not None]
    assert created and all(g.created_by.file.endswith(".go") for g in created)  # type: ignore[union-attr]
    assert all(g.state for g in dump)


def test_dump_parser_survives_elided_frames_and_a_cut_off_end() -> None:
    frames = "".join(f"main.recurse(0x{i:x})\n\t/src/main.go:{i} +0x1f\n" for i in range(1, 4))
    text = (
        "goroutine 7 [chan receive, 3 minutes]:\n"
        + frames
        + "...additional frames elided...\n"
        + "main.start()\n\t/src/main.go:40 +0x25\n"
        + "created by main.main in goroutine 1\n\t/src/main.go:50 +0x30\n\n"
        + "goroutine 9 [running]:\nmain.cut("
    )
    (goroutine,) = parse_goroutine_dump(text)
    assert goroutine.goid == 7
    assert goroutine.state == "chan receive, 3 minutes"
    assert goroutine.elided
    assert identity(goroutine.stack) == "main.start"
    assert goroutine.created_by is not None and goroutine.created_by.function == "main.main"
    assert goroutine.creator_goid == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"<html><body>502 Bad Gateway</body></html>", "got: '<html>"),
        (b"404 page not found\n", "got: '404 page not found"),
        (gzip.compress(b"\x0a\x05hello", mtime=0), "expected a goroutine profile"),  # the protobuf form
        (b"goroutine profile: total 2\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/src/main.go:1\n\n", "count 1 of the 2"),
        (b"goroutine profile: total 1\n1 @ 0x1\n#\tmain.f\n\n", "malformed frame line"),
        (b"goroutine profile: total 1\none @ 0x1\n\n", "malformed record"),
    ],
)
def test_bad_goroutine_bodies_give_clear_errors(body: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        parse_goroutine_profile(body)


def _profile_message() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from pytest_goleak.read._proto.profile_descriptor import SERIALIZED

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(SERIALIZED))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


def _proto_groups(gzipped: bytes) -> list[tuple[int, Stack]]:
    """A gzipped protobuf goroutine profile's samples as (count, stack), read with protobuf itself."""
    proto = _profile_message().FromString(gzip.decompress(gzipped))
    strings = proto.string_table
    functions = {fn.id: (strings[fn.name], strings[fn.filename]) for fn in proto.function}
    frames = {
        loc.id: tuple(Frame(*functions[line.function_id], line.line) for line in loc.line) for loc in proto.location
    }
    return [(s.value[0], tuple(f for i in s.location_id for f in frames[i])) for s in proto.sample]


def test_the_text_profile_names_each_goroutine_as_the_protobuf_one_does(pprof: PprofClient) -> None:
    # The text leaves out only the runtime's innermost frames and runtime.goexit: no identity depends on them.
    def named(groups: list[tuple[int, Stack]]) -> list[tuple[str, int]]:
        return sorted((identity(stack), count) for count, stack in groups if not is_own(stack))

    proto = named(_proto_groups(pprof.fetch("goroutine")))
    text = parse_goroutine_profile(pprof.fetch("goroutine", {"debug": 1}))
    assert named([(group.count, group.stack) for group in text.groups]) == proto
    assert len(proto) >= 3


def test_heap_parser_rejects_html_and_truncation(real: dict[str, bytes]) -> None:
    with pytest.raises(ProfileError, match="expected a text heap profile"):
        parse_heap_profile(b"<html>oops</html>")
    cut = real["heap"].split(b"# runtime.MemStats")[0]
    with pytest.raises(ProfileError, match="HeapAlloc"):
        parse_heap_profile(cut)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_goroutine_profiles_only_raise_profile_error(real: dict[str, bytes], data: st.DataObject) -> None:
    mutated = bytearray(real["goroutine"])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.sampled_from(b"\n\t:@# 0x+-9az\xff"))
    body = bytes(mutated[: data.draw(st.integers(0, len(mutated)))])
    try:
        parse_goroutine_profile(body)
    except ProfileError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_text_profiles_only_raise_profile_error(real: dict[str, bytes], data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(["heap", "dump"]))
    text = bytearray(real[source])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(text) - 1))
        text[position] = data.draw(st.sampled_from(b"\n\t:[]()# 0x+-9az"))
    body = bytes(text[: data.draw(st.integers(0, len(text)))])
    try:
        if source == "heap":
            parse_heap_profile(body)
            parse_heap_sites(body)
        else:
            parse_goroutine_dump(body.decode("utf-8", "replace"))
    except ProfileError:
        pass


@given(st.binary(max_size=512))
@settings(max_examples=300, deadline=None)
def test_random_bytes_only_raise_profile_error(body: bytes) -> None:
    for parse in (parse_goroutine_profile, parse_heap_profile, parse_heap_sites):
        try:
            parse(body)
        except ProfileError:
            pass


def test_unknown_profile_is_a_service_error_naming_pprof(pprof: PprofClient) -> None:
    with pytest.raises(ServiceError, match="HTTP 404"):
        pprof.fetch("no-such-profile")


def test_a_404_keeps_the_connection(goleak_service: GoService) -> None:
    # A new connection would leave the service winding down the old one's goroutine and fd, where the
    # next reading (the next test's before-reading) would count them.
    client = PprofClient(goleak_service.pprof_url, goleak_service.request_timeout)

    def local_port() -> int:
        sock = client._connection._sock
        assert sock is not None
        return int(sock.getsockname()[1])

    try:
        client.fetch("goroutine")
        port = local_port()
        for _ in range(3):
            with pytest.raises(ServiceError, match="HTTP 404"):
                client.fetch("no-such-profile")
            assert client.goroutines().total > 0
            assert local_port() == port
    finally:
        client.close()


def test_unreachable_service_is_a_bounded_service_error() -> None:
    client = PprofClient("http://127.0.0.1:9/debug/pprof/", timeout=1.0)
    with pytest.raises(GoleakError, match="did not answer"):
        client.goroutines()


def test_proxy_settings_never_apply_to_pprof(
    pprof: PprofClient, goleak_service: GoService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    client = PprofClient(goleak_service.pprof_url, goleak_service.request_timeout)
    try:
        assert client.goroutines().total > 0
    finally:
        client.close()
    assert httpx.get(goleak_service.url + "/healthz", trust_env=False).status_code == 200


def test_dump_parser_can_skip_goroutines_that_do_not_matter(real: dict[str, bytes]) -> None:
    text = real["dump"].decode()
    everything = parse_goroutine_dump(text)
    only_main = parse_goroutine_dump(text, mentioning={"main.main"})
    assert [g.goid for g in only_main] == [g.goid for g in everything if identity(g.stack) == "main.main"]
    assert len(only_main) < len(everything)


def test_heap_sites_are_unsampled_in_objects_and_bytes_like_go_tool_pprof() -> None:
    # One sampled 512 KiB object at Go's rate stands for 1 / (1 - e^-1) = 1.58 of them.
    text = (
        b"heap profile: 1: 524288 [1: 524288] @ heap/1048576\n"
        b"1: 524288 [1: 524288] @ 0x4a1f00\n"
        b"#\t0x4a1f00\tmain.renderPage+0x40\t/src/reports.go:108\n"
        b"\n# runtime.MemStats\n# HeapAlloc = 600000\n"
    )
    (site,) = parse_heap_sites(text)
    assert site.inuse_objects == 2
    assert site.inuse_bytes == int(524288 / -math.expm1(-1))
    assert site.stack[0].function == "main.renderPage"
    assert parse_heap_profile(text).sample_rate == 512 << 10


def _stack(*functions: str) -> tuple[Frame, ...]:
    """A stack from innermost to outermost function, as profiles list it."""
    return tuple(Frame(function, "x.go", 1) for function in functions)


@pytest.mark.parametrize(
    ("functions", "expected"),
    [
        (("main.worker", "runtime.goexit"), "main.worker"),
        (("main.loop", "main.main", "runtime.main", "runtime.goexit"), "main.main"),
        # Launchers: the function they were given is the identity.
        (("main.worker", "main.main.func1", "sync.(*WaitGroup).Go.func1", "runtime.goexit"), "main.main.func1"),
        (("main.poll", "golang.org/x/sync/errgroup.(*Group).Go.func1", "runtime.goexit"), "main.poll"),
        # A launcher doing its own work (wg.Done in its defer), or just started, stays itself.
        (("sync.(*WaitGroup).Done", "sync.(*WaitGroup).Go.func1", "runtime.goexit"), "sync.(*WaitGroup).Go.func1"),
        (("sync.(*WaitGroup).Go.func1", "runtime.goexit"), "sync.(*WaitGroup).Go.func1"),
        # Not a launcher: a closure in package sync is its own identity.
        (("sync.(*Cond).Wait", "sync.(*Pool).func1", "runtime.goexit"), "sync.(*Pool).func1"),
    ],
)
def test_identity_is_the_start_function_seen_through_launchers(functions: tuple[str, ...], expected: str) -> None:
    assert identity(_stack(*functions)) == expected


def test_an_artifact_profile_holds_the_groups_as_go_tool_pprof_reads_them(real: dict[str, bytes]) -> None:
    groups = [group for group in parse_goroutine_profile(real["goroutine"]).groups if not is_own(group.stack)]
    written = encode_goroutine_profile(groups)
    assert written[:2] == b"\x1f\x8b"
    assert _proto_groups(written) == [(group.count, group.stack) for group in groups]


def test_the_same_goroutine_text_is_parsed_once(goleak_service: GoService) -> None:
    client = PprofClient(goleak_service.pprof_url, goleak_service.request_timeout)
    try:
        for _ in range(40):  # until the service is idle: the same text twice
            first, again = client.goroutines(), client.goroutines()
            if again.raw == first.raw:
                break
            time.sleep(0.05)
        assert again is first  # the same text: nothing parsed again
        held = httpx.get(goleak_service.url + "/leaky/chan-send", trust_env=False)  # one goroutine more, for good
        assert held.status_code == 200
        for _ in range(40):  # until the server side of that request's connection has wound down too
            grown = client.goroutines()
            if grown.total == first.total + 1:
                break
            time.sleep(0.05)
        assert grown is not first and grown.total == first.total + 1
    finally:
        client.close()
