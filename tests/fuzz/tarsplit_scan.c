/* libFuzzer target for the native tar-split scan (analyzer/_csrc/tarsplit.c), built with
 * AddressSanitizer and UBSan by tests/test_fuzz_native.py.
 *
 * The input is the inflated text of a tar-split file, or (bit 3 of its first byte) a
 * layer's tar stream for ts_scan_stream; its first byte sets the padding
 * the scan starts with, and whether its reader thread reads the files ahead (bit 2). The layer directory is a fixed tree made at start-up (LAYER
 * below), walked into a path index as verify walks one, so that entries naming its files
 * reach the hashing path. The scan is driven as sources/layerfiles.py drives it: a line it
 * leaves is skipped (the Python reader's), and the scan goes on after it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastdigest.h"
#include "init.h"
#include "pathindex.h"
#include "tarsplit.h"

/* The files of the layer: path, content. tests/test_fuzz_native.py writes a seed that
 * names them with the right sizes and CRCs. */
static const char *const LAYER[][2] = {
    {"a", "hello\n"},
    {"d/b", "0123456789abcdef"},
    {"d/e", ""},
};

static int dir_fd = -1;
static pi_index *disk;
static const uint8_t KEY[PI_KEY_SIZE] = "fuzz-key-16bytes";

static void die(const char *what)
{
    perror(what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* An empty directory of the test's, for the layer. */
    const char *top = getenv("TARSPLIT_FUZZ_LAYER");
    wk_errors errors;
    size_t i;
    (void)argc;
    (void)argv;
    fd_init();
    if (!top)
        die("TARSPLIT_FUZZ_LAYER");
    dir_fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || mkdirat(dir_fd, "d", 0755) != 0)
        die("layer directory");
    for (i = 0; i < sizeof(LAYER) / sizeof(LAYER[0]); i++) {
        int fd = openat(dir_fd, LAYER[i][0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        size_t n = strlen(LAYER[i][1]);
        if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, LAYER[i][1], n) != (ssize_t)n)
            die(LAYER[i][0]);
        close(fd);
    }
    disk = pi_new(KEY, 1);
    memset(&errors, 0, sizeof(errors));
    /* with the walk's helper thread, as verify walks on two CPUs */
    if (!disk || pi_walk(disk, dir_fd, &errors, 1) != 0 || errors.n)
        die("walk");
    wk_errors_free(&errors);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_scan *s;
    fd_sha256 sha;
    size_t pos = 1;
    if (size == 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (!s)
        die("calloc");
    fd_sha256_init(&sha);
    s->dir_fd = dir_fd;
    s->disk = disk;
    s->seen = pi_new(KEY, 0);
    s->sha = &sha;
    s->xattrs_known = data[0] & 1;
    s->readahead = data[0] & 4 ? 1 : 0;
    s->max_line = 4096;
    s->max_run = 4096;
    s->skip = data[0] * 4u;
    if (!s->seen)
        die("pi_new");
    /* Bit 3 of the first byte: the rest is a layer blob's tar stream (ts_scan_stream), a
     * block the scan leaves skipped as the caller's. */
    while (data[0] & 8 && pos < size) {
        int rc = ts_scan_stream(s, data, size, &pos);
        if (rc < 0)
            die("ts_scan_stream");
        if (rc == TS_END)
            break;
        pos = size - pos > 512 ? pos + 512 : size;
    }
    while (!(data[0] & 8) && pos < size) {
        int rc = ts_scan_lines(s, data, size, &pos);
        const uint8_t *nl;
        if (rc < 0)
            die("ts_scan_lines");
        if (rc == TS_END)
            break;
        nl = memchr(data + pos, '\n', size - pos);
        if (!nl)
            break;
        pos = (size_t)(nl - data) + 1;
        if (data[0] & 2)
            s->run_len = 0;          /* as the reader takes the run of a file entry */
    }
    if (pos > size || s->run_len > s->max_run)
        abort();
    pi_free(s->seen);
    ts_scan_free(s);
    free(s);
    return 0;
}
