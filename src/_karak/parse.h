/* parse.h: HTTP/1.1 request-head parser and chunked body decoder.
 *
 * Pure C (no CPython header), no allocation, no global state: every function is a
 * pure function of its arguments, so any thread may call it on its own buffer.
 * Strict reading of RFC 9110/9112: no bare LF, no obs-fold, no whitespace
 * before the colon, no control bytes in values, one Host, one Content-Length.
 *
 * Return codes (STYLE.md): >= 0 success, -1 error (req->status/req->reason
 * say which answer to send), -2 incomplete ("need more bytes").
 */
#ifndef KK_PARSE_H
#define KK_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Value of a HEXDIG, or -1 for any other byte. Shared by the chunked decoder,
 * percent-decoding (request.c) and path normalization (router.c). */
static inline int kk_hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Limits, read-only while parsing (immutable after server start). */
typedef struct {
    size_t max_request_line; /* bytes of the request line without CRLF; over it: 414 */
    size_t max_head;         /* bytes of the header section (after the request line); over it: 431 */
    size_t max_headers;      /* number of header fields; over it: 431 */
    uint64_t max_body;       /* body bytes (Content-Length or chunked total); over it: 413 */
} kk_parse_limits;

#define KK_DEFAULT_MAX_REQUEST_LINE 8192
#define KK_DEFAULT_MAX_HEAD 65536
#define KK_DEFAULT_MAX_HEADERS 100
#define KK_DEFAULT_MAX_BODY (1024 * 1024)

/* One header field. Spans into the caller's buffer, valid while it is. */
typedef struct {
    const char *name;  size_t name_len;  /* as sent (case preserved) */
    const char *value; size_t value_len; /* leading/trailing OWS removed */
} kk_header;

enum kk_body_kind {
    KK_BODY_NONE = 0,    /* no body (no Content-Length, no Transfer-Encoding, or Content-Length: 0) */
    KK_BODY_LENGTH = 1,  /* content_length bytes follow the head */
    KK_BODY_CHUNKED = 2  /* chunked coding follows the head; use kk_chunked_decode */
};

/* The parsed request head. Every pointer is a span into the buffer passed to
 * kk_parse_request, valid until that buffer is moved, freed or overwritten
 * (one exception: path of an absolute-form target with an empty path is a
 * static "/"). Rules and statuses: docs/HTTP.md. */
typedef struct {
    const char *method; size_t method_len;
    const char *target; size_t target_len; /* request-target exactly as sent */
    const char *path;   size_t path_len;   /* origin-form path; for absolute-form the
                                              path part ("/" when empty); "*" for OPTIONS * */
    const char *query;  size_t query_len;  /* after '?', without it; NULL/0 when no '?' */
    int minor_version;                     /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
    kk_header *headers; size_t num_headers;/* the caller's array, filled in order */
    size_t head_len;                       /* bytes from buffer start through the final CRLFCRLF */
    int body_kind;                         /* enum kk_body_kind */
    uint64_t content_length;               /* when body_kind == KK_BODY_LENGTH */
    int keep_alive;                        /* 1: connection may persist after this request
                                              (1.1 without "close", 1.0 with "keep-alive") */
    int expect_continue;                   /* "Expect: 100-continue" was sent */
    const char *host; size_t host_len;     /* Host value (NULL when absent on HTTP/1.0);
                                              for absolute-form, the target's authority */
    /* Set when the return value is -1 (0 and NULL otherwise): */
    int status;                            /* 400, 413, 414, 417, 431, 501 or 505 */
    const char *reason;                    /* static text, e.g. "invalid Content-Length" */
} kk_request;

/* Parses the request head at the start of buf[0..len).
 * headers/headers_cap: the caller's array for header fields (headers_cap must be
 * >= lim->max_headers for the 431 limit to be the one that applies).
 * Returns head_len (> 0) when the head is complete and valid; -2 when more bytes
 * are needed and nothing seen so far is invalid or over a limit (a partial head
 * that already breaks a rule or a limit returns -1 at once); -1 on error with
 * req->status and req->reason set. */
int kk_parse_request(const char *buf, size_t len, kk_request *req,
                     kk_header *headers, size_t headers_cap,
                     const kk_parse_limits *lim);

