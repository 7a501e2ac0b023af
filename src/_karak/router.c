/* router.c: radix-tree router (see router.h for the contract). Pure C.
 *
 * Shape. The tree has one level per path segment. A template is split on "/"
 * after its leading "/", so "/" is one empty segment, "/items" is ["items"]
 * and "/items/" is ["items", ""] (the trailing slash is an empty last
 * segment: "/items" and "/items/" are different leaves). A node has:
 *   - static children, one per distinct segment text, kept sorted by
 *     (first byte, length, bytes): a lookup compares one byte and one length
 *     before any memcmp, and switches from a scan to a binary search when a
 *     node has many children;
 *   - at most one parameter child ("{name}", any non-empty segment);
 *   - at most one catch-all child ("{name:path}", the rest of the path);
 *   - the routes bound there: (method, handler, parameter names) entries.
 * Parameter names belong to the entry, not to the node, so "/users/{id}" and
 * "/users/{user_id}/posts" share the parameter node and keep their own names.
 *
 * Matching is a depth-first search in priority order, static > parameter >
 * catch-all at every level, with backtracking. Each tree node sits at one
 * depth and each depth consumes one fixed segment of the request path, so a
 * match visits every tree node at most once: the work is bounded by the size
 * of the tree, never exponential. The search runs on an explicit fixed-size
 * stack (templates have at most KK_ROUTER_MAX_SEGMENTS segments, so a
 * request path with thousands of "/" cannot go deeper than the tree).
 *
 * The first leaf (in priority order) that has the method, or GET for a HEAD
 * request, is the answer. If none has it, the first leaf that matched the
 * path but not the method gives the 405 and its Allow string, which lists
 * that leaf's methods only (not a union over every leaf the path matches).
 *
 * "/files/{p:path}" matches "/files/" (p="") and "/files/a/b" (p="a/b") but
 * not "/files": the catch-all takes the place of a segment, so the "/" before
 * it is required (as in Starlette). Empty segments ("//") never match a
 * "{name}"; a catch-all takes them verbatim ("/files//x" gives p="/x").
 * Templates may not contain an empty segment except the last one ("/a//b" is
 * rejected): such a route could never be told apart from a typo.
 */
#include "router.h"
#include "parse.h" /* kk_hexval */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Most segments one template may have (and so the depth of the tree and of
 * the match stack). */
#define KK_ROUTER_MAX_SEGMENTS 64

/* Nodes with more static children than this are searched by bisection. */
#define KK_ROUTER_SCAN_MAX 8

/* Test hook: a test may define KK_ROUTER_COUNT_VISITS before including this
 * file to count the nodes each match visits (thread-local, test builds only). */
#ifdef KK_ROUTER_COUNT_VISITS
static _Thread_local size_t kk_router_visits;
#define KK_VISIT() (kk_router_visits++)
#else
#define KK_VISIT() ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* Types. Every struct below is written only by the thread that builds the
 * router (kk_router_add, kk_router_freeze) and is immutable after freeze;
 * kk_router_match only reads it. */

typedef struct {
    const char *name; size_t len;   /* span into the entry's tmpl copy */
} kk_rname;

typedef struct {
    char *method; size_t method_len; /* owned */
    void *handler;                   /* the caller's, never dereferenced */
    char *tmpl; size_t tmpl_len;     /* owned copy of the template */
    kk_rname *names;                 /* owned array of num_names spans into tmpl */
    size_t num_names;                /* equals the number of parameters on the path to the leaf */
} kk_rentry;

typedef struct kk_rnode kk_rnode;

typedef struct {
    unsigned char first;             /* text[0], or 0 when len == 0 */
    size_t len;
    const char *text;                /* == child->seg */
    kk_rnode *child;                 /* owned */
} kk_redge;

