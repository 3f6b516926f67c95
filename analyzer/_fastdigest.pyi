"""The native core; ``analyzer._native_py`` exports the same names in pure Python (minus
``set_portable``). Code imports the fronts (``analyzer.digest``, ``thinloops``,
``nativeio``, ``pathindex``), which take them from the backend ``analyzer.native`` chose."""
from typing_extensions import Buffer

def features() -> dict[str, bool]:
    """{"sha_ni", "pclmul", "sse42"}: the CPU's accelerated paths in use; {"openat2"}: the
    kernel has openat2 (read_files and hash_file_at need it for paths of several names)."""

def set_portable(portable: bool, /) -> None:
    """Native backend only: every path with a portable alternative takes it (SHA-256, CRC-64
    and CRC-32C without CPU extensions, walks one name at a time); False undoes it. Tests
    and benchmarks; not while other threads use the module."""

# Digests (twin: analyzer._digest_py).

class Sha256:
    """SHA-256 like hashlib's. One thread at a time; updates of 2 KiB or more release the GIL."""

    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes:
        """32 raw bytes of what was fed so far; the object can go on."""
    def copy(self) -> Sha256: ...

def crc64_iso(data: Buffer, crc: int = 0, /) -> int:
    """Go's crc64.Update with the ISO table (CRC-64/GO-ISO), chainable; tar-split's payload
    is ``crc.to_bytes(8, "big")``."""

def hash_fd(fd: int, offset: int, length: int, sha: Sha256 | None, /) -> tuple[int, int]:
    """Read fd from offset, length bytes (-1: to end of file), without the GIL, feeding sha
    and the CRC-64 in one pass (pread; from 1 MiB on, a mapping or pread, whichever costs
    less on this machine). Returns (crc64,
    bytes_read); a short file shows as bytes_read < length. Raises OSError for a failed
    read, ValueError for a bad offset or length."""

def compare_fd(fd: int, offset: int, data: Buffer, crc: int = 0, /) -> tuple[int, int, int]:
    """Read len(data) bytes of fd from offset, without the GIL, and compare them with data:
    (bytes_read, their CRC-64 chained from crc, the index of the first byte that differs or
    -1); a file that ends first shows as bytes_read < len(data). OSError for a failed read."""

# Bulk reading below a directory fd (twin: analyzer._nativeio_py).

def hash_file_at(dir_fd: int, path: bytes, sha: Sha256 | None, /) -> tuple[int, int, bool]:
    """Open path below dir_fd (openat2, no links, O_NOATIME when allowed), hash the
    regular file whole as hash_fd does and close it: (crc64, bytes_read, has_xattrs). OSError:
    ELOOP a link on the way, EXDEV a way out, ENOSYS no openat2, EINVAL not a regular file."""

def plain_layers(hexids: list[str], files: list[object], /
                 ) -> list[tuple[str, int, str, str | None] | None]:
    """For each layer directory name, its record ``(diff_id, diff_size, cache_id, parent)``
    when plain (_csrc/layerrecords.h), else None; ``files`` holds four per name: what
    reading diff, size, cache-id and parent gave (bytes, None when absent, else unread)."""

def read_files(dir_fd: int, paths: list[bytes], limit: int, oflags: int, /) -> list[bytes | int]:
    """Read each path (relative to dir_fd) whole, without the GIL: its bytes, or an errno
    (ENOENT absent, ELOOP a link, EXDEV a way out, EFBIG past limit bytes, EINVAL not a
    regular file). O_NOATIME in oflags is dropped at the first EPERM. Without openat2 each
    path must be a single name."""

class TarSplitScan:
    """verify's fast path through one layer's tar-split (_csrc/tarsplit.h): consumes the
    lines Go writes for segments and for plain regular files whose file in the layer
    directory (below dir_fd) is sound -- one ustar header, a clean name that is no
    whiteout, the header's mode and owner (shifted by a remapped root's IDs), the size,
    the CRC-64, no xattrs when xattrs_known -- feeding sha (the run, then the content), adding the name to seen and
    marking it expected in disk. Stops, with no trace, at any other line. readahead: a
    thread that opens and reads the files ahead of the scan: 0 never, 1 always, -1 while
    the scans running leave a CPU to it."""
    def __init__(self, dir_fd: int, disk: PathIndex, seen: PathIndex, sha: Sha256,
                 xattrs_known: bool, max_line: int, max_run: int, root_uid: int = 0,
                 root_gid: int = 0, readahead: int = -1) -> None: ...
    def scan(self, block: Buffer, pos: int, reader: object) -> tuple[int, int, int, int]:
        """Lines of block from pos, without the GIL; reader's ``segments`` (bytearray),
        ``skip`` and ``number`` are the state carried in and out. Returns (pos of the first
        line left to the caller, or len(block); bytes fed to sha; content bytes of them;
        members judged). MemoryError, state as before the line that needed it."""
    def scan_stream(self, block: Buffer, pos: int) -> tuple[int, int, int]:
        """A layer blob's tar stream in block from pos (at a header, its padding passed),
        without the GIL: consumes the small regular files whose members lie whole in block
        and whose files are sound as ``scan`` judges one, byte for byte the members'
        content, adding each name to seen and marking it expected in disk (sha, unfed, is
        not touched). Returns (pos of the first member left to the caller, or len(block);
        content bytes; members judged)."""

