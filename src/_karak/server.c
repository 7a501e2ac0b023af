/* server.c: the Server type: listening socket, the shared epoll set, the
 * worker loop (leader/followers over EPOLLONESHOT), the sweeper that enforces
 * timeouts, and graceful shutdown.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define KK_SWEEP_EVERY_MS 250
#define KK_STOP_SWEEP_MS 50   /* while stopping: idle connections are closed this often */
#define KK_WAIT_MS 200 /* epoll_wait bound, so stop and timeouts are seen */
#define KK_ACCEPT_BACKOFF_MS 100  /* accept() out of descriptors: try again after this */
#define KK_ACCEPT_LOG_MS 60000    /* ... and say so at most once a minute */
#define KK_MAX_SECONDS 1e7        /* the longest timeout accepted (about 115 days) */

/* ======================================================================
 * Accept and sweep
 * ====================================================================== */

static void rearm_listener(ServerObject *srv) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &srv->listen_tag};
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, srv->listen_fd, &ev);
}

/* Calls the Python surface's log_warning(message). Detached on entry and exit. */
static void log_warning(kk_worker *w, const char *message) {
    kk_attach(w);
    PyObject *m = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
    PyObject *r = m ? PyObject_CallOneArg(w->srv->st->log_warning, m) : NULL;
    if (!r) PyErr_WriteUnraisable(w->srv->st->log_warning);
    Py_XDECREF(r);
    Py_XDECREF(m);
    kk_detach(w);
}

/* accept() failed with err for want of a resource (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) while connections wait in the backlog. Re-arming at once would
 * report the listener ready again at once, for ever: every worker would spin
 * (3.4 CPU-seconds per 3 s before this). So, as nginx does, the listener is
 * paused: re-armed when a connection closes (kk_conn_close; a descriptor is
 * free then) or after KK_ACCEPT_BACKOFF_MS (the worker loop), whichever comes
 * first. Logged once, then at most once a minute while it goes on. */
static void accept_backoff(kk_worker *w, int err) {
    ServerObject *srv = w->srv;
    uint64_t now = kk_now_ms();
    atomic_store(&srv->accept_resume_ms, now + KK_ACCEPT_BACKOFF_MS);
    atomic_store(&srv->listener_paused, 1);
    /* A close between the failure and the store saw no pause: the timer resumes. */
    unsigned long n = atomic_fetch_add(&srv->accept_failures, 1) + 1;
    uint64_t last = atomic_load(&srv->accept_logged_ms);
    if ((last == 0 || now - last >= KK_ACCEPT_LOG_MS) &&
        atomic_compare_exchange_strong(&srv->accept_logged_ms, &last, now)) {
        atomic_store(&srv->accept_failures, 0);
        struct rlimit rl = {0};
        getrlimit(RLIMIT_NOFILE, &rl);
        char msg[512];
        snprintf(msg, sizeof msg,
                 "accept() failed: %s; %ld connections open, open-files limit (RLIMIT_NOFILE) "
                 "%llu, max_connections %ld. New connections wait in the listen backlog; "
                 "accepting again when a connection closes, or in %d ms. (%lu failures; "
                 "said at most once a minute)",
                 strerror(err), atomic_load(&srv->live), (unsigned long long)rl.rlim_cur,
                 srv->max_conns, KK_ACCEPT_BACKOFF_MS, n);
        log_warning(w, msg);
    }
}

/* See server.h. */
void kk_listener_resume(ServerObject *srv) {
    int one = 1;
    if (!atomic_load(&srv->stopping) &&
        atomic_compare_exchange_strong(&srv->listener_paused, &one, 0))
        rearm_listener(srv);
}

/* The paused listener's back-off is over (accept_backoff): re-arm it. Any
 * worker, on any wake-up; one wins. */
static void accept_resume(ServerObject *srv, uint64_t now) {
    uint64_t until = atomic_load(&srv->accept_resume_ms);
    if (!until || now < until) return;
    if (atomic_compare_exchange_strong(&srv->accept_resume_ms, &until, 0)) kk_listener_resume(srv);
}

/* Accepts what is pending (bounded), registers each connection, re-arms the
 * listener unless the connection limit is reached or descriptors ran out.
 * Detached. */
