/* parse.c: HTTP/1.1 request-head parser and chunked body decoder.
 *
 * Pure C: no CPython header, no allocation, no mutable globals (the only globals are
 * the constant byte-class table below). Every rule enforced here, and the status
 * it maps to, is listed in docs/HTTP.md; tests/vectors/http/ has a vector for each.
 *
 * How the head parser stays consistent when input arrives in pieces: it reads the
 * buffer strictly left to right and makes every decision from bytes it has already
 * read. It returns -2 only at the point where it needs a byte at index >= len. So a
 * prefix of a request either returns -2, or returns exactly the result the whole
 * request returns. Limits are positional too: the request line is over
 * max_request_line as soon as the byte at line index max_request_line exists and is
 * not the CR of the line's CRLF; the header section is over max_head as soon as its
 * byte at index max_head exists. Semantic checks on a header field (duplicate Host,
 * bad Content-Length, ...) run when that field's LF has been read; checks that need
 * the whole head (missing Host, unknown transfer coding, Expect) run after the
 * final CRLF.
 */
#include "parse.h"

#include <limits.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Byte classes
 * ------------------------------------------------------------------------- */

#define KK_C_TOKEN 1  /* tchar (RFC 9110 5.6.2) */
#define KK_C_TARGET 2 /* request-target byte we accept: 0x21-0x7E except '#' */
#define KK_C_VALUE 4  /* field-vchar, SP, HTAB: 0x09, 0x20-0x7E, 0x80-0xFF */
#define KK_C_HEX 8    /* HEXDIG */
#define KK_C_HOST 16  /* bytes of uri-host [":" port]: unreserved, pct, sub-delims, ":[]" */

static const unsigned char kk_cls[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 0x00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
     4, 23,  6,  5, 23, 23, 23, 23, 22, 22, 23, 23, 22, 23, 23,  6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 22, 22,  6, 22,  6,  6,  /* 0x30 */
     6, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,  /* 0x40 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 22,  6, 22,  7, 23,  /* 0x50 */
     7, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,  /* 0x60 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  6,  7,  6, 23,  0,  /* 0x70 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x80 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x90 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xa0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xb0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xc0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xd0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xe0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xf0 */
};

#define KK_IS(c, k) (kk_cls[(unsigned char)(c)] & (k))
#define KK_IS_WS(c) ((c) == ' ' || (c) == '\t')

/* Empty lines (CRLF) skipped before the request line; one more is a 400. */
#define KK_MAX_LEADING_EMPTY 8
/* Limits are clamped so that head_len always fits in the int return value. */
#define KK_LIMIT_CLAMP ((size_t)INT_MAX / 4)
/* Chunked coding: bytes of one chunk-size line (digits, extensions, CR). */
#define KK_CHUNK_MAX_LINE 4096
/* Chunked coding: bytes of the trailer section, final CRLF included. */
#define KK_CHUNK_MAX_TRAILER 16384

int kk_span_ieq(const char *s, size_t n, const char *lower) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (lower[i] == '\0') return 0;
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower[i]) return 0;
    }
    return lower[n] == '\0';
}

/* ---------------------------------------------------------------------------
 * Request head
 * ------------------------------------------------------------------------- */

/* What the header fields seen so far have told us. Stack-local to one call. */
typedef struct {
    const unsigned char *b; /* the buffer being parsed */
    size_t len;
    size_t ls;              /* index of the request line's first byte */
    size_t hs;              /* index of the header section's first byte */
    size_t max_rl, max_head;
    uint64_t max_body;
    int absolute_form;      /* host comes from the target, not the Host field */
    int seen_host, seen_cl, seen_te;
    int te_chunked;         /* "chunked" seen in Transfer-Encoding */
    int te_unknown;         /* a coding other than chunked seen: 501 at the end */
    int conn_close, conn_keep_alive;
    int expect_100, expect_other;
} kk_pstate;

/* Records an error on req. Returns -1. */
static int kk_fail(kk_request *req, int status, const char *reason) {
    req->status = status;
    req->reason = reason;
    return -1;
}

/* Before reading request-line byte i (the scan may already have read bytes up to
 * i - 1, all of them non-CR). Returns 0 when byte i may be read, -2 when it is
 * not there yet, -1 (414) when the line is over the limit. */