# Thin-pool metadata (twin: analyzer._thin_py). Values are le64 dm-thin block_time words.

def crc32c(data: Buffer, crc: int = 0, /) -> int:
    """CRC-32C (Castagnoli), chainable; crc32c(b"123456789") == 0xE3069283."""

def thin_keys_ok(keys: Buffer, lo: int, hi: int, /) -> bool:
    """True if the le64 keys ascend strictly and lie in [lo, hi]."""

def thin_tally(counts: bytearray, values: Buffer, add: int, /) -> int:
    """counts[data_block] += add, saturating at 255; returns how many blocks fell past counts."""

def thin_count_eq(counts: Buffer, values: Buffer, want: int, /) -> int:
    """How many values name a data block b with counts[b] == want."""

def thin_mark(flags: bytearray, values: Buffer, bit: int, /) -> int:
    """flags[data_block] |= bit; returns how many blocks fell past flags."""

# The path index of a layer directory, for verify (twin: analyzer._pathindex_py, keyed on
# the exact path bytes). Paths are bytes, relative, "" for the top, "/" between names.

class PathIndex:
    """Paths with what lstat said of each and an "expected" mark, keyed by a keyed 128-bit
    hash of the path: ~75 bytes a path with stats, ~28 without; names are not kept. One
    thread at a time."""

    def __init__(self, key: Buffer, stats: bool = True) -> None:
        """key: 16 random bytes (ValueError otherwise); stats: keep an lstat per path."""
    def __len__(self) -> int: ...
    def add(self, path: bytes, st: tuple[int, ...] | None = None) -> bool:
        """Add path with st = (mode, uid, gid, size, dev, ino, nlink, rdev), required with
        stats and refused without (ValueError); False, changing nothing, if it was there."""
    def get(self, path: bytes) -> tuple[int, ...] | None:
        """The st path was added with, or None; ValueError on an index without stats."""
    def __contains__(self, path: bytes) -> bool: ...
    def expect(self, path: bytes) -> None:
        """Mark path and its ancestors up to "" expected, stopping at one already marked;
        those not in the index are passed over."""
    def expected(self, path: bytes) -> bool:
        """True if path is in the index and marked."""
    @property
    def unexpected(self) -> int:
        """How many paths are not marked."""

def walk_index(index: PathIndex, dir_fd: int, helper: int = -1) -> list[tuple[bytes, int]]:
    """Add dir_fd's directory ("") and everything below it, links never followed, without
    the GIL; returns (path, errno) of the directories that could not be opened or read
    (their entries are left out). helper: a second thread lists directories beside this
    one: -1 while the layers' passes running leave a CPU to it, 0 never, 1 always (the
    same index either way; only the order entries are added in differs)."""

# The bytes a tree holds (twin: analyzer._treeusage_py), from the one walk (_csrc/walk.c)
# that walk_index uses too.

class TreeUsage:
    """The inodes walks found, keyed by (dev, ino), each once (what it was first seen with
    stays), with how many of its links were found: ~48 bytes an inode."""

    def __len__(self) -> int: ...
    def add(self, dev: int, ino: int, nlink: int, allocated: int, size: int,
            is_dir: bool) -> None:
        """One link of an inode found (an archive's members, tests)."""
    def allocated_bytes(self) -> int:
        """st_blocks * 512 of every inode, each once: du -s -B1 of what was walked."""
    def apparent_bytes(self) -> int:
        """st_size of every inode but directories, each once (moby's directory.Size)."""

def freed_bytes(usages: list[TreeUsage]) -> int:
    """What removing everything they found frees: each inode once (as the first of them to
    find it saw it), directories always, files only when all of them together found every
    link. ~28 bytes an inode while it runs, without the GIL."""

def attribute(usages: list[TreeUsage], dev: int
              ) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Each inode they found counted once (as the first of them to find it saw it), for
    the first of them that found it: (allocated bytes, inodes) of each on device dev, and
    of all on other devices (mounts below the tree, which ``du -x`` leaves out). ~28
    bytes an inode while it runs, without the GIL."""

def walk_usage(dir_fd: int, groups: list[list[bytes]]
               ) -> list[tuple[TreeUsage, list[tuple[bytes, int]]]]:
    """For each group of paths (relative to dir_fd; ".." and a leading "/" are EXDEV), a
    TreeUsage of each path and everything below it, links never followed and only
    directories opened, and the (path, errno) of the directories (or a path) that could not
    be read, whose entries are left out. One call without the GIL."""