static void do_accept(kk_worker *w) {
    ServerObject *srv = w->srv;
    for (int k = 0; k < 64; k++) {
        if (atomic_load(&srv->stopping)) return;
        if (srv->max_conns && atomic_load(&srv->live) >= srv->max_conns) {
            /* New connections wait in the kernel's backlog until one closes. */
            atomic_store(&srv->listener_paused, 1);
            /* A close may have raced with the store: check again. */
            if (atomic_load(&srv->live) < srv->max_conns) {
                int one = 1;
                if (atomic_compare_exchange_strong(&srv->listener_paused, &one, 0)) continue;
            }
            return;
        }
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED) continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                accept_backoff(w, err);
                return; /* paused: not re-armed here */
            }
            break; /* EAGAIN: nothing more to accept */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        kk_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        atomic_store(&c->busy, 1);
        atomic_store(&c->deadline_ms, kk_now_ms() + srv->header_timeout_ms);
        c->head_start_ms = kk_now_ms();
        pthread_mutex_lock(&srv->lock);
        c->next = srv->conns;
        if (srv->conns) srv->conns->prev = c;
        srv->conns = c;
        pthread_mutex_unlock(&srv->lock);
        atomic_fetch_add(&srv->live, 1);
        struct epoll_event ev = {.events = EPOLLIN | kk_conn_flags(srv, EPOLLIN), .data.ptr = c};
        c->armed = EPOLLIN;
        atomic_store(&c->busy, 0);
        if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            atomic_store(&c->busy, 1);
            kk_conn_close(srv, c);
        }
    }
    if (!atomic_load(&srv->stopping)) rearm_listener(srv);
}

/* Shuts down every connection not held by a worker whose deadline passed (or
 * every idle one, when stopping). The worker that next gets its event closes
 * and frees it: only the holder frees a connection, and a connection stays in
 * the list (so its fd stays open) until then. */
