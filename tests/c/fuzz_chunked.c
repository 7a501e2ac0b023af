/* fuzz_chunked.c: libFuzzer harness for kk_chunked_decode.
 *
 * Input: byte 0 is a mode byte, the rest is data.
 *   bit 0 clear: the data is a chunked body as received. It is decoded whole,
 *     split in two at three points, and one byte at a time; every way must give
 *     the same result, status, decoded bytes and bytes after the message. The
 *     output never exceeds the input, and the decoded total never exceeds
 *     max_body.
 *   bit 0 set: round trip. The data is a payload; the harness encodes it with
 *     the chunked coding (chunk sizes, hex case, leading zeros, extensions and
 *     trailers chosen from the data), decodes it in pieces, and requires the
 *     payload back exactly (or 413 when it is larger than max_body).
 *   bits 1-2: max_body = 1 MiB, 16, 0, or UINT64_MAX.
 * Every piece is decoded in an exact-size heap copy, so ASan sees over-reads.
 *
 * Build: make -f tests/c/parse.mk fuzz-smoke (or fuzz-parse).
 */
#include "../../src/_karak/parse.c"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

typedef struct {
    long rc; /* -2, -1, or 0 when the message ended */
    int status;
    unsigned char *out; /* decoded bytes */
    size_t out_n;
    unsigned char *rest; /* bytes after the message */
    size_t rest_n;
} outcome;

static void append(unsigned char **p, size_t *n, const void *src, size_t k) {
    unsigned char *q = realloc(*p, *n + k + 1);
    CHECK(q != NULL);
    if (k) memcpy(q + *n, src, k);
    *p = q;
    *n += k;
}

/* Decodes in[0..n) fed as pieces ending at cuts[0..nc) (the last == n). */
static void decode(const unsigned char *in, size_t n, const size_t *cuts, size_t nc,
                   uint64_t max_body, outcome *o) {
    kk_chunked d;
    size_t k, start = 0;
    memset(o, 0, sizeof *o);
    o->rc = -2;
    append(&o->out, &o->out_n, "", 0);
    append(&o->rest, &o->rest_n, "", 0);
    kk_chunked_init(&d, max_body);
    for (k = 0; k < nc; k++) {
        size_t plen = cuts[k] - start, l = plen;
        unsigned char *p;
        long rc;
        CHECK(cuts[k] >= start);
        if (o->rc == 0) { /* message over: the rest of the pieces is rest */
            append(&o->rest, &o->rest_n, in + start, plen);
            start = cuts[k];
            continue;
        }
        p = malloc(plen ? plen : 1);
        CHECK(p != NULL);
        if (plen) memcpy(p, in + start, plen);
        rc = kk_chunked_decode(&d, (char *)p, &l);
        CHECK(l <= plen);
        if (rc == -1) {
            CHECK(d.reason != NULL && (d.status == 400 || d.status == 413));
            o->rc = -1;
            o->status = d.status;
            free(p);
            return;
        }
        CHECK(rc == -2 || (rc >= 0 && l + (size_t)rc <= plen));
        append(&o->out, &o->out_n, p, l);
        if (rc >= 0) {
            append(&o->rest, &o->rest_n, p + l, (size_t)rc);
            o->rc = 0;
        }
        free(p);
        CHECK(d.total <= max_body);
        CHECK(d.total == o->out_n);
        start = cuts[k];
    }
    CHECK(start == n);
    CHECK(o->out_n + o->rest_n <= n);
}

static void release(outcome *o) {
    free(o->out);
    free(o->rest);
    memset(o, 0, sizeof *o);
}

static void check_same(const outcome *a, const outcome *b) {
    CHECK(a->rc == b->rc);
    if (a->rc == -1) {
        CHECK(a->status == b->status);
        return;
    }
    CHECK(a->out_n == b->out_n && memcmp(a->out, b->out, a->out_n) == 0);
    CHECK(a->rest_n == b->rest_n && memcmp(a->rest, b->rest, a->rest_n) == 0);
}

static uint64_t next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void raw_mode(const unsigned char *in, size_t n, uint64_t max_body, uint64_t seed) {
    outcome whole, other;
    size_t cut[2], i, *ones;
    cut[0] = n;
    decode(in, n, cut, 1, max_body, &whole);
    for (i = 0; i < 3; i++) {
        cut[0] = i == 0 ? n / 2 : i == 1 ? (n ? n - 1 : 0) : (size_t)(next(&seed) % (n + 1));
        cut[1] = n;
        decode(in, n, cut, 2, max_body, &other);
        check_same(&whole, &other);
        release(&other);
    }
    if (n > 0) {
        ones = malloc(n * sizeof *ones);
        CHECK(ones != NULL);
        for (i = 0; i < n; i++) ones[i] = i + 1;
        decode(in, n, ones, n, max_body, &other);
        check_same(&whole, &other);
        release(&other);
        free(ones);
    }
    release(&whole);
}

static void roundtrip_mode(const unsigned char *payload, size_t plen, uint64_t max_body,
                           uint64_t seed) {
    static const char *exts[] = {"", ";a", ";a=b", ";n=\"q;\\\"x\"", " ;\ta = \"\"", ";x;y=1;z"};
    static const char *trailers[] = {"", "T: 1\r\n", "A: b c\r\nEmpty:\r\n"};
    unsigned char *enc = NULL;
    size_t elen = 0, i = 0, *cuts, nc = 0, pos = 0;
    outcome o;
    char line[64];
    while (i < plen) {
        size_t c = 1 + (size_t)(next(&seed) % 300);
        int zeros = (int)(next(&seed) % 3), k;
        if (c > plen - i) c = plen - i;
        for (k = 0; k < zeros; k++) append(&enc, &elen, "0", 1);
        snprintf(line, sizeof line, next(&seed) & 1 ? "%zx%s\r\n" : "%zX%s\r\n", c,
                 exts[next(&seed) % 6]);
        append(&enc, &elen, line, strlen(line));
        append(&enc, &elen, payload + i, c);
        append(&enc, &elen, "\r\n", 2);
        i += c;
    }
    snprintf(line, sizeof line, "0%s\r\n", exts[next(&seed) % 6]);
    append(&enc, &elen, line, strlen(line));
    {
        const char *t = trailers[next(&seed) % 3];
        append(&enc, &elen, t, strlen(t));
    }
    append(&enc, &elen, "\r\n", 2);

    cuts = malloc((elen + 1) * sizeof *cuts);
    CHECK(cuts != NULL);
    while (pos < elen) {
        pos += 1 + (size_t)(next(&seed) % 512);
        if (pos > elen) pos = elen;
        cuts[nc++] = pos;
    }
    decode(enc, elen, cuts, nc, max_body, &o);
    if (plen > max_body) {
        CHECK(o.rc == -1 && o.status == 413);
    } else {
        CHECK(o.rc == 0);
        CHECK(o.out_n == plen && (plen == 0 || memcmp(o.out, payload, plen) == 0));
        CHECK(o.rest_n == 0);
    }
    release(&o);
    free(cuts);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint64_t bodies[4] = {1u << 20, 16, 0, UINT64_MAX};
    uint64_t seed = 0x243f6a8885a308d3ULL;
    size_t i;
    if (size < 1) return 0;
    for (i = 0; i < size; i++) seed = (seed ^ data[i]) * 0x100000001b3ULL;
    if (data[0] & 1)
        roundtrip_mode(data + 1, size - 1, bodies[(data[0] >> 1) & 3], seed);
    else
        raw_mode(data + 1, size - 1, bodies[(data[0] >> 1) & 3], seed);
    return 0;
}