static int kk_rl_check(const kk_pstate *s, size_t i, kk_request *req) {
    if (i - s->ls > s->max_rl) return kk_fail(req, 414, "request line too long");
    if (i >= s->len) return -2;
    if (i - s->ls == s->max_rl && s->b[i] != '\r')
        return kk_fail(req, 414, "request line too long");
    return 0;
}

/* Before reading header-section byte i. Returns 0 when it may be read, -2 when it
 * is not there yet, -1 (431) when the section is over max_head bytes. */
static int kk_hs_check(const kk_pstate *s, size_t i, kk_request *req) {
    if (i - s->hs >= s->max_head) {
        if (i >= s->len && i - s->hs == s->max_head) return -2;
        return kk_fail(req, 431, "header section too large");
    }
    if (i >= s->len) return -2;
    return 0;
}

#define KK_CHECK(call)          \
    do {                        \
        int rc_ = (call);       \
        if (rc_ != 0) return rc_; \
    } while (0)

/* True when s[0..n) is a valid Host value (or absolute-form authority):
 * empty, or uri-host [":" *DIGIT] where uri-host is "[" ... "]" or a reg-name /
 * IPv4 address made of unreserved, pct-encoded and sub-delims bytes. Userinfo
 * ("@") is rejected (RFC 9110 4.2.4). */
static int kk_host_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    if (n == 0) return 1;
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!KK_IS(s[i], KK_C_HOST) || s[i] == '[') return 0;
        if (i == n || i == 1) return 0;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++)
            if (!KK_IS(s[i], KK_C_HOST) || s[i] == '[' || s[i] == ']') return 0;
        if (i == 0) return 0;
    }
    if (i == n) return 1;
    if (s[i] != ':') return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Splits path and query of t[0..n) (which starts at the path) into req. */
static void kk_split_query(kk_request *req, const char *t, size_t n) {
    const char *q = memchr(t, '?', n);
    if (q) {
        req->path = t;
        req->path_len = (size_t)(q - t);
        req->query = q + 1;
        req->query_len = n - req->path_len - 1;
    } else {
        req->path = t;
        req->path_len = n;
    }
}

/* Classifies the request-target t[0..n) (n >= 1, bytes already checked) and
 * fills path/query (and host for absolute-form). 0, or -1 with 400/501. */
static int kk_parse_target(kk_pstate *s, kk_request *req, const char *t, size_t n) {
    static const char slash[] = "/";
    size_t skip;
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        return kk_fail(req, 501, "CONNECT is not supported");
    if (t[0] == '/') {
        kk_split_query(req, t, n);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (req->method_len != 7 || memcmp(req->method, "OPTIONS", 7) != 0)
            return kk_fail(req, 400, "asterisk-form target is only allowed with OPTIONS");
        req->path = t;
        req->path_len = 1;
        return 0;
    }
    if (n >= 7 && kk_span_ieq(t, 7, "http://"))
        skip = 7;
    else if (n >= 8 && kk_span_ieq(t, 8, "https://"))
        skip = 8;
    else
        return kk_fail(req, 400, "invalid request-target");
    {
        const char *a = t + skip, *e = t + n, *p = a;
        while (p < e && *p != '/' && *p != '?') p++;
        if (p == a || !kk_host_valid((const unsigned char *)a, (size_t)(p - a)))
            return kk_fail(req, 400, "invalid authority in request-target");
        s->absolute_form = 1;
        req->host = a;
        req->host_len = (size_t)(p - a);
        if (p < e && *p == '/') {
            kk_split_query(req, p, (size_t)(e - p));
        } else {
            req->path = slash;
            req->path_len = 1;
            if (p < e) { /* *p == '?' */
                req->query = p + 1;
                req->query_len = (size_t)(e - p - 1);
            }
        }
    }
    return 0;
}

/* Iterates a comma-separated list: *p..e is what is left (*p == NULL once the
 * last element has been returned). Sets the next element (OWS trimmed, maybe
 * empty) in *es and *el and returns 1; returns 0 at the end. */
