/* test_buf.c: unit test of kk_buf (buf.c), no Python. Exit status 0 = pass.
 * `make ctest-buf` builds it with ASan and UBSan and runs it. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
            failures++;                                               \
        }                                                             \
    } while (0)

/* kk_buf_put_u64 sizes the number before writing it in place: every
 * digit-count boundary, after text already in the buffer and at a buffer that
 * is exactly full, against snprintf. */
static void test_put_u64(void) {
    uint64_t vals[64];
    size_t nv = 0;
    vals[nv++] = 0;
    vals[nv++] = UINT64_MAX;
    for (uint64_t p = 10;; p *= 10) {
        vals[nv++] = p - 1;
        vals[nv++] = p;
        vals[nv++] = p + 1;
        if (p > UINT64_MAX / 10) break;
    }
    for (size_t i = 0; i < nv; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "x%llu|", (unsigned long long)vals[i]);
        CHECK(kk_u64_len(vals[i]) == (size_t)n - 2);
        kk_buf b = {NULL, 0, 0};
        CHECK(kk_buf_putc(&b, 'x') == 0);
        while (b.len < b.cap) b.data[b.len++] = 'x'; /* full: put_u64 must grow it */
        size_t at = b.len - 1;
        CHECK(kk_buf_put_u64(&b, vals[i]) == 0);
        CHECK(kk_buf_putc(&b, '|') == 0);
        CHECK(b.len - at == (size_t)n && memcmp(b.data + at, want, (size_t)n) == 0);
        kk_buf_free(&b);
    }
}

int main(void) {
    kk_buf b = {NULL, 0, 0};
    test_put_u64();

    /* reserve 0 on an empty buffer succeeds and may leave it unallocated */
    CHECK(kk_buf_reserve(&b, 0) == 0);

    /* appends of every size keep the contents and grow geometrically */
    size_t reallocs = 0, last_cap = b.cap;
    for (int i = 0; i < 100000; i++) {
        char c = (char)('a' + i % 26);
        CHECK(kk_buf_putc(&b, c) == 0);
        if (b.cap != last_cap) reallocs++, last_cap = b.cap;
    }
    CHECK(b.len == 100000);
    CHECK(reallocs < 20);
    for (size_t i = 0; i < b.len; i++) CHECK(b.data[i] == (char)('a' + i % 26));
    CHECK(KK_BUF_LIT(&b, "xyz") == 0);
    CHECK(b.len == 100003 && b.data[100002] == 'z');
    CHECK(kk_buf_append(&b, NULL, 0) == 0 && b.len == 100003);

    /* overflow: the request fails and the buffer is unchanged */
    char *data = b.data;
    size_t len = b.len, cap = b.cap;
    CHECK(kk_buf_reserve(&b, SIZE_MAX) == -1);
    CHECK(kk_buf_reserve(&b, SIZE_MAX - len + 1) == -1);
    CHECK(b.data == data && b.len == len && b.cap == cap);
    /* beyond PTRDIFF_MAX in total: refused before realloc, unchanged */
    CHECK(kk_buf_reserve(&b, (size_t)PTRDIFF_MAX - len + 1) == -1);
    CHECK(kk_buf_reserve(&b, (size_t)PTRDIFF_MAX) == -1);
    CHECK(b.data == data && b.len == len && b.cap == cap);
    CHECK(b.data[0] == 'a');

    /* exact reservation is honoured: no realloc while appending within it */
    b.len = 0;
    CHECK(kk_buf_reserve(&b, cap + 1000) == 0);
    data = b.data;
    cap = b.cap;
    for (size_t i = 0; i < cap; i++) CHECK(kk_buf_putc(&b, 'q') == 0);
    CHECK(b.data == data && b.cap == cap);

    kk_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    kk_buf_free(&b); /* twice is fine */
    CHECK(kk_buf_putc(&b, 'x') == 0 && b.len == 1 && b.data[0] == 'x');
    kk_buf_free(&b);

    if (failures) {
        fprintf(stderr, "test_buf: %d failure(s)\n", failures);
        return 1;
    }
    puts("test_buf: ok");
    return 0;
}
