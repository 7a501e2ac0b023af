/* conn.c: one connection's life: read -> parse -> route -> serve -> write ->
 * keep-alive, pipelining in order, chunked bodies, 100-continue, errors.
 *
 * Everything here runs on the worker that holds the connection (EPOLLONESHOT,
 * or the one worker of Server(workers=1): server.h),
 * detached from the interpreter except while a handler's plan runs.
 *
 * Deferred writes. Each send() of an answer to an idle client wakes the
 * client's thread, and on a virtual machine that wake-up (an inter-processor
 * interrupt) costs more than the rest of a small request. So a worker does not
 * write an answer at once: it keeps the answer in w->out, keeps holding the
 * connection, and serves the next ready connection; the answers then go out
 * back to back, one wake-up covering several. They are written when no other
 * connection is ready (the worker polls with a zero timeout while answers
 * wait), when the oldest has waited KK_DEFER_US, when KK_BATCH_MAX are
 * waiting, when they reach KK_OUT_HIGH bytes, and before any handler that is
 * not trusted to be fast: one whose last call took over KK_SLOW_US, or that
 * has not made KK_FAST_STREAK fast calls (at most KK_SLOW_US) since it was new
 * or since a call blocked (over KK_BLOCK_US). An answer therefore waits at most
 * about KK_DEFER_US plus one call of a handler whose recent calls were fast: a
 * new route, or one that blocked lately (a cache miss, a lock), does not hold
 * other clients' answers. Once a call since the worker's last poll was slow,
 * answers are written as soon as they are made: their clients have waited
 * already, and an answer held past the next poll makes its client miss the
 * next round of service (server.c, the worker loop).
 */
#include "server.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KK_DRAIN_MAX (256 * 1024) /* bytes discarded after an error before closing */
#define KK_DRAIN_MS 2000          /* time allowed for that */
#define KK_OUT_HIGH (256 * 1024)  /* answers buffered before pipelined requests wait */

uint64_t kk_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t kk_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Re-arms c for `events` (EPOLLIN or EPOLLOUT). The caller gives c up: from
 * here another worker may hold it. A lone worker's registration is resident
 * (server.h): it is changed only when the events differ. Returns 0 or -errno. */
int kk_conn_arm(ServerObject *srv, kk_conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events | kk_conn_flags(srv, events), .data.ptr = c};
    int fd = c->fd;
    int resident = srv->lone && c->armed == events;
    if (srv->lone) c->armed = events; /* the lone worker's own field */
    /* c's last access by this worker: the release of the hand-off (server.h). */
    atomic_store_explicit(&c->busy, 0, memory_order_release);
    if (resident) return 0;
#ifdef KK_TSAN
    /* Under TSan the re-arm bypasses its epoll_ctl interceptor, which would
     * check this fd against the close() by the worker that takes c next: an
     * order the kernel gives (server.h, kk_conn_take) and TSan cannot see. */
    if (syscall(SYS_epoll_ctl, srv->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0) return -errno;
#else
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0) return -errno;
#endif
    return 0;
}

/* Unlinks, closes and frees c. The caller holds c (busy). */
void kk_conn_close(ServerObject *srv, kk_conn *c) {
    pthread_mutex_lock(&srv->lock);
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&srv->lock);
    /* A resident registration outlives close() while another process shares
     * the socket (a fork that has not exec'd): remove it first, so that no
     * event ever names the freed connection. */
    if (srv->lone) epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    kk_buf_free(&c->in);
    kk_buf_free(&c->out);
    free(c);
    long left = atomic_fetch_sub(&srv->live, 1) - 1;
    /* Below the connection limit again: accept again. */
    if (atomic_load(&srv->listener_paused) && (srv->max_conns == 0 || left < srv->max_conns))
        kk_listener_resume(srv);
}

/* Writes as much of buf as the socket takes. Returns bytes written, or -1 on a
 * hard error (connection gone). */
static ssize_t write_some(int fd, const char *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    return (ssize_t)done;
}

