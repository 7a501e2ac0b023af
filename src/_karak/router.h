/* router.h: radix-tree router. Pure C (no CPython header).
 *
 * Lifetime and threads: built by one thread (kk_router_add), then frozen
 * (kk_router_freeze); after that only kk_router_match is called, from any
 * number of threads at once, with no lock: nothing is written after freeze.
 *
 * Templates: "/", "/items", "/items/{item_id}", "/files/{rest:path}".
 * A parameter is a whole segment "{name}" (matches one non-empty segment)
 * or, as the last segment only, "{name:path}" (matches the rest of the path,
 * slashes included, possibly empty: "/files/{p:path}" matches "/files/" with
 * p="" but not "/files"). Static segments win over parameters, parameters
 * over "{name:path}"; matching backtracks when a branch fails deeper down.
 * "/items" and "/items/" are different routes; an empty segment ("//") never
 * matches "{name}". A template has at most 64 segments.
 * Paths are matched byte for byte as sent (no percent-decoding: the caller
 * decodes parameter values).
 */
#ifndef KK_ROUTER_H
#define KK_ROUTER_H

#include <stddef.h>

#define KK_MAX_PARAMS 16

typedef struct kk_router kk_router;

typedef struct {
    const char *name;  size_t name_len;  /* owned by the router, valid while it lives */
    const char *value; size_t value_len; /* span into the path given to kk_router_match */
} kk_param;

typedef struct {
    void *handler;                       /* the pointer given to kk_router_add */
    kk_param params[KK_MAX_PARAMS];
    size_t num_params;
    const char *allow; size_t allow_len; /* on 405: "GET, HEAD, POST" (owned by the router,
                                            NUL-terminated); NULL otherwise */
} kk_match;

enum { KK_ROUTE_NOT_FOUND = 0, KK_ROUTE_FOUND = 1, KK_ROUTE_METHOD_NOT_ALLOWED = 2 };

kk_router *kk_router_new(void);                 /* NULL on out-of-memory */
void kk_router_free(kk_router *r);              /* never touches handler pointers */

/* Adds method + template -> handler. Returns 0, or -1 with *err (may be NULL)
 * set to a static reason: bad template (not starting with "/", "//", control
 * byte, '?', '#', braces), parameter not a whole segment, bad name or converter,
 * ":path" not last, duplicate parameter name, same method already bound to an
 * equivalent template ("duplicate route": same static segments, parameters in
 * the same places whatever their names), too many parameters or segments,
 * method not an HTTP token, router frozen, out of memory. A rejected route
 * leaves the router unchanged. Methods are compared case-sensitively. */
int kk_router_add(kk_router *r, const char *method, size_t method_len,
                  const char *tmpl, size_t tmpl_len, void *handler,
                  const char **err);

/* Freezes the router (builds the Allow strings). Returns 0 or -1 (out of memory). */
int kk_router_freeze(kk_router *r);

/* 1 if method is one the server knows: a standard method (RFC 9110 section 9,
 * PATCH from RFC 5789) or one bound to any route; else 0 (answer 501, RFC 9110
 * 15.6.2). Case-sensitive, like every method comparison. Read-only after freeze. */
int kk_router_method_known(const kk_router *r, const char *method, size_t method_len);

/* Every method bound to any route, in Allow's order with HEAD implied by GET
 * ("GET, HEAD, POST"); "" before freeze or with no routes. Owned by the router,
 * NUL-terminated; *len gets its length. */
const char *kk_router_methods(const kk_router *r, size_t *len);

/* Matches a request. HEAD falls back to the GET handler when no HEAD route is
 * bound; Allow lists HEAD wherever GET is bound. Returns KK_ROUTE_FOUND (m->handler,
 * m->params set), KK_ROUTE_METHOD_NOT_ALLOWED (m->allow set) or KK_ROUTE_NOT_FOUND.
 * A full match through any branch beats a 405; a 405 lists the methods of the
 * best-ranked route whose template matched the path (order: GET, HEAD, POST, PUT,
 * PATCH, DELETE, OPTIONS, then others as added). Allocates nothing and writes
 * only *m: safe from any number of threads at once on a frozen router. Before
 * kk_router_freeze it returns KK_ROUTE_NOT_FOUND. */
int kk_router_match(const kk_router *r, const char *method, size_t method_len,
                    const char *path, size_t path_len, kk_match *m);

/* Writes to dst (room for n bytes) the path src[0..n) with every percent-encoded
 * unreserved character (ALPHA, DIGIT, "-", ".", "_", "~") decoded: "/sl%61sh" and
 * "/slash" are the same path (RFC 3986 6.2.2.2), so they match the same route. Any
 * other "%XX" ("%2F", "%20", "%25") stays as it is, so a segment boundary or a
 * parameter's bytes never change meaning. Returns the new length (at most n). */
size_t kk_path_normalize(char *dst, const char *src, size_t n);

#endif
