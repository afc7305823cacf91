"""Fetch and parse the Go runtime's pprof profiles into plain Python values.

Three views of the service's goroutines and heap are used:

* the text goroutine profile (``goroutine?debug=1``): cheap even with 100,000
  goroutines, because the runtime groups them by stack. It is what every
  snapshot reads. The text form, not the gzipped protobuf one (``debug=0``):
  the runtime writes it without gzip's 1 MiB of buffers and without reading its
  own ``/proc/self/maps``, which made the protobuf form cost the service twice
  as much at ~10 and ~1,000 goroutines;
* the heap profile after a forced GC (``heap?gc=1``): live bytes per
  allocation site;
* the full text dump (``goroutine?debug=2``): dear, and it pauses the
  service, but it is the only view with wait reasons, goroutine ids and
  ``created by`` frames. It is read only once a test has already leaked.

A failure's artifacts hold goroutine profiles in pprof's protobuf form, which
:func:`encode_goroutine_profile` writes. Nothing here knows about pytest; every
failure is a :class:`ProfileError` (bad bytes) or :class:`ServiceError` (no
usable answer).
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple, NoReturn

from pytest_goleak.errors import PprofNotServed, ProfileError, ServiceError
from pytest_goleak.read._proto.profile_descriptor import SERIALIZED
from pytest_goleak.read.keepalive import Answer, Connection

# What the plugin reads and decodes is bounded by these, not by what the service
# sends: past them a profile is refused with a clear error. pytest's memory for a
# reading follows from them (docs/misbehaving.md states it).
MAX_GOROUTINE_TEXT = 32 << 20  # a goroutine?debug=1 profile: the example service at 100,000 goroutines, 3.3 KiB
# Distinct stacks in a goroutine profile, and as many distinct frames among them; frames in one stack (the runtime keeps
# at most 128 calls, and their inlined calls). Real services stay far below; tiny records past them would cost
# pytest gigabytes before the byte bound.
MAX_STACKS = 100_000
MAX_STACK_FRAMES = 2048
MAX_HEAP_TEXT = 32 << 20  # a heap?debug=1 profile: a few MiB for a large server
MAX_HEAP_SITES = 50_000  # allocation sites parsed for a failure's evidence
MAX_INDEX_BYTES = 1 << 20
# The runtime cuts a text dump at 64 MiB (100,000 goroutines are about 20 MiB).
MAX_PROFILE_BYTES = 128 << 20


class Frame(NamedTuple):
    """One frame of a stack: a function and where in it execution stands.

    A named tuple, not a dataclass: stacks are hashed and compared on every
    reading (identities, left-out goroutines), and a tuple does both in C.
    """

    function: str
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else "?"
        return f"{self.function}\n\t{where}"


Stack = tuple[Frame, ...]
"""Frames leaf first, as pprof and Go's tracebacks print them."""


@dataclass(frozen=True, slots=True)
class GoroutineGroup:
    """Goroutines that share one current stack (one pprof record)."""

    count: int
    stack: Stack
    # The record's program counters: the stack's depth as the runtime cut it (inlined calls are frames of
    # their own in ``stack``, and the text profile leaves out the runtime's innermost frames). 0: not known.
    pcs: int = 0


# The fewest frames a goroutine profile keeps of a stack: 32 before Go 1.23,
# 128 since (GODEBUG profstackdepth). A longer stack loses its outer frames,
# the start function among them.
PROFILE_DEPTH = 32


