/* fuzz_router.c: libFuzzer harness for src/_karak/router.c.
 *
 * Build and run: make -f tests/c/router.mk fuzz-router   (clang, libclang-rt)
 *
 * Input: lines "METHOD TEMPLATE" up to the first empty line are added as
 * routes (rejections are fine), the lines after it are "METHOD PATH"
 * requests. Each request is matched on an exact-size heap copy of the path,
 * and the answer is checked against the routes themselves, one by one:
 *   FOUND: the route returned really matches the path, with those values;
 *   405:   some accepted route matches the path, none with this method
 *          (nor GET for HEAD);
 *   404:   no accepted route matches the path at all;
 * plus the invariants of every match (spans inside the path, visits bounded
 * by the tree size). Any violation aborts.
 */
#define KK_ROUTER_COUNT_VISITS 1
#include "../../src/_karak/router.c"

#include <stdio.h>

#define FZ_MAX_ROUTES 64

typedef struct {
    const char *method; size_t method_len;
    const char *tmpl; size_t tmpl_len;
} fz_route;

/* Does template t match path p? Fills values (start, len) in order. A plain
 * segment-by-segment reading of the rules, independent of the tree. */
static int tmpl_matches(const char *t, size_t tl, const char *p, size_t pl,
                        size_t *vs, size_t *vl, size_t *nv, size_t *ns)
{
    size_t ti = 1, pi = 1;
    *nv = 0;
    if (pl == 0 || p[0] != '/')
        return 0;
    for (;;) {
        size_t te = ti, pe = pi;
        while (te < tl && t[te] != '/')
            te++;
        if (pi > pl)
            return 0;
        while (pe < pl && p[pe] != '/')
            pe++;
        int tlast = te == tl, plast = pe == pl;
        if (te > ti && t[ti] == '{') {
            ns[*nv] = ti + 1;
            if (memchr(t + ti, ':', te - ti)) { /* catch-all: the rest */
                vs[*nv] = pi;
                vl[(*nv)++] = pl - pi;
                return 1;
            }
            if (pe == pi)
                return 0;
            vs[*nv] = pi;
            vl[(*nv)++] = pe - pi;
        } else if (te - ti != pe - pi || memcmp(t + ti, p + pi, te - ti) != 0) {
            return 0;
        }
        if (tlast || plast)
            return tlast && plast;
        ti = te + 1;
        pi = pe + 1;
    }
}

/* 1 if the two byte strings are equal. */
static int same(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *s = (const char *)data;
    kk_router *r = kk_router_new();
    if (!r)
        return 0;
    fz_route routes[FZ_MAX_ROUTES];
    size_t nr = 0, pos = 0;
    int in_routes = 1;
    while (pos < size) {
        const char *nl = memchr(s + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - s) : size;
        const char *line = s + pos;
        size_t len = end - pos;
        pos = end + 1;
        if (in_routes && len == 0) {
            in_routes = 0;
            if (kk_router_freeze(r) != 0)
                abort();
            continue;
        }
        const char *sp = memchr(line, ' ', len);
        if (!sp)
            continue;
        size_t ml = (size_t)(sp - line);
        const char *rest = sp + 1;
        size_t rl = len - ml - 1;
        if (in_routes) {
            if (nr == FZ_MAX_ROUTES)
                continue;
            const char *err = NULL;
            if (kk_router_add(r, line, ml, rest, rl, (void *)(uintptr_t)(nr + 1), &err) == 0)
                routes[nr++] = (fz_route){line, ml, rest, rl};
            else if (!err)
                abort();
            continue;
        }
        char *path = malloc(rl ? rl : 1);
        if (!path)
            break;
        memcpy(path, rest, rl);
        kk_match m;
        kk_router_visits = 0;
        int rc = kk_router_match(r, line, ml, path, rl, &m);
        if (kk_router_visits > r->num_nodes)
            abort();
        size_t vs[KK_MAX_PARAMS + 1], vl[KK_MAX_PARAMS + 1], ns[KK_MAX_PARAMS + 1], nv;
        int is_head = same(line, ml, "HEAD", 4);
        if (rc == KK_ROUTE_FOUND) {
            uintptr_t h = (uintptr_t)m.handler;
            if (h < 1 || h > nr)
                abort();
            const fz_route *ro = &routes[h - 1];
            if (!same(ro->method, ro->method_len, line, ml) &&
                !(is_head && same(ro->method, ro->method_len, "GET", 3)))
                abort();
            if (!tmpl_matches(ro->tmpl, ro->tmpl_len, path, rl, vs, vl, &nv, ns) || nv != m.num_params)
                abort();
            for (size_t i = 0; i < nv; i++) {
                if (m.params[i].value != path + vs[i] || m.params[i].value_len != vl[i])
                    abort();
                size_t nl = m.params[i].name_len;
                if (ns[i] + nl >= ro->tmpl_len || memcmp(m.params[i].name, ro->tmpl + ns[i], nl) ||
                    (ro->tmpl[ns[i] + nl] != '}' && ro->tmpl[ns[i] + nl] != ':'))
                    abort();
            }
        } else {
            int any = 0;
            for (size_t i = 0; i < nr; i++) {
                if (!tmpl_matches(routes[i].tmpl, routes[i].tmpl_len, path, rl, vs, vl, &nv, ns))
                    continue;
                any = 1;
                if (same(routes[i].method, routes[i].method_len, line, ml) ||
                    (is_head && same(routes[i].method, routes[i].method_len, "GET", 3)))
                    abort(); /* a full match exists */
            }
            if ((rc == KK_ROUTE_METHOD_NOT_ALLOWED) != any)
                abort();
            if (rc == KK_ROUTE_METHOD_NOT_ALLOWED && (!m.allow || strlen(m.allow) != m.allow_len))
                abort();
        }
        free(path);
    }
    kk_router_free(r);
    return 0;
}
