"""The console history: a VM's console log (rotated parts included) as numbered lines, lazily.

The toolong way, with a smaller index. A log can be 1 GiB with tens of millions of lines, so:

- :class:`ConsoleLog` presents ``console.log.N ... console.log.1`` (oldest first, if present) and
  ``console.log`` as one byte space, read with ``os.pread`` on descriptors kept open, so a part
  rotated or deleted while the pane is open still reads, and a rotation just appends a part.
- :class:`LineIndex` does not keep an offset per line. It keeps the *number of newlines* in every
  fixed 64 KiB block (an ``array('I')``, plus prefix sums in an ``array('Q')``): 16,384 blocks,
  about 200 KiB, for 1 GiB whatever its line count. Finding line *n* is a bisect over the prefix
  sums and one read of its block, whose newline positions are cached (LRU, 2 bytes a line).
  Counting is C speed (``bytes.count``), so the whole index of 1 GiB takes well under a second
  and no Python code runs per line.
- Indexing goes *backwards from the end* (:func:`scan_backwards`, in a thread): the last lines are
  known at once, older ones are prepended in batches, so a pane can show recent history while a
  huge log is still being indexed. Lines are numbered from the oldest *known* line, so a batch
  shifts the numbers by the lines it adds (the widget keeps its view still by the same amount).
- Search (:func:`search`) runs a bytes regex over windows of the file in C, allowing escape
  sequences between the characters of the query, so a coloured word still matches.

Nothing here imports Textual; it is all tested as plain Python.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

BLOCK_SIZE = 64 * 1024
SCAN_CHUNK = 4 * 1024 * 1024  # bytes read per step of the scan (~3 ms of counting)
SCAN_BATCH = 32 * 1024 * 1024  # bytes counted per batch handed to the index
INITIAL_BYTES = 1024 * 1024  # indexed synchronously when the index is created
MAX_LINE_BYTES = 8 * 1024  # a longer line (e.g. a full-screen program's redraws) is cut here
CACHED_BLOCKS = 16  # blocks whose newline positions are kept (2 bytes per line in them)
SEARCH_WINDOW = 1024 * 1024
SEARCH_OVERLAP = 4096  # longest match that can straddle two search windows
_NEWLINE = re.compile(b"\n")


def _rotated_parts(path: Path) -> list[Path]:
    """``console.log.N`` ... ``console.log.1`` that exist, oldest (highest N) first."""
    numbered: list[tuple[int, Path]] = []
    try:
        candidates = list(path.parent.glob(path.name + ".*"))
    except OSError:
        return []
    for candidate in candidates:
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit() and candidate.is_file():
            numbered.append((int(suffix), candidate))
    return [p for _, p in sorted(numbered, reverse=True)]


@dataclass
class _Part:
    path: Path
    fd: int
    start: int  # offset of its first byte in the combined log
    size: int
    inode: int


class ConsoleLog:
    """The console log and its rotated parts as one read-only, growing byte space.

    Args:
        path: The live log (``vms/<id>/console.log``); it need not exist yet.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.parts: list[_Part] = []
        self._live: _Part | None = None  # the part that is ``path`` itself (it may grow)
        self._lock = threading.Lock()  # reads (scan/search threads) vs close (the UI thread)
        self._closed = False
        self.generation = 0
        """Bumped when the log was truncated or replaced: offsets and line numbers are void."""
        self._open_all()

    def _open_part(self, path: Path, start: int) -> _Part | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        st = os.fstat(fd)
        return _Part(path, fd, start, st.st_size, st.st_ino)

    def _open_all(self) -> None:
        start = 0
        for path in [*_rotated_parts(self.path), self.path]:
            part = self._open_part(path, start)
            if part is not None:
                self.parts.append(part)
                start += part.size
                self._live = part if path == self.path else None

    @property
    def size(self) -> int:
        """Bytes in all parts, as of the last :meth:`refresh`."""
        if not self.parts:
            return 0
        last = self.parts[-1]
        return last.start + last.size

    def refresh(self) -> bool:
        """Look at the live file again; True if the byte space changed (grew or was replaced).

        Growth extends the last part. A rotation (``console.log`` is a new file) freezes the old
        live part, whose descriptor still reads it under its new name, and appends the new file.
        A truncated or vanished log resets everything and bumps :attr:`generation`.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        live = self._live
        if live is None or st.st_ino != live.inode:
            if live is not None:
                live.size = os.fstat(live.fd).st_size  # rotated away: its final size
            part = self._open_part(self.path, self.size)
            if part is None:
                return False
            self.parts.append(part)
            self._live = part
            return True
        if st.st_size < live.size:  # truncated in place: start over
            with self._lock:
                self._close_parts()
                self.parts = []
                self._live = None
                self.generation += 1
                self._open_all()
            return True
        if st.st_size > live.size:
            live.size = st.st_size
            return True
        return False

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (across part boundaries); short at the end."""
        with self._lock:
            if self._closed:
                return b""
            return self._read(offset, length)

    def _read(self, offset: int, length: int) -> bytes:
        out: list[bytes] = []
        end = min(offset + length, self.size)
        index = bisect.bisect_right([p.start for p in self.parts], offset) - 1
        while offset < end and 0 <= index < len(self.parts):
            part = self.parts[index]
            local = offset - part.start
            want = min(end, part.start + part.size) - offset
            if want > 0:
                try:
                    data = os.pread(part.fd, want, local)
                except OSError:
                    data = b""
                if len(data) < want:
                    data += b"\0" * (want - len(data))  # shrank under us: keep offsets stable
                out.append(data)
                offset += want
            index += 1
        return b"".join(out)

    def close(self) -> None:
        """Close every part; later reads return nothing (a scan thread may still be running)."""
        with self._lock:
            self._closed = True
            self._close_parts()

    def _close_parts(self) -> None:
        for part in self.parts:
            try:
                os.close(part.fd)
            except OSError:
                pass


