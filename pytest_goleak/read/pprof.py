"""Fetch and decode the Go runtime's pprof profiles into plain Python values.

Three views of the service's goroutines and heap are used:

* the gzipped protobuf goroutine profile (``goroutine?debug=0``): cheap even
  with 100,000 goroutines, because the runtime groups them by stack. It is
  what every snapshot reads;
* the heap profile after a forced GC (``heap?gc=1``): live bytes per
  allocation site;
* the full text dump (``goroutine?debug=2``): dear, and it pauses the
  service, but it is the only view with wait reasons, goroutine ids and
  ``created by`` frames. It is read only once a test has already leaked.

Nothing here knows about pytest; every failure is a :class:`ProfileError`
(bad bytes) or :class:`ServiceError` (no usable answer).
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NoReturn

from pytest_goleak.errors import PprofNotServed, ProfileError, ServiceError
from pytest_goleak.read._proto.profile_descriptor import SERIALIZED
from pytest_goleak.read.keepalive import Answer, Connection

# What the plugin reads and decodes is bounded by these, not by what the service
# sends: past them a profile is refused with a clear error. pytest's memory for a
# reading follows from them (the README's "When the service misbehaves" states it).
# A real goroutine profile aggregates equal stacks: 100,000 goroutines are 3 KiB
# inflated. Decoding costs about 24 bytes of memory per inflated byte at worst
# (empty samples), so the inflated bound is also the decoder's memory bound.
MAX_INFLATED_PROFILE = 8 << 20
MAX_HEAP_TEXT = 32 << 20  # a heap?debug=1 profile: a few MiB for a large server
MAX_HEAP_SITES = 50_000  # allocation sites parsed for a failure's evidence
MAX_INDEX_BYTES = 1 << 20
# The runtime cuts a text dump at 64 MiB (100,000 goroutines are about 20 MiB).
MAX_PROFILE_BYTES = 128 << 20


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack: a function and where in it execution stands."""

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
    """Goroutines that share one current stack (one pprof sample)."""

    count: int
    stack: Stack


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
        return any(len(group.stack) >= PROFILE_DEPTH for group in self.groups)


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
def _protobuf() -> tuple[Any, type[Exception]]:
    """The Profile message class and protobuf's DecodeError, loaded on the first decode.

    A session that never reads a profile never pays for protobuf. Both come from
    one import and are kept here: an in-process pytester run that did the first
    import drops the modules afterwards, and a DecodeError imported again later
    would not be the class the decoder raises.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.message import DecodeError

    # Built from the serialized descriptor so that any protobuf runtime from
    # 4.22 on can decode, whatever version generated the descriptor.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(SERIALIZED))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile")), DecodeError


def gunzip(data: bytes, limit: int = MAX_INFLATED_PROFILE) -> bytes:
    """Inflate a gzipped profile, refusing bodies that inflate past ``limit``."""
    if data[:2] != b"\x1f\x8b":
        if data[:1] in (b"<", b"{") or data[:9].lower() == b"404 page ":
            snippet = data[:80].decode("utf-8", "replace").replace("\n", " ")
            raise ProfileError(f"expected a gzipped pprof profile, got text: {snippet!r}")
        if not data:
            raise ProfileError("expected a gzipped pprof profile, got an empty body")
        # Not gzipped: pprof also accepts raw protobuf, so let the decoder judge.
        if len(data) > limit:
            raise ProfileError(f"profile is over {limit >> 20} MiB; refusing to decode it")
        return data
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit)
        if inflater.unconsumed_tail:
            raise ProfileError(f"profile inflates past {limit >> 20} MiB; refusing to decode it")
        out += inflater.flush()
    except zlib.error as exc:
        raise ProfileError(f"corrupt gzip in pprof profile: {exc}") from None
    if not inflater.eof:
        raise ProfileError("truncated gzip in pprof profile (the body ended early)")
    return out


def _decode(data: bytes) -> Any:
    profile_class, decode_error = _protobuf()
    profile = profile_class()
    try:
        profile.ParseFromString(gunzip(data))
    except (decode_error, RuntimeError, ValueError) as exc:
        raise ProfileError(f"corrupt protobuf in pprof profile: {exc}") from None
    if not profile.string_table or profile.string_table[0] != "":
        raise ProfileError("not a pprof profile: its string table does not start with an empty string")
    return profile


class _Symbols:
    """Resolves a sample's location ids to frames, memoised per location."""

    def __init__(self, profile: Any) -> None:
        self._strings: Sequence[str] = profile.string_table
        functions = {fn.id: fn for fn in profile.function}
        self._frames: dict[int, Stack] = {}
        for location in profile.location:
            frames = []
            for line in location.line:
                fn = functions.get(line.function_id)
                if fn is None:
                    raise ProfileError(f"pprof location {location.id} names unknown function {line.function_id}")
                frames.append(Frame(self._string(fn.name), self._string(fn.filename), line.line))
            if not frames:  # unsymbolized: keep the address so it still groups
                frames.append(Frame(f"0x{location.address:x}"))
            self._frames[location.id] = tuple(frames)

    def _string(self, index: int) -> str:
        if not 0 <= index < len(self._strings):
            raise ProfileError(f"pprof string index {index} out of range")
        return self._strings[index]

    def stack(self, location_ids: Iterable[int]) -> Stack:
        frames: list[Frame] = []
        for location_id in location_ids:
            found = self._frames.get(location_id)
            if found is None:
                raise ProfileError(f"pprof sample names unknown location {location_id}")
            frames.extend(found)
        return tuple(frames)

    def value_index(self, profile: Any, *wanted: str) -> int:
        """Index of the first sample value whose type is one of ``wanted``."""
        kinds = [self._string(value_type.type) for value_type in profile.sample_type]
        for index, kind in enumerate(kinds):
            if kind in wanted:
                return index
        raise ProfileError(f"pprof profile has no {' or '.join(wanted)} values (it has {kinds})")


