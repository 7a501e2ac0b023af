/* buf.h: a growable byte buffer on malloc (never PyObject_Malloc). No Python.h.
 * Owned by whoever holds it: a connection (worker-local) or a stack frame. */
#ifndef KK_BUF_H
#define KK_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;  /* malloc'd, or NULL when cap == 0 */
    size_t len;
    size_t cap;
} kk_buf;

/* Ensures room for `extra` more bytes. 0, or -1 on out-of-memory (buffer unchanged). */
int kk_buf_reserve(kk_buf *b, size_t extra);
void kk_buf_free(kk_buf *b);

static inline int kk_buf_append(kk_buf *b, const void *p, size_t n) {
    if (b->cap - b->len < n && kk_buf_reserve(b, n) < 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int kk_buf_putc(kk_buf *b, char c) {
    if (b->cap == b->len && kk_buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = c;
    return 0;
}

#define KK_BUF_LIT(b, lit) kk_buf_append((b), (lit), sizeof(lit) - 1)

/* Ensures room for `extra` more bytes, calling kk_buf_reserve only when the
 * buffer is short. 0, or -1 on out-of-memory. */
static inline int kk_buf_room(kk_buf *b, size_t extra) {
    return b->cap - b->len >= extra ? 0 : kk_buf_reserve(b, extra);
}

/* "00" "01" ... "99": two decimal digits at a time (buf.c; read-only). */
extern const char kk_digit_pairs[201];

/* 10**1 .. 10**19: where each decimal length of a uint64_t starts (buf.c;
 * read-only). */
extern const uint64_t kk_pow10_u64[19];

/* The number of decimal digits of v (1..20). Small numbers, the usual case,
 * take one or two compares. */
static inline size_t kk_u64_len(uint64_t v) {
    size_t n = 1;
    while (n < 20 && v >= kk_pow10_u64[n - 1]) n++;
    return n;
}

/* Writes the decimal digits of v ending just before `end` (at most 20 bytes)
 * and returns where they start. */
static inline char *kk_fmt_u64(char *end, uint64_t v) {
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, kk_digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, kk_digit_pairs + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

/* Appends the decimal form of v, written in place: its length first, then
 * the digits from the end. 0, or -1 on out-of-memory. */
static inline int kk_buf_put_u64(kk_buf *b, uint64_t v) {
    if (kk_buf_room(b, 20) < 0) return -1;
    size_t n = kk_u64_len(v);
    kk_fmt_u64(b->data + b->len + n, v);
    b->len += n;
    return 0;
}

#endif