static void sweep(ServerObject *srv, uint64_t now, int stopping) {
    atomic_fetch_add_explicit(&srv->sweeps, 1, memory_order_relaxed);
    pthread_mutex_lock(&srv->lock);
    for (kk_conn *c = srv->conns; c; c = c->next) {
        if (atomic_load(&c->busy) || atomic_load(&c->swept)) continue;
        uint64_t d = atomic_load(&c->deadline_ms);
        int expired = d && now >= d;
        if (!expired && stopping && atomic_load(&c->idle)) {
            /* An idle connection whose next request already sits unread in the
             * socket (its worker has not got to it yet) is not idle: that
             * request was sent before the stop and is answered, with close. */
            int unread = 0;
            if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0) continue;
        }
        if (expired || (stopping && atomic_load(&c->idle))) {
            atomic_store(&c->swept, 1);
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

/* ======================================================================
 * The worker loop
 * ====================================================================== */

/* One serving thread, until the server stops (or, for a spare, until it has
 * been parked long enough): the body of Server.serve() and of the pool's
 * spare threads (pool.c). A thread polls the epoll set only while it holds a
 * loop token (server.h); without one it writes what it has, then waits for
 * one. */
PyObject *kk_serve(ServerObject *srv, int spare) {
    if (!srv->lock_ready) {
        PyErr_SetString(PyExc_RuntimeError, "server was never opened");
        return NULL;
    }
    if (srv->lone) {
        int zero = 0;
        if (!atomic_compare_exchange_strong(&srv->lone_serving, &zero, 1)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "this Server(workers=1) is already being served by another thread; "
                            "pass workers=N to serve it from N threads");
            return NULL;
        }
    }
    /* Admitted under the lock that close() takes: a close() either sees this
     * worker counted (and refuses) or has closed first (and this refuses). */
    pthread_mutex_lock(&srv->lock);
    int admitted = !srv->closed && srv->epoll_fd >= 0;
    if (admitted) atomic_fetch_add(&srv->workers, 1);
    /* A spare moves from `starting` to `workers` only now, so that the
     * monitor's count of threads (their sum) never misses it. */
    if (spare) atomic_fetch_sub(&srv->starting, 1);
    pthread_mutex_unlock(&srv->lock);
    if (!admitted) {
        if (srv->lone) atomic_store(&srv->lone_serving, 0);
        kk_pool_left(srv);
        PyErr_SetString(PyExc_RuntimeError, "server is closed");
        return NULL;
    }
    kk_worker w = {.srv = srv, .tok = -1};
    w.headers_cap = srv->limits.max_headers + 1;
    w.headers = PyMem_RawCalloc(w.headers_cap, sizeof(kk_header));
    w.rbuf = PyMem_RawMalloc(KK_RBUF_SIZE);
    w.pend = PyMem_RawMalloc(KK_BATCH_MAX * sizeof(kk_pending));
    if (!w.headers || !w.rbuf || !w.pend || kk_buf_reserve(&w.out, 16384) < 0 ||
        kk_buf_reserve(&w.scratch, 4096) < 0) {
        PyMem_RawFree(w.headers);
        PyMem_RawFree(w.rbuf);
        PyMem_RawFree(w.pend);
        kk_buf_free(&w.out);
        kk_buf_free(&w.scratch);
        atomic_fetch_sub(&srv->workers, 1);
        if (srv->lone) atomic_store(&srv->lone_serving, 0);
        kk_pool_left(srv);
        return PyErr_NoMemory();
    }
    kk_detach(&w);
    struct epoll_event evs[KK_BATCH_MAX];
    for (;;) {
        if (w.tok < 0) {
            /* No token (a handler of ours blocked and the monitor gave it
             * away, or more threads serve than there are tokens): hand back
             * every connection held, then wait for a token. */
            kk_conn_flush_batch(&w);
            if (kk_pool_regain(&w) < 0) break;
        }
        /* Alone, a worker takes every ready event at once. With several,
         * each takes one, so that a slow handler never holds connections
         * another worker could serve. "Several" counts the workers planned
         * (Server(workers=)), not those started: the first worker of two,
         * started alone, must not take every connection while the second is
         * still starting. A lone server admits one serve() (above), so alone
         * is `lone`. While answers wait to be written (deferred writes,
         * conn.c) it only polls, and writes them when nothing else is ready.
         * After a slow handler call, a lone worker too takes one event: the
         * events of a batch are served in turn, so a batch of slow calls
         * serves, say, 63 clients while the one whose request came a moment
         * after the poll waits for all of them and then for its turn in the
         * next batch. One at a time, the kernel's ready list is a queue:
         * a level-triggered connection goes to its tail when reported, the
         * rest keep their places, and each client waits for the others
         * once. */
        int nmax = srv->lone && !w.slow ? KK_BATCH_MAX : 1;
        w.slow = 0;
        int n = epoll_wait(srv->epoll_fd, evs, nmax, w.npend ? 0 : KK_WAIT_MS);
        if (n < 0 && errno != EINTR) break;
        if (n <= 0 && w.npend) kk_conn_flush_batch(&w);
        w.now_us = kk_now_us();
        uint64_t now = w.now_us / 1000;
        int stopping = atomic_load(&srv->stopping);
        if (stopping) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&srv->listener_closed, &zero, 1)) {
                epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
                shutdown(srv->listen_fd, SHUT_RDWR);
                atomic_store(&srv->last_sweep_ms, now);
                sweep(srv, now, 1); /* idle connections closed at once */
            }
        } else {
            accept_resume(srv, now);
        }
        /* One worker sweeps at a time, every so often: a sweep walks every
         * connection under the lock, so not on every wake-up of every worker
         * (while stopping, events are many: every connection answers once more). */
        uint64_t last = atomic_load(&srv->last_sweep_ms);
        if (now - last >= (stopping ? KK_STOP_SWEEP_MS : KK_SWEEP_EVERY_MS) &&
            atomic_compare_exchange_strong(&srv->last_sweep_ms, &last, now))
            sweep(srv, now, stopping);
        if (stopping &&
            (atomic_load(&srv->live) == 0 || now >= atomic_load(&srv->stop_deadline_ms)))
            break;
        if (n <= 0) continue;
        if (srv->lone) {
            /* Level-triggered, a connection whose answer waits in this batch
             * is reported again (a pipelined request, a close). Drop those
             * events now, before serving any other: serving may write the
             * batch and free such a connection. It is reported again once
             * its answer is written; when nothing else was ready, write now. */
            int m = 0;
            for (int i = 0; i < n; i++) {
                void *p = evs[i].data.ptr;
                if (p == &srv->listen_tag || !atomic_load(&((kk_conn *)p)->busy)) evs[m++] = evs[i];
            }
            n = m;
            if (n == 0) {
                if (w.npend) kk_conn_flush_batch(&w);
                continue;
            }
        }
        kk_date_update(&w.date);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &srv->listen_tag) {
                do_accept(&w);
                continue;
            }
            kk_conn *c = evs[i].data.ptr;
            kk_conn_take(c);
            kk_conn_event(&w, c, evs[i].events);
        }
        if (w.npend == 0 && w.out.cap > 4 * KK_RBUF_SIZE)
            kk_buf_free(&w.out); /* a batch of large answers: give the memory back */
    }
    kk_conn_flush_batch(&w);
    kk_pool_release(&w);
    kk_attach(&w);
    atomic_fetch_sub(&srv->workers, 1);
    if (srv->lone) atomic_store(&srv->lone_serving, 0);
    kk_pool_left(srv);
    PyMem_RawFree(w.headers);
    PyMem_RawFree(w.rbuf);
    PyMem_RawFree(w.pend);
    kk_buf_free(&w.out);
    kk_buf_free(&w.scratch);
    Py_RETURN_NONE;
}

