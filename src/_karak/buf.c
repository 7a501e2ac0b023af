/* buf.c: the growable byte buffer declared in buf.h. No Python.h.
 *
 * Growth is geometric (doubling from a 64-byte floor) so that appending n bytes
 * one piece at a time costs O(n) copies in total. Sizes are capped at
 * PTRDIFF_MAX (no C object may be larger, and a Py_ssize_t can describe every
 * buffer), every size computation is checked for overflow, and on failure the
 * buffer is left exactly as it was. */
#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define KK_BUF_MIN_CAP 64

const char kk_digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

const uint64_t kk_pow10_u64[19] = {
    UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000), UINT64_C(100000),
    UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000), UINT64_C(1000000000),
    UINT64_C(10000000000), UINT64_C(100000000000), UINT64_C(1000000000000),
    UINT64_C(10000000000000), UINT64_C(100000000000000), UINT64_C(1000000000000000),
    UINT64_C(10000000000000000), UINT64_C(100000000000000000),
    UINT64_C(1000000000000000000), UINT64_C(10000000000000000000),
};

/* Ensures b->cap - b->len >= extra, reallocating if needed. Returns 0, or -1
 * when len + extra would exceed PTRDIFF_MAX or realloc fails (b unchanged in
 * both cases). Thread: whoever owns b. */
int kk_buf_reserve(kk_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return 0;
    if (extra > (size_t)PTRDIFF_MAX - b->len) return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap < KK_BUF_MIN_CAP ? KK_BUF_MIN_CAP : b->cap;
    while (cap < need) {
        if (cap > (size_t)PTRDIFF_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Releases the storage and leaves b empty (cap 0, data NULL), ready for reuse.
 * Safe to call twice. Thread: whoever owns b. */
void kk_buf_free(kk_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