static int kk_next_elem(const char **p, const char *e, const char **es, size_t *el) {
    const char *a = *p, *z;
    if (a == NULL) return 0;
    z = a;
    while (z < e && *z != ',') z++;
    *p = z < e ? z + 1 : NULL;
    while (a < z && KK_IS_WS(*a)) a++;
    while (z > a && KK_IS_WS(z[-1])) z--;
    *es = a;
    *el = (size_t)(z - a);
    return 1;
}

/* Content-Length: 1*DIGIT, one field only, not with Transfer-Encoding. */
static int kk_on_content_length(kk_pstate *s, kk_request *req, const char *v, size_t n) {
    uint64_t x = 0;
    size_t i;
    if (s->seen_cl) return kk_fail(req, 400, "duplicate Content-Length");
    s->seen_cl = 1;
    if (s->seen_te) return kk_fail(req, 400, "Content-Length with Transfer-Encoding");
    if (n == 0) return kk_fail(req, 400, "invalid Content-Length");
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';
        if (d > 9) return kk_fail(req, 400, "invalid Content-Length");
        if (x > (UINT64_MAX - d) / 10) return kk_fail(req, 400, "Content-Length overflow");
        x = x * 10 + d;
    }
    if (x > s->max_body) return kk_fail(req, 413, "body too large");
    req->content_length = x;
    return 0;
}

/* Transfer-Encoding: a list of codings; "chunked" must be last and only once;
 * other codings are answered 501 once the head is complete. */
static int kk_on_transfer_encoding(kk_pstate *s, kk_request *req, const char *v, size_t n) {
    const char *p = v, *e = v + n, *es;
    size_t el;
    if (req->minor_version == 0)
        return kk_fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (s->seen_cl) return kk_fail(req, 400, "Content-Length with Transfer-Encoding");
    s->seen_te = 1;
    if (n == 0) return kk_fail(req, 400, "empty Transfer-Encoding");
    while (kk_next_elem(&p, e, &es, &el)) {
        size_t t = 0;
        int params = 0;
        if (el == 0) return kk_fail(req, 400, "empty element in Transfer-Encoding");
        while (t < el && KK_IS(es[t], KK_C_TOKEN)) t++;
        if (t == 0) return kk_fail(req, 400, "invalid Transfer-Encoding");
        if (t < el) {
            size_t u = t;
            while (u < el && KK_IS_WS(es[u])) u++;
            if (u == el || es[u] != ';') return kk_fail(req, 400, "invalid Transfer-Encoding");
            params = 1;
        }
        if (s->te_chunked)
            return kk_fail(req, 400, kk_span_ieq(es, t, "chunked")
                                         ? "chunked appears twice in Transfer-Encoding"
                                         : "chunked is not the final transfer coding");
        if (kk_span_ieq(es, t, "chunked")) {
            if (params) return kk_fail(req, 400, "chunked takes no parameters");
            s->te_chunked = 1;
        } else {
            s->te_unknown = 1;
        }
    }
    return 0;
}

/* Runs the checks tied to one header field, once its line is complete. */
static int kk_on_field(kk_pstate *s, kk_request *req, const kk_header *h) {
    const char *n = h->name, *v = h->value, *p, *es;
    size_t nl = h->name_len, vl = h->value_len, el;
    switch (nl) {
    case 4:
        if (!kk_span_ieq(n, nl, "host")) return 0;
        if (s->seen_host) return kk_fail(req, 400, "duplicate Host");
        s->seen_host = 1;
        if (!kk_host_valid((const unsigned char *)v, vl))
            return kk_fail(req, 400, "invalid Host");
        if (!s->absolute_form) {
            req->host = v;
            req->host_len = vl;
        }
        return 0;
    case 6:
        if (!kk_span_ieq(n, nl, "expect")) return 0;
        p = v;
        while (kk_next_elem(&p, v + vl, &es, &el)) {
            if (el == 0) continue;
            if (kk_span_ieq(es, el, "100-continue"))
                s->expect_100 = 1;
            else
                s->expect_other = 1;
        }
        return 0;
    case 10:
        if (!kk_span_ieq(n, nl, "connection")) return 0;
        p = v;
        while (kk_next_elem(&p, v + vl, &es, &el)) {
            if (kk_span_ieq(es, el, "close"))
                s->conn_close = 1;
            else if (kk_span_ieq(es, el, "keep-alive"))
                s->conn_keep_alive = 1;
        }
        return 0;
    case 14:
        if (!kk_span_ieq(n, nl, "content-length")) return 0;
        return kk_on_content_length(s, req, v, vl);
    case 17:
        if (!kk_span_ieq(n, nl, "transfer-encoding")) return 0;
        return kk_on_transfer_encoding(s, req, v, vl);
    default:
        return 0;
    }
}

