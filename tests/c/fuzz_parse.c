/* fuzz_parse.c: libFuzzer harness for kk_parse_request.
 *
 * Input: byte 0 picks the limits (low 2 bits: default, small, tiny, unbounded)
 * and the rest is the request bytes. Besides crashes and sanitizer reports, the
 * harness aborts when one of these invariants breaks:
 *   - the result is -2, -1 with a known status and a reason, or a head length;
 *   - on success, every span lies inside the head, the head ends in CRLFCRLF,
 *     the fields obey the grammar (token names, no CR/LF/NUL or edge OWS in
 *     values), and the limits hold (line, section, field count, body);
 *   - parsing is deterministic;
 *   - any prefix gives -2 or the very same result (same status on error, same
 *     head on success), and a prefix that holds the whole head gives the head;
 *   - one more byte appended changes nothing unless the result was -2;
 *   - a request line or header section over its limit is answered 414/431,
 *     unless the input cut before the first byte over the limit already fails
 *     the same way (limits are judged in byte order with the other rules).
 * Every parse runs on an exact-size heap copy, so ASan sees any over-read.
 *
 * Build: make -f tests/c/parse.mk fuzz-smoke (or fuzz-parse).
 */
#include "../../src/_karak/parse.c"

#include <stdio.h>
#include <stdlib.h>

#define CAP 128

static kk_parse_limits profile(unsigned char cfg) {
    kk_parse_limits l;
    switch (cfg & 3) {
    case 0:
        l.max_request_line = KK_DEFAULT_MAX_REQUEST_LINE;
        l.max_head = KK_DEFAULT_MAX_HEAD;
        l.max_headers = KK_DEFAULT_MAX_HEADERS;
        l.max_body = KK_DEFAULT_MAX_BODY;
        break;
    case 1:
        l.max_request_line = 32;
        l.max_head = 64;
        l.max_headers = 4;
        l.max_body = 16;
        break;
    case 2:
        l.max_request_line = 8;
        l.max_head = 8;
        l.max_headers = 1;
        l.max_body = 0;
        break;
    default:
        l.max_request_line = (size_t)-1;
        l.max_head = (size_t)-1;
        l.max_headers = CAP;
        l.max_body = UINT64_MAX;
        break;
    }
    return l;
}

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Offset of span p in buf[0..len), -1 for NULL, -2 for the static "/". */
static long off(const char *p, size_t n, const char *buf, size_t len) {
    if (!p) {
        CHECK(n == 0);
        return -1;
    }
    if (p >= buf && p <= buf + len && n <= (size_t)(buf + len - p)) return (long)(p - buf);
    CHECK(n == 1 && p[0] == '/'); /* absolute-form with an empty path */
    return -2;
}

typedef struct {
    int rc, status;
    kk_request req;
    kk_header h[CAP];
    const char *buf;
    size_t len;
} result;

static void parse(result *r, const char *src, size_t len, const kk_parse_limits *lim) {
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    if (len) memcpy(copy, src, len);
    r->rc = kk_parse_request(copy, len, &r->req, r->h, CAP, lim);
    r->status = r->rc == -1 ? r->req.status : 0;
    r->buf = copy;
    r->len = len;
}

static void release(result *r) {
    free((void *)r->buf);
    r->buf = NULL;
}

static int is_ws(char c) { return c == ' ' || c == '\t'; }

/* Every header value read as a Cookie field: pairs lie inside the value in
 * order, are trimmed and never both empty; unquoting never grows a value. */
static void check_cookie(const char *s, size_t n) {
    size_t pos = 0, kn, vn, prev_end = 0, guard = 0;
    const char *k, *v;
    char *buf = malloc(n ? n : 1);
    CHECK(buf != NULL);
    while (kk_cookie_next(s, n, &pos, &k, &kn, &v, &vn)) {
        CHECK(++guard <= n);
        CHECK(kn || vn);
        CHECK((size_t)(k - s) >= prev_end && (size_t)(k - s) + kn <= n);
        CHECK((size_t)(v - s) >= (size_t)(k - s) && (size_t)(v - s) + vn <= n);
        if (kn) CHECK(!is_ws(k[0]) && !is_ws(k[kn - 1]) && !memchr(k, '=', kn));
        if (vn) CHECK(!is_ws(v[0]) && !is_ws(v[vn - 1]));
        CHECK(!memchr(k, ';', kn) && !memchr(v, ';', vn));
        CHECK(kk_cookie_unquote(buf, v, vn) <= vn);
        prev_end = (size_t)(v - s) + vn;
    }
    free(buf);
}