/* Appends an engine answer (no Python) for status with {"detail": reason}. */
static void emit_error(kk_worker *w, int status, const char *reason, int flags) {
    char body[256];
    const char *r = reason && *reason ? reason : kk_reason_phrase(status);
    /* reasons are static ASCII text without quotes or backslashes */
    int n = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", r);
    if (n < 0 || (size_t)n >= sizeof body) n = 0;
    kk_emit_simple(&w->out, &w->date, status, NULL, body, (size_t)n, flags);
}

/* FastAPI's redirect_slashes: a path no route matches, which some route would
 * match with its trailing '/' added or removed (any method: a 405 there counts,
 * as in Starlette), gets 307 to that path, query kept, with a path-absolute
 * Location (RFC 9110 10.2.2) so that no Host header is echoed. "/" is never
 * redirected, nor a path starting "//" or "/\": as a Location that would be a
 * reference to another host (an open redirect; browsers read "/\" as "//").
 * Returns 1 when it appended the redirect, 0 to go on to 404. */
static int redirect_slash(kk_worker *w, const kk_request *req, const char *path, size_t n,
                          int flags) {
    if (!w->srv->redirect_slashes || n <= 1 || path[1] == '/' || path[1] == '\\')
        return 0;
    int drop = path[n - 1] == '/';
    size_t alt_len = drop ? n - 1 : n + 1;
    size_t qlen = req->query ? req->query_len + 1 : 0;
    static const char pre[] = "Location: ";
    char *h = malloc(sizeof pre - 1 + alt_len + qlen + 3);
    if (!h) return 0;
    char *alt = h + sizeof pre - 1;
    memcpy(h, pre, sizeof pre - 1);
    memcpy(alt, path, drop ? n - 1 : n);
    if (!drop) alt[n] = '/';
    kk_match m;
    int r = kk_router_match(w->srv->router, req->method, req->method_len, alt, alt_len, &m);
    if (r == KK_ROUTE_NOT_FOUND) {
        free(h);
        return 0;
    }
    char *end = alt + alt_len;
    if (req->query) {
        *end++ = '?';
        memcpy(end, req->query, req->query_len);
        end += req->query_len;
    }
    memcpy(end, "\r\n", 3); /* with its NUL */
    kk_emit_simple(&w->out, &w->date, 307, h, NULL, 0, flags);
    free(h);
    return 1;
}

/* Routes the request by path[0..path_len) (req's own path, or its normalized
 * copy: serve_one) and appends its response. */