/* Parses "METHOD SP request-target SP HTTP-version CRLF" starting at s->ls.
 * On success stores the index just past the CRLF in *end and returns 0. */
static int kk_parse_request_line(kk_pstate *s, kk_request *req, size_t *end) {
    const unsigned char *b = s->b;
    const char *cb = (const char *)b;
    size_t i = s->ls, ts, vs, len = s->len;

    /* method = token */
    while (i < len && KK_IS(b[i], KK_C_TOKEN)) i++;
    KK_CHECK(kk_rl_check(s, i, req));
    if (b[i] != ' ' || i == s->ls) {
        if (b[i] == '\n') return kk_fail(req, 400, "bare LF");
        return kk_fail(req, 400, "invalid method");
    }
    req->method = cb + s->ls;
    req->method_len = i - s->ls;

    /* request-target */
    ts = ++i;
    while (i < len && KK_IS(b[i], KK_C_TARGET)) i++;
    KK_CHECK(kk_rl_check(s, i, req));
    if (b[i] != ' ' || i == ts) {
        if (i == ts && b[i] == ' ') return kk_fail(req, 400, "empty request-target");
        if (b[i] == '\r' || b[i] == '\n') return kk_fail(req, 400, "missing HTTP-version");
        if (b[i] == '#') return kk_fail(req, 400, "fragment in request-target");
        return kk_fail(req, 400, "invalid character in request-target");
    }
    req->target = cb + ts;
    req->target_len = i - ts;
    KK_CHECK(kk_parse_target(s, req, cb + ts, i - ts));

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF */
    vs = ++i;
    while (i < len && b[i] > 0x20 && b[i] < 0x7f) i++;
    KK_CHECK(kk_rl_check(s, i, req));
    if (b[i] != '\r') {
        if (b[i] == '\n') return kk_fail(req, 400, "bare LF");
        if (b[i] == ' ') return kk_fail(req, 400, "extra space in request line");
        return kk_fail(req, 400, "invalid character in HTTP-version");
    }
    if (i + 1 >= len) return -2;
    if (b[i + 1] != '\n') return kk_fail(req, 400, "bare CR");
    if (i - vs != 8 || memcmp(b + vs, "HTTP/", 5) != 0 || b[vs + 5] < '0' ||
        b[vs + 5] > '9' || b[vs + 6] != '.' || b[vs + 7] < '0' || b[vs + 7] > '9')
        return kk_fail(req, 400, "malformed HTTP-version");
    if (b[vs + 5] != '1' || b[vs + 7] > '1')
        return kk_fail(req, 505, "HTTP version not supported");
    req->minor_version = b[vs + 7] - '0';
    *end = i + 2;
    return 0;
}