/* The promises of a single result. */
static void check_one(const result *r, const kk_parse_limits *lim) {
    const kk_request *q = &r->req;
    size_t i, j, line_end, max_fields;
    if (r->rc == -2) return;
    if (r->rc == -1) {
        CHECK(q->reason != NULL);
        CHECK(q->status == 400 || q->status == 413 || q->status == 414 || q->status == 417 ||
              q->status == 431 || q->status == 501 || q->status == 505);
        return;
    }
    CHECK(r->rc > 0 && (size_t)r->rc <= r->len && (size_t)r->rc == q->head_len);
    CHECK(q->status == 0 && q->reason == NULL);
    CHECK(r->rc >= 4 && memcmp(r->buf + r->rc - 4, "\r\n\r\n", 4) == 0);
    CHECK(off(q->method, q->method_len, r->buf, q->head_len) >= 0 && q->method_len > 0);
    CHECK(off(q->target, q->target_len, r->buf, q->head_len) >= 0 && q->target_len > 0);
    CHECK(off(q->path, q->path_len, r->buf, q->head_len) != -1 && q->path_len > 0);
    CHECK(off(q->query, q->query_len, r->buf, q->head_len) >= -1);
    CHECK(off(q->host, q->host_len, r->buf, q->head_len) >= -1);
    CHECK(q->minor_version == 0 || q->minor_version == 1);
    CHECK(q->minor_version == 0 || q->host != NULL);
    for (i = 0; i < q->method_len; i++) CHECK(KK_IS(q->method[i], KK_C_TOKEN));
    for (i = 0; i < q->target_len; i++) CHECK(KK_IS(q->target[i], KK_C_TARGET));
    /* the request line and the header section within their limits */
    line_end = (size_t)(q->method - r->buf);
    while (r->buf[line_end] != '\r') line_end++;
    CHECK(line_end - (size_t)(q->method - r->buf) <= lim->max_request_line);
    CHECK(q->head_len - (line_end + 2) <= lim->max_head);
    max_fields = lim->max_headers < CAP ? lim->max_headers : CAP;
    CHECK(q->headers == r->h && q->num_headers <= max_fields);
    for (i = 0; i < q->num_headers; i++) {
        const kk_header *h = &q->headers[i];
        CHECK(off(h->name, h->name_len, r->buf, q->head_len) >= 0 && h->name_len > 0);
        CHECK(off(h->value, h->value_len, r->buf, q->head_len) >= 0);
        for (j = 0; j < h->name_len; j++) CHECK(KK_IS(h->name[j], KK_C_TOKEN));
        for (j = 0; j < h->value_len; j++) CHECK(KK_IS(h->value[j], KK_C_VALUE));
        if (h->value_len) CHECK(!is_ws(h->value[0]) && !is_ws(h->value[h->value_len - 1]));
        check_cookie(h->value, h->value_len);
    }
    switch (q->body_kind) {
    case KK_BODY_NONE: CHECK(q->content_length == 0); break;
    case KK_BODY_LENGTH: CHECK(q->content_length > 0 && q->content_length <= lim->max_body); break;
    case KK_BODY_CHUNKED: CHECK(q->content_length == 0 && q->minor_version == 1); break;
    default: CHECK(0);
    }
    CHECK(q->keep_alive == 0 || q->keep_alive == 1);
    CHECK(q->expect_continue == 0 || (q->expect_continue == 1 && q->minor_version == 1));
}