class LineIndex:
    """Line numbers for a :class:`ConsoleLog`, from newline counts per block (see the module notes).

    The index covers blocks ``first_block ..`` up to :attr:`indexed_end`. Line 0 is the first
    complete line in that range (the partial line before its first newline is unknown until the
    block before it is indexed, unless the range starts at offset 0). A last line without a
    newline yet (a prompt) counts as a line.
    """

    def __init__(
        self,
        log: ConsoleLog,
        *,
        block_size: int = BLOCK_SIZE,
        initial_bytes: int | None = None,
    ) -> None:
        self.log = log
        self.block_size = block_size
        self.generation = log.generation
        end = log.size
        initial = INITIAL_BYTES if initial_bytes is None else initial_bytes
        self.first_block = max(0, (end - initial) // block_size)
        self.indexed_end = self.first_block * block_size
        self._counts = array("I")
        self._cum = array("Q", [0])
        self._blocks: OrderedDict[tuple[int, int], array] = OrderedDict()
        self._position_type = "H" if block_size <= 1 << 16 else "I"
        self._line_count = 0
        self.extend(end)

    # -- building -------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True once every block back to the start of the log is indexed."""
        return self.first_block == 0

    def extend(self, end: int | None = None, limit: int | None = None) -> int:
        """Count newlines the log gained since the last call (at most ``limit`` bytes now).

        Returns how many lines were added at the bottom.
        """
        end = self.log.size if end is None else min(end, self.log.size)
        if limit is not None:
            end = min(end, self.indexed_end + limit)
        if end <= self.indexed_end:
            return 0
        before = self._line_count
        block = self.block_size
        position = self.indexed_end
        while position < end:
            chunk_end = min(end, position + SCAN_CHUNK)
            data = self.log.read(position, chunk_end - position)
            offset = 0
            while offset < len(data):
                k = (position + offset) // block
                block_end = min((k + 1) * block, position + len(data))
                n = data.count(b"\n", offset, block_end - position)
                slot = k - self.first_block
                if slot < len(self._counts):
                    self._counts[slot] += n
                else:
                    self._counts.append(n)
                offset = block_end - position
            position = chunk_end
        self.indexed_end = end
        self._cum = array("Q", accumulate(self._counts, initial=0))
        self._forget_block((end - 1) // block)
        self._line_count = self._count_lines()
        return self._line_count - before

    def prepend(self, first_block: int, counts: array) -> int:
        """Add counts for blocks ``first_block .. self.first_block - 1`` (from the scan thread).

        Returns how many lines were added at the top (all line numbers grow by that much).
        """
        if first_block + len(counts) != self.first_block or not counts:
            return 0
        before = self._line_count
        self._counts = array("I", counts) + self._counts
        self.first_block = first_block
        self._cum = array("Q", accumulate(self._counts, initial=0))
        self._line_count = self._count_lines()
        return self._line_count - before

    def _count_lines(self) -> int:
        newlines = self._cum[-1]
        skip = 0 if self.first_block == 0 else 1
        if newlines == 0:
            return 1 if skip == 0 and self.indexed_end > 0 else 0
        last_newline = self._newline(newlines - 1)
        partial = 1 if self.indexed_end > last_newline + 1 else 0
        return newlines - skip + partial

    # -- lookups --------------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        return self._line_count

    def _block_newlines(self, k: int) -> array:
        """Newline positions in block ``k`` (relative to the block start), cached (LRU)."""
        start = k * self.block_size
        end = min(start + self.block_size, self.indexed_end)
        key = (k, end)
        cached = self._blocks.get(key)
        if cached is not None:
            self._blocks.move_to_end(key)
            return cached
        data = self.log.read(start, end - start)
        positions = array(self._position_type, (m.start() for m in _NEWLINE.finditer(data)))
        self._blocks[key] = positions
        if len(self._blocks) > CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return positions

    def _forget_block(self, k: int) -> None:
        for key in [key for key in self._blocks if key[0] == k]:
            del self._blocks[key]

    def _newline(self, j: int) -> int:
        """Offset of the ``j``-th newline (0-based) in the indexed range."""
        slot = bisect.bisect_right(self._cum, j) - 1
        k = self.first_block + slot
        return k * self.block_size + self._block_newlines(k)[j - self._cum[slot]]

    def span(self, line: int) -> tuple[int, int]:
        """``(start, end)`` offsets of a line, without its newline."""
        if not 0 <= line < self._line_count:
            raise IndexError(line)
        skip = 0 if self.first_block == 0 else 1
        j = line + skip
        start = 0 if j == 0 else self._newline(j - 1) + 1
        end = self._newline(j) if j < self._cum[-1] else self.indexed_end
        return start, end

    def read_line(self, line: int, max_bytes: int = MAX_LINE_BYTES) -> bytes:
        """A line's raw bytes (at most ``max_bytes``), without its newline."""
        start, end = self.span(line)
        return self.log.read(start, min(end - start, max_bytes))

    def line_at(self, offset: int) -> int | None:
        """The number of the line holding byte ``offset``; None if that part is not indexed."""
        if offset >= self.indexed_end:
            return self._line_count - 1 if self._line_count else None
        k = offset // self.block_size
        slot = k - self.first_block
        if slot < 0:
            return None
        positions = self._block_newlines(k)
        before = self._cum[slot] + bisect.bisect_left(positions, offset - k * self.block_size)
        line = before - (0 if self.first_block == 0 else 1)
        return line if line >= 0 else None

    def memory_bytes(self) -> int:
        """Roughly what the index holds in memory (counts, prefix sums, cached blocks)."""
        cached = sum(a.itemsize * len(a) for a in self._blocks.values())
        return self._counts.itemsize * len(self._counts) + 8 * len(self._cum) + cached


def scan_backwards(
    log: ConsoleLog,
    before_block: int,
    *,
    block_size: int = BLOCK_SIZE,
    batch_bytes: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[int, array]]:
    """Count newlines per block from ``before_block`` back to the start of the log, in batches.

    Yields ``(first_block, counts)`` for consecutive ranges going backwards, each ready for
    :meth:`LineIndex.prepend`. Runs in a thread: it only reads the file (``os.pread`` releases
    the GIL) and counts (a few ms per step), and stops early when ``cancelled()`` says so.
    """
    block = before_block
    per_step = max(1, SCAN_CHUNK // block_size)
    per_batch = max(1, (SCAN_BATCH if batch_bytes is None else batch_bytes) // block_size)
    per_step = min(per_step, per_batch)
    while block > 0 and not cancelled():
        batch_start = max(0, block - per_batch)
        counts = array("I")
        step_end = block
        pieces: list[array] = []
        while step_end > batch_start and not cancelled():
            step_start = max(batch_start, step_end - per_step)
            data = log.read(step_start * block_size, (step_end - step_start) * block_size)
            piece = array(
                "I",
                (data.count(b"\n", i, i + block_size) for i in range(0, len(data), block_size)),
            )
            pieces.append(piece)
            step_end = step_start
        if cancelled():
            return
        for piece in reversed(pieces):
            counts.extend(piece)
        yield batch_start, counts
        block = batch_start


# -- search -----------------------------------------------------------------------------------
_ESCAPES_BETWEEN = rb"(?:\x1b\[[0-9;:?]*[ -/]*[@-~])*"


@dataclass(frozen=True)
class SearchPattern:
    """A query compiled for raw log bytes (:func:`search`) and for rendered text (highlights).

    Smart case: case-insensitive unless the query has an upper-case letter (then the log bytes
    are lower-cased per window, which is much faster than a case-insensitive regex). A window is
    searched for the literal query first (C speed); only where the log has escape sequences is a
    slower regex run that lets CSI sequences sit between the characters, so a word coloured
    halfway (``re\\x1b[31md``) still matches.
    """

    query: str
    needle: bytes
    raw: re.Pattern[bytes] | None
    text: re.Pattern[str]
    fold: bool

    @classmethod
    def compile(cls, query: str) -> SearchPattern:
        fold = not any(c.isupper() for c in query)
        needle = (query.lower() if fold else query).encode()
        raw = None
        if len(query) > 1:
            raw = re.compile(_ESCAPES_BETWEEN.join(re.escape(bytes([b])) for b in needle))
        text = re.compile(re.escape(query), re.IGNORECASE if fold else 0)
        return cls(query, needle, raw, text, fold)

    def last(self, data: bytes, limit: int) -> tuple[int, int] | None:
        """The last match in ``data`` that starts before ``limit``."""
        hay = data.lower() if self.fold else data
        found = None
        literal = hay.rfind(self.needle, 0, limit + len(self.needle) - 1)
        if literal != -1:
            found = (literal, literal + len(self.needle))
        if self.raw is not None and b"\x1b" in hay:
            for match in self.raw.finditer(hay, literal + 1 if literal != -1 else 0):
                if match.start() >= limit:
                    break
                found = match.span()
        return found

    def first(self, data: bytes, limit: int) -> tuple[int, int] | None:
        """The first match in ``data`` that starts before ``limit``."""
        hay = data.lower() if self.fold else data
        literal = hay.find(self.needle, 0, limit + len(self.needle) - 1)
        end = literal if literal != -1 else limit
        if self.raw is not None and b"\x1b" in hay:
            match = self.raw.search(hay)
            if match is not None and match.start() < end:
                return match.span()
        return (literal, literal + len(self.needle)) if literal != -1 else None


def search(
    log: ConsoleLog,
    pattern: SearchPattern,
    start: int,
    *,
    backwards: bool,
    end: int | None = None,
    floor: int = 0,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[int, int] | None:
    """The nearest match strictly before ``start`` (backwards) or at/after it (forwards).

    Returns the match's ``(start, end)`` offsets in the log, or None. Reads 1 MiB windows (with
    a little overlap, so a match straddling two windows is found). A backwards search does not
    look below ``floor``; a forward one stops at ``end``.
    """
    size = log.size if end is None else min(end, log.size)
    if backwards:
        hi = min(start, size)
        while hi > floor and not cancelled():
            lo = max(floor, hi - SEARCH_WINDOW)
            data = log.read(lo, min(size, hi + SEARCH_OVERLAP) - lo)
            found = pattern.last(data, hi - lo)
            if found is not None and lo + found[0] >= floor:
                return lo + found[0], lo + found[1]
            hi = lo
        return None
    lo = max(0, start)
    while lo < size and not cancelled():
        hi = min(size, lo + SEARCH_WINDOW)
        data = log.read(lo, min(size, hi + SEARCH_OVERLAP) - lo)
        found = pattern.first(data, hi - lo)
        if found is not None:
            return lo + found[0], lo + found[1]
        lo = hi
    return None