int kk_parse_request(const char *buf, size_t len, kk_request *req,
                     kk_header *headers, size_t headers_cap,
                     const kk_parse_limits *lim) {
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0, empty = 0, nf = 0, max_fields;
    kk_pstate s;

    memset(req, 0, sizeof *req);
    req->headers = headers;
    memset(&s, 0, sizeof s);
    s.b = b;
    s.len = len;
    s.max_rl = lim->max_request_line < KK_LIMIT_CLAMP ? lim->max_request_line : KK_LIMIT_CLAMP;
    s.max_head = lim->max_head < KK_LIMIT_CLAMP ? lim->max_head : KK_LIMIT_CLAMP;
    s.max_body = lim->max_body;
    max_fields = lim->max_headers < headers_cap ? lim->max_headers : headers_cap;

    /* RFC 9112 2.2: ignore empty lines before the request line (bounded). */
    for (;;) {
        if (i >= len) return -2;
        if (b[i] == '\n') return kk_fail(req, 400, "bare LF");
        if (b[i] != '\r') break;
        if (i + 1 >= len) return -2;
        if (b[i + 1] != '\n') return kk_fail(req, 400, "bare CR");
        if (++empty > KK_MAX_LEADING_EMPTY)
            return kk_fail(req, 400, "too many empty lines before the request line");
        i += 2;
    }
    s.ls = i;
    KK_CHECK(kk_parse_request_line(&s, req, &i));
    s.hs = i;

    /* header section: *( field-line CRLF ) CRLF */
    for (;;) {
        size_t ns, ne, vs, ve;
        unsigned char c;
        KK_CHECK(kk_hs_check(&s, i, req));
        c = b[i];
        if (c == '\r') {
            KK_CHECK(kk_hs_check(&s, i + 1, req));
            if (b[i + 1] != '\n') return kk_fail(req, 400, "bare CR");
            i += 2;
            break;
        }
        if (!KK_IS(c, KK_C_TOKEN)) {
            if (c == '\n') return kk_fail(req, 400, "bare LF");
            if (KK_IS_WS(c)) return kk_fail(req, 400, "obsolete line folding or leading whitespace");
            if (c == ':') return kk_fail(req, 400, "empty header name");
            return kk_fail(req, 400, "invalid character in header name");
        }
        if (nf >= max_fields) return kk_fail(req, 431, "too many header fields");
        ns = i;
        while (i < len && KK_IS(b[i], KK_C_TOKEN)) i++;
        KK_CHECK(kk_hs_check(&s, i, req));
        if (b[i] != ':') {
            if (KK_IS_WS(b[i])) return kk_fail(req, 400, "whitespace in header name or before colon");
            if (b[i] == '\r' || b[i] == '\n') return kk_fail(req, 400, "header line without colon");
            return kk_fail(req, 400, "invalid character in header name");
        }
        ne = i++;
        while (i < len && KK_IS_WS(b[i])) i++;
        vs = i;
        while (i < len && KK_IS(b[i], KK_C_VALUE)) i++;
        KK_CHECK(kk_hs_check(&s, i, req));
        if (b[i] != '\r') {
            if (b[i] == '\n') return kk_fail(req, 400, "bare LF");
            return kk_fail(req, 400, "invalid character in header value");
        }
        KK_CHECK(kk_hs_check(&s, i + 1, req));
        if (b[i + 1] != '\n') return kk_fail(req, 400, "bare CR");
        ve = i;
        while (ve > vs && KK_IS_WS(b[ve - 1])) ve--;
        i += 2;
        headers[nf].name = buf + ns;
        headers[nf].name_len = ne - ns;
        headers[nf].value = buf + vs;
        headers[nf].value_len = ve - vs;
        req->num_headers = ++nf;
        KK_CHECK(kk_on_field(&s, req, &headers[nf - 1]));
    }

    /* checks that need the whole head */
    if (req->minor_version == 1 && !s.seen_host) return kk_fail(req, 400, "missing Host");
    if (s.te_unknown) return kk_fail(req, 501, "unsupported transfer coding");
    if (s.expect_other) return kk_fail(req, 417, "unsupported expectation");

    req->head_len = i;
    if (s.seen_te)
        req->body_kind = KK_BODY_CHUNKED;
    else if (req->content_length > 0)
        req->body_kind = KK_BODY_LENGTH;
    else
        req->body_kind = KK_BODY_NONE;
    if (req->minor_version == 1)
        req->keep_alive = !s.conn_close;
    else
        req->keep_alive = s.conn_keep_alive && !s.conn_close;
    /* RFC 9110 10.1.1: a 100-continue in an HTTP/1.0 request is ignored. */
    req->expect_continue = s.expect_100 && req->minor_version == 1;
    return (int)i;
}

/* ---------------------------------------------------------------------------
 * Chunked decoder
 * ------------------------------------------------------------------------- */