/* Server.serve(): runs one worker until the server stops. Called by each
 * worker thread. */
static PyObject *Server_serve(ServerObject *srv, PyObject *unused) {
    return kk_serve(srv, 0);
}

/* seconds -> milliseconds for an option called name: finite, at most
 * KK_MAX_SECONDS, and > 0 (or >= 0 with zero_ok). A float beyond the range
 * of the integer type makes the conversion undefined behaviour, so every
 * seconds value passes here. 0, or -1 with ValueError. */
static int seconds_to_ms(const char *name, double v, int zero_ok, uint64_t *out) {
    if (!isfinite(v) || v > KK_MAX_SECONDS || v < 0 || (v == 0 && !zero_ok)) {
        PyObject *f = PyFloat_FromDouble(v);
        if (f)
            PyErr_Format(PyExc_ValueError,
                         "%s must be a finite number of seconds, %s and at most %d, not %R", name,
                         zero_ok ? "0 or more" : "more than 0", (int)KK_MAX_SECONDS, f);
        Py_XDECREF(f);
        return -1;
    }
    *out = (uint64_t)(v * 1000);
    return 0;
}

/* Server.stop(grace=None): stop accepting; workers finish in-flight requests,
 * close idle connections, and return from serve() when none is left or the
 * grace period is over. Safe from any thread, and from a signal handler. */
static PyObject *Server_stop(ServerObject *srv, PyObject *args) {
    PyObject *grace_obj = Py_None;
    if (!PyArg_ParseTuple(args, "|O:stop", &grace_obj)) return NULL;
    uint64_t g = srv->grace_ms;
    if (grace_obj != Py_None) {
        double grace = PyFloat_AsDouble(grace_obj);
        if (grace == -1.0 && PyErr_Occurred()) return NULL;
        if (seconds_to_ms("grace", grace, 1, &g) < 0) return NULL;
    }
    atomic_store(&srv->stop_deadline_ms, kk_now_ms() + g);
    atomic_store(&srv->stopping, 1);
    if (srv->lock_ready) kk_pool_stop(srv);
    Py_RETURN_NONE;
}

/* ======================================================================
 * Construction
 * ====================================================================== */

static int open_listener(ServerObject *srv, const char *host, int port, int backlog) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        PyErr_Format(PyExc_OSError, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    srv->listen_fd = fd;
    return 0;
}

/* The default max_connections: what the open-files limit (RLIMIT_NOFILE, the
 * soft one, read when the Server is built) leaves once a reserve is kept for
 * everything else the process opens (the listener, epoll, logs, the
 * handlers' own files and database connections): a tenth of the limit, at
 * least 32 and at most 1024. So client connections alone never exhaust the
 * descriptors (docs/OPERATIONS.md). No limit when the limit is unlimited. */
static long kk_default_max_conns(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
    unsigned long long lim = rl.rlim_cur, reserve = lim / 10;
    if (reserve < 32) reserve = 32;
    if (reserve > 1024) reserve = 1024;
    return lim > reserve + 1 ? (long)(lim - reserve) : 1;
}

/* Server(routes, host="127.0.0.1", port=8000, *, backlog=1024, max_request_line=8192,
 *        max_header_bytes=65536, max_headers=100, max_body=1048576, header_timeout=30,
 *        body_timeout=60, keepalive_timeout=75, graceful_timeout=30, max_connections=-1,
 *        max_requests_per_connection=0, workers=1, redirect_slashes=True,
 *        min_body_rate=500, body_rate_grace=5)
 * routes: iterable of (method, path, Plan). workers: how many threads will
 * call serve(); with more than one, no worker takes a batch of events.
 * max_connections: 0 for no limit, -1 (the default) for kk_default_max_conns. */
