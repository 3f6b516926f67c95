/* libFuzzer target for the layer store's record check (analyzer/_csrc/layerrecords.c),
 * built with AddressSanitizer and UBSan by tests/test_fuzz_native.py.
 *
 * The input is a record: its directory name, then the contents of diff, size, cache-id
 * and parent, separated by 0xfe bytes; a file missing at the end is absent. Each part is
 * copied to a buffer of its own size, so that a read past a file's end is caught. A
 * plain record's spans must lie inside their files, its size be a byte count, and a
 * record found plain be found so again when its files are padded with whitespace.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"
#include "layerrecords.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd_init();
    return 0;
}

static int inside(lr_span s, lr_span file)
{
    return s.p >= file.p && s.n <= file.n && (size_t)(s.p - file.p) <= file.n - s.n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *part[1 + LR_FILES] = {0};
    size_t len[1 + LR_FILES] = {0};
    int parts = 0;
    for (size_t start = 0; parts < 1 + LR_FILES;) {
        const uint8_t *end = memchr(data + start, 0xfe, size - start);
        size_t n = end ? (size_t)(end - data) - start : size - start;
        part[parts] = malloc(n ? n : 1);
        memcpy(part[parts], data + start, n);
        len[parts++] = n;
        if (!end)
            break;
        start += n + 1;
    }
    lr_span files[LR_FILES];
    for (int i = 0; i < LR_FILES; i++)
        files[i] = (lr_span){1 + i < parts ? part[1 + i] : NULL, len[1 + i]};
    lr_record rec;
    if (lr_plain_layer(part[0], len[0], files, &rec)) {
        if (!inside(rec.diff, files[LR_DIFF]) || !inside(rec.cache_id, files[LR_CACHE_ID])
            || (rec.parent.p && !inside(rec.parent, files[LR_PARENT])) || rec.diff_size < 0)
            abort();
        lr_span padded[LR_FILES];
        uint8_t *copies[LR_FILES] = {0};
        for (int i = 0; i < LR_FILES; i++) {
            padded[i] = files[i];
            if (!files[i].p)
                continue;
            copies[i] = malloc(files[i].n + 2);
            copies[i][0] = ' ';
            memcpy(copies[i] + 1, files[i].p, files[i].n);
            copies[i][files[i].n + 1] = '\n';
            padded[i] = (lr_span){copies[i], files[i].n + 2};
        }
        lr_record again;
        if (!lr_plain_layer(part[0], len[0], padded, &again) || again.diff_size != rec.diff_size)
            abort();
        for (int i = 0; i < LR_FILES; i++)
            free(copies[i]);
    }
    for (int i = 0; i < parts; i++)
        free(part[i]);
    return 0;
}