def _samples(profile: Any, symbols: _Symbols, index: int) -> Iterator[tuple[Stack, Sequence[int]]]:
    width = len(profile.sample_type)
    for sample in profile.sample:
        if len(sample.value) != width:
            raise ProfileError(f"pprof sample has {len(sample.value)} values, expected {width}")
        if sample.value[index] < 0:
            raise ProfileError("pprof sample has a negative value")
        yield symbols.stack(sample.location_id), sample.value


def parse_goroutine_profile(data: bytes) -> GoroutineProfile:
    """Decode a ``goroutine?debug=0`` (or ``goroutineleak``) profile."""
    profile = _decode(data)
    symbols = _Symbols(profile)
    index = symbols.value_index(profile, "goroutine", "goroutineleak")
    groups = tuple(
        GoroutineGroup(values[index], stack) for stack, values in _samples(profile, symbols, index) if values[index]
    )
    return GoroutineProfile(groups, raw=data)


def without_samples(data: bytes, drop: Callable[[Stack], bool]) -> bytes:
    """A gzipped profile like ``data`` without the samples whose stack ``drop`` picks.

    Only samples go: the locations, functions and strings they referenced stay
    (pprof allows unreferenced entries), so every index the rest holds stays valid.
    """
    profile = _decode(data)
    symbols = _Symbols(profile)
    dropped = [i for i, sample in enumerate(profile.sample) if drop(symbols.stack(sample.location_id))]
    for index in reversed(dropped):
        del profile.sample[index]
    return gzip.compress(profile.SerializeToString(), mtime=0)


_HEAP_HEADER = re.compile(r"^heap profile: \d{1,20}: \d{1,20} \[\d{1,20}: \d{1,20}\] @ heap(?:v2)?/(\d{1,20})$")
_HEAP_RECORD = re.compile(r"^(\d{1,20}): (\d{1,20}) \[(\d{1,20}): (\d{1,20})\] @((?: 0x[0-9a-f]+)*)$")
_HEAP_FRAME = re.compile(r"^#\t0x[0-9a-f]+\t(\S+?)(?:\+0x[0-9a-f]+)?\t+(.*):(\d{1,20})$")
_HEAP_ALLOC = re.compile(r"^# HeapAlloc = (\d{1,20})$", re.MULTILINE)
_SYS = re.compile(r"^# Sys = (\d{1,20})$", re.MULTILINE)
_HEAP_RELEASED = re.compile(r"^# HeapReleased = (\d{1,20})$", re.MULTILINE)
_HEAP_IDLE = re.compile(r"^# HeapIdle = (\d{1,20})$", re.MULTILINE)


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
    head = data[:200].decode("utf-8", "replace")
    header = _HEAP_HEADER.match(head.split("\n", 1)[0])
    if header is None:
        snippet = head[:80].replace("\n", " ")
        raise ProfileError(f"expected a text heap profile (heap?debug=1), got: {snippet!r}")
    # MemStats come last, after the records.
    tail = data[max(0, len(data) - 8192) :].decode("utf-8", "replace")
    live = _HEAP_ALLOC.search(tail)
    if live is None:
        raise ProfileError("heap profile has no '# HeapAlloc' line (truncated or not from Go's runtime/pprof)")
    system, released, idle = _SYS.search(tail), _HEAP_RELEASED.search(tail), _HEAP_IDLE.search(tail)
    held = int(system.group(1)) - int(released.group(1)) if system and released else None
    kept_idle = max(0, int(idle.group(1)) - int(released.group(1))) if idle and released else 0
    return HeapProfile(
        int(live.group(1)),
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
            frame = _HEAP_FRAME.match(line)
            if frame is not None and record is not None:
                frames.append(Frame(frame.group(1), frame.group(2), int(frame.group(3))))
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
        return self.with_dump(parse_goroutine_profile(self.fetch("goroutine", limit=MAX_INFLATED_PROFILE)))

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