/* Chunked body decoder state. Owned by one connection (worker-local). */
typedef struct {
    uint64_t max_body;    /* limit on the decoded total: over it, 413 */
    uint64_t total;       /* decoded bytes so far */
    uint64_t chunk_left;  /* data bytes left in the current chunk */
    size_t aux;           /* bytes seen of the current size line / extension / trailer line */
    size_t trailer_bytes; /* bytes of trailer section so far (bounded) */
    int state;            /* internal */
    int hex_digits;       /* digits in the current size (bounded: no overflow) */
    int status;           /* on -1: 400 or 413 */
    const char *reason;   /* on -1: static text */
} kk_chunked;

void kk_chunked_init(kk_chunked *d, uint64_t max_body);

/* Decodes buf[0..*len) in place, continuing from the state left by the
 * previous call. On return buf[0..*len) holds the body bytes decoded by this
 * call. Returns -2 when the message is not finished (every input byte was
 * consumed; the state remembers partial size lines); -1 on error (d->status,
 * d->reason); n >= 0 when the last chunk and the trailer section are complete:
 * n bytes that followed the message (the next pipelined request) have been
 * moved to buf[*len .. *len + n). */
long kk_chunked_decode(kk_chunked *d, char *buf, size_t *len);

/* Case-insensitive compare of a span with a lower-case C string literal. */
int kk_span_ieq(const char *s, size_t n, const char *lower);

/* 3 when s[0..n) starts with a UTF-8 byte order mark (EF BB BF), else 0. JSON
 * bodies skip one (RFC 8259 8.1 lets a parser ignore it; json.loads does). */
static inline size_t kk_utf8_bom_len(const char *s, size_t n)
{
    return n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
                   (unsigned char)s[2] == 0xBF
               ? 3
               : 0;
}

/* Iterates the cookie pairs of a Cookie field value s[0..n), from *pos (start
 * at 0), by Starlette's rules (request.cookies): pairs are split at ';'; the
 * name is the text before the first '=' (none: an empty name, the whole piece
 * is the value); name and value are trimmed of SP and HTAB; a piece with both
 * empty is skipped. Spans are raw (see kk_cookie_unquote). Returns 1 with a
 * pair, 0 at the end. */
static inline int kk_cookie_next(const char *s, size_t n, size_t *pos, const char **k, size_t *kn,
                                 const char **v, size_t *vn) {
    size_t i = *pos;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ';') j++;
        *pos = j + 1;
        size_t eq = i;
        while (eq < j && s[eq] != '=') eq++;
        size_t ks = i, ke = eq < j ? eq : i, vs = eq < j ? eq + 1 : i, ve = j;
        while (ks < ke && (s[ks] == ' ' || s[ks] == '\t')) ks++;
        while (ke > ks && (s[ke - 1] == ' ' || s[ke - 1] == '\t')) ke--;
        while (vs < ve && (s[vs] == ' ' || s[vs] == '\t')) vs++;
        while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t')) ve--;
        if (ke > ks || ve > vs) {
            *k = s + ks;
            *kn = ke - ks;
            *v = s + vs;
            *vn = ve - vs;
            return 1;
        }
        i = j + 1;
    }
    *pos = n;
    return 0;
}

/* A cookie value as Python's http.cookies unquotes it (Starlette uses that): a
 * value in double quotes loses them, and inside, \ooo (octal, first digit 0-3)
 * becomes that byte and \c becomes c. Anything else is copied. Writes at most
 * n bytes to dst; returns the length. */
static inline size_t kk_cookie_unquote(char *dst, const char *v, size_t n) {
    if (n < 2 || v[0] != '"' || v[n - 1] != '"') {
        memcpy(dst, v, n);
        return n;
    }
    size_t o = 0, end = n - 1;
    for (size_t i = 1; i < end; i++) {
        if (v[i] != '\\' || i + 1 >= end) {
            dst[o++] = v[i];
            continue;
        }
        if (i + 3 < end && v[i + 1] >= '0' && v[i + 1] <= '3' && v[i + 2] >= '0' &&
            v[i + 2] <= '7' && v[i + 3] >= '0' && v[i + 3] <= '7') {
            dst[o++] = (char)((v[i + 1] - '0') * 64 + (v[i + 2] - '0') * 8 + (v[i + 3] - '0'));
            i += 3;
        } else {
            dst[o++] = v[++i];
        }
    }
    return o;
}

#endif
