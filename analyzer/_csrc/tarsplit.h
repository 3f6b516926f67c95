/* verify's fast path through a layer's tar-split: the lines Go's tar-split writes for a
 * plain regular file, judged here without Python.
 *
 * A tar-split file (analyzer/sources/tarsplit.py) is JSON lines: segments (type 2, raw
 * archive bytes in base64) and file entries (type 1: a member's name, size and CRC-64).
 * ts_scan_lines reads the lines of a block one by one. A segment line in Go's exact form
 * is decoded onto the pending run; a file entry in Go's exact form whose member is a
 * regular file with one plain ustar header, a clean name that is no whiteout, and whose
 * file on disk has the header's mode and owner, its size, its CRC-64 and no extended
 * attributes, is fed to the layer's hash (the run, then the file's content) and accounted
 * for -- exactly what the Python reader and engines/verify.py would do with it, finding
 * nothing wrong. Anything else, or anything wrong, stops the scan at that line with no
 * trace of it (the hash state is put back): the line is the caller's, whose reader is the
 * spec and says what is wrong. So this code never decides a verdict; it only skips the
 * work of confirming a sound member.
 *
 * Bounds are the caller's: a line past max_line, or segments past max_run, stop the scan
 * at that line too. Time is linear in the bytes of the block. Nothing here needs Python;
 * a scan belongs to one thread.
 *
 * Read-ahead: most of a small file's cost is the system calls that reach it (open, fstat,
 * read, flistxattr, close: as much as a bare Python loop spends on the file). With a CPU
 * to spare, a reader thread of the scan's own goes through the block's lines ahead of the
 * scan and does them for each file entry whose file the walk saw as a regular file of the
 * entry's size, the same way and with the same checks (its own directory fd, O_NOFOLLOW,
 * fstat against the walk's device and inode and the size, a read one byte past the end),
 * and hands the scan the outcome: the content of a small file, a bigger one open. It
 * stops at the first entry it would not read (the scan stops there too, or reads that file
 * itself), reads nothing the walk did not see as a regular file, and is stopped and
 * waited for before ts_scan_lines returns: the block, the indexes and the scan are never
 * touched by it after. It only moves system calls to another CPU; every judgement stays
 * the scan's.
 */
#ifndef ANALYZER_TARSPLIT_H
#define ANALYZER_TARSPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "fastdigest.h"
#include "pathindex.h"

/* Files below this size are read into ts_scan.buf in one call. */
#define TS_SMALL_FILE 65536
/* Longer names go the caller's way. */
#define TS_NAME_MAX 4095

/* The reader thread runs this many file entries ahead; files below AHEAD_BYTES come read. */
#define TS_AHEAD_SLOTS 64
#define TS_AHEAD_BYTES 8192

#define TS_END 0     /* every complete line of the block was consumed */
#define TS_SLOW 1    /* the line at *pos is the caller's */

/* A directory of the layer kept open (O_PATH) for the next file: a tar lists a
 * directory's files together. Zeroed, none is. */
typedef struct {
    int fd, open;
    size_t len;
    char name[TS_NAME_MAX + 1];
} ts_dir;

typedef struct ts_ahead ts_ahead;

typedef struct {
    /* what the scan reads and feeds (the caller's, never freed here) */
    int dir_fd;              /* the layer's directory */
    pi_index *disk;          /* its entries with their lstat (pi_walk) */
    pi_index *seen;          /* the names of file entries so far, without stats */
    fd_sha256 *sha;          /* the layer's rebuilt tar stream */
    int xattrs_known;        /* 0: the evidence records no xattrs, none are compared */
    uint32_t root_uid, root_gid;  /* what extraction added to each header's owner (userns) */
    size_t max_line, max_run;
    /* the reader thread: 0 never, 1 always, -1 while the scans running leave a CPU to it */
    int readahead;
    /* carried from line to line, and between calls (the caller may change them) */
    uint8_t *run;            /* segment bytes since the last file entry (fd_mem) */
    size_t run_len, run_cap;
    uint64_t skip;           /* the previous member's padding, at the start of the run */
    uint64_t number;         /* lines consumed so far */
    /* The directory of the last file this thread opened (ts_scan_free closes it), and
     * the last directory marked expected in disk (fd and open unused): a file's
     * ancestors need no marking again while they are its. */
    ts_dir parent, marked;
    ts_ahead *ahead;         /* the reader thread, made at its first use */
    int warm;                /* the last call's reader went AHEAD_BATCH files or more */
    uint8_t buf[TS_SMALL_FILE + 1];
    /* what the fast path did: bytes fed to sha, of them file content, members judged */
    uint64_t hashed, content, files;
} ts_scan;

/* Consumes the complete lines of buf[*pos, len) while each is one this file judges;
 * *pos ends at the first line that is not (or at an unended line, or at len).
 * Returns TS_END, TS_SLOW (the line at *pos is the caller's), or -ENOMEM (*pos at the
 * line that needed the memory, nothing of it done). */
int ts_scan_lines(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos);

/* The PAX extended headers ts_scan_stream reads itself: at most this many bytes. */
#define TS_PAX_MAX 1024

/* verify's fast path through a layer blob's own tar stream (containerd's snapshots,
 * sources/layerfiles.py SnapshotFiles), as ts_scan_lines through tar-split: consumes
 * the members of buf[*pos, len) -- *pos at a header, the padding before it passed --
 * while each lies whole in buf and is a regular file below TS_SMALL_FILE with one ustar
 * header (after, at most, a PAX header of times only), a plain_name, and its file in the
 * layer directory sound as ts_scan_lines judges one, its bytes those of the member's
 * content. Adds to s->content and s->files (s->hashed: the content, as verify counts
 * it; s->sha, s->run and s->skip untouched; no reader thread); *pos ends at the first
 * member left to the caller. Returns TS_END, TS_SLOW or -ENOMEM, as ts_scan_lines. */
int ts_scan_stream(ts_scan *s, const uint8_t *buf, size_t len, size_t *pos);

/* Frees the run buffer, closes the directories kept open, ends the reader thread. */
void ts_scan_free(ts_scan *s);

#endif
