/* test_router.c: unit tests for src/_karak/router.c.
 *
 * Usage: test_router VECTOR_DIR
 * Runs every .txt file in VECTOR_DIR (format: tests/vectors/router/README.md), then
 * checks written in C: add after freeze, match before freeze, limits, deep
 * request paths, a pathological backtracking table, a randomized comparison
 * against a naive reference matcher, and a 4-thread match stress on one
 * frozen router. Every match also checks that parameter values are spans
 * inside the path and that no match visits more nodes than the tree has.
 * Prints "N passed, M failed" last; exits 1 when anything failed.
 */
#define KK_ROUTER_COUNT_VISITS 1
#include "../../src/_karak/router.c"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static int g_passed, g_failed;
static int g_route_cases, g_bad_cases, g_match_cases;

/* Records one failed check with a message (printf-style). */
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    g_failed++;
}

#define CHECK(cond, ...) do { if (cond) g_passed++; else fail(__VA_ARGS__); } while (0)

/* Copies s[0..len) into a fresh malloc block of exactly len bytes (at least
 * one), so ASan reports any read past the end. Caller frees. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    if (len)
        memcpy(p, s, len);
    return p;
}

/* Checks the invariants every match result must satisfy, whatever the table:
 * parameter values lie inside the path, names are set, Allow is a
 * NUL-terminated string of allow_len bytes on 405 only, and the match visited
 * no more nodes than the tree holds. Returns 1 if all hold. */
static int check_invariants(const kk_router *r, int rc, const char *path, size_t path_len,
                            const kk_match *m, const char *what)
{
    int ok = 1;
    if (kk_router_visits > r->num_nodes) {
        fail("%s: visited %zu nodes, tree has %zu", what, kk_router_visits, r->num_nodes);
        ok = 0;
    }
    if (rc == KK_ROUTE_FOUND) {
        if (m->num_params > KK_MAX_PARAMS) {
            fail("%s: num_params %zu", what, m->num_params);
            return 0;
        }
        for (size_t i = 0; i < m->num_params; i++) {
            const kk_param *p = &m->params[i];
            if (!p->name || p->name_len == 0 || !p->value || p->value < path ||
                p->value_len > path_len || (size_t)(p->value - path) > path_len - p->value_len) {
                fail("%s: param %zu is not a span inside the path", what, i);
                ok = 0;
            }
        }
    } else if (m->handler || m->num_params) {
        fail("%s: handler/params set on a non-match", what);
        ok = 0;
    }
    if (rc == KK_ROUTE_METHOD_NOT_ALLOWED) {
        if (!m->allow || strlen(m->allow) != m->allow_len || m->allow_len == 0) {
            fail("%s: bad Allow on 405", what);
            ok = 0;
        }
    } else if (m->allow) {
        fail("%s: Allow set without 405", what);
        ok = 0;
    }
    return ok;
}

/* Runs kk_router_match on an exact-size copy of path and checks invariants. */
static int do_match(const kk_router *r, const char *method, size_t mlen,
                    const char *path, size_t plen, kk_match *m, char **copy, const char *what)
{
    *copy = exact_copy(path, plen);
    kk_router_visits = 0;
    int rc = kk_router_match(r, method, mlen, *copy, plen, m);
    if (check_invariants(r, rc, *copy, plen, m, what))
        g_passed++;
    return rc;
}

/* ======================================================================== */
/* Vector files. */

#define MAX_TOKENS 64
#define MAX_IDS 512

typedef struct {
    char *s; size_t len;
} tok;

/* Decodes escapes in place: \xHH, \\ ; the token "" is the empty string.
 * Returns 0, or -1 on a malformed escape. */
static int unescape(tok *t)
{
    if (t->len == 2 && t->s[0] == '"' && t->s[1] == '"') {
        t->len = 0;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '\\') {
            if (i + 1 < t->len && t->s[i + 1] == '\\') {
                t->s[o++] = '\\';
                i++;
                continue;
            }
            if (i + 3 < t->len && t->s[i + 1] == 'x') {
                char hex[3] = {t->s[i + 2], t->s[i + 3], 0};
                char *endp;
                long v = strtol(hex, &endp, 16);
                if (*endp)
                    return -1;
                t->s[o++] = (char)v;
                i += 3;
                continue;
            }
            return -1;
        }
        t->s[o++] = c;
    }
    t->len = o;
    return 0;
}

