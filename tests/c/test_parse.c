/* test_parse.c: runs the HTTP test vectors (tests/vectors/http/, files *.txt) against
 * kk_parse_request and kk_chunked_decode, plus a few unit tests of things the
 * vectors cannot express. Built with ASan+UBSan by `make -f tests/c/parse.mk
 * ctest-parse`.
 *
 * Usage: test_parse [-v] DIR|FILE...     run the vectors in each .txt file
 *        test_parse --dump-corpus OUT DIR  write fuzz seeds from the vectors
 *
 * Every input is copied so that its last byte sits right before a PROT_NONE
 * page: a parser that reads one byte too far crashes at once.
 *
 * For each vector:
 *   (a) the raw bytes are parsed whole, then the body (Content-Length bytes, or
 *       the chunked coding, decoded) is taken, and all is compared with the
 *       expectation;
 *   (b) every prefix raw[0..k) is parsed: the result must be -2 ("need more"),
 *       or the very result of the whole parse (same status on error; same head,
 *       field by field, on success);
 *   (c) for a chunked body, the decoder is fed the body split in two at every
 *       offset, and one byte at a time: decoded bytes, result, status and the
 *       bytes after the message must all be those of the whole decode.
 *
 * Vector file format (also in tests/vectors/http/README.md). Line based, UTF-8,
 * LF line ends. Blank lines and lines starting with '#' are ignored.
 *
 *   === title                  starts a vector
 *   why: text                  required; why the case matters (may repeat)
 *   limits: k=v ...            optional; max_request_line, max_head,
 *                              max_headers, max_body (others keep the defaults
 *                              of parse.h: 8192, 65536, 100, 1048576)
 *   raw: escaped bytes         required, repeatable; concatenated, no newline
 *                              added. Escapes: \r \n \t \\ \xHH. A raw line may
 *                              not end in a space or tab (write \x20, \t).
 *   raw-repeat: N escaped      appends the escaped bytes N times
 *   expect: ok | status NNN | incomplete
 *   -- only with expect: ok (every value is escaped like raw) --
 *   method: / target: / path:  exact bytes
 *   query: bytes | (none)      (none) = no '?'; "query:" alone = empty query
 *   version: 1.0 | 1.1
 *   host: bytes | (none)
 *   header: Name: value        repeatable; when present the header list must
 *                              match exactly, in order (value OWS-trimmed)
 *   header-count: N
 *   body: none | length N | chunked      required with expect: ok
 *   data: bytes                the body (decoded when chunked); required when
 *                              body is not none
 *   rest: bytes                bytes after the message (pipelining); default
 *                              empty
 *   keep_alive: 0|1   expect_continue: 0|1
 *   -- only with expect: status NNN, for an error in the head --
 *   decided_at: N              the error is returned for every prefix of N or
 *                              more bytes and -2 for every shorter prefix: it
 *                              pins down "decided as soon as the bytes exist"
 *
 * "status NNN" is the status of the first error met: in the head, else in the
 * chunked body. "incomplete" means the head, or the body, needs more bytes.
 *
 * Last line of output: "N passed, M failed"; exit status 1 when M > 0.
 */
#define _GNU_SOURCE
#include "../../src/_karak/parse.c"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HDRS 1024
#define ARENA_SIZE (1u << 20)

/* ------------------------------------------------------------------------
 * Guarded buffers: data placed to end right before an unreadable page.
 * ---------------------------------------------------------------------- */

typedef struct {
    unsigned char *base; /* ARENA_SIZE usable bytes, then a PROT_NONE page */
} arena;

static void arena_init(arena *a) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, ARENA_SIZE + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect((char *)p + ARENA_SIZE, page, PROT_NONE) != 0) {
        perror("mmap/mprotect");
        exit(2);
    }
    a->base = p;
}

/* Copies src[0..n) so that it ends at the guard page; returns the copy. */
static unsigned char *arena_place(arena *a, const void *src, size_t n) {
    unsigned char *p;
    if (n > ARENA_SIZE) {
        fprintf(stderr, "input of %zu bytes is too large for the arena\n", n);
        exit(2);
    }
    p = a->base + ARENA_SIZE - n;
    if (n) memmove(p, src, n);
    return p;
}

static arena A_head, A_body;