static void serve_routed(kk_worker *w, kk_conn *c, const kk_request *req, const char *path,
                         size_t path_len, const char *body, size_t body_len, int flags) {
    ServerObject *srv = w->srv;
    kk_match m;
    if (req->path_len == 1 && req->path[0] == '*') {
        /* OPTIONS * (the parser allows "*" with OPTIONS only): every method some
         * route is bound to. */
        size_t ml;
        const char *methods = kk_router_methods(srv->router, &ml);
        char allow[1024];
        int n = snprintf(allow, sizeof allow, "Allow: %s\r\n", methods);
        kk_emit_simple(&w->out, &w->date, 200,
                       (ml && n > 0 && (size_t)n < sizeof allow) ? allow : NULL, NULL, 0, flags);
        return;
    }
    if (!kk_router_method_known(srv->router, req->method, req->method_len)) {
        /* A method no route has and HTTP does not define ("FOO", "get"): 501,
         * not 405, as RFC 9110 15.6.2 asks. The request was read whole, so the
         * connection stays usable. */
        static const char ni[] = "{\"detail\":\"Not Implemented\"}";
        kk_emit_simple(&w->out, &w->date, 501, NULL, ni, sizeof ni - 1, flags);
        return;
    }
    int r = kk_router_match(srv->router, req->method, req->method_len, path, path_len, &m);
    if (r == KK_ROUTE_NOT_FOUND) {
        if (redirect_slash(w, req, path, path_len, flags)) return;
        static const char nf[] = "{\"detail\":\"Not Found\"}";
        kk_emit_simple(&w->out, &w->date, 404, NULL, nf, sizeof nf - 1, flags);
        return;
    }
    if (r == KK_ROUTE_METHOD_NOT_ALLOWED) {
        static const char na[] = "{\"detail\":\"Method Not Allowed\"}";
        char allow[512];
        int n = snprintf(allow, sizeof allow, "Allow: %.*s\r\n", (int)m.allow_len, m.allow);
        kk_emit_simple(&w->out, &w->date, 405, (n > 0 && (size_t)n < sizeof allow) ? allow : NULL,
                       na, sizeof na - 1, flags);
        return;
    }
    PlanObject *plan = (PlanObject *)m.handler;
    int streak = atomic_load_explicit(&plan->fast_streak, memory_order_relaxed);
    if (w->npend && streak < KK_FAST_STREAK)
        kk_conn_flush_batch(w); /* answers wait only for a handler known to be fast */
    uint64_t t0 = kk_now_us();
    kk_pool_handler_begin(w, t0);
    kk_attach(w);
    PyObject *depv[64];
    Py_ssize_t ndeps = plan->deps ? PyTuple_GET_SIZE(plan->deps) : 0;
    PyObject **dep_values = ndeps <= 64 ? depv : PyMem_Calloc((size_t)ndeps, sizeof(PyObject *));
    if (!dep_values) {
        kk_detach(w);
        kk_pool_handler_end(w);
        emit_error(w, 500, "Internal Server Error", flags);
        return;
    }
    for (Py_ssize_t i = 0; i < ndeps && dep_values == depv; i++) depv[i] = NULL;
    kk_ctx ctx = {.st = srv->st, .req = req, .body = body, .body_len = body_len, .match = &m,
                  .dep_values = dep_values, .deps = plan->deps, .stopping = &srv->stopping};
    if (kk_plan_serve(plan, &ctx, &w->out, &w->scratch, &w->date, flags) < 0) {
        PyErr_Clear();
        emit_error(w, 500, "Internal Server Error", flags | KK_EMIT_CLOSE);
        c->closing = 1;
    }
    if (ctx.flags_used & KK_EMIT_CLOSE) c->closing = 1;
    for (Py_ssize_t i = 0; i < ndeps; i++) Py_XDECREF(dep_values[i]);
    if (dep_values != depv) PyMem_Free(dep_values);
    Py_XDECREF(ctx.request);
    Py_XDECREF(ctx.errors);
    Py_XDECREF(ctx.gens);
    Py_XDECREF(ctx.body_obj);
    kk_detach(w);
    kk_pool_handler_end(w);
    w->now_us = kk_now_us();
    /* The hint (karak.h, PlanObject.fast_streak): a call that blocked starts
     * the count again; a merely slow one makes only the next call untrusted. */
    uint64_t took = w->now_us - t0;
    if (took > KK_SLOW_US) w->slow = 1;
    int next = streak < KK_FAST_STREAK ? streak + 1 : KK_FAST_STREAK;
    if (took > KK_BLOCK_US) next = 0;
    else if (took > KK_SLOW_US) next = streak < KK_FAST_STREAK ? streak : KK_FAST_STREAK - 1;
    if (next != streak) atomic_store_explicit(&plan->fast_streak, next, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->served, 1, memory_order_relaxed);
}

/* The request is complete in data[0..total): route it and append its response.
 * A path with percent-encoded unreserved characters ("/sl%61sh") is routed as
 * their decoded form ("/slash", router.h: kk_path_normalize), as Starlette
 * routes the decoded path; the copy lives until the answer is made, because
 * the path parameters' spans point into it. Request.path stays the client's. */
static void serve_one(kk_worker *w, kk_conn *c, const kk_request *req, const char *body,
                      size_t body_len, int flags) {
    if (req->path_len > 3 && memchr(req->path, '%', req->path_len)) {
        char *norm = malloc(req->path_len);
        if (!norm) {
            emit_error(w, 500, "Internal Server Error", flags);
            return;
        }
        size_t n = kk_path_normalize(norm, req->path, req->path_len);
        if (n != req->path_len) {
            serve_routed(w, c, req, norm, n, body, body_len, flags);
            free(norm);
            return;
        }
        free(norm);
    }
    serve_routed(w, c, req, req->path, req->path_len, body, body_len, flags);
}