/* Splits line into whitespace-separated tokens (not unescaped). Returns count. */
static int split(char *line, tok *out, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        char *s = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        out[n].s = s;
        out[n].len = (size_t)(p - s);
        n++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

/* Returns a pointer to the rest of the original line after `skip` tokens
 * (leading blanks removed), given the unsplit copy. */
static const char *rest_after(const char *line, int skip)
{
    const char *p = line;
    for (int i = 0; i < skip; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

typedef struct {
    kk_router *r;
    char *ids[MAX_IDS];
    int num_ids;
    int frozen;
} section;

/* Frees the section's router and ids and starts a new, empty router. */
static void section_reset(section *s)
{
    kk_router_free(s->r);
    for (int i = 0; i < s->num_ids; i++)
        free(s->ids[i]);
    s->num_ids = 0;
    s->frozen = 0;
    s->r = kk_router_new();
    if (!s->r) {
        fputs("out of memory\n", stderr);
        exit(2);
    }
}

/* Runs one vector line. where is "file:line" for messages. */
static void run_line(section *s, char *line, const char *where)
{
    char orig[4096];
    snprintf(orig, sizeof orig, "%s", line);
    tok t[MAX_TOKENS];
    int n = split(line, t, MAX_TOKENS);
    if (n == 0 || t[0].s[0] == '#')
        return;
    const char *kw = t[0].s;

    if (strcmp(kw, "reset") == 0) {
        section_reset(s);
        return;
    }
    if (strcmp(kw, "route") == 0 || strcmp(kw, "bad") == 0) {
        int is_route = kw[0] == 'r';
        if ((is_route && n != 4) || (!is_route && n < 4)) {
            fail("%s: malformed line: %s", where, orig);
            return;
        }
        if (unescape(&t[1]) || unescape(&t[2])) {
            fail("%s: bad escape: %s", where, orig);
            return;
        }
        void *handler = NULL;
        if (is_route) {
            if (s->num_ids == MAX_IDS) {
                fail("%s: too many ids", where);
                return;
            }
            s->ids[s->num_ids] = exact_copy(t[3].s, t[3].len + 1);
            s->num_ids++;
            handler = (void *)(uintptr_t)s->num_ids;
        }
        char *tmpl = exact_copy(t[2].s, t[2].len);
        const char *err = NULL;
        int rc = kk_router_add(s->r, t[1].s, t[1].len, tmpl, t[2].len, handler, &err);
        free(tmpl);
        if (is_route) {
            g_route_cases++;
            CHECK(rc == 0, "%s: route rejected (%s): %s", where, err ? err : "?", orig);
        } else {
            g_bad_cases++;
            const char *want = rest_after(orig, 3);
            CHECK(rc == -1 && err && strstr(err, want),
                  "%s: expected rejection containing \"%s\", got rc=%d err=\"%s\": %s",
                  where, want, rc, err ? err : "(null)", orig);
        }
        return;
    }
    if (strcmp(kw, "match") == 0) {
        if (n < 5 || strcmp(t[3].s, "->") != 0) {
            fail("%s: malformed line: %s", where, orig);
            return;
        }
        if (!s->frozen) {
            if (kk_router_freeze(s->r) != 0) {
                fail("%s: freeze failed", where);
                return;
            }
            s->frozen = 1;
        }
        if (unescape(&t[1]) || unescape(&t[2])) {
            fail("%s: bad escape: %s", where, orig);
            return;
        }
        g_match_cases++;
        kk_match m;
        memset(&m, 0xA5, sizeof m); /* garbage in: match must set what it returns */
        char *copy;
        int rc = do_match(s->r, t[1].s, t[1].len, t[2].s, t[2].len, &m, &copy, where);
        const char *want = t[4].s;
        if (strcmp(want, "404") == 0) {
            CHECK(rc == KK_ROUTE_NOT_FOUND, "%s: expected 404, got %d: %s", where, rc, orig);
        } else if (strcmp(want, "405") == 0) {
            const char *allow = rest_after(orig, 5);
            CHECK(rc == KK_ROUTE_METHOD_NOT_ALLOWED && m.allow && strcmp(m.allow, allow) == 0,
                  "%s: expected 405 Allow \"%s\", got rc=%d allow=\"%s\": %s", where, allow, rc,
                  rc == KK_ROUTE_METHOD_NOT_ALLOWED && m.allow ? m.allow : "", orig);
        } else if (rc != KK_ROUTE_FOUND) {
            fail("%s: expected %s, got rc=%d: %s", where, want, rc, orig);
        } else {
            uintptr_t h = (uintptr_t)m.handler;
            const char *got = h >= 1 && h <= (uintptr_t)s->num_ids ? s->ids[h - 1] : "(bad handler)";
            int ok = strcmp(got, want) == 0;
            size_t want_params = (size_t)(n - 5);
            if (ok && m.num_params != want_params) {
                ok = 0;
            }
            for (size_t i = 0; ok && i < want_params; i++) {
                tok *p = &t[5 + i];
                char *eq = memchr(p->s, '=', p->len);
                if (!eq) {
                    ok = 0;
                    break;
                }
                tok name = {p->s, (size_t)(eq - p->s)};
                tok value = {eq + 1, p->len - name.len - 1};
                if (unescape(&value)) {
                    ok = 0;
                    break;
                }
                ok = m.params[i].name_len == name.len &&
                     memcmp(m.params[i].name, name.s, name.len) == 0 &&
                     m.params[i].value_len == value.len &&
                     (value.len == 0 || memcmp(m.params[i].value, value.s, value.len) == 0);
            }
            if (ok) {
                g_passed++;
            } else {
                char buf[2048];
                size_t o = 0;
                for (size_t i = 0; i < m.num_params && i < KK_MAX_PARAMS && o < 1500; i++)
                    o += (size_t)snprintf(buf + o, sizeof buf - o, " %.*s=%.*s",
                                          (int)m.params[i].name_len, m.params[i].name,
                                          (int)m.params[i].value_len, m.params[i].value);
                buf[o] = 0;
                fail("%s: got %s%s: %s", where, got, buf, orig);
            }
        }
        free(copy);
        return;
    }
    fail("%s: unknown keyword: %s", where, orig);
}

/* qsort comparator for file names. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every *.txt file of dir in name order. Returns the number of files. */
static int run_vector_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fail("cannot open vector directory %s", dir);
        return 0;
    }
    char *names[256];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) && count < 256) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".txt") == 0)
            names[count++] = exact_copy(de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, name_cmp);
    for (int i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "r");
        if (!f) {
            fail("cannot open %s", path);
            continue;
        }
        section s = {0};
        section_reset(&s);
        char line[4096];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            size_t l = strlen(line);
            while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                line[--l] = '\0';
            char where[4200];
            snprintf(where, sizeof where, "%s:%d", names[i], lineno);
            run_line(&s, line, where);
        }
        fclose(f);
        kk_router_free(s.r);
        for (int k = 0; k < s.num_ids; k++)
            free(s.ids[k]);
        free(names[i]);
    }
    if (count == 0)
        fail("no vector files in %s", dir);
    return count;
}