enum {
    KK_CS_SIZE = 0,     /* chunk-size digits */
    KK_CS_SIZE_BWS,     /* BWS after the size or an extension: only ';' may follow */
    KK_CS_EXT_PRE_NAME, /* after ';': BWS, then the extension name */
    KK_CS_EXT_NAME,     /* in the extension name */
    KK_CS_EXT_POST_NAME,/* BWS after the name: '=' or ';' may follow */
    KK_CS_EXT_PRE_VAL,  /* after '=': BWS, then token or quoted-string */
    KK_CS_EXT_TOKEN,    /* in a token value */
    KK_CS_EXT_QS,       /* in a quoted-string value */
    KK_CS_EXT_QS_ESC,   /* after a backslash in a quoted-string */
    KK_CS_EXT_QS_END,   /* after the closing quote */
    KK_CS_SIZE_LF,      /* CR of the size line seen */
    KK_CS_DATA,         /* chunk_left data bytes to copy */
    KK_CS_DATA_CR,      /* CRLF after the data */
    KK_CS_DATA_LF,
    KK_CS_TR_START,     /* start of a trailer line, or the final CRLF */
    KK_CS_TR_NAME,
    KK_CS_TR_VALUE,
    KK_CS_TR_LF,
    KK_CS_FINAL_LF,
    KK_CS_DONE,
    KK_CS_ERROR
};

void kk_chunked_init(kk_chunked *d, uint64_t max_body) {
    memset(d, 0, sizeof *d);
    d->max_body = max_body;
    d->state = KK_CS_SIZE;
}

/* Applies one byte of an extension state (KK_CS_SIZE_BWS .. KK_CS_EXT_QS_END).
 * Returns the next state, or -1 when the byte is not allowed there. Grammar
 * (RFC 9112 7.1.1): chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
 * value = token / quoted-string. */
static int kk_ext_step(int st, unsigned char c) {
    int ws = KK_IS_WS(c), tok = KK_IS(c, KK_C_TOKEN) != 0;
    switch (st) {
    case KK_CS_SIZE_BWS:
        return ws ? st : c == ';' ? KK_CS_EXT_PRE_NAME : -1;
    case KK_CS_EXT_PRE_NAME:
        return ws ? st : tok ? KK_CS_EXT_NAME : -1;
    case KK_CS_EXT_NAME:
        if (tok) return st;
        if (c == '=') return KK_CS_EXT_PRE_VAL;
        if (c == ';') return KK_CS_EXT_PRE_NAME;
        if (ws) return KK_CS_EXT_POST_NAME;
        return c == '\r' ? KK_CS_SIZE_LF : -1;
    case KK_CS_EXT_POST_NAME:
        if (ws) return st;
        return c == '=' ? KK_CS_EXT_PRE_VAL : c == ';' ? KK_CS_EXT_PRE_NAME : -1;
    case KK_CS_EXT_PRE_VAL:
        if (ws) return st;
        return c == '"' ? KK_CS_EXT_QS : tok ? KK_CS_EXT_TOKEN : -1;
    case KK_CS_EXT_TOKEN:
    case KK_CS_EXT_QS_END:
        if (tok && st == KK_CS_EXT_TOKEN) return st;
        if (c == ';') return KK_CS_EXT_PRE_NAME;
        if (ws) return KK_CS_SIZE_BWS;
        return c == '\r' ? KK_CS_SIZE_LF : -1;
    case KK_CS_EXT_QS:
        if (c == '"') return KK_CS_EXT_QS_END;
        if (c == '\\') return KK_CS_EXT_QS_ESC;
        return KK_IS(c, KK_C_VALUE) ? st : -1;
    case KK_CS_EXT_QS_ESC:
        return KK_IS(c, KK_C_VALUE) ? KK_CS_EXT_QS : -1;
    default:
        return -1;
    }
}

#define KK_CHUNK_FAIL(st, why) \
    do {                       \
        d->status = (st);      \
        d->reason = (why);     \
        goto fail;             \
    } while (0)

/* Contract in parse.h. One byte at a time through a state machine (so a size
 * line, extension or trailer may be cut anywhere), except chunk data, which is
 * moved in runs. The write index never passes the read index, so decoding in
 * place is safe. Errors are sticky; after the end, every byte is "rest". */