struct kk_rnode {
    kk_redge *edges; size_t num_edges, cap_edges; /* static children, sorted (edge_cmp) */
    kk_rnode *param;                 /* "{name}" child, owned, or NULL */
    kk_rnode *catchall;              /* "{name:path}" child (a leaf), owned, or NULL */
    kk_rentry *entries; size_t num_entries, cap_entries; /* insertion order */
    char *seg; size_t seg_len;       /* static segment text, owned (static nodes only) */
    char *allow; size_t allow_len;   /* built by freeze when num_entries > 0, owned */
    int has_children;                /* edges, param or catch-all present (set by freeze) */
};

struct kk_router {
    kk_rnode root;                   /* the node before the first segment */
    size_t num_nodes;                /* for tests: bound on nodes visited per match */
    int frozen;
    char *methods; size_t methods_len; /* built by freeze: every bound method, owned */
};

/* One parsed template segment (kk_router_add only). */
enum { SEG_STATIC, SEG_PARAM, SEG_CATCHALL };
typedef struct {
    int kind;
    const char *text; size_t len;    /* static text, or the parameter name */
} kk_rseg;

/* ------------------------------------------------------------------------ */
/* Small helpers. */

/* 1 if c may appear in an HTTP method (RFC 9110 tchar), else 0. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* 1 if c may start a parameter name ([A-Za-z_]), else 0. */
static int is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* 1 if c may continue a parameter name ([A-Za-z0-9_]), else 0. */
static int is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Orders edges by (first byte, length, bytes). Returns <0, 0 or >0. */
static int edge_key_cmp(unsigned char first, size_t len, const char *text,
                        const kk_redge *e)
{
    if (first != e->first)
        return first < e->first ? -1 : 1;
    if (len != e->len)
        return len < e->len ? -1 : 1;
    return len ? memcmp(text, e->text, len) : 0;
}

