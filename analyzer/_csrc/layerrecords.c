/* See layerrecords.h. */
#include "layerrecords.h"

#include <string.h>

#include "fastdigest.h"

#define DIGEST_LEN 71               /* "sha256:" + 64 hex */

static int is_space(uint8_t c)      /* Go's TrimSpace and Python's strip, on ASCII */
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static lr_span trim(lr_span s)
{
    while (s.n && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static int is_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

static int is_digest(lr_span s)
{
    return s.n == DIGEST_LEN && memcmp(s.p, "sha256:", 7) == 0 && is_hex(s.p + 7, 64);
}

/* One directory's name, printable ASCII: no '/', not "." or "..". */
static int is_name(lr_span s)
{
    if (s.n == 0 || (s.p[0] == '.' && (s.n == 1 || (s.n == 2 && s.p[1] == '.'))))
        return 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] <= ' ' || s.p[i] > '~' || s.p[i] == '/')
            return 0;
    return 1;
}

/* Up to 18 digits: within int64 whatever they are (strconv.ParseInt takes more). */
static int parse_size(lr_span s, int64_t *out)
{
    if (s.n == 0 || s.n > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return 1;
}

/* moby layer/layer.go createChainIDFromParent: sha256 of "<parent> <diff>", compared
 * with the directory's name. */
static int chain_matches(const uint8_t *hexid, lr_span parent, lr_span diff)
{
    if (!parent.p)
        return memcmp(diff.p + 7, hexid, 64) == 0;
    fd_sha256 s;
    uint8_t sum[32];
    static const char digits[] = "0123456789abcdef";
    fd_sha256_init(&s);
    fd_sha256_update(&s, parent.p, parent.n);
    fd_sha256_update(&s, (const uint8_t *)" ", 1);
    fd_sha256_update(&s, diff.p, diff.n);
    fd_sha256_digest(&s, sum);
    for (int i = 0; i < 32; i++)
        if (hexid[2 * i] != digits[sum[i] >> 4] || hexid[2 * i + 1] != digits[sum[i] & 15])
            return 0;
    return 1;
}

int lr_plain_layer(const uint8_t *hexid, size_t n, const lr_span files[LR_FILES],
                   lr_record *out)
{
    if (n != 64 || !files[LR_DIFF].p || !files[LR_CACHE_ID].p)
        return 0;
    lr_span diff = trim(files[LR_DIFF]), cache_id = trim(files[LR_CACHE_ID]);
    lr_span parent = {NULL, 0};
    if (files[LR_PARENT].p)
        parent = trim(files[LR_PARENT]);
    if (parent.n == 0)
        parent.p = NULL;                /* an empty parent file: a base layer */
    int64_t size = 0;
    if (files[LR_SIZE].p) {
        lr_span s = trim(files[LR_SIZE]);
        if (s.n && !parse_size(s, &size))
            return 0;
    }
    if (!is_digest(diff) || !is_name(cache_id) || (parent.p && !is_digest(parent))
        || !chain_matches(hexid, parent, diff))
        return 0;
    out->diff = diff;
    out->cache_id = cache_id;
    out->parent = parent;
    out->diff_size = size;
    return 1;
}