static int Server_init(ServerObject *srv, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"routes", "host", "port", "backlog", "max_request_line",
                             "max_header_bytes", "max_headers", "max_body", "header_timeout",
                             "body_timeout", "keepalive_timeout", "graceful_timeout",
                             "max_connections", "max_requests_per_connection", "workers",
                             "redirect_slashes", "min_body_rate", "body_rate_grace",
                             "max_workers", "worker_idle_timeout", NULL};
    PyObject *routes;
    const char *host = "127.0.0.1";
    int port = 8000, backlog = 1024;
    Py_ssize_t mrl = KK_DEFAULT_MAX_REQUEST_LINE, mhb = KK_DEFAULT_MAX_HEAD,
               mh = KK_DEFAULT_MAX_HEADERS;
    long long mb = KK_DEFAULT_MAX_BODY;
    double ht = 30, bt = 60, kt = 75, gt = 30, grace = 5, idle = 10;
    long maxc = -1, maxr = 0, planned = 1, rate = 500, maxw = 0;
    int redirect_slashes = 1;
    if (srv->router) {
        PyErr_SetString(PyExc_RuntimeError, "Server.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|si$innnLddddlllpldld:Server", kwlist,
                                     &routes, &host, &port, &backlog, &mrl, &mhb, &mh, &mb, &ht,
                                     &bt, &kt, &gt, &maxc, &maxr, &planned, &redirect_slashes,
                                     &rate, &grace, &maxw, &idle))
        return -1;
    if (mrl <= 0 || mhb <= 0 || mh <= 0 || mb < 0 || maxc < -1 || maxr < 0 || planned < 1 ||
        rate < 0 || port < 0 || port > 65535 || maxw < 0 || planned > 4096) {
        PyErr_SetString(PyExc_ValueError, "limits must be positive");
        return -1;
    }
    if (maxw == 0) maxw = planned; /* no pool: the threads that call serve() */
    if (maxw < planned) {
        PyErr_Format(PyExc_ValueError, "max_workers (%ld) must be at least workers (%ld)", maxw,
                     planned);
        return -1;
    }
    if (seconds_to_ms("header_timeout", ht, 0, &srv->header_timeout_ms) < 0 ||
        seconds_to_ms("body_timeout", bt, 0, &srv->body_timeout_ms) < 0 ||
        seconds_to_ms("keepalive_timeout", kt, 0, &srv->keepalive_timeout_ms) < 0 ||
        seconds_to_ms("graceful_timeout", gt, 1, &srv->grace_ms) < 0 ||
        seconds_to_ms("body_rate_grace", grace, 1, &srv->body_rate_grace_ms) < 0 ||
        seconds_to_ms("worker_idle_timeout", idle, 1, &srv->idle_exit_ms) < 0)
        return -1;
    srv->st = kk_state_from_type(Py_TYPE(srv));
    if (!srv->st) return -1;
    srv->module = PyType_GetModule(Py_TYPE(srv));
    if (!srv->module) return -1;
    Py_INCREF(srv->module);
    if (!srv->st->http_exception) {
        PyErr_SetString(PyExc_RuntimeError, "karak._karak._configure() was not called");
        return -1;
    }
    srv->limits = (kk_parse_limits){(size_t)mrl, (size_t)mhb, (size_t)mh, (uint64_t)mb};
    srv->max_conns = maxc == -1 ? kk_default_max_conns() : maxc;
    srv->min_body_rate = rate;
    srv->max_requests = maxr;
    /* Resident registrations need one thread for ever: no pool. */
    srv->lone = planned == 1 && maxw == 1;
    srv->interp = PyInterpreterState_Get();
    srv->redirect_slashes = redirect_slashes;
    srv->plans = PyList_New(0);
    srv->router = kk_router_new();
    if (!srv->plans || !srv->router) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *it = PyObject_GetIter(routes);
    if (!it) return -1;
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        const char *method, *path;
        Py_ssize_t ml, pl;
        PyObject *plan;
        if (!PyArg_ParseTuple(item, "s#s#O!:route", &method, &ml, &path, &pl,
                              srv->st->plan_type, &plan)) {
            Py_DECREF(item);
            Py_DECREF(it);
            return -1;
        }
        const char *err = NULL;
        if (PyList_Append(srv->plans, plan) < 0 ||
            kk_router_add(srv->router, method, (size_t)ml, path, (size_t)pl, plan, &err) < 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "cannot add route %s %s: %s", method, path,
                             err ? err : "error");
            Py_DECREF(item);
            Py_DECREF(it);
            return -1;
        }
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    if (kk_router_freeze(srv->router) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (pthread_mutex_init(&srv->lock, NULL) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_mutex_init failed");
        return -1;
    }
    if (kk_pool_init(srv, planned, maxw) < 0) {
        pthread_mutex_destroy(&srv->lock);
        kk_pool_free(srv);
        PyErr_NoMemory();
        return -1;
    }
    srv->lock_ready = 1;
    if (open_listener(srv, host, port, backlog) < 0) return -1;
    srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epoll_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &srv->listen_tag};
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    atomic_store(&srv->last_sweep_ms, kk_now_ms());
    return 0;
}

