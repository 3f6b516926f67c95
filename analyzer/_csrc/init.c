/* See init.h. Each C file of the module is set up from here and from nowhere else. */
#include "init.h"

#include <stdlib.h>

#include "fd_internal.h"
#include "mem.h"
#include "walk.h"
#include "safeopen.h"
#include "thin.h"

fd_allocator fd_mem = {malloc, calloc, realloc, free};

void fd_set_allocator(const fd_allocator *mem)
{
    fd_mem = *mem;
}

void fd_init(void)
{
    static int done;
    if (done)
        return;
    fd_crc64_tables_init();
    fd_thin_tables_init();
#ifdef FD_X86
    fd_x86_init();
#endif
    fd_hash_fd_init();
    done = 1;
}

void fd_set_portable(int portable)
{
#ifdef FD_X86
    fd_use_sha_ni = !portable && fd_x86_detect_sha_ni();
    fd_use_pclmul = !portable && fd_x86_detect_pclmul();
#endif
    fd_thin_set_sse42(!portable);
    wk_setup(portable);
}

void fd_get_features(fd_features *out)
{
    out->sha_ni = fd_use_sha_ni;
    out->pclmul = fd_use_pclmul;
    out->sse42 = fd_thin_using_sse42();
    out->openat2 = so_have_openat2();
}