/* ======================================================================== */
/* Checks written in C. */

#define S(x) x, sizeof(x) - 1

/* kk_router_add after freeze fails and changes nothing; match before freeze
 * finds nothing; a NULL err pointer is accepted. */
static void test_freeze_rules(void)
{
    kk_router *r = kk_router_new();
    kk_match m;
    const char *err = NULL;
    CHECK(kk_router_add(r, S("GET"), S("/a"), (void *)1, &err) == 0, "add /a");
    CHECK(kk_router_match(r, S("GET"), S("/a"), &m) == KK_ROUTE_NOT_FOUND,
          "match before freeze must be 404");
    CHECK(kk_router_add(r, S("GET"), S("/a"), (void *)2, NULL) == -1, "duplicate with NULL err");
    CHECK(kk_router_freeze(r) == 0, "freeze");
    CHECK(kk_router_freeze(r) == 0, "second freeze is a no-op");
    err = NULL;
    CHECK(kk_router_add(r, S("GET"), S("/b"), (void *)3, &err) == -1 && err &&
              strstr(err, "frozen"), "add after freeze must fail with 'frozen'");
    CHECK(kk_router_match(r, S("GET"), S("/b"), &m) == KK_ROUTE_NOT_FOUND,
          "route added after freeze must not match");
    CHECK(kk_router_match(r, S("GET"), S("/a"), &m) == KK_ROUTE_FOUND && m.handler == (void *)1,
          "first handler kept");
    CHECK(kk_router_match(r, S("GET"), "", 0, &m) == KK_ROUTE_NOT_FOUND, "empty path");
    CHECK(kk_router_match(r, S("GET"), S("a"), &m) == KK_ROUTE_NOT_FOUND, "relative path");
    CHECK(kk_router_match(r, S("GET"), S("*"), &m) == KK_ROUTE_NOT_FOUND, "asterisk path");
    kk_router_free(r);
    kk_router_free(NULL); /* must be a no-op */
    g_passed++;
}