static PyObject *Server_new(PyTypeObject *tp, PyObject *args, PyObject *kwds) {
    ServerObject *srv = (ServerObject *)tp->tp_alloc(tp, 0);
    if (!srv) return NULL;
    srv->listen_fd = -1;
    srv->epoll_fd = -1;
    return (PyObject *)srv;
}

/* Closes the listener, the epoll set and every connection left. Only after
 * every worker has returned from serve(). */
static void server_close(ServerObject *srv) {
    if (srv->lock_ready) {
        pthread_mutex_lock(&srv->lock);
        kk_conn *c = srv->conns;
        srv->conns = NULL;
        pthread_mutex_unlock(&srv->lock);
        while (c) {
            kk_conn *next = c->next;
            close(c->fd);
            kk_buf_free(&c->in);
            kk_buf_free(&c->out);
            free(c);
            atomic_fetch_sub(&srv->live, 1);
            c = next;
        }
    }
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    if (srv->epoll_fd >= 0) close(srv->epoll_fd);
    srv->listen_fd = srv->epoll_fd = -1;
}

static PyObject *Server_close(ServerObject *srv, PyObject *unused) {
    int busy = 0;
    if (srv->lock_ready) {
        /* serve() admits workers under the same lock (Server_serve). */
        pthread_mutex_lock(&srv->lock);
        busy = atomic_load(&srv->workers) > 0;
        if (!busy) srv->closed = 1;
        pthread_mutex_unlock(&srv->lock);
    }
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "workers are still serving; stop() and join them first");
        return NULL;
    }
    server_close(srv);
    Py_RETURN_NONE;
}

static int Server_traverse(ServerObject *srv, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(srv));
    Py_VISIT(srv->plans);
    Py_VISIT(srv->module);
    return 0;
}

static int Server_clear(ServerObject *srv) {
    Py_CLEAR(srv->plans);
    return 0;
}

static void Server_dealloc(ServerObject *srv) {
    PyTypeObject *tp = Py_TYPE(srv);
    PyObject_GC_UnTrack(srv);
    if (atomic_load(&srv->workers) == 0) server_close(srv);
    if (srv->router) kk_router_free(srv->router);
    if (srv->lock_ready) {
        pthread_mutex_destroy(&srv->lock);
        pthread_mutex_destroy(&srv->park_lock);
        pthread_cond_destroy(&srv->park_cond);
        pthread_cond_destroy(&srv->done_cond);
    }
    kk_pool_free(srv);
    Server_clear(srv);
    Py_CLEAR(srv->module);
    tp->tp_free(srv);
    Py_DECREF(tp);
}

static PyObject *Server_get_port(ServerObject *srv, void *c) { return PyLong_FromLong(srv->port); }

static PyObject *Server_get_connections(ServerObject *srv, void *c) {
    return PyLong_FromLong(atomic_load(&srv->live));
}

static PyObject *Server_get_max_connections(ServerObject *srv, void *c) {
    return PyLong_FromLong(srv->max_conns);
}

static PyObject *Server_get_served(ServerObject *srv, void *c) {
    return PyLong_FromUnsignedLongLong(atomic_load(&srv->served));
}

static PyObject *Server_get_heads_parsed(ServerObject *srv, void *c) {
    return PyLong_FromUnsignedLongLong(atomic_load(&srv->heads_parsed));
}