@dataclass(frozen=True, slots=True)
class GoroutineProfile:
    groups: tuple[GoroutineGroup, ...]
    raw: bytes = field(repr=False, default=b"")
    # The debug=2 dump read right after the profile, when the profile may have cut
    # a stack: goroutines are then counted from it (see judge/identity.py, counted).
    dumped: tuple[DumpedGoroutine, ...] | None = None
    # Counts by identity under each tuple of ignore patterns, kept by judge/identity.py: one reading is
    # counted several times (as an after-reading, the next before-reading, the session's record).
    counts: dict[tuple[str, ...], Mapping[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def total(self) -> int:
        return sum(group.count for group in self.groups)

    @property
    def cut(self) -> bool:
        """Whether a stack may have been cut at the runtime's depth limit (it holds that many frames or more)."""
        return any(max(group.pcs, len(group.stack)) >= PROFILE_DEPTH for group in self.groups)


@dataclass(frozen=True, slots=True)
class HeapSite:
    """Live memory attributed to one allocation stack."""

    stack: Stack
    inuse_bytes: int
    inuse_objects: int


@dataclass(frozen=True, slots=True)
class HeapProfile:
    live_bytes: int  # runtime.MemStats.HeapAlloc: right after a forced GC when ``collected``
    raw: bytes = field(repr=False, default=b"")
    sample_rate: int = 512 << 10  # runtime.MemProfileRate: bytes allocated per sampled site
    # Memory the Go runtime holds from the OS and has not returned (MemStats Sys - HeapReleased):
    # its heap, stacks and metadata. None if the profile carried no MemStats for it.
    runtime_held: int | None = None
    # Of that, heap pages it holds idle (HeapIdle - HeapReleased): freed garbage still resident, or pages mapped
    # and never touched, which are not. The MemStats cannot tell which, so off-heap memory is a range.
    runtime_idle: int = 0
    collected: bool = True  # read with gc=1: live_bytes is the live heap, not live plus garbage

    def sites(self) -> tuple[HeapSite, ...]:
        """Live memory per allocation stack (parsed on each call: only failures need it)."""
        return parse_heap_sites(self.raw)


@dataclass(frozen=True, slots=True)
class DumpedGoroutine:
    """One goroutine from a ``debug=2`` text dump."""

    goid: int
    state: str  # "chan send", "sync.Mutex.Lock, 3 minutes", "running", ...
    stack: Stack
    created_by: Frame | None = None
    creator_goid: int | None = None
    elided: bool = False  # the runtime left frames out of a deep stack
    leaked: bool = False  # the Go runtime proved it leaked: nothing can ever wake it
    # Go 1.20 and older print only the innermost 100 frames, so the start function is
    # missing; Go 1.21 on elide the middle and keep the outermost frames.
    outer_missing: bool = False


@functools.cache
def _profile_message() -> Any:
    """The pprof Profile message class, loaded when a profile is first written (a failure's artifacts).

    Built from the serialized descriptor so that any protobuf runtime from 4.22
    on can use it, whatever version generated the descriptor; a session that
    writes no artifact never imports protobuf.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(SERIALIZED))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


_GOROUTINE_TOTAL = re.compile(r"^(?:goroutine|goroutineleak) profile: total (\d{1,20})$")
_COUNT_RECORD = re.compile(r"^(\d{1,20}) @((?: 0x[0-9a-f]{1,16})*)$")
# One frame of a text profile's record (runtime/pprof's printStackRecord, through a tabwriter: tabs pad):
# "#<tab>0x4711a4<tab>net/http.(*conn).serve+0x5a4<tab>/usr/local/go/src/net/http/server.go:2044".
_STACK_FRAME = re.compile(r"^#\t+0x([0-9a-f]{1,16})(?:\t+([^\t]+?)(?:\+0x[0-9a-f]{1,16})?\t+([^\t]*):(\d{1,20}))?$")
_UNSEEN = Frame("")


def _snippet(data: bytes) -> str:
    """The start of a body that is not the profile asked for, on one line, for the error that refuses it."""
    return data[:80].decode("utf-8", "replace").replace("\n", " ")


def _stack_frame(line: str) -> Frame | None:
    """The frame on one ``#`` line of a text profile; None for a record with no stack (the address 0)."""
    found = _STACK_FRAME.match(line)
    if found is None:
        raise ProfileError(f"goroutine profile has a malformed frame line: {line[:80]!r}")
    address, function, file, line_number = found.groups()
    if function is None:  # not symbolized: the address still groups it
        return Frame(f"0x{address}") if int(address, 16) else None
    return Frame(function, file, int(line_number))


def parse_goroutine_profile(data: bytes) -> GoroutineProfile:
    """Parse a ``goroutine?debug=1`` (or ``goroutineleak``) text profile: goroutines grouped by stack.

    Its stacks are the protobuf form's less the runtime's innermost frames
    (``runtime.gopark``, ``runtime.chanrecv1``) and ``runtime.goexit``, which
    the runtime leaves out of the text: no identity is named by them. The
    header's total is checked against the records, so a body cut short is
    refused rather than read as goroutines that ended.
    """
    if not data:
        raise ProfileError("expected a goroutine profile (goroutine?debug=1), got an empty body")
    head, _, body = data.decode("utf-8", "replace").partition("\n")
    total = _GOROUTINE_TOTAL.match(head)
    if total is None:
        raise ProfileError(f"expected a goroutine profile (goroutine?debug=1), got: {_snippet(data)!r}")
    if body.count("\n\n") > MAX_STACKS:  # counted before splitting: millions of tiny records would cost gigabytes
        raise ProfileError(f"goroutine profile has over {MAX_STACKS:,} stacks; refusing it")
    frames: dict[str, Frame | None] = {}  # each distinct frame line parsed once: stacks share most of them
    groups: list[GoroutineGroup] = []
    counted = 0
    for block in body.split("\n\n"):
        if not block:
            continue
        if block.count("\n") > MAX_STACK_FRAMES:
            raise ProfileError(f"goroutine profile has a stack of over {MAX_STACK_FRAMES:,} frames; refusing it")
        if len(frames) > MAX_STACKS:
            raise ProfileError(f"goroutine profile has over {MAX_STACKS:,} distinct frames; refusing it")
        record, *lines = block.split("\n")
        found = _COUNT_RECORD.match(record)
        if found is None:
            raise ProfileError(f"goroutine profile has a malformed record: {record[:80]!r}")
        stack: list[Frame] = []
        for line in lines:
            if line.startswith("# labels: "):
                continue
            frame = frames.get(line, _UNSEEN)
            if frame is _UNSEEN:
                frame = frames[line] = _stack_frame(line)
            if frame is not None:
                stack.append(frame)
        count = int(found.group(1))
        counted += count
        if count:
            groups.append(GoroutineGroup(count, tuple(stack), found.group(2).count(" ")))
    if counted != int(total.group(1)):
        raise ProfileError(
            f"goroutine profile ends early: its records count {counted} of the {total.group(1)} goroutines"
            " its header gives (the body was cut short)"
        )
    return GoroutineProfile(tuple(groups), raw=data)


def encode_goroutine_profile(groups: Iterable[GoroutineGroup]) -> bytes:
    """``groups`` as a gzipped protobuf goroutine profile, symbolized: ``go tool pprof`` opens it without the binary."""
    profile = _profile_message()()
    strings: dict[str, int] = {"": 0}
    functions: dict[tuple[str, str], int] = {}
    locations: dict[Frame, int] = {}

    def string(text: str) -> int:
        return strings.setdefault(text, len(strings))

    def location(frame: Frame) -> int:
        if frame not in locations:
            key = (frame.function, frame.file)
            if key not in functions:
                functions[key] = len(functions) + 1
                name = string(frame.function)
                profile.function.add(id=functions[key], name=name, system_name=name, filename=string(frame.file))
            locations[frame] = len(locations) + 1
            added = profile.location.add(id=locations[frame])
            added.line.add(function_id=functions[key], line=frame.line)
        return locations[frame]

    for group in groups:
        profile.sample.add(location_id=[location(frame) for frame in group.stack], value=[group.count])
    kind, unit = string("goroutine"), string("count")
    profile.sample_type.add(type=kind, unit=unit)
    profile.period_type.type, profile.period_type.unit, profile.period = kind, unit, 1
    profile.string_table.extend(strings)  # a dict keeps insertion order: each string at its index
    return gzip.compress(profile.SerializeToString(), mtime=0)


_HEAP_HEADER = re.compile(r"^heap profile: \d{1,20}: \d{1,20} \[\d{1,20}: \d{1,20}\] @ heap(?:v2)?/(\d{1,20})$")
_HEAP_RECORD = re.compile(r"^(\d{1,20}): (\d{1,20}) \[(\d{1,20}): (\d{1,20})\] @((?: 0x[0-9a-f]+)*)$")
# The MemStats lines a reading needs, found in the bytes of the profile's tail (every reading parses one: a
# MULTILINE regex tries each of the tail's 7 KiB, mostly PauseNs, and cost eight times what four finds do).
_MEMSTATS = (b"HeapAlloc", b"Sys", b"HeapReleased", b"HeapIdle")


def _memstat(data: bytes, name: bytes, start: int) -> int | None:
    """The value of the ``# name = N`` line of ``data`` after ``start``; None if there is none."""
    key = b"\n# " + name + b" = "
    at = data.find(key, start)
    if at < 0:
        return None
    at += len(key)
    end = data.find(b"\n", at)
    value = data[at : end if end >= 0 else len(data)]
    return int(value) if value.isdigit() and len(value) <= 20 else None


def _unsample(objects: int, size: int, rate: int) -> tuple[int, int]:
    """Estimate the true objects and bytes behind sampled ones, as ``go tool pprof`` does.

    The runtime records an allocation of ``s`` bytes with probability
    ``1 - exp(-s / rate)``, so each sampled object stands for ``1 / p`` objects.
    """
    if objects == 0 or size == 0 or rate <= 1:
        return objects, size
    scale = 1 / -math.expm1(-(size / objects) / rate)
    return round(objects * scale), int(size * scale)


def parse_heap_profile(data: bytes) -> HeapProfile:
    """Decode a ``heap?debug=1`` text profile: its live bytes now, its sites on demand.

    The text form is read, not the protobuf one, because only it carries
    ``runtime.MemStats``: ``HeapAlloc`` right after the forced GC is the exact
    live heap, where the sum of the sampled sites is off by up to one sample
    (512 KiB by default) either way. Every snapshot needs the live bytes; the
    allocation sites only matter once a test has failed, so they are parsed
    then, by :meth:`HeapProfile.sites`.
    """
    header = _HEAP_HEADER.match(data[:200].decode("utf-8", "replace").split("\n", 1)[0])
    if header is None:
        raise ProfileError(f"expected a text heap profile (heap?debug=1), got: {_snippet(data)!r}")
    # MemStats come last, after the records: from their heading on, or the last 8 KiB if it is missing.
    start = data.rfind(b"\n# runtime.MemStats", max(0, len(data) - 8192))
    tail = max(start, len(data) - 8192, 0)
    stats = {name: _memstat(data, name, tail) for name in _MEMSTATS}
    live = stats[b"HeapAlloc"]
    if live is None:
        raise ProfileError("heap profile has no '# HeapAlloc' line (truncated or not from Go's runtime/pprof)")
    system, released, idle = stats[b"Sys"], stats[b"HeapReleased"], stats[b"HeapIdle"]
    held = system - released if system is not None and released is not None else None
    kept_idle = max(0, idle - released) if idle is not None and released is not None else 0
    return HeapProfile(
        live,
        raw=data,
        sample_rate=int(header.group(1)) // 2,
        runtime_held=held,
        runtime_idle=kept_idle,
    )


def parse_heap_sites(data: bytes) -> tuple[HeapSite, ...]:
    """Live bytes and objects per allocation stack of a ``heap?debug=1`` profile, unsampled."""
    # One line at a time: 32 MiB of short lines would be millions of strings as a list.
    lines = (line.decode("utf-8", "replace").rstrip("\n") for line in io.BytesIO(data))
    header = _HEAP_HEADER.match(next(lines, ""))
    if header is None:
        raise ProfileError("expected a text heap profile (heap?debug=1)")
    rate = int(header.group(1)) // 2  # the header holds twice MemProfileRate
    sites: list[HeapSite] = []
    record: re.Match[str] | None = None
    frames: list[Frame] = []

    def flush() -> None:
        if record is not None and int(record.group(2)):
            objects, size = int(record.group(1)), int(record.group(2))
            estimated_objects, estimated_bytes = _unsample(objects, size, rate)
            sites.append(HeapSite(tuple(frames), estimated_bytes, estimated_objects))

    for line in lines:
        if len(sites) >= MAX_HEAP_SITES:
            break
        if line.startswith("#\t"):
            frame = _STACK_FRAME.match(line)
            if frame is not None and frame.group(2) is not None and record is not None:
                frames.append(Frame(frame.group(2), frame.group(3), int(frame.group(4))))
            continue
        next_record = _HEAP_RECORD.match(line)
        if next_record is not None or line.startswith("# runtime.MemStats"):
            flush()
            record, frames = next_record, []
            if next_record is None:
                break
    return tuple(sites)


# A row of the pprof index page: <tr><td>12</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>
_INDEX_GOROUTINES = re.compile(r"<td>(\d{1,20})</td><td><a href=['\"]?goroutine\?debug=1['\"]?>goroutine</a>")
_LEAKED = " (leaked)"


def index_goroutines(page: bytes) -> int | None:
    """The goroutine count on a ``net/http/pprof`` index page; None on a page of another form."""
    found = _INDEX_GOROUTINES.search(page.decode("utf-8", "replace"))
    return None if found is None else int(found.group(1))


_HEADER = re.compile(r"^goroutine (\d{1,20}) (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[(.*)\]:$")
_CREATED = re.compile(r"^created by (.+?)(?: in goroutine (\d{1,20}))?$")
_LOCATION = re.compile(r"^\t(.*):(\d{1,20})(?: \+0x[0-9a-f]+)?$")
_CALL_ARGS = re.compile(r"\((?:[^()]|\.\.\.)*\)$")


def parse_goroutine_dump(text: str, mentioning: Collection[str] = ()) -> list[DumpedGoroutine]:
    """Parse the ``goroutine?debug=2`` text dump (the format of a Go panic).

    With ``mentioning``, only goroutines whose text names one of those
    functions are parsed: a dump of 100,000 goroutines is 20 MiB of text, and
    a report needs only the few kinds that grew.

    Tolerates what real dumps contain and goleak's parser once tripped on:
    elided frames in deep stacks, frames without a location, and a dump cut
    off at the runtime's 64 MiB limit (the last goroutine is then dropped).
    """
    goroutines: list[DumpedGoroutine] = []
    for block in text.split("\n\n"):
        if mentioning and not any(name in block for name in mentioning):
            continue
        lines = block.strip("\n").split("\n")
        header = _HEADER.match(lines[0]) if lines else None
        if header is None:
            continue
        frames: list[Frame] = []
        created_by: Frame | None = None
        creator: int | None = None
        elided = outer_missing = False
        body = lines[1:]
        i = 0
        complete = True
        while i < len(body):
            line = body[i]
            location = _LOCATION.match(body[i + 1]) if i + 1 < len(body) else None
            if line.startswith("...") and "elided" in line:
                elided = True
                outer_missing = outer_missing or "additional frames" in line
                i += 1
                continue
            if location is None:
                complete = False  # a cut-off dump or a frame we do not know
                i += 1
                continue
            file, lineno = location.group(1), int(location.group(2))
            created = _CREATED.match(line)
            if created:
                created_by = Frame(created.group(1), file, lineno)
                creator = int(created.group(2)) if created.group(2) else None
            else:
                frames.append(Frame(_CALL_ARGS.sub("", line), file, lineno))
            i += 2
        if not frames and not complete:
            continue
        # A goroutine the runtime proved leaked reads "[chan send (leaked)]" in a dump taken
        # through the goroutineleak profile; its wait state is the same without the mark.
        state = header.group(2)
        leaked = _LEAKED in state
        goroutines.append(
            DumpedGoroutine(
                int(header.group(1)), state.replace(_LEAKED, ""), tuple(frames), created_by, creator, elided, leaked
            )
        )
        if outer_missing:
            goroutines[-1] = replace(goroutines[-1], outer_missing=True)
    return goroutines


_RECENT_PROFILES = 4
_RECENT_BYTES = 1 << 20


def _refuse(url: str, status: int, body: bytes) -> NoReturn:
    if status == 404:
        raise PprofNotServed(
            f'pprof {url} answered HTTP 404: is net/http/pprof mounted there? (import _ "net/http/pprof")'
        )
    raise ServiceError(f"pprof {url} answered HTTP {status}")


class PprofClient:
    """Reads profiles from one service's ``net/http/pprof`` endpoint.

    One keep-alive connection is reused for every fetch: a new connection per
    fetch would leave a winding-down server goroutine behind each time, which
    the next snapshot would see.
    """

    def __init__(self, base_url: str, timeout: float, unix_socket: str | None = None) -> None:
        base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._connection = Connection(base_url, timeout, unix_socket)  # one, kept alive: see the class docstring
        self._recent: dict[bytes, GoroutineProfile] = {}  # the last few profiles by their text: see goroutines_of

    def close(self) -> None:
        self._connection.close()

    def send(self, profile: str, params: dict[str, str | int] | None = None) -> Answer:
        """Send a GET of one pprof resource; its answer is read later, with :meth:`body`."""
        return self._connection.get(profile, params)

    @staticmethod
    def body(answer: Answer, limit: int = MAX_PROFILE_BYTES) -> bytes:
        """The body of ``answer``, at most ``limit`` bytes; ServiceError on no answer or a non-200."""
        return answer.read(limit, partial(_refuse, answer.url))

    def fetch(self, profile: str, params: dict[str, str | int] | None = None, limit: int = MAX_PROFILE_BYTES) -> bytes:
        """GET one pprof resource, at most ``limit`` bytes; raise ServiceError on no answer or a non-200."""
        return self.body(self.send(profile, params), limit)

    def goroutines(self) -> GoroutineProfile:
        """The goroutine profile; with the full dump as well when the profile may have cut a stack.

        A cut stack has lost its start function, and the profile cannot tell
        which goroutine it was: the dump can (its outermost frames and its
        ``created by``). It is dear, so it is read only for such a profile.
        """
        return self.with_dump(self.goroutines_of(self.send_goroutines()))

    def send_goroutines(self) -> Answer:
        """Ask for the goroutine profile; read it with :meth:`goroutines_of`."""
        return self.send("goroutine", {"debug": 1})

    def goroutines_of(self, answer: Answer) -> GoroutineProfile:
        """The goroutine profile ``answer`` brings, parsed; the previous one again when the text is the same.

        An idle service writes the same text reading after reading (the runtime
        orders the records), so a clean test in a row mostly parses nothing. A
        few texts are kept: net/http's background reader of the request is in
        some readings and not in others (see judge/identity.background_readers).
        """
        raw = self.body(answer, MAX_GOROUTINE_TEXT)
        profile = self._recent.pop(raw, None) or parse_goroutine_profile(raw)
        if len(raw) <= _RECENT_BYTES:  # a huge profile is not kept: pytest's memory stays bounded
            self._recent[raw] = profile  # the most recent last
            if len(self._recent) > _RECENT_PROFILES:
                del self._recent[next(iter(self._recent))]
        return profile

    def with_dump(self, profile: GoroutineProfile) -> GoroutineProfile:
        """``profile``, with the full dump read beside it if it may have cut a stack."""
        if not profile.cut:
            return profile
        return replace(profile, dumped=tuple(parse_goroutine_dump(self.goroutine_dump())))

    def goroutine_count(self, index: Answer | None = None) -> int | None:
        """The goroutine count on the pprof index page (``index``: its request, sent already).

        The runtime counts them without walking a stack. None where the index
        is not served, or not in the form ``net/http/pprof`` writes.
        """
        try:
            return index_goroutines(self.body(index or self.send(""), MAX_INDEX_BYTES))
        except (PprofNotServed, ProfileError):
            return None

    def heap(self, collect: bool = True) -> HeapProfile:
        """The heap profile: after a forced GC if ``collect``, so that garbage never reads as growth.

        Without it the profile is cheap, and its MemStats still say what the
        runtime holds; its ``HeapAlloc`` then counts garbage too.
        """
        return self.heap_of(self.send_heap(collect), collect)

    def send_heap(self, collect: bool = True) -> Answer:
        """Ask for the heap profile; read it with :meth:`heap_of`."""
        return self.send("heap", {"gc": 1, "debug": 1} if collect else {"debug": 1})

    def heap_of(self, answer: Answer, collected: bool) -> HeapProfile:
        heap = parse_heap_profile(self.body(answer, MAX_HEAP_TEXT))
        return heap if collected else replace(heap, collected=False)

    def goroutine_dump(self) -> str:
        """The full text dump (``debug=2``); parse it with :func:`parse_goroutine_dump`."""
        return self.fetch("goroutine", {"debug": 2}).decode("utf-8", "replace")

    def proving_dump(self) -> tuple[str, bool]:
        """The full text dump, with the goroutines the runtime proved leaked marked where it can prove them.

        Go 1.27 serves ``goroutineleak`` by default, 1.26 with
        ``GOEXPERIMENT=goroutineleakprofile``: its ``debug=2`` form runs the
        leak-detecting GC, then dumps every goroutine, the proven ones as
        ``[chan send (leaked)]``. Elsewhere this is the plain dump, and False.
        """
        try:
            return self.fetch("goroutineleak", {"debug": 2}).decode("utf-8", "replace"), True
        except PprofNotServed:
            return self.goroutine_dump(), False  # this Go does not serve it