/* Same outcome, with spans compared by offset. */
static void check_same(const result *a, const result *b) {
    const kk_request *x = &a->req, *y = &b->req;
    size_t i;
    CHECK(a->rc == b->rc);
    if (a->rc == -1) CHECK(a->status == b->status);
    if (a->rc <= 0) return;
    CHECK(off(x->method, x->method_len, a->buf, a->len) == off(y->method, y->method_len, b->buf, b->len));
    CHECK(off(x->target, x->target_len, a->buf, a->len) == off(y->target, y->target_len, b->buf, b->len));
    CHECK(off(x->path, x->path_len, a->buf, a->len) == off(y->path, y->path_len, b->buf, b->len));
    CHECK(off(x->query, x->query_len, a->buf, a->len) == off(y->query, y->query_len, b->buf, b->len));
    CHECK(off(x->host, x->host_len, a->buf, a->len) == off(y->host, y->host_len, b->buf, b->len));
    CHECK(x->method_len == y->method_len && x->target_len == y->target_len &&
          x->path_len == y->path_len && x->query_len == y->query_len && x->host_len == y->host_len);
    CHECK(x->minor_version == y->minor_version && x->head_len == y->head_len &&
          x->body_kind == y->body_kind && x->content_length == y->content_length &&
          x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue &&
          x->num_headers == y->num_headers);
    for (i = 0; i < x->num_headers; i++) {
        CHECK(x->headers[i].name - a->buf == y->headers[i].name - b->buf);
        CHECK(x->headers[i].value - a->buf == y->headers[i].value - b->buf);
        CHECK(x->headers[i].name_len == y->headers[i].name_len);
        CHECK(x->headers[i].value_len == y->headers[i].value_len);
    }
}

static result R_whole, R_other;

/* Limit oracle. When the request line is longer than max_request_line, the
 * answer is 414 unless an error is already decided with the input cut right
 * before the first byte over the limit (then it must be that same error). Same
 * for the header section and 431. */
static void check_limits(const char *in, size_t n, const kk_parse_limits *lim) {
    size_t ls = 0, i, cut = 0;
    int want = 0;
    while (ls + 1 < n && in[ls] == '\r' && in[ls + 1] == '\n') ls += 2;
    for (i = ls; i < n && in[i] != '\r' && in[i] != '\n'; i++) {}
    if (lim->max_request_line < KK_LIMIT_CLAMP && i - ls > lim->max_request_line) {
        want = 414;
        cut = ls + lim->max_request_line;
    } else if (i + 1 < n && in[i] == '\r' && in[i + 1] == '\n' &&
               lim->max_head < KK_LIMIT_CLAMP) {
        size_t hs = i + 2, e = hs;
        /* the section runs to its final CRLF (or the end of the input) */
        while (e < n && !(e + 1 < n && in[e] == '\r' && in[e + 1] == '\n' &&
                          (e == hs || (in[e - 2] == '\r' && in[e - 1] == '\n'))))
            e++;
        e = e < n ? e + 2 : n;
        if (e - hs > lim->max_head) {
            want = 431;
            cut = hs + lim->max_head;
        }
    }
    if (!want || R_whole.rc == -2) return;
    if (R_whole.rc == -1 && R_whole.status == want) return;
    parse(&R_other, in, cut, lim);
    CHECK(R_other.rc == -1 && R_other.status == R_whole.status);
    release(&R_other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kk_parse_limits lim;
    const char *in;
    size_t n, cuts[5], i, nc = 0;
    uint32_t h = 2166136261u;
    char *ext;

    if (size < 1) return 0;
    lim = profile(data[0]);
    in = (const char *)data + 1;
    n = size - 1;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)in[i]) * 16777619u;

    parse(&R_whole, in, n, &lim);
    check_one(&R_whole, &lim);

    check_limits(in, n, &lim);

    /* deterministic */
    parse(&R_other, in, n, &lim);
    check_same(&R_whole, &R_other);
    release(&R_other);

    /* prefixes */
    if (n) {
        cuts[nc++] = n - 1;
        cuts[nc++] = n / 2;
        cuts[nc++] = h % n;
    }
    if (R_whole.rc > 0) {
        cuts[nc++] = (size_t)R_whole.rc - 1;
        cuts[nc++] = (size_t)R_whole.rc;
    }
    for (i = 0; i < nc; i++) {
        if (cuts[i] > n) continue;
        parse(&R_other, in, cuts[i], &lim);
        check_one(&R_other, &lim);
        if (R_other.rc == -2) {
            CHECK(R_whole.rc <= 0 || cuts[i] < (size_t)R_whole.rc);
        } else {
            check_same(&R_whole, &R_other);
        }
        release(&R_other);
    }

    /* one more byte */
    ext = malloc(n + 1);
    CHECK(ext != NULL);
    if (n) memcpy(ext, in, n);
    ext[n] = (char)(h >> 24);
    parse(&R_other, ext, n + 1, &lim);
    free(ext);
    check_one(&R_other, &lim);
    if (R_whole.rc != -2) check_same(&R_whole, &R_other);
    release(&R_other);
    release(&R_whole);
    return 0;
}