/* kk_router_methods (the union for OPTIONS *) and kk_router_method_known (501 or not). */
static void test_known_methods(void)
{
    kk_router *r = kk_router_new();
    size_t len = 99;
    CHECK(strcmp(kk_router_methods(r, &len), "") == 0 && len == 0, "methods before freeze");
    CHECK(kk_router_method_known(r, S("GET")) == 1, "GET is standard even before freeze");
    CHECK(kk_router_method_known(r, S("PROPFIND")) == 0, "PROPFIND unknown before freeze");
    CHECK(kk_router_add(r, S("PROPFIND"), S("/a/{x}"), (void *)1, NULL) == 0, "add PROPFIND");
    CHECK(kk_router_add(r, S("POST"), S("/a"), (void *)2, NULL) == 0, "add POST");
    CHECK(kk_router_add(r, S("GET"), S("/b/{p:path}"), (void *)3, NULL) == 0, "add GET");
    CHECK(kk_router_add(r, S("PROPFIND"), S("/c"), (void *)4, NULL) == 0, "PROPFIND again");
    CHECK(kk_router_add(r, S("MKCOL"), S("/c"), (void *)5, NULL) == 0, "add MKCOL");
    CHECK(kk_router_add(r, S("PROP"), S("/d"), (void *)6, NULL) == 0, "add PROP");
    CHECK(kk_router_freeze(r) == 0, "freeze");
    const char *ms = kk_router_methods(r, &len);
    CHECK(strcmp(ms, "GET, HEAD, POST, PROPFIND, MKCOL, PROP") == 0 && len == strlen(ms),
          "methods union: \"%s\"", ms);
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                        "OPTIONS", "TRACE", "PATCH", "PROPFIND", "MKCOL", "PROP"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CHECK(kk_router_method_known(r, known[i], strlen(known[i])) == 1, "%s known", known[i]);
    static const char *const unknown[] = {"get", "FOO", "PROPFINDX", "PRO", "ROPFIND",
                                          "GETS", "", "HEAD, POST", "MKCOL, PROP"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK(kk_router_method_known(r, unknown[i], strlen(unknown[i])) == 0, "\"%s\" unknown",
              unknown[i]);
    kk_router_free(r);

    r = kk_router_new();
    CHECK(kk_router_freeze(r) == 0, "freeze empty");
    CHECK(strcmp(kk_router_methods(r, &len), "") == 0 && len == 0, "no routes: no methods");
    CHECK(kk_router_method_known(r, S("PUT")) == 1, "PUT standard with no routes");
    CHECK(kk_router_method_known(r, S("FOO")) == 0, "FOO unknown with no routes");
    kk_router_free(r);
}

/* kk_path_normalize: only percent-encoded unreserved characters are decoded. */
static void test_path_normalize(void)
{
    static const struct { const char *in, *out; } cases[] = {
        {"/sl%61sh", "/slash"},
        {"/%41%5A%61%7a%30%39", "/AZaz09"},
        {"/%2D%2e%5f%7E", "/-._~"},
        {"/a%2Fb", "/a%2Fb"},          /* "/" is reserved: a segment boundary must not appear */
        {"/a%20b%25c%3F", "/a%20b%25c%3F"},
        {"/%2541", "/%2541"},          /* "%25" stays, so "%41" is never formed */
        {"/%C3%A9", "/%C3%A9"},        /* bytes >= 0x80 are not unreserved */
        {"/x%6", "/x%6"},              /* truncated escapes are copied */
        {"/x%", "/x%"},
        {"/x%G1%1G", "/x%G1%1G"},
        {"%61", "a"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        size_t n = strlen(cases[i].in);
        memset(buf, 0, sizeof buf);
        size_t m = kk_path_normalize(buf, cases[i].in, n);
        CHECK(m <= n && m == strlen(cases[i].out) && memcmp(buf, cases[i].out, m) == 0,
              "normalize \"%s\" -> \"%.*s\", want \"%s\"", cases[i].in, (int)m, buf,
              cases[i].out);
    }
    /* Every byte value after '%', in both cases: decoded exactly when unreserved. */
    for (int c = 0; c < 256; c++) {
        int unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        for (int lower = 0; lower < 2; lower++) {
            char in[4], out[4];
            snprintf(in, sizeof in, lower ? "%%%02x" : "%%%02X", c);
            size_t m = kk_path_normalize(out, in, 3);
            CHECK(unreserved ? (m == 1 && (unsigned char)out[0] == c)
                             : (m == 3 && memcmp(out, in, 3) == 0), "escape %s", in);
        }
    }
}

/* Builds "/{p0}/{p1}/.../{p(n-1)}" or with static "s" segments into buf. */
static size_t deep_template(char *buf, int segs, int params)
{
    size_t o = 0;
    for (int i = 0; i < segs; i++)
        o += (size_t)(i < params ? sprintf(buf + o, "/{p%d}", i) : sprintf(buf + o, "/s"));
    return o;
}

/* Segment and parameter limits; request paths with thousands of '/'. */
static void test_limits_and_deep_paths(void)
{
    kk_router *r = kk_router_new();
    char t[2048];
    const char *err = NULL;
    size_t l = deep_template(t, KK_ROUTER_MAX_SEGMENTS, KK_MAX_PARAMS);
    CHECK(kk_router_add(r, S("GET"), t, l, (void *)1, &err) == 0, "max segments accepted: %s",
          err ? err : "");
    l = deep_template(t, KK_ROUTER_MAX_SEGMENTS + 1, 0);
    err = NULL;
    CHECK(kk_router_add(r, S("GET"), t, l, (void *)2, &err) == -1 && err &&
              strstr(err, "too many segments"), "too many segments rejected");
    l = deep_template(t, KK_MAX_PARAMS + 1, KK_MAX_PARAMS + 1);
    err = NULL;
    CHECK(kk_router_add(r, S("GET"), t, l, (void *)3, &err) == -1 && err &&
              strstr(err, "too many parameters"), "too many parameters rejected");
    /* Exactly KK_MAX_PARAMS with a catch-all last. */
    l = deep_template(t, KK_MAX_PARAMS - 1, KK_MAX_PARAMS - 1);
    l += (size_t)sprintf(t + l, "/{rest:path}");
    err = NULL;
    CHECK(kk_router_add(r, S("GET"), t, l, (void *)4, &err) == 0, "16 params with catch-all: %s",
          err ? err : "");
    CHECK(kk_router_add(r, S("GET"), S("/{all:path}"), (void *)5, &err) == 0, "root catch-all");
    CHECK(kk_router_freeze(r) == 0, "freeze");

    /* The 64-segment route matches its own path. */
    char p[8192];
    size_t pl = 0;
    for (int i = 0; i < KK_ROUTER_MAX_SEGMENTS; i++)
        pl += (size_t)(i < KK_MAX_PARAMS ? sprintf(p + pl, "/v%d", i) : sprintf(p + pl, "/s"));
    kk_match m;
    char *copy;
    int rc = do_match(r, S("GET"), p, pl, &m, &copy, "64-segment path");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)1 && m.num_params == KK_MAX_PARAMS &&
              m.params[15].value_len == 3 && memcmp(m.params[15].value, "v15", 3) == 0,
          "64-segment route");
    free(copy);

    /* 16 params via the catch-all route: 15 segments + rest with many slashes. */
    static char big[70000];
    pl = 0;
    for (int i = 0; i < KK_MAX_PARAMS - 1; i++)
        pl += (size_t)sprintf(big + pl, "/x");
    size_t rest_at = pl + 1;
    for (int i = 0; i < 20000; i++)
        big[pl++] = '/';
    rc = do_match(r, S("GET"), big, pl, &m, &copy, "slashes after 15 params");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)4 && m.num_params == KK_MAX_PARAMS &&
              m.params[15].value == copy + rest_at && m.params[15].value_len == 19999,
          "15 segments then 20000 slashes: the catch-all takes the empty segments");
    free(copy);
    pl = rest_at - 1;
    memcpy(big + pl, "/tail//more/", 12);
    pl += 12;
    rc = do_match(r, S("GET"), big, pl, &m, &copy, "catch-all after 15 params");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)4 && m.num_params == KK_MAX_PARAMS &&
              m.params[15].value_len == 11 && memcmp(m.params[15].value, "tail//more/", 11) == 0,
          "catch-all as 16th parameter");
    free(copy);
    /* 14 segments then slashes: "{p14}" cannot take an empty segment, so only
     * the root catch-all matches. */
    pl = 14 * 2;
    memset(big + pl, '/', 1000);
    pl += 1000;
    rc = do_match(r, S("GET"), big, pl, &m, &copy, "14 params then slashes");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)5 && m.num_params == 1 &&
              m.params[0].value_len == pl - 1, "empty segments never match {name}");
    free(copy);

    /* 30000 one-letter segments: deeper than the tree; the 15-parameter
     * catch-all route outranks the root catch-all. */
    pl = 0;
    for (int i = 0; i < 30000; i++) {
        big[pl++] = '/';
        big[pl++] = 'a';
    }
    rc = do_match(r, S("GET"), big, pl, &m, &copy, "30000 segments");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)4 && m.num_params == KK_MAX_PARAMS &&
              m.params[15].value_len == pl - 31, "30000 segments");
    free(copy);
    rc = do_match(r, S("POST"), big, pl, &m, &copy, "30000 segments POST");
    CHECK(rc == KK_ROUTE_METHOD_NOT_ALLOWED && strcmp(m.allow, "GET, HEAD") == 0,
          "30000 segments, wrong method: 405");
    free(copy);
    kk_router_free(r);

    /* Without a catch-all, a path of only slashes is simply 404. */
    r = kk_router_new();
    CHECK(kk_router_add(r, S("GET"), S("/{a}/{b}/{c}"), (void *)1, NULL) == 0, "add");
    kk_router_freeze(r);
    memset(big, '/', 65000);
    rc = do_match(r, S("GET"), big, 65000, &m, &copy, "65000 slashes");
    CHECK(rc == KK_ROUTE_NOT_FOUND, "65000 slashes: 404");
    free(copy);
    kk_router_free(r);
}

