/* buf.h: a growable byte buffer on malloc (never PyObject_Malloc). No Python.h.
 * Owned by whoever holds it: a connection (worker-local) or a stack frame. */
#ifndef KK_BUF_H
#define KK_BUF_H

#include <stddef.h>
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

#endif