static PyObject *Server_monitor(ServerObject *srv, PyObject *unused) {
    return kk_pool_monitor(srv);
}

static PyObject *Server_join(ServerObject *srv, PyObject *args) {
    double timeout = 0;
    if (!PyArg_ParseTuple(args, "|d:join", &timeout)) return NULL;
    return kk_pool_join(srv, timeout);
}

static PyObject *Server_get_threads(ServerObject *srv, void *c) {
    return PyLong_FromLong(atomic_load(&srv->workers) + atomic_load(&srv->starting));
}

static PyObject *Server_get_spawned(ServerObject *srv, void *c) {
    return PyLong_FromUnsignedLongLong(atomic_load(&srv->spawned));
}

static PyObject *Server_get_handoffs(ServerObject *srv, void *c) {
    return PyLong_FromUnsignedLongLong(atomic_load(&srv->handoffs));
}

static PyObject *Server_get_max_workers(ServerObject *srv, void *c) {
    return PyLong_FromLong(srv->max_threads);
}

static PyObject *Server_get_sweeps(ServerObject *srv, void *c) {
    return PyLong_FromUnsignedLongLong(atomic_load(&srv->sweeps));
}

static PyObject *Server_get_stopping(ServerObject *srv, void *c) {
    return PyBool_FromLong(atomic_load(&srv->stopping));
}

static PyMethodDef Server_methods[] = {
    {"serve", (PyCFunction)Server_serve, METH_NOARGS,
     "Run one worker until the server stops (call from each worker thread)."},
    {"stop", (PyCFunction)Server_stop, METH_VARARGS,
     "stop(grace=None): stop accepting, finish in-flight requests, then return from serve()."},
    {"close", (PyCFunction)Server_close, METH_NOARGS, "Release sockets once every worker returned."},
    {"monitor", (PyCFunction)Server_monitor, METH_NOARGS,
     "Run the pool's monitor until the server stops (from a thread of its own): it gives the "
     "loop token of a handler that blocks to another thread, up to max_workers."},
    {"join", (PyCFunction)Server_join, METH_VARARGS,
     "join(timeout=0): wait until every serving thread, spares included, has left serve(); "
     "True when none is left."},
    {NULL}};

static PyGetSetDef Server_getset[] = {
    {"port", (getter)Server_get_port, NULL, "The bound port.", NULL},
    {"connections", (getter)Server_get_connections, NULL, "Open connections now.", NULL},
    {"max_connections", (getter)Server_get_max_connections, NULL,
     "The connection limit in force (0: none); by default derived from RLIMIT_NOFILE.", NULL},
    {"requests_served", (getter)Server_get_served, NULL, "Requests answered so far.", NULL},
    {"heads_parsed", (getter)Server_get_heads_parsed, NULL,
     "Calls of the request parser so far: about one per request, plus a few for a head "
     "that arrives in pieces (never one per read).", NULL},
    {"threads", (getter)Server_get_threads, NULL,
     "Serving threads now: workers and the spares the pool started.", NULL},
    {"spawned", (getter)Server_get_spawned, NULL, "Spare threads started so far.", NULL},
    {"handoffs", (getter)Server_get_handoffs, NULL,
     "Loop tokens given away by handlers that blocked, so far.", NULL},
    {"max_workers", (getter)Server_get_max_workers, NULL,
     "The bound on serving threads, spares included.", NULL},
    {"sweeps", (getter)Server_get_sweeps, NULL,
     "Walks of the connection list for timeouts and shutdown so far (a few a second).", NULL},
    {"stopping", (getter)Server_get_stopping, NULL, "stop() was called.", NULL},
    {NULL}};

static PyType_Slot Server_slots[] = {
    {Py_tp_doc, "The HTTP/1.1 engine: a listener, a frozen router and its workers' event loop."},
    {Py_tp_new, Server_new},
    {Py_tp_init, Server_init},
    {Py_tp_dealloc, Server_dealloc},
    {Py_tp_traverse, Server_traverse},
    {Py_tp_clear, Server_clear},
    {Py_tp_methods, Server_methods},
    {Py_tp_getset, Server_getset},
    {0, NULL}};

PyType_Spec kk_server_spec = {
    .name = "karak._karak.Server",
    .basicsize = sizeof(ServerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Server_slots,
};