/* A table built to make naive backtracking exponential: every combination of
 * "a" and "{pN}" over DEPTH levels, each ending in "/end". A failing request
 * must visit each node at most once; the all-parameter route must still be
 * found for a path that only it matches. */
static void test_pathological_backtracking(void)
{
    enum { DEPTH = 12 };
    kk_router *r = kk_router_new();
    char t[512];
    int ok = 1;
    for (unsigned mask = 0; mask < (1u << DEPTH); mask++) {
        size_t o = 0;
        for (int i = 0; i < DEPTH; i++)
            o += (size_t)((mask >> i) & 1 ? sprintf(t + o, "/{p%d}", i) : sprintf(t + o, "/a"));
        o += (size_t)sprintf(t + o, "/end");
        const char *err;
        if (kk_router_add(r, S("GET"), t, o, (void *)(uintptr_t)(mask + 1), &err) != 0)
            ok = 0;
    }
    CHECK(ok, "pathological table built");
    kk_router_freeze(r);
    char p[512];
    size_t pl = 0;
    for (int i = 0; i < DEPTH; i++)
        pl += (size_t)sprintf(p + pl, "/a");
    memcpy(p + pl, "/nope", 5);
    kk_match m;
    char *copy;
    int rc = do_match(r, S("GET"), p, pl + 5, &m, &copy, "pathological miss");
    CHECK(rc == KK_ROUTE_NOT_FOUND, "pathological miss is 404");
    CHECK(kk_router_visits <= r->num_nodes && r->num_nodes < (1u << (DEPTH + 2)),
          "pathological miss visited %zu of %zu nodes", kk_router_visits, r->num_nodes);
    free(copy);
    memcpy(p + pl, "/end", 4);
    rc = do_match(r, S("GET"), p, pl + 4, &m, &copy, "pathological static hit");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)1 && m.num_params == 0,
          "all-static route wins");
    free(copy);
    /* "/b/a/a/.../end": only masks with bit 0 set match; the best is mask 1. */
    p[1] = 'b';
    rc = do_match(r, S("GET"), p, pl + 4, &m, &copy, "pathological param hit");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)2 && m.num_params == 1 &&
              m.params[0].value_len == 1 && m.params[0].value[0] == 'b',
          "first-level parameter route");
    free(copy);
    /* Every segment "b": only the all-parameter route. */
    for (int i = 0; i < DEPTH; i++)
        p[2 * i + 1] = 'b';
    rc = do_match(r, S("GET"), p, pl + 4, &m, &copy, "pathological all-param hit");
    CHECK(rc == KK_ROUTE_FOUND && m.handler == (void *)(uintptr_t)(1u << DEPTH) &&
              m.num_params == DEPTH && m.params[DEPTH - 1].name_len == 3 &&
              memcmp(m.params[DEPTH - 1].name, "p11", 3) == 0,
          "all-parameter route");
    free(copy);
    kk_router_free(r);
}

