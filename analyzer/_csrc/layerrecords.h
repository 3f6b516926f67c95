/* The layer store's records (image/<driver>/layerdb/sha256/<chain ID>/: diff, size,
 * cache-id, parent; moby layer/filestore.go) checked in bulk, after they were read.
 *
 * A record is "plain" when it holds exactly what a sound layer store holds: a diff ID
 * and a parent chain ID that are sha256:<64 lowercase hex>, a size of decimal digits,
 * a cache ID of printable ASCII that names one directory, each maybe padded with ASCII
 * whitespace, and a chain ID that the directory's name agrees with. The Python loader
 * (sources/graphdriver.py _Loader.layer) takes such a record without a word; whatever
 * is not plain goes to it, and it decides and warns. So this check may refuse what that
 * loader would accept, never the other way round. No I/O, no allocation: a pure
 * function of bytes (fuzzed: tests/fuzz/layer_records.c).
 */
#ifndef ANALYZER_LAYERRECORDS_H
#define ANALYZER_LAYERRECORDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;      /* NULL: the file is absent */
    size_t n;
} lr_span;

enum { LR_DIFF, LR_SIZE, LR_CACHE_ID, LR_PARENT, LR_FILES };

typedef struct {
    lr_span diff, cache_id, parent;   /* inside the files' bytes; parent.p NULL: none */
    int64_t diff_size;
} lr_record;

/* hexid: the record's directory name (n bytes); files: the contents of diff, size,
 * cache-id and parent in that order. Returns 1 and fills *out when the record is plain,
 * else 0. */
int lr_plain_layer(const uint8_t *hexid, size_t n, const lr_span files[LR_FILES],
                   lr_record *out);

#endif