/* Returns the static child of n whose text is seg[0..len), or NULL. */
static kk_rnode *find_static(const kk_rnode *n, const char *seg, size_t len)
{
    unsigned char first = len ? (unsigned char)seg[0] : 0;
    const kk_redge *e = n->edges;
    size_t count = n->num_edges;
    if (count <= KK_ROUTER_SCAN_MAX) {
        for (size_t i = 0; i < count; i++) {
            if (e[i].first == first && e[i].len == len &&
                (len == 0 || memcmp(e[i].text, seg, len) == 0))
                return e[i].child;
        }
        return NULL;
    }
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = edge_key_cmp(first, len, seg, &e[mid]);
        if (c == 0)
            return e[mid].child;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Returns the entry of leaf n for this method, falling back from HEAD to GET;
 * NULL when n binds neither. */
static const kk_rentry *find_entry(const kk_rnode *n, const char *method, size_t len)
{
    const kk_rentry *get = NULL;
    int is_head = len == 4 && memcmp(method, "HEAD", 4) == 0;
    for (size_t i = 0; i < n->num_entries; i++) {
        const kk_rentry *e = &n->entries[i];
        if (e->method_len == len && memcmp(e->method, method, len) == 0)
            return e;
        if (is_head && e->method_len == 3 && memcmp(e->method, "GET", 3) == 0)
            get = e;
    }
    return get;
}

/* Frees node n's contents and children (not n itself). */
static void node_clear(kk_rnode *n)
{
    for (size_t i = 0; i < n->num_edges; i++) {
        node_clear(n->edges[i].child);
        free(n->edges[i].child);
    }
    if (n->param) {
        node_clear(n->param);
        free(n->param);
    }
    if (n->catchall) {
        node_clear(n->catchall);
        free(n->catchall);
    }
    for (size_t i = 0; i < n->num_entries; i++) {
        free(n->entries[i].method);
        free(n->entries[i].tmpl);
        free(n->entries[i].names);
    }
    free(n->edges);
    free(n->entries);
    free(n->seg);
    free(n->allow);
}

/* ------------------------------------------------------------------------ */
/* Lifetime. */

kk_router *kk_router_new(void)
{
    kk_router *r = calloc(1, sizeof *r);
    if (r)
        r->num_nodes = 1;
    return r;
}

/* Frees the router and everything it owns. The tree's depth is bounded by
 * KK_ROUTER_MAX_SEGMENTS, so the recursion in node_clear is too. */
void kk_router_free(kk_router *r)
{
    if (!r)
        return;
    node_clear(&r->root);
    free(r->methods);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* Adding routes. */

/* Splits and checks tmpl into segs (at most KK_ROUTER_MAX_SEGMENTS). Returns
 * the number of segments, or -1 with *err set. Reads only tmpl[0..len). */
static int parse_template(const char *tmpl, size_t len, kk_rseg *segs,
                          size_t *num_params, const char **err)
{
    if (len == 0 || tmpl[0] != '/') {
        *err = "template must start with '/'";
        return -1;
    }
    int n = 0;
    size_t params = 0;
    size_t pos = 1;
    for (;;) {
        size_t end = pos;
        while (end < len && tmpl[end] != '/')
            end++;
        const char *s = tmpl + pos;
        size_t slen = end - pos;
        int last = end == len;
        if (n == KK_ROUTER_MAX_SEGMENTS) {
            *err = "too many segments in template";
            return -1;
        }
        if (slen == 0 && !last) {
            *err = "empty segment in template ('//')";
            return -1;
        }
        size_t opens = 0, closes = 0;
        for (size_t i = 0; i < slen; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c <= 0x20 || c == 0x7f || c == '?' || c == '#') {
                *err = "invalid character in template";
                return -1;
            }
            opens += c == '{';
            closes += c == '}';
        }
        kk_rseg *g = &segs[n];
        if (opens == 0 && closes == 0) {
            g->kind = SEG_STATIC;
            g->text = s;
            g->len = slen;
        } else {
            if (opens != closes) {
                *err = "unbalanced braces in template";
                return -1;
            }
            if (opens != 1 || s[0] != '{' || s[slen - 1] != '}') {
                /* Balanced but not "{...}" exactly: "x{a}", "{a}.json", "{a}{b}", "}a{". */
                for (size_t i = 0, depth = 0; i < slen; i++) {
                    if (s[i] == '{' && ++depth > 1) {
                        *err = "nested braces in template";
                        return -1;
                    }
                    if (s[i] == '}' && depth-- == 0) {
                        *err = "unbalanced braces in template";
                        return -1;
                    }
                }
                *err = "parameter must be a whole segment";
                return -1;
            }
            const char *name = s + 1;
            size_t inner = slen - 2;
            const char *colon = memchr(name, ':', inner);
            size_t name_len = colon ? (size_t)(colon - name) : inner;
            if (name_len == 0) {
                *err = "empty parameter name";
                return -1;
            }
            if (!is_ident_start((unsigned char)name[0])) {
                *err = "parameter name is not an identifier";
                return -1;
            }
            for (size_t i = 1; i < name_len; i++) {
                if (!is_ident_char((unsigned char)name[i])) {
                    *err = "parameter name is not an identifier";
                    return -1;
                }
            }
            g->text = name;
            g->len = name_len;
            g->kind = SEG_PARAM;
            if (colon) {
                size_t conv_len = inner - name_len - 1;
                if (conv_len != 4 || memcmp(colon + 1, "path", 4) != 0) {
                    *err = "unknown converter (only ':path' is supported)";
                    return -1;
                }
                if (!last) {
                    *err = "':path' parameter must be the last segment";
                    return -1;
                }
                g->kind = SEG_CATCHALL;
            }
            for (int j = 0; j < n; j++) {
                if (segs[j].kind != SEG_STATIC && segs[j].len == name_len &&
                    memcmp(segs[j].text, name, name_len) == 0) {
                    *err = "duplicate parameter name";
                    return -1;
                }
            }
            if (++params > KK_MAX_PARAMS) {
                *err = "too many parameters (KK_MAX_PARAMS)";
                return -1;
            }
        }
        n++;
        if (last)
            break;
        pos = end + 1;
    }
    *num_params = params;
    return n;
}

/* Returns the child of n that segment g leads to, or NULL when it does not
 * exist yet. */
static kk_rnode *child_for(const kk_rnode *n, const kk_rseg *g)
{
    if (g->kind == SEG_PARAM)
        return n->param;
    if (g->kind == SEG_CATCHALL)
        return n->catchall;
    return find_static(n, g->text, g->len);
}

/* Returns the child of n for segment g, creating it if needed; NULL on
 * out-of-memory (n is left as it was). */
static kk_rnode *child_make(kk_router *r, kk_rnode *n, const kk_rseg *g)
{
    kk_rnode *c = child_for(n, g);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (g->kind == SEG_PARAM) {
        n->param = c;
    } else if (g->kind == SEG_CATCHALL) {
        n->catchall = c;
    } else {
        if (n->num_edges == n->cap_edges) {
            size_t cap = n->cap_edges ? 2 * n->cap_edges : 4;
            kk_redge *e = realloc(n->edges, cap * sizeof *e);
            if (!e) {
                free(c);
                return NULL;
            }
            n->edges = e;
            n->cap_edges = cap;
        }
        c->seg = malloc(g->len ? g->len : 1);
        if (!c->seg) {
            free(c);
            return NULL;
        }
        if (g->len)
            memcpy(c->seg, g->text, g->len);
        c->seg_len = g->len;
        unsigned char first = g->len ? (unsigned char)g->text[0] : 0;
        size_t at = 0;
        while (at < n->num_edges && edge_key_cmp(first, g->len, g->text, &n->edges[at]) > 0)
            at++;
        memmove(&n->edges[at + 1], &n->edges[at], (n->num_edges - at) * sizeof *n->edges);
        n->edges[at] = (kk_redge){first, g->len, c->seg, c};
        n->num_edges++;
    }
    r->num_nodes++;
    return c;
}

/* Adds method + template -> handler (see router.h). The template is checked
 * whole and the duplicate check done before the tree is touched, so a
 * rejected route leaves the router as it was (out-of-memory may leave empty
 * nodes behind, which match nothing). */
int kk_router_add(kk_router *r, const char *method, size_t method_len,
                  const char *tmpl, size_t tmpl_len, void *handler,
                  const char **err)
{
    const char *dummy;
    if (!err)
        err = &dummy;
    if (r->frozen) {
        *err = "router is frozen";
        return -1;
    }
    if (method_len == 0) {
        *err = "empty method";
        return -1;
    }
    for (size_t i = 0; i < method_len; i++) {
        if (!is_tchar((unsigned char)method[i])) {
            *err = "method is not an HTTP token";
            return -1;
        }
    }
    kk_rseg segs[KK_ROUTER_MAX_SEGMENTS];
    size_t num_params = 0;
    int num_segs = parse_template(tmpl, tmpl_len, segs, &num_params, err);
    if (num_segs < 0)
        return -1;

    /* Duplicate check without creating anything. */
    const kk_rnode *walk = &r->root;
    for (int i = 0; i < num_segs && walk; i++)
        walk = child_for(walk, &segs[i]);
    if (walk) {
        for (size_t i = 0; i < walk->num_entries; i++) {
            if (walk->entries[i].method_len == method_len &&
                memcmp(walk->entries[i].method, method, method_len) == 0) {
                *err = "duplicate route (same method, equivalent template)";
                return -1;
            }
        }
    }

    /* Build the entry first, so the tree only changes when all memory is there. */
    kk_rentry e = {0};
    e.method = malloc(method_len);
    e.tmpl = malloc(tmpl_len);
    e.names = malloc((num_params ? num_params : 1) * sizeof *e.names);
    if (!e.method || !e.tmpl || !e.names)
        goto oom;
    memcpy(e.method, method, method_len);
    e.method_len = method_len;
    memcpy(e.tmpl, tmpl, tmpl_len);
    e.tmpl_len = tmpl_len;
    e.handler = handler;
    for (int i = 0; i < num_segs; i++) {
        if (segs[i].kind != SEG_STATIC) {
            e.names[e.num_names].name = e.tmpl + (segs[i].text - tmpl);
            e.names[e.num_names].len = segs[i].len;
            e.num_names++;
        }
    }

    kk_rnode *n = &r->root;
    for (int i = 0; i < num_segs; i++) {
        n = child_make(r, n, &segs[i]);
        if (!n)
            goto oom;
    }
    if (n->num_entries == n->cap_entries) {
        size_t cap = n->cap_entries ? 2 * n->cap_entries : 2;
        kk_rentry *a = realloc(n->entries, cap * sizeof *a);
        if (!a)
            goto oom;
        n->entries = a;
        n->cap_entries = cap;
    }
    n->entries[n->num_entries++] = e;
    return 0;

oom:
    free(e.method);
    free(e.tmpl);
    free(e.names);
    *err = "out of memory";
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Freezing. */

/* The methods Allow lists first, in this order; others follow in insertion order. */
static const char *const kk_allow_order[] = {"GET", "HEAD", "POST", "PUT", "PATCH",
                                             "DELETE", "OPTIONS"};
#define KK_ALLOW_KNOWN (sizeof kk_allow_order / sizeof kk_allow_order[0])

/* Index of method m in names[0..count), or -1. */
static int method_index(const char *const *names, size_t count, const char *m, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], m, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Index of method in kk_allow_order, or -1. */
static int known_method(const char *m, size_t len)
{
    return method_index(kk_allow_order, KK_ALLOW_KNOWN, m, len);
}

/* 1 if m is one of the names in list[0..len) ("A, B, C", or the same with a
 * trailing ", "), else 0. */
static int method_in_list(const char *list, size_t len, const char *m, size_t mlen)
{
    size_t pos = 0;
    while (pos < len) {
        const char *comma = memchr(list + pos, ',', len - pos);
        size_t end = comma ? (size_t)(comma - list) : len;
        if (end - pos == mlen && memcmp(list + pos, m, mlen) == 0)
            return 1;
        pos = end + 2; /* past ", " */
    }
    return 0;
}

/* Adds the methods of n's entries: those in kk_allow_order to bound[], the
 * others to s[*len..) once each, each followed by ", " (s NULL: only counts
 * their bytes into *len). */
static void node_methods(const kk_rnode *n, int *bound, char *s, size_t *len)
{
    for (size_t i = 0; i < n->num_entries; i++) {
        const kk_rentry *e = &n->entries[i];
        int k = known_method(e->method, e->method_len);
        if (k >= 0) {
            bound[k] = 1;
        } else if (!s) {
            *len += e->method_len + 2;
        } else if (!method_in_list(s, *len, e->method, e->method_len)) {
            memcpy(s + *len, e->method, e->method_len);
            memcpy(s + *len + e->method_len, ", ", 2);
            *len += e->method_len + 2;
        }
    }
}

/* node_methods over n and its whole subtree. */
static void tree_methods(const kk_rnode *n, int *bound, char *s, size_t *len)
{
    node_methods(n, bound, s, len);
    for (size_t i = 0; i < n->num_edges; i++)
        tree_methods(n->edges[i].child, bound, s, len);
    if (n->param)
        tree_methods(n->param, bound, s, len);
    if (n->catchall)
        tree_methods(n->catchall, bound, s, len);
}

typedef void (*kk_collect_fn)(const kk_rnode *, int *, char *, size_t *);

/* The methods collect finds from n, as Allow lists them: those of kk_allow_order
 * in its order (HEAD implied by GET), then the others in the order found
 * ("GET, HEAD, POST, PROPFIND"). A malloc'd NUL-terminated string (*len its
 * length), or NULL when out of memory. */
static char *method_list(kk_collect_fn collect, const kk_rnode *n, size_t *len)
{
    int bound[KK_ALLOW_KNOWN] = {0};
    size_t others = 0;
    collect(n, bound, NULL, &others);
    size_t size = others + 1;
    for (size_t k = 0; k < KK_ALLOW_KNOWN; k++)
        size += strlen(kk_allow_order[k]) + 2;
    char *s = malloc(size);
    if (!s)
        return NULL;
    if (bound[0])
        bound[1] = 1;
    size_t known = 0, tail = 0;
    for (size_t k = 0; k < KK_ALLOW_KNOWN; k++) {
        if (!bound[k])
            continue;
        size_t ml = strlen(kk_allow_order[k]);
        memcpy(s + known, kk_allow_order[k], ml);
        memcpy(s + known + ml, ", ", 2);
        known += ml + 2;
    }
    collect(n, bound, s + known, &tail);
    *len = known + tail >= 2 ? known + tail - 2 : 0; /* without the last ", " */
    s[*len] = '\0';
    return s;
}

/* Builds n->allow ("GET, HEAD, POST") from n's entries. Returns 0 or -1 (out of memory). */
static int build_allow(kk_rnode *n)
{
    size_t len;
    char *s = method_list(node_methods, n, &len);
    if (!s)
        return -1;
    free(n->allow);
    n->allow = s;
    n->allow_len = len;
    return 0;
}

/* Builds the Allow strings and child flags of n and its subtree. */
static int freeze_node(kk_rnode *n)
{
    n->has_children = n->num_edges || n->param || n->catchall;
    if (n->num_entries && build_allow(n) < 0)
        return -1;
    for (size_t i = 0; i < n->num_edges; i++) {
        if (freeze_node(n->edges[i].child) < 0)
            return -1;
    }
    if (n->param && freeze_node(n->param) < 0)
        return -1;
    if (n->catchall && freeze_node(n->catchall) < 0)
        return -1;
    return 0;
}

/* Freezes the router: builds every Allow string; afterwards kk_router_add
 * fails and kk_router_match may run. Returns 0, or -1 on out-of-memory (the
 * router then stays unfrozen; calling it again may succeed). */
/* Builds r->methods: every route's methods (method_list over the tree).
 * Returns 0 or -1 (out of memory). */
static int build_methods(kk_router *r)
{
    size_t len;
    char *s = method_list(tree_methods, &r->root, &len);
    if (!s)
        return -1;
    free(r->methods);
    r->methods = s;
    r->methods_len = len;
    return 0;
}

int kk_router_freeze(kk_router *r)
{
    if (r->frozen)
        return 0;
    if (freeze_node(&r->root) < 0 || build_methods(r) < 0)
        return -1;
    r->frozen = 1;
    return 0;
}

/* The methods of RFC 9110 section 9 and RFC 5789 that kk_allow_order lacks:
 * with it, the methods a server is expected to know. */
static const char *const kk_other_standard[] = {"CONNECT", "TRACE"};

int kk_router_method_known(const kk_router *r, const char *method, size_t method_len)
{
    return known_method(method, method_len) >= 0 ||
           method_index(kk_other_standard, 2, method, method_len) >= 0 ||
           (r->frozen && method_in_list(r->methods, r->methods_len, method, method_len));
}

const char *kk_router_methods(const kk_router *r, size_t *len)
{
    *len = r->frozen ? r->methods_len : 0;
    return r->frozen ? r->methods : "";
}

/* ------------------------------------------------------------------------ */
/* Matching. */

/* One level of the depth-first search: node n is to consume the request
 * segment path[pos..end). */
typedef struct {
    const kk_rnode *n;
    size_t pos, end;
    unsigned stage;        /* next branch to try: 0 static, 1 param, 2 catch-all, 3 done */
    unsigned num_params;   /* parameters captured above this level */
} kk_rframe;

/* Returns the end of the segment starting at pos (the next '/' or len). */
static inline size_t seg_end(const char *path, size_t pos, size_t len)
{
    const char *slash = pos < len ? memchr(path + pos, '/', len - pos) : NULL;
    return slash ? (size_t)(slash - path) : len;
}

/* Fills m from entry e: handler and parameter names (values are already set). */
static int found(kk_match *m, const kk_rentry *e, size_t num_params)
{
    m->handler = e->handler;
    m->num_params = num_params;
    for (size_t i = 0; i < num_params; i++) {
        m->params[i].name = e->names[i].name;
        m->params[i].name_len = e->names[i].len;
    }
    return KK_ROUTE_FOUND;
}

/* Matches method + path (see router.h). Thread safety: reads the frozen tree
 * and writes only *m and its own stack: it allocates nothing and writes
 * nothing shared, so any number of threads may call it at once on the same
 * frozen router with no lock. Before kk_router_freeze it returns
 * KK_ROUTE_NOT_FOUND. On KK_ROUTE_NOT_FOUND m->handler is NULL and
 * m->num_params 0; the contents of m->params beyond num_params are undefined. */
int kk_router_match(const kk_router *r, const char *method, size_t method_len,
                    const char *path, size_t path_len, kk_match *m)
{
    m->handler = NULL;
    m->num_params = 0;
    m->allow = NULL;
    m->allow_len = 0;
    if (!r->frozen || path_len == 0 || path[0] != '/')
        return KK_ROUTE_NOT_FOUND;

    kk_rframe st[KK_ROUTER_MAX_SEGMENTS + 1];
    const kk_rnode *deny = NULL; /* first leaf that matched the path, not the method */
    int sp = 0;
    st[0] = (kk_rframe){&r->root, 1, seg_end(path, 1, path_len), 0, 0};
    KK_VISIT();
    while (sp >= 0) {
        kk_rframe *f = &st[sp];
        const kk_rnode *next = NULL;
        unsigned np = f->num_params;
        size_t slen = f->end - f->pos;
        switch (f->stage) {
        case 0:
            f->stage = 1;
            if (f->n->num_edges)
                next = find_static(f->n, path + f->pos, slen);
            break;
        case 1:
            f->stage = 2;
            if (f->n->param && slen) {
                next = f->n->param;
                m->params[np].value = path + f->pos;
                m->params[np].value_len = slen;
                np++;
            }
            break;
        case 2:
            f->stage = 3;
            if (f->n->catchall) {
                const kk_rnode *leaf = f->n->catchall;
                KK_VISIT();
                const kk_rentry *e = find_entry(leaf, method, method_len);
                if (e) {
                    m->params[np].value = path + f->pos;
                    m->params[np].value_len = path_len - f->pos;
                    return found(m, e, np + 1);
                }
                if (leaf->num_entries && !deny)
                    deny = leaf;
            }
            continue;
        default:
            sp--;
            continue;
        }
        if (!next)
            continue;
        KK_VISIT();
        if (f->end == path_len) {
            /* The path ends with this segment: next is the candidate leaf. */
            const kk_rentry *e = find_entry(next, method, method_len);
            if (e)
                return found(m, e, np);
            if (next->num_entries && !deny)
                deny = next;
            continue;
        }
        /* More path to come: descend if next has anywhere to go. The tree is
         * at most KK_ROUTER_MAX_SEGMENTS deep, so the stack cannot overflow;
         * the check only keeps that obvious. */
        if (!next->has_children || sp + 1 > KK_ROUTER_MAX_SEGMENTS)
            continue;
        size_t pos = f->end + 1;
        st[++sp] = (kk_rframe){next, pos, seg_end(path, pos, path_len), 0, np};
    }
    if (deny) {
        m->allow = deny->allow;
        m->allow_len = deny->allow_len;
        return KK_ROUTE_METHOD_NOT_ALLOWED;
    }
    return KK_ROUTE_NOT_FOUND;
}

size_t kk_path_normalize(char *dst, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '%' && n - i >= 3) {
            int h = kk_hexval((unsigned char)src[i + 1]);
            int l = kk_hexval((unsigned char)src[i + 2]);
            if (h >= 0 && l >= 0) {
                unsigned char c = (unsigned char)(h * 16 + l);
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
                    dst[o++] = (char)c;
                    i += 2;
                    continue;
                }
            }
        }
        dst[o++] = src[i];
    }
    return o;
}