/* ------------------------------------------------------------------------ */
/* Randomized comparison with a naive reference matcher. */

#define REF_MAX_ROUTES 24
#define REF_MAX_SEGS 5

typedef struct {
    char tmpl[128]; size_t tmpl_len;
    const char *method;
    int kinds[REF_MAX_SEGS + 1];       /* 0 static, 1 param, 2 catch-all */
    char segs[REF_MAX_SEGS + 1][16];   /* static texts / param names */
    int nsegs;
    int accepted;                      /* reference's opinion */
} ref_route;

/* Deterministic xorshift generator: the same tables on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Same leaf: same kinds in the same places and the same static texts. */
static int ref_same_leaf(const ref_route *a, const ref_route *b)
{
    if (a->nsegs != b->nsegs)
        return 0;
    for (int i = 0; i < a->nsegs; i++) {
        if (a->kinds[i] != b->kinds[i])
            return 0;
        if (a->kinds[i] == 0 && strcmp(a->segs[i], b->segs[i]) != 0)
            return 0;
    }
    return 1;
}

/* Priority order of two routes that both match one path: <0 if a comes first. */
static int ref_priority(const ref_route *a, const ref_route *b)
{
    for (int i = 0; i < a->nsegs && i < b->nsegs; i++) {
        if (a->kinds[i] != b->kinds[i])
            return a->kinds[i] - b->kinds[i];
    }
    return 0;
}

/* Does route ro match path? Fills vals (start/len of each parameter). */
static int ref_matches(const ref_route *ro, const char *path, size_t len,
                       size_t vstart[], size_t vlen[])
{
    size_t pos = 1;
    int np = 0;
    for (int i = 0; i < ro->nsegs; i++) {
        if (pos > len)
            return 0;
        if (ro->kinds[i] == 2) {
            vstart[np] = pos;
            vlen[np++] = len - pos;
            return 1;
        }
        size_t end = pos;
        while (end < len && path[end] != '/')
            end++;
        size_t sl = end - pos;
        if (ro->kinds[i] == 0) {
            if (strlen(ro->segs[i]) != sl || memcmp(ro->segs[i], path + pos, sl) != 0)
                return 0;
        } else {
            if (sl == 0)
                return 0;
            vstart[np] = pos;
            vlen[np++] = sl;
        }
        if (i == ro->nsegs - 1)
            return end == len;
        pos = end + 1;
    }
    return 0;
}

/* Reference Allow string for the leaf of route `leaf`, built from scratch. */
static void ref_allow(const ref_route *routes, int n, const ref_route *leaf, char *out)
{
    static const char *order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    out[0] = 0;
    int has_get = 0;
    for (int i = 0; i < n; i++)
        if (routes[i].accepted && ref_same_leaf(&routes[i], leaf) && !strcmp(routes[i].method, "GET"))
            has_get = 1;
    for (int k = 0; k < 7; k++) {
        int bound = k == 1 && has_get;
        for (int i = 0; i < n; i++)
            if (routes[i].accepted && ref_same_leaf(&routes[i], leaf) &&
                !strcmp(routes[i].method, order[k]))
                bound = 1;
        if (bound) {
            if (out[0])
                strcat(out, ", ");
            strcat(out, order[k]);
        }
    }
    for (int i = 0; i < n; i++) {
        if (!routes[i].accepted || !ref_same_leaf(&routes[i], leaf))
            continue;
        int known = 0;
        for (int k = 0; k < 7; k++)
            known |= !strcmp(routes[i].method, order[k]);
        if (!known) {
            if (out[0])
                strcat(out, ", ");
            strcat(out, routes[i].method);
        }
    }
}

/* 400 random tables of up to 24 routes over a small alphabet, 60 random
 * requests each: router answers must equal the reference's. */