/* Queues "100 Continue" once, before the body is read: behind this
 * connection's earlier answers (pipelined requests) in w->out, never before
 * them. */
static void send_continue(kk_worker *w, kk_conn *c) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->sent_continue) return;
    c->sent_continue = 1;
    (void)kk_buf_append(&w->out, cont, sizeof cont - 1); /* no memory: the client sends anyway */
}

/* Is the partial request at data[0..len) certainly still incomplete, from
 * what the last reads learnt of it (kk_conn.part_*)? Then it is not parsed
 * again. Its head is parsed anew only when its end (CRLF CRLF) has arrived,
 * when the buffer has doubled since the last parse (so that malformed heads
 * are still refused early, at O(n) total cost), or beyond the head limits. */
static int still_partial(kk_conn *c, const char *data, size_t len, const kk_parse_limits *lim) {
    if (c->part_need) return len < c->part_need;
    if (!c->part_parsed) return 0;
    if (len >= 2 * c->part_parsed || len > lim->max_request_line + lim->max_head) return 0;
    size_t from = c->part_scanned > 3 ? c->part_scanned - 3 : 0;
    if (from < len && memmem(data + from, len - from, "\r\n\r\n", 4)) return 0;
    c->part_scanned = len;
    return 1;
}

static void part_reset(kk_conn *c) {
    c->part_need = c->part_head = c->part_parsed = c->part_scanned = 0;
    c->body_start_ms = 0;
}

static int parse_head(kk_worker *w, const char *data, size_t len, kk_request *req) {
    atomic_fetch_add_explicit(&w->srv->heads_parsed, 1, memory_order_relaxed);
    return kk_parse_request(data, len, req, w->headers, w->headers_cap, &w->srv->limits);
}

/* Serves every complete request in data[0..*len). Returns the offset of the
 * first byte not consumed (the start of a partial request). *len may shrink
 * when a chunked body is decoded in place. Sets c->closing on errors and on
 * requests after which the connection must close. A partial request is left
 * at the returned offset with c->part_* describing it (relative to it). */