long kk_chunked_decode(kk_chunked *d, char *buf, size_t *len) {
    unsigned char *b = (unsigned char *)buf;
    size_t n = *len, r = 0, w = 0, rest;

    if (d->state == KK_CS_ERROR) {
        *len = 0;
        return -1;
    }
    if (d->state == KK_CS_DONE) { /* everything is bytes after the message */
        *len = 0;
        return (long)n;
    }
    while (r < n) {
        unsigned char c;
        int x;
        if (d->state == KK_CS_DATA) {
            size_t take = n - r;
            if ((uint64_t)take > d->chunk_left) take = (size_t)d->chunk_left;
            if (w != r) memmove(b + w, b + r, take);
            w += take;
            r += take;
            d->chunk_left -= take;
            d->total += take;
            if (d->chunk_left == 0) d->state = KK_CS_DATA_CR;
            continue;
        }
        c = b[r++];
        if (d->state < KK_CS_SIZE_LF) {
            if (++d->aux > KK_CHUNK_MAX_LINE) KK_CHUNK_FAIL(400, "chunk size line too long");
        } else if (d->state >= KK_CS_TR_START) {
            if (++d->trailer_bytes > KK_CHUNK_MAX_TRAILER)
                KK_CHUNK_FAIL(400, "trailer section too large");
        }
        switch (d->state) {
        case KK_CS_SIZE:
            x = kk_hexval(c);
            if (x >= 0) {
                if (d->hex_digits == 16) KK_CHUNK_FAIL(400, "chunk size has too many digits");
                d->hex_digits++;
                d->chunk_left = (d->chunk_left << 4) | (uint64_t)x;
                if (d->chunk_left > d->max_body - d->total) KK_CHUNK_FAIL(413, "body too large");
            } else if (d->hex_digits == 0) {
                KK_CHUNK_FAIL(400, "invalid chunk size");
            } else if (c == '\r') {
                d->state = KK_CS_SIZE_LF;
            } else if (c == ';') {
                d->state = KK_CS_EXT_PRE_NAME;
            } else if (KK_IS_WS(c)) {
                d->state = KK_CS_SIZE_BWS;
            } else {
                KK_CHUNK_FAIL(400, "invalid chunk size");
            }
            break;
        case KK_CS_SIZE_LF:
            if (c != '\n') KK_CHUNK_FAIL(400, "bare CR in chunk size line");
            d->hex_digits = 0;
            d->aux = 0;
            d->state = d->chunk_left ? KK_CS_DATA : KK_CS_TR_START;
            break;
        case KK_CS_DATA_CR:
            if (c != '\r') KK_CHUNK_FAIL(400, "chunk data not followed by CRLF");
            d->state = KK_CS_DATA_LF;
            break;
        case KK_CS_DATA_LF:
            if (c != '\n') KK_CHUNK_FAIL(400, "chunk data not followed by CRLF");
            d->state = KK_CS_SIZE;
            break;
        case KK_CS_TR_START:
            if (c == '\r')
                d->state = KK_CS_FINAL_LF;
            else if (KK_IS(c, KK_C_TOKEN))
                d->state = KK_CS_TR_NAME;
            else
                KK_CHUNK_FAIL(400, "invalid trailer field");
            break;
        case KK_CS_TR_NAME:
            if (c == ':')
                d->state = KK_CS_TR_VALUE;
            else if (!KK_IS(c, KK_C_TOKEN))
                KK_CHUNK_FAIL(400, "invalid trailer field");
            break;
        case KK_CS_TR_VALUE:
            if (c == '\r')
                d->state = KK_CS_TR_LF;
            else if (!KK_IS(c, KK_C_VALUE))
                KK_CHUNK_FAIL(400, "invalid trailer field");
            break;
        case KK_CS_TR_LF:
            if (c != '\n') KK_CHUNK_FAIL(400, "bare CR in trailer section");
            d->state = KK_CS_TR_START;
            break;
        case KK_CS_FINAL_LF:
            if (c != '\n') KK_CHUNK_FAIL(400, "bare CR in trailer section");
            goto done;
        default: /* chunk extensions */
            x = kk_ext_step(d->state, c);
            if (x < 0) KK_CHUNK_FAIL(400, "invalid chunk extension");
            d->state = x;
            break;
        }
    }
    *len = w;
    return -2;

done:
    d->state = KK_CS_DONE;
    rest = n - r;
    if (rest && w != r) memmove(b + w, b + r, rest);
    *len = w;
    return (long)rest;

fail:
    d->state = KK_CS_ERROR;
    *len = w;
    return -1;
}