static void test_random_against_reference(void)
{
    static const char *statics[] = {"a", "b", "ab", "ba", "c", "x.json"};
    static const char *methods[] = {"GET", "HEAD", "POST", "DELETE", "PURGE", "get"};
    static const char *pstatics[] = {"a", "b", "ab", "ba", "c", "x.json", "", "zz", "a.b"};
    static const char *pmethods[] = {"GET", "HEAD", "POST", "DELETE", "PURGE", "get", "PUT"};
    int tables = 400, mismatches = 0;
    for (int tbl = 0; tbl < tables; tbl++) {
        ref_route routes[REF_MAX_ROUTES];
        int nr = 1 + (int)rnd(REF_MAX_ROUTES);
        kk_router *r = kk_router_new();
        for (int i = 0; i < nr; i++) {
            ref_route *ro = &routes[i];
            memset(ro, 0, sizeof *ro);
            ro->method = methods[rnd(6)];
            ro->nsegs = 1 + (int)rnd(REF_MAX_SEGS);
            size_t o = 0;
            char tb[128];
            for (int k = 0; k < ro->nsegs; k++) {
                int last = k == ro->nsegs - 1;
                unsigned pick = rnd(last ? 10 : 8);
                if (pick < 5) {
                    ro->kinds[k] = 0;
                    strcpy(ro->segs[k], statics[rnd(6)]);
                } else if (pick < 8) {
                    ro->kinds[k] = 1;
                    sprintf(ro->segs[k], "n%d_%u", k, rnd(3));
                } else if (pick == 8) {
                    ro->kinds[k] = 2;
                    sprintf(ro->segs[k], "rest%u", rnd(2));
                } else {
                    ro->kinds[k] = 0; /* trailing slash */
                    ro->segs[k][0] = 0;
                }
                if (ro->kinds[k] == 0)
                    o += (size_t)sprintf(tb + o, "/%s", ro->segs[k]);
                else if (ro->kinds[k] == 1)
                    o += (size_t)sprintf(tb + o, "/{%s}", ro->segs[k]);
                else
                    o += (size_t)sprintf(tb + o, "/{%s:path}", ro->segs[k]);
            }
            memcpy(ro->tmpl, tb, o + 1);
            ro->tmpl_len = o;
            ro->accepted = 1;
            for (int j = 0; j < i; j++)
                if (routes[j].accepted && ref_same_leaf(&routes[j], ro) &&
                    !strcmp(routes[j].method, ro->method))
                    ro->accepted = 0;
            const char *err = NULL;
            int rc = kk_router_add(r, ro->method, strlen(ro->method), ro->tmpl, ro->tmpl_len,
                                   (void *)(uintptr_t)(i + 1), &err);
            if ((rc == 0) != ro->accepted) {
                mismatches++;
                fail("random: add %s %s: rc=%d err=%s, reference says %d", ro->method, ro->tmpl,
                     rc, err ? err : "", ro->accepted);
            }
        }
        kk_router_freeze(r);
        for (int q = 0; q < 60; q++) {
            char path[128];
            size_t pl = 0;
            int ns = 1 + (int)rnd(REF_MAX_SEGS + 1);
            for (int k = 0; k < ns; k++)
                pl += (size_t)sprintf(path + pl, "/%s", pstatics[rnd(9)]);
            const char *method = pmethods[rnd(7)];
            size_t ml = strlen(method);
            /* Reference answer. */
            int best = -1, deny = -1;
            size_t vs[REF_MAX_SEGS + 1], vl[REF_MAX_SEGS + 1];
            int is_head = !strcmp(method, "HEAD");
            for (int i = 0; i < nr; i++) {
                if (!routes[i].accepted || !ref_matches(&routes[i], path, pl, vs, vl))
                    continue;
                int has = !strcmp(routes[i].method, method);
                if (!has && is_head && !strcmp(routes[i].method, "GET")) {
                    /* GET serves HEAD only where the leaf binds no HEAD. */
                    has = 1;
                    for (int j = 0; j < nr; j++)
                        if (routes[j].accepted && ref_same_leaf(&routes[j], &routes[i]) &&
                            !strcmp(routes[j].method, "HEAD"))
                            has = 0;
                }
                if (has && (best < 0 || ref_priority(&routes[i], &routes[best]) < 0))
                    best = i;
                if (!has && (deny < 0 || ref_priority(&routes[i], &routes[deny]) < 0))
                    deny = i;
            }
            kk_match m;
            char *copy;
            kk_router_visits = 0;
            int rc = do_match(r, method, ml, path, pl, &m, &copy, "random");
            int ok;
            if (best >= 0) {
                ref_matches(&routes[best], path, pl, vs, vl);
                int np = 0;
                for (int k = 0; k < routes[best].nsegs; k++)
                    np += routes[best].kinds[k] != 0;
                ok = rc == KK_ROUTE_FOUND && m.handler == (void *)(uintptr_t)(best + 1) &&
                     m.num_params == (size_t)np;
                for (int k = 0, pi = 0; ok && k < routes[best].nsegs; k++) {
                    if (routes[best].kinds[k] == 0)
                        continue;
                    ok = m.params[pi].value == copy + vs[pi] && m.params[pi].value_len == vl[pi] &&
                         m.params[pi].name_len == strlen(routes[best].segs[k]) &&
                         !memcmp(m.params[pi].name, routes[best].segs[k], m.params[pi].name_len);
                    pi++;
                }
            } else if (deny >= 0) {
                char allow[256];
                ref_allow(routes, nr, &routes[deny], allow);
                ok = rc == KK_ROUTE_METHOD_NOT_ALLOWED && !strcmp(m.allow, allow);
            } else {
                ok = rc == KK_ROUTE_NOT_FOUND;
            }
            if (ok) {
                g_passed++;
            } else if (mismatches++ < 10) {
                fail("random table %d: %s %.*s: rc=%d best=%d deny=%d", tbl, method, (int)pl, path,
                     rc, best, deny);
                for (int i = 0; i < nr; i++)
                    printf("    route %d %s %s%s\n", i + 1, routes[i].method, routes[i].tmpl,
                           routes[i].accepted ? "" : " (dup)");
            } else {
                g_failed++;
            }
            free(copy);
        }
        kk_router_free(r);
    }
}