static size_t process(kk_worker *w, kk_conn *c, char *data, size_t *lenp) {
    ServerObject *srv = w->srv;
    size_t off = 0, len = *lenp;
    /* Above KK_OUT_HIGH bytes of answers, the rest of a pipelined batch waits
     * until the client has read them: a few small requests must not buy
     * megabytes of server memory. */
    while (off < len && !c->closing && w->out.len - w->out_base < KK_OUT_HIGH) {
        kk_request req;
        size_t head;
        int decoding = off == 0 && c->chunk_active; /* head parsed when its body began */
        if (decoding) {
            head = c->part_head;
        } else {
            if (off == 0 && still_partial(c, data, len, &srv->limits)) break;
            int r = parse_head(w, data + off, len - off, &req);
            if (r == -2) {
                c->part_parsed = c->part_scanned = len - off;
                break;
            }
            if (r < 0) {
                emit_error(w, req.status, req.reason, KK_EMIT_CLOSE);
                c->closing = 1;
                off = len;
                break;
            }
            head = (size_t)r;
        }
        const char *body = NULL;
        size_t body_len = 0, total = head;
        if (!decoding && req.body_kind == KK_BODY_LENGTH) {
            if (len - off - head < req.content_length) {
                if (req.expect_continue && req.minor_version == 1) send_continue(w, c);
                c->part_need = head + (size_t)req.content_length;
                c->part_head = head;
                break;
            }
            body = data + off + head;
            body_len = (size_t)req.content_length;
            total = head + body_len;
        } else if (decoding || req.body_kind == KK_BODY_CHUNKED) {
            if (!c->chunk_active) {
                kk_chunked_init(&c->ck, srv->limits.max_body);
                c->chunk_active = 1;
                c->chunk_decoded = 0;
            }
            size_t raw = off + head + c->chunk_decoded;
            size_t n = len - raw;
            long rest = kk_chunked_decode(&c->ck, data + raw, &n);
            if (rest == -1) {
                emit_error(w, c->ck.status, c->ck.reason, KK_EMIT_CLOSE);
                c->closing = 1;
                c->chunk_active = 0;
                off = len;
                break;
            }
            c->chunk_decoded += n;
            if (rest == -2) {
                len = raw + n; /* the decoded bytes end the buffer now */
                if (!decoding && req.expect_continue && req.minor_version == 1) send_continue(w, c);
                c->part_head = head;
                break;
            }
            len = raw + n + (size_t)rest;
            c->chunk_active = 0;
            if (decoding) {
                /* The body is whole: the head (untouched by decoding) once more,
                 * for the request's spans. */
                int r = parse_head(w, data + off, head, &req);
                if (r != (int)head) {
                    emit_error(w, 400, "Bad Request", KK_EMIT_CLOSE);
                    c->closing = 1;
                    off = len;
                    break;
                }
            }
            body = data + off + head;
            body_len = c->chunk_decoded;
            total = head + body_len;
        }
        part_reset(c);
        c->nreq++;
        int flags = 0;
        if (!req.keep_alive || atomic_load(&srv->stopping) ||
            (srv->max_requests && c->nreq >= (unsigned long)srv->max_requests)) {
            flags |= KK_EMIT_CLOSE;
            c->closing = 1;
        } else if (req.minor_version == 0) {
            flags |= KK_EMIT_KEEPALIVE10;
        }
        if (req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0) flags |= KK_EMIT_HEAD_ONLY;
        serve_one(w, c, &req, body, body_len, flags);
        c->sent_continue = 0;
        off += total;
    }
    *lenp = len;
    return off;
}

/* Writes data[0..len) to c; what the socket does not take moves to c->out.
 * Returns 0 when all was written, 1 when some is pending, -1 when the peer is
 * gone. */
static int write_or_keep(kk_conn *c, const char *data, size_t len) {
    if (len == 0) return 0;
    ssize_t n = write_some(c->fd, data, len);
    if (n < 0) return -1;
    if ((size_t)n < len) {
        c->out.len = 0;
        c->out_off = 0;
        if (kk_buf_append(&c->out, data + n, len - (size_t)n) < 0) return -1;
        return 1;
    }
    return 0;
}

/* Writes c's answers (w->out from out_base) now. Same returns as
 * write_or_keep. */
static int flush(kk_worker *w, kk_conn *c) {
    int r = write_or_keep(c, w->out.data + w->out_base, w->out.len - w->out_base);
    w->out.len = w->out_base;
    return r;
}

/* Hands the connection back: half-close after an error, or wait for the next
 * request with the right deadline. */
static void park(kk_worker *w, kk_conn *c) {
    ServerObject *srv = w->srv;
    uint64_t now = kk_now_ms();
    atomic_store(&c->idle, !c->closing && c->in.len == 0);
    if (c->closing) {
        if (!c->draining) {
            /* Stop reading requests, half-close so the client sees the answer,
             * then discard what it still sends for a short while. */
            shutdown(c->fd, SHUT_WR);
            c->draining = 1;
            c->drained = 0;
            kk_buf_free(&c->in);
            atomic_store(&c->deadline_ms, now + KK_DRAIN_MS);
        }
    } else if (c->in.len == 0) {
        c->head_start_ms = 0;
        atomic_store(&c->deadline_ms, now + srv->keepalive_timeout_ms);
        if (c->in.cap > 16 * 1024) kk_buf_free(&c->in);
    } else if (c->chunk_active || c->head_start_ms == 0) {
        atomic_store(&c->deadline_ms, now + srv->body_timeout_ms);
    } else {
        atomic_store(&c->deadline_ms, c->head_start_ms + srv->header_timeout_ms);
    }
    if (kk_conn_arm(srv, c, EPOLLIN) < 0) kk_conn_close(srv, c);
}