/* ------------------------------------------------------------------------
 * Small byte strings
 * ---------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bstr;

static void bs_add(bstr *b, const void *src, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void bs_free(bstr *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Appends the unescaped form of s[0..n) to out. 0, or -1 on a bad escape. */
static int unescape(const char *s, size_t n, bstr *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (i + 1 >= n) return -1;
            switch (s[++i]) {
            case 'r': c = '\r'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '\\': c = '\\'; break;
            case 'x':
                if (i + 2 >= n || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0) return -1;
                c = (unsigned char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
                i += 2;
                break;
            default:
                return -1;
            }
        }
        bs_add(out, &c, 1);
    }
    if (!out->p) bs_add(out, "", 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * Vectors
 * ---------------------------------------------------------------------- */

enum { EXP_NONE, EXP_OK, EXP_STATUS, EXP_INCOMPLETE };

typedef struct {
    int set, none; /* none: "(none)" = NULL span */
    bstr v;
} field;

typedef struct {
    const char *file;
    int line;
    char title[256];
    int has_why;
    kk_parse_limits lim;
    bstr raw;
    int nraw;
    int expect, status;
    field method, target, path, query, host, data, rest;
    int version; /* -1 unset, else minor */
    int nhdr;    /* header: lines given */
    bstr hname[64], hval[64];
    long header_count; /* -1 unset */
    int body_kind;     /* -1 unset */
    uint64_t body_len;
    int keep_alive, expect_continue; /* -1 unset */
    long decided_at;                 /* -1 unset */
} vector;

static int n_pass, n_fail, verbose;
static int dumping; /* --dump-corpus: vectors are written out, not run */
static void dump_vector(vector *v);

static void vec_reset(vector *v, const char *file, int line, const char *title) {
    int i;
    bs_free(&v->raw);
    bs_free(&v->method.v); bs_free(&v->target.v); bs_free(&v->path.v);
    bs_free(&v->query.v); bs_free(&v->host.v); bs_free(&v->data.v); bs_free(&v->rest.v);
    for (i = 0; i < 64; i++) {
        bs_free(&v->hname[i]);
        bs_free(&v->hval[i]);
    }
    memset(v, 0, sizeof *v);
    v->file = file;
    v->line = line;
    snprintf(v->title, sizeof v->title, "%s", title);
    v->lim.max_request_line = KK_DEFAULT_MAX_REQUEST_LINE;
    v->lim.max_head = KK_DEFAULT_MAX_HEAD;
    v->lim.max_headers = KK_DEFAULT_MAX_HEADERS;
    v->lim.max_body = KK_DEFAULT_MAX_BODY;
    v->version = v->body_kind = v->keep_alive = v->expect_continue = -1;
    v->header_count = v->decided_at = -1;
}

static int vec_failed_once;

static void vfail(const vector *v, const char *fmt, ...) {
    va_list ap;
    if (!vec_failed_once)
        fprintf(stderr, "FAIL %s:%d: %s\n", v->file, v->line, v->title);
    vec_failed_once = 1;
    fprintf(stderr, "    ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* Prints bytes with escapes, for messages. */
static void show(FILE *f, const void *p, size_t n) {
    const unsigned char *s = p;
    size_t i;
    if (!p) {
        fprintf(f, "(none)");
        return;
    }
    fputc('"', f);
    for (i = 0; i < n && i < 200; i++) {
        if (s[i] == '\r') fputs("\\r", f);
        else if (s[i] == '\n') fputs("\\n", f);
        else if (s[i] == '\\') fputs("\\\\", f);
        else if (s[i] < 0x20 || s[i] >= 0x7f) fprintf(f, "\\x%02x", s[i]);
        else fputc(s[i], f);
    }
    if (n > 200) fputs("...", f);
    fputc('"', f);
}

/* A head-parse result with spans stored as bytes, comparable across buffers. */
typedef struct {
    int rc, status;
    const char *reason;
    size_t head_len;
    bstr method, target, path, query, host; /* p == NULL when the span is NULL */
    int query_null, host_null;
    int minor, body_kind, keep_alive, expect_continue;
    uint64_t content_length;
    size_t nh;
    bstr hn[MAX_HDRS], hv[MAX_HDRS];
} summary;

static void sum_free(summary *s) {
    size_t i;
    bs_free(&s->method); bs_free(&s->target); bs_free(&s->path);
    bs_free(&s->query); bs_free(&s->host);
    for (i = 0; i < MAX_HDRS; i++) {
        if (s->hn[i].p) bs_free(&s->hn[i]);
        if (s->hv[i].p) bs_free(&s->hv[i]);
    }
    memset(s, 0, sizeof *s);
}

static int span_ok(const char *p, size_t n, const unsigned char *buf, size_t len) {
    const char *b = (const char *)buf;
    if (!p) return n == 0;
    return p >= b && n <= len && (size_t)(p - b) <= len - n;
}

/* Parses buf[0..len) (already placed) and fills *s. Returns the parse result.
 * Also checks the structural promises of a success: spans inside the head. */
static int parse_sum(const vector *v, const unsigned char *buf, size_t len, summary *s) {
    static kk_header hdrs[MAX_HDRS];
    kk_request req;
    size_t i;
    int rc;
    sum_free(s);
    memset(&req, 0x5a, sizeof req);
    rc = kk_parse_request((const char *)buf, len, &req, hdrs, MAX_HDRS, &v->lim);
    s->rc = rc;
    if (rc == -1) {
        s->status = req.status;
        s->reason = req.reason;
        if (!req.reason) vfail(v, "error %d without a reason", req.status);
        return rc;
    }
    if (rc == -2) return rc;
    if (rc <= 0 || (size_t)rc > len || (size_t)rc != req.head_len) {
        vfail(v, "bad success value %d (head_len %zu, len %zu)", rc, req.head_len, len);
        s->rc = -99;
        return -99;
    }
    if (req.status != 0 || req.reason != NULL) vfail(v, "status/reason set on success");
    if (rc < 4 || memcmp(buf + rc - 4, "\r\n\r\n", 4) != 0)
        vfail(v, "head does not end with CRLFCRLF");
    if (!span_ok(req.method, req.method_len, buf, (size_t)rc) || req.method_len == 0 ||
        !span_ok(req.target, req.target_len, buf, (size_t)rc) || req.target_len == 0 ||
        !(span_ok(req.path, req.path_len, buf, (size_t)rc) ||
          (req.path_len == 1 && req.path[0] == '/')) ||
        !span_ok(req.query, req.query_len, buf, (size_t)rc) ||
        !span_ok(req.host, req.host_len, buf, (size_t)rc))
        vfail(v, "a span lies outside the head");
    if (req.headers != hdrs || req.num_headers > v->lim.max_headers)
        vfail(v, "bad header array");
    bs_add(&s->method, req.method, req.method_len);
    bs_add(&s->target, req.target, req.target_len);
    bs_add(&s->path, req.path, req.path_len);
    s->query_null = req.query == NULL;
    if (req.query) bs_add(&s->query, req.query, req.query_len);
    s->host_null = req.host == NULL;
    if (req.host) bs_add(&s->host, req.host, req.host_len);
    s->head_len = req.head_len;
    s->minor = req.minor_version;
    s->body_kind = req.body_kind;
    s->keep_alive = req.keep_alive;
    s->expect_continue = req.expect_continue;
    s->content_length = req.content_length;
    s->nh = req.num_headers;
    for (i = 0; i < req.num_headers; i++) {
        if (!span_ok(hdrs[i].name, hdrs[i].name_len, buf, (size_t)rc) ||
            !span_ok(hdrs[i].value, hdrs[i].value_len, buf, (size_t)rc))
            vfail(v, "header %zu span outside the head", i);
        bs_add(&s->hn[i], hdrs[i].name, hdrs[i].name_len);
        bs_add(&s->hv[i], hdrs[i].value, hdrs[i].value_len);
    }
    if (req.minor_version != 0 && req.minor_version != 1) vfail(v, "bad minor version");
    if (req.body_kind == KK_BODY_LENGTH &&
        (req.content_length == 0 || req.content_length > v->lim.max_body))
        vfail(v, "bad content_length for a length body");
    if (req.body_kind == KK_BODY_NONE && req.content_length != 0)
        vfail(v, "content_length set without a body");
    return rc;
}

static int bs_eq(const bstr *a, const bstr *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

static int sum_eq(const summary *a, const summary *b) {
    size_t i;
    if (a->rc != b->rc) return 0;
    if (a->rc == -1) return a->status == b->status;
    if (a->rc < 0) return 1;
    if (a->head_len != b->head_len || !bs_eq(&a->method, &b->method) ||
        !bs_eq(&a->target, &b->target) || !bs_eq(&a->path, &b->path) ||
        a->query_null != b->query_null || !bs_eq(&a->query, &b->query) ||
        a->host_null != b->host_null || !bs_eq(&a->host, &b->host) ||
        a->minor != b->minor || a->body_kind != b->body_kind ||
        a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue ||
        a->content_length != b->content_length || a->nh != b->nh)
        return 0;
    for (i = 0; i < a->nh; i++)
        if (!bs_eq(&a->hn[i], &b->hn[i]) || !bs_eq(&a->hv[i], &b->hv[i])) return 0;
    return 1;
}

/* Outcome of decoding a chunked body. */
typedef struct {
    long rc;
    int status;
    bstr out, rest;
} dresult;

static void dres_free(dresult *d) {
    bs_free(&d->out);
    bs_free(&d->rest);
    memset(d, 0, sizeof *d);
}

/* Feeds body[0..n) to a fresh decoder in pieces (cuts[] are the piece ends,
 * increasing, the last == n) and collects the result. After the message ends,
 * the bytes left in that piece and every later piece are the rest. */
static void decode_pieces(const vector *v, const unsigned char *body, size_t n,
                          const size_t *cuts, size_t ncuts, dresult *res) {
    kk_chunked d;
    size_t k, start = 0;
    int done = 0;
    dres_free(res);
    res->rc = -2;
    kk_chunked_init(&d, v->lim.max_body);
    if (ncuts ? cuts[ncuts - 1] != n : n != 0) abort(); /* the pieces must cover the body */
    bs_add(&res->out, "", 0);
    bs_add(&res->rest, "", 0);
    for (k = 0; k < ncuts; k++) {
        size_t plen = cuts[k] - start, l = plen;
        unsigned char *p;
        long rc;
        if (done) {
            bs_add(&res->rest, body + start, plen);
            start = cuts[k];
            continue;
        }
        p = arena_place(&A_body, body + start, plen);
        rc = kk_chunked_decode(&d, (char *)p, &l);
        if (l > plen || (rc >= 0 && l + (size_t)rc > plen)) {
            vfail(v, "decoder output larger than its input");
            res->rc = -99;
            return;
        }
        if (rc == -1) {
            res->rc = -1;
            res->status = d.status;
            if (!d.reason || (d.status != 400 && d.status != 413))
                vfail(v, "decoder error without reason or with status %d", d.status);
            return;
        }
        bs_add(&res->out, p, l);
        if (rc >= 0) {
            bs_add(&res->rest, p + l, (size_t)rc);
            res->rc = 0;
            done = 1;
        } else if (rc != -2) {
            vfail(v, "decoder returned %ld", rc);
        }
        start = cuts[k];
    }
    if (d.total > v->lim.max_body) vfail(v, "decoded total over max_body");
    if (!done && d.total != res->out.n) vfail(v, "decoder total disagrees with output");
}

static int dres_eq(const dresult *a, const dresult *b) {
    if (a->rc != b->rc) return 0;
    if (a->rc == -1) return a->status == b->status;
    return bs_eq(&a->out, &b->out) && bs_eq(&a->rest, &b->rest);
}

static int field_check(const vector *v, const char *name, const field *f,
                       const bstr *got, int got_null) {
    if (!f->set) return 1;
    if (f->none && got_null) return 1;
    if (!f->none && !got_null && bs_eq(&f->v, got)) return 1;
    vfail(v, "%s differs", name);
    fprintf(stderr, "      expected ");
    show(stderr, f->none ? NULL : f->v.p, f->v.n);
    fprintf(stderr, "\n      got      ");
    show(stderr, got_null ? NULL : got->p, got->n);
    fprintf(stderr, "\n");
    return 0;
}

static summary S_whole, S_part;

/* Runs one vector; counts it as passed or failed. */
static void run_vector(vector *v) {
    const unsigned char *raw = v->raw.p;
    size_t len = v->raw.n, k, i;
    unsigned char *buf;
    int rc;
    bstr body = {0}, rest = {0};
    int outcome = 0, ostatus = 0; /* EXP_* as observed */
    dresult whole = {0}, part = {0};

    vec_failed_once = 0;
    if (!raw) bs_add(&v->raw, "", 0), raw = v->raw.p;

    /* (a) whole */
    buf = arena_place(&A_head, raw, len);
    rc = parse_sum(v, buf, len, &S_whole);
    if (rc == -1) {
        outcome = EXP_STATUS;
        ostatus = S_whole.status;
    } else if (rc == -2) {
        outcome = EXP_INCOMPLETE;
    } else if (rc > 0) {
        size_t after = len - (size_t)rc;
        bs_add(&body, "", 0);
        bs_add(&rest, "", 0);
        if (S_whole.body_kind == KK_BODY_NONE) {
            outcome = EXP_OK;
            bs_add(&rest, raw + rc, after);
        } else if (S_whole.body_kind == KK_BODY_LENGTH) {
            if (after < S_whole.content_length) {
                outcome = EXP_INCOMPLETE;
            } else {
                outcome = EXP_OK;
                bs_add(&body, raw + rc, (size_t)S_whole.content_length);
                bs_add(&rest, raw + rc + S_whole.content_length,
                       after - (size_t)S_whole.content_length);
            }
        } else {
            size_t cut = after;
            decode_pieces(v, raw + rc, after, &cut, 1, &whole);
            if (whole.rc == -1) {
                outcome = EXP_STATUS;
                ostatus = whole.status;
            } else if (whole.rc == -2) {
                outcome = EXP_INCOMPLETE;
            } else {
                outcome = EXP_OK;
                bs_add(&body, whole.out.p, whole.out.n);
                bs_add(&rest, whole.rest.p, whole.rest.n);
            }
        }
    }

    if (outcome != v->expect || (outcome == EXP_STATUS && ostatus != v->status)) {
        static const char *names[] = {"?", "ok", "status", "incomplete"};
        vfail(v, "expected %s %d, got %s %d (%s)", names[v->expect],
              v->expect == EXP_STATUS ? v->status : 0, names[outcome], ostatus,
              S_whole.rc == -1 ? S_whole.reason : "");
    } else if (outcome == EXP_OK) {
        field_check(v, "method", &v->method, &S_whole.method, 0);
        field_check(v, "target", &v->target, &S_whole.target, 0);
        field_check(v, "path", &v->path, &S_whole.path, 0);
        field_check(v, "query", &v->query, &S_whole.query, S_whole.query_null);
        field_check(v, "host", &v->host, &S_whole.host, S_whole.host_null);
        field_check(v, "data", &v->data, &body, 0);
        if (!v->rest.set) {
            v->rest.set = 1;
            bs_add(&v->rest.v, "", 0);
        }
        field_check(v, "rest", &v->rest, &rest, 0);
        if (v->version >= 0 && v->version != S_whole.minor)
            vfail(v, "version: expected 1.%d, got 1.%d", v->version, S_whole.minor);
        if (v->body_kind >= 0 && v->body_kind != S_whole.body_kind)
            vfail(v, "body kind: expected %d, got %d", v->body_kind, S_whole.body_kind);
        if (v->body_kind == KK_BODY_LENGTH && v->body_len != S_whole.content_length)
            vfail(v, "content length: expected %llu, got %llu",
                  (unsigned long long)v->body_len, (unsigned long long)S_whole.content_length);
        if (v->keep_alive >= 0 && v->keep_alive != S_whole.keep_alive)
            vfail(v, "keep_alive: expected %d, got %d", v->keep_alive, S_whole.keep_alive);
        if (v->expect_continue >= 0 && v->expect_continue != S_whole.expect_continue)
            vfail(v, "expect_continue: expected %d, got %d", v->expect_continue,
                  S_whole.expect_continue);
        if (v->header_count >= 0 && (size_t)v->header_count != S_whole.nh)
            vfail(v, "header count: expected %ld, got %zu", v->header_count, S_whole.nh);
        if (v->nhdr > 0) {
            if ((size_t)v->nhdr != S_whole.nh)
                vfail(v, "headers: expected %d, got %zu", v->nhdr, S_whole.nh);
            for (i = 0; i < (size_t)v->nhdr && i < S_whole.nh; i++) {
                if (!bs_eq(&v->hname[i], &S_whole.hn[i]) || !bs_eq(&v->hval[i], &S_whole.hv[i])) {
                    vfail(v, "header %zu differs:", i);
                    fprintf(stderr, "      expected ");
                    show(stderr, v->hname[i].p, v->hname[i].n);
                    fprintf(stderr, ": ");
                    show(stderr, v->hval[i].p, v->hval[i].n);
                    fprintf(stderr, "\n      got      ");
                    show(stderr, S_whole.hn[i].p, S_whole.hn[i].n);
                    fprintf(stderr, ": ");
                    show(stderr, S_whole.hv[i].p, S_whole.hv[i].n);
                    fprintf(stderr, "\n");
                }
            }
        }
    }

    /* (b) every prefix of the raw bytes */
    if (v->decided_at >= 0 && (S_whole.rc != -1 || (size_t)v->decided_at > len))
        vfail(v, "decided_at needs a head error within the raw bytes");
    for (k = 0, i = 0; k < len && !vec_failed_once; k++) {
        int prc;
        buf = arena_place(&A_head, raw, k);
        prc = parse_sum(v, buf, k, &S_part);
        if (v->decided_at >= 0 && (prc == -1) != (k >= (size_t)v->decided_at))
            vfail(v, "prefix of %zu bytes returned %d; the error must appear at %ld bytes", k,
                  prc, v->decided_at);
        if (prc == -2) {
            if (S_whole.rc > 0 && k >= S_whole.head_len)
                vfail(v, "prefix of %zu bytes (>= head_len %zu) returned -2", k, S_whole.head_len);
            if (i) vfail(v, "prefix of %zu bytes returned -2 after a shorter one failed", k);
            continue;
        }
        i = 1; /* an error, once returned, stays for every longer prefix */
        if (!sum_eq(&S_part, &S_whole))
            vfail(v, "prefix of %zu bytes gives rc %d status %d (%s); whole gives rc %d status %d",
                  k, S_part.rc, S_part.status, S_part.reason ? S_part.reason : "",
                  S_whole.rc, S_whole.status);
    }

    /* (c) chunked body split everywhere and byte by byte */
    if (S_whole.rc > 0 && S_whole.body_kind == KK_BODY_CHUNKED && !vec_failed_once) {
        const unsigned char *b = raw + S_whole.rc;
        size_t n = len - (size_t)S_whole.rc, cuts[2];
        size_t *ones = malloc((n + 1) * sizeof *ones);
        for (k = 0; k <= n && !vec_failed_once; k++) {
            cuts[0] = k;
            cuts[1] = n;
            decode_pieces(v, b, n, cuts, 2, &part);
            if (!dres_eq(&part, &whole))
                vfail(v, "chunked body split at %zu: rc %ld status %d, whole: rc %ld status %d",
                      k, part.rc, part.status, whole.rc, whole.status);
        }
        for (k = 0; k < n; k++) ones[k] = k + 1;
        if (!vec_failed_once) {
            decode_pieces(v, b, n, ones, n, &part);
            if (!dres_eq(&part, &whole))
                vfail(v, "chunked body fed byte by byte: rc %ld status %d, whole: rc %ld status %d",
                      part.rc, part.status, whole.rc, whole.status);
        }
        free(ones);
    }

    if (vec_failed_once) {
        n_fail++;
    } else {
        n_pass++;
        if (verbose) printf("ok   %s:%d: %s\n", v->file, v->line, v->title);
    }
    bs_free(&body);
    bs_free(&rest);
    dres_free(&whole);
    dres_free(&part);
}

/* ------------------------------------------------------------------------
 * Reading vector files
 * ---------------------------------------------------------------------- */

static int format_error(const char *file, int line, const char *what) {
    fprintf(stderr, "FAIL %s:%d: vector format: %s\n", file, line, what);
    n_fail++;
    return -1;
}

static int set_field(field *f, const char *val, size_t n) {
    bs_free(&f->v);
    f->set = 1;
    f->none = (n == 6 && memcmp(val, "(none)", 6) == 0);
    if (f->none) return 0;
    return unescape(val, n, &f->v);
}

/* Checks a finished vector's own consistency, then runs it. */
static void finish_vector(vector *v, int *have) {
    if (!*have) return;
    *have = 0;
    if (!v->has_why) {
        format_error(v->file, v->line, "missing why:");
        return;
    }
    if (v->nraw == 0) {
        format_error(v->file, v->line, "missing raw:");
        return;
    }
    if (v->expect == EXP_NONE) {
        format_error(v->file, v->line, "missing expect:");
        return;
    }
    if (v->expect == EXP_OK) {
        if (v->body_kind < 0) {
            format_error(v->file, v->line, "expect: ok needs body:");
            return;
        }
        if (v->body_kind != KK_BODY_NONE && !v->data.set) {
            format_error(v->file, v->line, "a body needs data:");
            return;
        }
        if (v->body_kind == KK_BODY_NONE && !v->data.set) {
            v->data.set = 1;
            bs_add(&v->data.v, "", 0);
        }
    }
    if (dumping)
        dump_vector(v);
    else
        run_vector(v);
}

static void run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    static vector v;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, have = 0, skipping = 0;
    if (!f) {
        fprintf(stderr, "FAIL cannot open %s: %s\n", path, strerror(errno));
        n_fail++;
        return;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t n = (size_t)got, kl;
        const char *val, *colon;
        lineno++;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (memchr(line, '\r', n)) {
            format_error(path, lineno, "CR in vector file (use \\r)");
            continue;
        }
        if (n == 0 || line[0] == '#') continue;
        if (n >= 3 && memcmp(line, "===", 3) == 0) {
            finish_vector(&v, &have);
            vec_reset(&v, path, lineno, line + (n > 3 ? 4 : 3));
            have = 1;
            skipping = 0;
            continue;
        }
        if (!have) {
            /* after a format error the rest of that vector is skipped */
            if (!skipping) format_error(path, lineno, "text before the first ===");
            skipping = 1;
            continue;
        }
        colon = memchr(line, ':', n);
        if (!colon) {
            format_error(path, lineno, "line without key:");
            have = 0, skipping = 1;
            continue;
        }
        kl = (size_t)(colon - line);
        val = colon + 1;
        if (*val == ' ') val++;
        n -= (size_t)(val - line);
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
        if (KEY("why")) {
            v.has_why = 1;
        } else if (KEY("raw")) {
            if (n && (val[n - 1] == ' ' || val[n - 1] == '\t')) {
                format_error(path, lineno, "raw line ends in whitespace (escape it)");
                have = 0, skipping = 1;
                continue;
            }
            if (unescape(val, n, &v.raw) < 0) {
                format_error(path, lineno, "bad escape");
                have = 0, skipping = 1;
                continue;
            }
            v.nraw++;
        } else if (KEY("raw-repeat")) {
            char *end;
            unsigned long cnt = strtoul(val, &end, 10);
            bstr one = {0};
            if (end == val || *end != ' ' || unescape(end + 1, n - (size_t)(end + 1 - val), &one) < 0) {
                format_error(path, lineno, "bad raw-repeat");
                have = 0, skipping = 1;
                continue;
            }
            while (cnt--) bs_add(&v.raw, one.p, one.n);
            bs_free(&one);
            v.nraw++;
        } else if (KEY("limits")) {
            char tmp[512], *tok, *save;
            snprintf(tmp, sizeof tmp, "%.*s", (int)n, val);
            for (tok = strtok_r(tmp, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                unsigned long long x;
                char key[64];
                if (sscanf(tok, "%63[a-z_]=%llu", key, &x) != 2) {
                    format_error(path, lineno, "bad limits");
                    have = 0, skipping = 1;
                    break;
                }
                if (!strcmp(key, "max_request_line")) v.lim.max_request_line = (size_t)x;
                else if (!strcmp(key, "max_head")) v.lim.max_head = (size_t)x;
                else if (!strcmp(key, "max_headers") && x <= MAX_HDRS) v.lim.max_headers = (size_t)x;
                else if (!strcmp(key, "max_body")) v.lim.max_body = x;
                else {
                    format_error(path, lineno, "unknown limit");
                    have = 0, skipping = 1;
                    break;
                }
            }
        } else if (KEY("expect")) {
            if (n == 2 && !memcmp(val, "ok", 2)) v.expect = EXP_OK;
            else if (n == 10 && !memcmp(val, "incomplete", 10)) v.expect = EXP_INCOMPLETE;
            else if (n == 10 && !memcmp(val, "status ", 7)) {
                v.expect = EXP_STATUS;
                v.status = atoi(val + 7);
            } else {
                format_error(path, lineno, "bad expect:");
                have = 0, skipping = 1;
            }
        } else if (KEY("method")) {
            set_field(&v.method, val, n);
        } else if (KEY("target")) {
            set_field(&v.target, val, n);
        } else if (KEY("path")) {
            set_field(&v.path, val, n);
        } else if (KEY("query")) {
            set_field(&v.query, val, n);
        } else if (KEY("host")) {
            set_field(&v.host, val, n);
        } else if (KEY("data")) {
            set_field(&v.data, val, n);
        } else if (KEY("rest")) {
            set_field(&v.rest, val, n);
        } else if (KEY("version")) {
            if (n == 3 && !memcmp(val, "1.1", 3)) v.version = 1;
            else if (n == 3 && !memcmp(val, "1.0", 3)) v.version = 0;
            else {
                format_error(path, lineno, "bad version:");
                have = 0, skipping = 1;
            }
        } else if (KEY("header")) {
            const char *c2 = memchr(val, ':', n);
            if (!c2 || v.nhdr >= 64) {
                format_error(path, lineno, "bad header:");
                have = 0, skipping = 1;
                continue;
            }
            {
                const char *hv = c2 + 1;
                size_t hl;
                if (hv < val + n && *hv == ' ') hv++;
                hl = n - (size_t)(hv - val);
                if (unescape(val, (size_t)(c2 - val), &v.hname[v.nhdr]) < 0 ||
                    unescape(hv, hl, &v.hval[v.nhdr]) < 0) {
                    format_error(path, lineno, "bad escape");
                    have = 0, skipping = 1;
                    continue;
                }
                v.nhdr++;
            }
        } else if (KEY("decided_at")) {
            v.decided_at = atol(val);
        } else if (KEY("header-count")) {
            v.header_count = atol(val);
        } else if (KEY("body")) {
            if (n == 4 && !memcmp(val, "none", 4)) v.body_kind = KK_BODY_NONE;
            else if (n == 7 && !memcmp(val, "chunked", 7)) v.body_kind = KK_BODY_CHUNKED;
            else if (n > 7 && !memcmp(val, "length ", 7)) {
                v.body_kind = KK_BODY_LENGTH;
                v.body_len = strtoull(val + 7, NULL, 10);
            } else {
                format_error(path, lineno, "bad body:");
                have = 0, skipping = 1;
            }
        } else if (KEY("keep_alive")) {
            v.keep_alive = atoi(val);
        } else if (KEY("expect_continue")) {
            v.expect_continue = atoi(val);
        } else {
            format_error(path, lineno, "unknown key");
            have = 0, skipping = 1;
        }
#undef KEY
    }
    finish_vector(&v, &have);
    free(line);
    fclose(f);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Calls fn on every *.txt file of dir (sorted), or on dir itself if a file. */
static void for_each_file(const char *dir, void (*fn)(const char *)) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, i;
    if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
        fn(dir);
        return;
    }
    d = opendir(dir);
    if (!d) {
        fprintf(stderr, "FAIL cannot open %s: %s\n", dir, strerror(errno));
        n_fail++;
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".txt")) {
            char *p = malloc(strlen(dir) + l + 2);
            sprintf(p, "%s/%s", dir, e->d_name);
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = p;
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++) {
        fn(names[i]);
        free(names[i]);
    }
    free(names);
}

/* ------------------------------------------------------------------------
 * Unit tests the vector format cannot express
 * ---------------------------------------------------------------------- */

static void check(int ok, const char *what) {
    if (ok) {
        n_pass++;
        if (verbose) printf("ok   unit: %s\n", what);
    } else {
        n_fail++;
        fprintf(stderr, "FAIL unit: %s\n", what);
    }
}

/* xorshift64*: deterministic pseudo-random numbers for the round-trip test. */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static long decode_str(kk_chunked *d, const char *s, char *out, size_t *outlen) {
    size_t n = strlen(s);
    unsigned char *p = arena_place(&A_body, s, n);
    long rc;
    *outlen = n;
    rc = kk_chunked_decode(d, (char *)p, outlen);
    memcpy(out, p, n);
    return rc;
}

/* kk_cookie_next + kk_cookie_unquote against what Starlette's cookie_parser gives
 * (each table row was checked with starlette.requests.cookie_parser on 3.11):
 * "k=v|k=v" lists the pairs in order, before a later pair of the same name wins. */
static void cookie_tests(void) {
    static const struct { const char *in, *want; } t[] = {
        {"a=1; session=xyz; n=5", "a=1|session=xyz|n=5"},
        {"session=\"ab\\073c\\\\d\"", "session=ab;c\\d"},
        {"session=a; session=b", "session=a|session=b"},
        {"  session = abc  ;n=2", "session=abc|n=2"},
        {"novalue; =onlyval; x=; ;; y=\"unterminated", "=novalue|=onlyval|x=|y=\"unterminated"},
        {"q=\"a\\\"b\"", "q=a\"b"},
        {"e=\"\\400\\07x\\\"", "e=40007x\\"},
        {"z=a=b=c", "z=a=b=c"},
        {"t=\t tab \t", "t=tab"},
        {"", ""},
        {";;; ; ", ""},
        {"\"\"", "="},
        {"k=\"\"", "k="},
        {"k=\"", "k=\""},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char got[256], val[256];
        size_t o = 0, pos = 0, kn, vn;
        const char *k, *v;
        while (kk_cookie_next(t[i].in, strlen(t[i].in), &pos, &k, &kn, &v, &vn)) {
            size_t un = kk_cookie_unquote(val, v, vn);
            check(un <= vn, "cookie_unquote never grows");
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%.*s=%.*s", o ? "|" : "", (int)kn, k,
                                  (int)un, val);
        }
        got[o] = '\0';
        if (strcmp(got, t[i].want) != 0)
            fprintf(stderr, "cookie: %s -> \"%s\", want \"%s\"\n", t[i].in, got, t[i].want);
        check(strcmp(got, t[i].want) == 0, "cookie pairs");
    }
}

static void unit_tests(void) {
    kk_parse_limits lim = {KK_DEFAULT_MAX_REQUEST_LINE, KK_DEFAULT_MAX_HEAD,
                           KK_DEFAULT_MAX_HEADERS, KK_DEFAULT_MAX_BODY};
    kk_header hdrs[4];
    kk_request req;
    kk_chunked d;
    char out[256];
    size_t ol;
    long rc;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int iter, bad;

    check(kk_span_ieq("Content-Length", 14, "content-length"), "span_ieq: mixed case equal");
    check(!kk_span_ieq("Content-Lengt", 13, "content-length"), "span_ieq: shorter span");
    check(!kk_span_ieq("Content-Lengths", 15, "content-length"), "span_ieq: longer span");
    check(!kk_span_ieq("content_length", 14, "content-length"), "span_ieq: different byte");
    check(kk_span_ieq("", 0, ""), "span_ieq: empty");
    check(!kk_span_ieq("\xc3", 1, "c"), "span_ieq: high byte is not folded");
    cookie_tests();

    {
        const char *r = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        unsigned char *p = arena_place(&A_head, r, strlen(r));
        int x = kk_parse_request((const char *)p, strlen(r), &req, hdrs, 4, &lim);
        check(x == -1 && req.status == 431, "headers_cap below max_headers: cap is the limit");
        x = kk_parse_request((const char *)p, strlen(r) - 2 - 6, &req, hdrs, 4, &lim);
        check(x == -2, "headers_cap: four fields are within the cap");
    }
    {
        kk_parse_limits big = {(size_t)-1, (size_t)-1, 4, UINT64_MAX};
        const char *r = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
        unsigned char *p = arena_place(&A_head, r, strlen(r));
        int x = kk_parse_request((const char *)p, strlen(r), &req, hdrs, 4, &big);
        check(x == (int)strlen(r) && req.content_length == UINT64_MAX,
              "huge limits are clamped and UINT64_MAX Content-Length is accepted");
    }

    kk_chunked_init(&d, UINT64_MAX);
    rc = decode_str(&d, "ffffffffffffffff\r\nab", out, &ol);
    check(rc == -2 && ol == 2 && d.chunk_left == UINT64_MAX - 2,
          "chunked: 16 hex digits with max_body UINT64_MAX do not overflow");
    kk_chunked_init(&d, UINT64_MAX);
    rc = decode_str(&d, "00000000000000001\r\n", out, &ol);
    check(rc == -1 && d.status == 400, "chunked: 17 digits are refused even with leading zeros");

    kk_chunked_init(&d, 0);
    rc = decode_str(&d, "0\r\n\r\nGET", out, &ol);
    check(rc == 3 && ol == 0 && memcmp(out, "GET", 3) == 0, "chunked: max_body 0 allows the last chunk");
    rc = decode_str(&d, "more", out, &ol);
    check(rc == 4 && ol == 0 && memcmp(out, "more", 4) == 0,
          "chunked: after the end, every byte is returned as rest");
    kk_chunked_init(&d, 0);
    rc = decode_str(&d, "1\r\n", out, &ol);
    check(rc == -1 && d.status == 413, "chunked: max_body 0 refuses a data chunk");
    rc = decode_str(&d, "0\r\n\r\n", out, &ol);
    check(rc == -1, "chunked: errors are sticky");

    kk_chunked_init(&d, 100);
    rc = decode_str(&d, "5\r\nhel", out, &ol);
    check(rc == -2 && ol == 3 && memcmp(out, "hel", 3) == 0, "chunked: partial data is delivered");
    rc = decode_str(&d, "lo\r\n0\r\n\r\n", out, &ol);
    check(rc == 0 && ol == 2 && memcmp(out, "lo", 2) == 0 && d.total == 5,
          "chunked: the rest of the chunk and the end");

    /* Round trip: random payloads, random chunking, random extensions and
     * trailers, decoded in random pieces, must give the payload back. */
    bad = 0;
    for (iter = 0; iter < 2000 && !bad; iter++) {
        static const char *exts[] = {"", ";a", ";a=b", ";a=\"x;y\\\"z\"", " ;a = b", ";x;y=1"};
        static unsigned char payload[3000], enc[20000];
        size_t plen = rnd(&seed) % sizeof payload, elen = 0, i = 0, start = 0;
        bstr got = {0};
        int done = 0;
        for (i = 0; i < plen; i++) payload[i] = (unsigned char)rnd(&seed);
        i = 0;
        while (i < plen) {
            size_t c = 1 + rnd(&seed) % 700;
            if (c > plen - i) c = plen - i;
            elen += (size_t)sprintf((char *)enc + elen, rnd(&seed) & 1 ? "%zx%s\r\n" : "%zX%s\r\n",
                                    c, exts[rnd(&seed) % 6]);
            memcpy(enc + elen, payload + i, c);
            elen += c;
            memcpy(enc + elen, "\r\n", 2);
            elen += 2;
            i += c;
        }
        elen += (size_t)sprintf((char *)enc + elen, "0%s\r\n%s\r\n", exts[rnd(&seed) % 6],
                                rnd(&seed) & 1 ? "Trailer-A: 1\r\nB:\r\n" : "");
        kk_chunked_init(&d, plen);
        bs_add(&got, "", 0);
        while (start < elen && !done) {
            size_t piece = 1 + rnd(&seed) % 900, l;
            unsigned char *p;
            if (piece > elen - start) piece = elen - start;
            p = arena_place(&A_body, enc + start, piece);
            l = piece;
            rc = kk_chunked_decode(&d, (char *)p, &l);
            if (rc == -1 || (rc >= 0 && (rc != 0 || start + piece != elen))) bad = 1;
            if (rc >= 0) done = 1;
            bs_add(&got, p, l);
            start += piece;
        }
        if (!done || got.n != plen || memcmp(got.p, payload, plen) != 0) bad = 1;
        bs_free(&got);
    }
    check(!bad, "chunked: 2000 random round trips decode to the payload");
}

/* ------------------------------------------------------------------------
 * Seed corpus
 * ---------------------------------------------------------------------- */

static const char *dump_dir;
static int dump_n;

static void dump_bytes(const char *sub, unsigned char cfg, const void *p, size_t n) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/v%03d", dump_dir, sub, dump_n);
    f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputc(cfg, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Reads a vector file in dump mode: one parse seed per vector, one chunked
 * seed per vector whose head announces a chunked body. */
static void dump_file(const char *path);

int main(int argc, char **argv) {
    int i = 1;
    arena_init(&A_head);
    arena_init(&A_body);
    if (argc > 1 && !strcmp(argv[1], "-v")) {
        verbose = 1;
        i++;
    }
    if (argc > i + 2 && !strcmp(argv[i], "--dump-corpus")) {
        char p[1024];
        dump_dir = argv[i + 1];
        snprintf(p, sizeof p, "%s/parse", dump_dir);
        mkdir(dump_dir, 0777);
        mkdir(p, 0777);
        snprintf(p, sizeof p, "%s/chunked", dump_dir);
        mkdir(p, 0777);
        for (i += 2; i < argc; i++) for_each_file(argv[i], dump_file);
        printf("%d vectors dumped\n", dump_n);
        return 0;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [-v] DIR|FILE... | --dump-corpus OUT DIR\n", argv[0]);
        return 2;
    }
    unit_tests();
    for (; i < argc; i++) for_each_file(argv[i], run_file);
    sum_free(&S_whole);
    sum_free(&S_part);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

/* Writes the seeds of one vector (called instead of run_vector when dumping). */
static void dump_vector(vector *v) {
    static kk_header hdrs[MAX_HDRS];
    kk_request req;
    int rc;
    if (v->raw.n > 1024) return; /* keep the seed corpus small */
    dump_n++;
    dump_bytes("parse", 0, v->raw.p, v->raw.n);
    rc = kk_parse_request((const char *)v->raw.p, v->raw.n, &req, hdrs, MAX_HDRS, &v->lim);
    if (rc > 0 && req.body_kind == KK_BODY_CHUNKED)
        dump_bytes("chunked", 0, v->raw.p + rc, v->raw.n - (size_t)rc);
}

static void dump_file(const char *path) {
    dumping = 1;
    run_file(path);
}