/* ------------------------------------------------------------------------ */
/* Many threads matching on one frozen router. */

typedef struct {
    const char *method, *path;
    int rc;
    uintptr_t handler;
    const char *p0; /* expected first param value, or NULL */
    const char *allow;
} stress_case;

static const stress_case stress_cases[] = {
    {"GET", "/", KK_ROUTE_FOUND, 1, NULL, NULL},
    {"GET", "/users", KK_ROUTE_FOUND, 2, NULL, NULL},
    {"GET", "/users/42", KK_ROUTE_FOUND, 3, "42", NULL},
    {"DELETE", "/users/7", KK_ROUTE_FOUND, 4, "7", NULL},
    {"GET", "/users/42/posts", KK_ROUTE_FOUND, 5, "42", NULL},
    {"GET", "/users/me", KK_ROUTE_FOUND, 6, NULL, NULL},
    {"HEAD", "/users/me", KK_ROUTE_FOUND, 6, NULL, NULL},
    {"PUT", "/users/9", KK_ROUTE_METHOD_NOT_ALLOWED, 0, NULL, "GET, HEAD, DELETE"},
    {"GET", "/static/css/site.css", KK_ROUTE_FOUND, 7, "css/site.css", NULL},
    {"GET", "/static/", KK_ROUTE_FOUND, 7, "", NULL},
    {"GET", "/nope", KK_ROUTE_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/items", KK_ROUTE_FOUND, 8, NULL, NULL},
    {"GET", "/items", KK_ROUTE_METHOD_NOT_ALLOWED, 0, NULL, "POST"},
    {"GET", "/items/5/tags/x", KK_ROUTE_FOUND, 9, "5", NULL},
};

typedef struct {
    const kk_router *r;
    int seed;
    long bad;
} stress_arg;

/* Runs 100k matches from the case table, counting wrong answers in a->bad. */
static void *stress_thread(void *p)
{
    stress_arg *a = p;
    size_t n = sizeof stress_cases / sizeof stress_cases[0];
    for (long i = 0; i < 100000; i++) {
        const stress_case *c = &stress_cases[(size_t)(i + a->seed) % n];
        kk_match m;
        int rc = kk_router_match(a->r, c->method, strlen(c->method), c->path, strlen(c->path), &m);
        int ok = rc == c->rc;
        if (ok && rc == KK_ROUTE_FOUND) {
            ok = (uintptr_t)m.handler == c->handler;
            if (ok && c->p0)
                ok = m.num_params >= 1 && m.params[0].value_len == strlen(c->p0) &&
                     memcmp(m.params[0].value, c->p0, m.params[0].value_len) == 0;
        }
        if (ok && rc == KK_ROUTE_METHOD_NOT_ALLOWED)
            ok = strcmp(m.allow, c->allow) == 0;
        if (!ok)
            a->bad++;
    }
    return NULL;
}

/* 4 threads x 100k matches on one frozen router; every answer checked. */
static void test_threads(void)
{
    static const struct { const char *m, *t; } tbl[] = {
        {"GET", "/"}, {"GET", "/users"}, {"GET", "/users/{id}"}, {"DELETE", "/users/{uid}"},
        {"GET", "/users/{user_id}/posts"}, {"GET", "/users/me"}, {"GET", "/static/{p:path}"},
        {"POST", "/items"}, {"GET", "/items/{item_id}/tags/{tag}"},
    };
    kk_router *r = kk_router_new();
    for (size_t i = 0; i < sizeof tbl / sizeof tbl[0]; i++)
        CHECK(kk_router_add(r, tbl[i].m, strlen(tbl[i].m), tbl[i].t, strlen(tbl[i].t),
                            (void *)(uintptr_t)(i + 1), NULL) == 0, "stress add %s", tbl[i].t);
    kk_router_freeze(r);
    enum { NT = 4 };
    pthread_t th[NT];
    stress_arg args[NT];
    int started[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (stress_arg){r, i * 3, 0};
        started[i] = pthread_create(&th[i], NULL, stress_thread, &args[i]) == 0;
    }
    for (int i = 0; i < NT; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        CHECK(started[i] && args[i].bad == 0, "thread %d: started=%d, %ld wrong results", i,
              started[i], args[i].bad);
    }
    kk_router_free(r);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    int files = run_vector_dir(argv[1]);
    printf("vectors: %d files, %d route, %d bad, %d match lines\n", files, g_route_cases,
           g_bad_cases, g_match_cases);
    test_freeze_rules();
    test_known_methods();
    test_path_normalize();
    test_limits_and_deep_paths();
    test_pathological_backtracking();
    test_random_against_reference();
    test_threads();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