/* Parks c after its answers were written, or arms it for output when the
 * socket did not take them all; f is write_or_keep's result. */
static void after_write(kk_worker *w, kk_conn *c, int f) {
    ServerObject *srv = w->srv;
    if (f < 0) {
        kk_conn_close(srv, c);
    } else if (f > 0) {
        atomic_store(&c->idle, 0);
        atomic_store(&c->deadline_ms, kk_now_ms() + srv->body_timeout_ms);
        if (kk_conn_arm(srv, c, EPOLLOUT) < 0) kk_conn_close(srv, c);
    } else {
        park(w, c);
    }
}

static size_t max_buffer(const ServerObject *srv) {
    return srv->limits.max_request_line + srv->limits.max_head + (size_t)srv->limits.max_body +
           2 * KK_RBUF_SIZE;
}

/* Is the body on its way at in[0] (its head complete, part_head bytes, and
 * `have` bytes buffered in all) arriving slower than min_body_rate? As
 * Apache's mod_reqtimeout MinRate: a body has body_rate_grace, plus one
 * second for every min_body_rate bytes it has sent, counted from when its
 * head was complete. Checked as bytes arrive; a client that sends nothing at
 * all is closed by body_timeout (the sweeper) instead. */
static int body_too_slow(const ServerObject *srv, const kk_conn *c, size_t have, uint64_t now) {
    if (!srv->min_body_rate || !c->body_start_ms || now <= c->body_start_ms) return 0;
    uint64_t sent = have > c->part_head ? have - c->part_head : 0;
    uint64_t allowed = srv->body_rate_grace_ms + sent * 1000 / (uint64_t)srv->min_body_rate;
    return now - c->body_start_ms > allowed;
}

/* Serves the complete requests in data[0..len) (the connection's own buffer
 * when own, else the worker's), keeps the partial rest in c->in, writes the
 * answers, and hands the connection back: armed for output when the socket is
 * full, else parked for the next request. Requests held back by KK_OUT_HIGH
 * are served as soon as their predecessors' answers are written. */
static void serve_loop(kk_worker *w, kk_conn *c, char *data, size_t len, int own) {
    ServerObject *srv = w->srv;
    for (;;) {
        size_t end = len;
        size_t off = process(w, c, data, &end);
        size_t left = c->closing ? 0 : end - off;
        if (left && (c->part_need || c->chunk_active)) { /* a body is on its way */
            uint64_t now = w->now_us / 1000;
            if (!c->body_start_ms) c->body_start_ms = now;
            if (body_too_slow(srv, c, left, now)) {
                /* 408 after the answers of the requests before it, then close. */
                emit_error(w, 408, "request body arrived slower than min_body_rate",
                           KK_EMIT_CLOSE);
                c->closing = 1;
                c->chunk_active = 0;
                part_reset(c);
                left = 0;
            }
        }
        if (own) {
            if (off && left) memmove(c->in.data, c->in.data + off, left);
            c->in.len = left;
        } else if (left) {
            c->in.len = 0;
            if (kk_buf_append(&c->in, data + off, left) < 0) {
                kk_conn_close(srv, c);
                return;
            }
        }
        if (left == 0) c->head_start_ms = 0;
        else if (off) c->head_start_ms = kk_now_ms(); /* a new request started */
        if (left && c->part_need)
            c->head_start_ms = 0; /* waiting for a Content-Length body: idle timeout applies */
        int held_back = w->out.len - w->out_base >= KK_OUT_HIGH && left > 0;
        if (!held_back && w->out.len > w->out_base && w->out.len < KK_OUT_HIGH) {
            /* Deferred write (top of file): c stays held until the batch is written. */
            if (w->npend == 0) w->pend_since_us = w->now_us;
            w->pend[w->npend++] = (kk_pending){c, w->out_base, w->out.len - w->out_base};
            w->out_base = w->out.len;
            if (w->npend == KK_BATCH_MAX || w->now_us - w->pend_since_us >= KK_DEFER_US ||
                w->slow)
                kk_conn_flush_batch(w);
            return;
        }
        int f = flush(w, c);
        if (f != 0 || !held_back) {
            after_write(w, c, f);
            return;
        }
        data = c->in.data;
        len = c->in.len;
        own = 1;
    }
}

/* Writes the deferred answers in the order they were made and hands each
 * connection back. Each is still held by this worker (not re-armed), so
 * nothing else touched it meanwhile. Answers the current connection has made
 * since (out[out_base..len)) are kept, moved to the front. */
void kk_conn_flush_batch(kk_worker *w) {
    for (int i = 0; i < w->npend; i++) {
        kk_pending p = w->pend[i];
        after_write(w, p.c, write_or_keep(p.c, w->out.data + p.off, p.len));
    }
    w->npend = 0;
    size_t keep = w->out.len - w->out_base;
    if (keep && w->out_base) memmove(w->out.data, w->out.data + w->out_base, keep);
    w->out.len = keep;
    w->out_base = 0;
}

void kk_conn_event(kk_worker *w, kk_conn *c, uint32_t events) {
    ServerObject *srv = w->srv;
    atomic_store(&c->idle, 0);
    if (atomic_load(&c->swept) && !c->draining) {
        kk_conn_close(srv, c);
        return;
    }
    if (c->draining) {
        char sink[16384];
        for (;;) {
            ssize_t n = recv(c->fd, sink, sizeof sink, 0);
            if (n > 0) {
                c->drained += (size_t)n;
                if (c->drained > KK_DRAIN_MAX) break;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (kk_conn_arm(srv, c, EPOLLIN) < 0) kk_conn_close(srv, c);
                return;
            }
            break; /* EOF or error */
        }
        kk_conn_close(srv, c);
        return;
    }
    /* Pending output first: responses go out in order. */
    if (c->out.len > c->out_off) {
        ssize_t n = write_some(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0) {
            kk_conn_close(srv, c);
            return;
        }
        c->out_off += (size_t)n;
        if (c->out_off < c->out.len) {
            atomic_store(&c->deadline_ms, kk_now_ms() + srv->body_timeout_ms);
            atomic_store(&c->idle, 0);
            if (kk_conn_arm(srv, c, EPOLLOUT) < 0) kk_conn_close(srv, c);
            return;
        }
        kk_buf_free(&c->out);
        c->out_off = 0;
        if (c->closing) {
            park(w, c);
            return;
        }
        /* Requests that were waiting behind the write may be complete already. */
        serve_loop(w, c, c->in.data, c->in.len, 1);
        return;
    }

    /* Read. An idle connection reads into the worker's buffer; only a partial
     * request is copied into the connection's own. */
    char *data;
    size_t len, cap;
    int own = c->in.len > 0;
    if (own) {
        size_t want = KK_RBUF_SIZE;
        if (c->in.cap - c->in.len < want && c->in.len + want <= max_buffer(srv) &&
            kk_buf_reserve(&c->in, want) < 0) {
            kk_conn_close(srv, c);
            return;
        }
        data = c->in.data;
        len = c->in.len;
        cap = c->in.cap;
    } else {
        data = w->rbuf;
        len = 0;
        cap = KK_RBUF_SIZE;
    }
    if (len == cap) {
        /* The buffer is at its bound: the limits should have answered first. */
        w->out.len = w->out_base;
        emit_error(w, 400, "request too large", KK_EMIT_CLOSE);
        c->closing = 1;
        if (flush(w, c) < 0) kk_conn_close(srv, c);
        else park(w, c);
        return;
    }
    ssize_t n;
    do n = recv(c->fd, data + len, cap - len, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        kk_conn_close(srv, c);
        return;
    }
    if (n < 0) { /* spurious wake-up */
        if (kk_conn_arm(srv, c, EPOLLIN) < 0) kk_conn_close(srv, c);
        return;
    }
    len += (size_t)n;
    if (!own && c->head_start_ms == 0) c->head_start_ms = kk_now_ms();

    serve_loop(w, c, data, len, own);
}
