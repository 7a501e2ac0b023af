/* server.h: the server, its connections and its workers (internal).
 *
 * Threads (ARCHITECTURE.md): N worker threads share one epoll set. With
 * several workers every connection is armed with EPOLLONESHOT, so exactly one
 * worker holds it from the moment epoll reports it until that worker re-arms
 * or closes it: a connection's fields need no lock. With one (Server(workers=1),
 * `lone`), serve() admits a single thread, which owns every connection, so the
 * registrations stay level-triggered and resident: epoll_ctl only when a
 * connection changes between waiting to read and waiting to write, not once
 * per request (see kk_conn_arm). The list of open connections is shared (the
 * sweeper walks it to enforce timeouts and shutdown) and guarded by
 * ServerObject.lock.
 */
#ifndef KK_SERVER_H
#define KK_SERVER_H

#include "karak.h"

#include <sys/epoll.h>

typedef struct kk_conn kk_conn;

/* ---- the pool (pool.c, docs/ARCHITECTURE.md "Threads") ----
 *
 * `workers` loop tokens: a thread polls the epoll set only while it holds
 * one. A token holder that has been in a handler for over KK_SAMPLE_US on
 * little CPU (blocked: sleep, a database, a lock) while events wait loses its
 * token to the monitor, which hands it to a parked spare thread or starts a
 * new one, up to max_workers threads in all. The blocked thread keeps the
 * connection it is serving; when its handler returns it finishes that
 * connection, then takes a free token or parks; a thread parked for
 * worker_idle_timeout exits (the token holders never park, so `workers`
 * threads remain). */
enum { KK_TOK_FREE = 0, KK_TOK_LOOP = 1, KK_TOK_HANDLER = 2 };

typedef struct {
    _Atomic int state;          /* KK_TOK_*: written by its holder; HANDLER -> FREE by the monitor */
    _Atomic uint64_t since_us;  /* HANDLER: when the holder's handler call began */
    _Atomic int cpu_clock;      /* the holder's CPU-time clock (clockid_t), set as it takes it */
    _Atomic int tid;            /* the holder's thread id, set as it takes it */
    /* the monitor's own */
    uint64_t seen_since, seen_cpu_ns, seen_at_us, recheck_us;
    int stat_tid, stat_fd;      /* /proc/self/task/<stat_tid>/stat, open (or -1) */
} kk_token;

typedef struct {
    PyObject_HEAD
    /* ---- immutable after Server.__init__ ---- */
    kk_state *st;               /* module state (module kept alive by `module`) */
    PyObject *module;           /* strong reference */
    kk_router *router;          /* frozen: read by every worker without a lock */
    PyObject *plans;            /* list owning every Plan the router points to */
    kk_parse_limits limits;
    uint64_t header_timeout_ms; /* whole head, from its first byte (slowloris) */
    uint64_t body_timeout_ms;   /* idle time between body reads */
    uint64_t keepalive_timeout_ms;
    uint64_t grace_ms;          /* graceful shutdown bound */
    long max_conns;             /* 0: no limit; beyond it new connections wait in the backlog.
                                 * Default: derived from RLIMIT_NOFILE (kk_default_max_conns) */
    long max_requests;          /* per connection; 0: no limit */
    long min_body_rate;         /* bytes/s a body must average after the grace; 0: no minimum */
    uint64_t body_rate_grace_ms; /* time a body has before min_body_rate applies */
    int lone;                   /* Server(workers=1, max_workers=1): one thread serves,
                                 * registrations resident */
    long target;                /* workers: loop tokens, the threads meant to poll (the CPUs) */
    long max_threads;           /* max_workers: serving threads in all, spares included */
    uint64_t idle_exit_ms;      /* a parked spare exits after this long */
    PyInterpreterState *interp; /* where spare threads make their thread states */
    kk_token *tokens;           /* [target]; fields as kk_token says */
    int redirect_slashes;       /* 307 to the path with/without its trailing '/' when that matches */
    int listen_fd;
    int epoll_fd;
    int port;
    char listen_tag;            /* its address tags the listener's epoll events */
    /* ---- shared, atomic ---- */
    _Atomic int stopping;
    _Atomic int listener_closed;
    _Atomic int listener_paused;  /* not re-armed: max_conns reached, or accept() failed for
                                   * want of descriptors or memory (then also accept_resume_ms) */
    _Atomic uint64_t accept_resume_ms; /* after such a failure: re-arm the listener at this
                                        * time (or when a connection closes, first); 0: none */
    _Atomic uint64_t accept_logged_ms; /* when such a failure was last logged (once a minute) */
    _Atomic unsigned long accept_failures; /* such failures since the last log line */
    _Atomic long live;            /* open connections */
    _Atomic long workers;         /* workers inside serve() */
    _Atomic int lone_serving;     /* lone: the one serve() is running (admits no second) */
    _Atomic uint64_t last_sweep_ms;
    _Atomic uint64_t stop_deadline_ms;
    _Atomic unsigned long long served;    /* requests answered (stats) */
    _Atomic unsigned long long heads_parsed; /* calls of the request parser (stats) */
    _Atomic unsigned long long sweeps;    /* walks of the connection list (stats) */
    _Atomic long starting;        /* spares started by the monitor, not yet in serve() */
    _Atomic unsigned long long handoffs;  /* tokens taken from blocked handlers (stats) */
    _Atomic unsigned long long spawned;   /* spare threads started (stats) */
    _Atomic int monitoring;       /* a monitor() is running (admits no second) */
    /* ---- guarded by park_lock (pool.c) ---- */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;   /* parked threads wait here for a free token or the stop */
    pthread_cond_t done_cond;   /* join() waits here for the last worker to leave */
    long *free_tok;             /* [target]: indices of free tokens */
    long nfree;
    long nparked;               /* threads waiting on park_cond */
    /* ---- guarded by lock ---- */
    pthread_mutex_t lock;
    kk_conn *conns;             /* doubly-linked list of open connections */
    int closed;                 /* close() ran: serve() admits no worker; set with workers == 0 */
    int lock_ready;             /* immutable after Server.__init__ (also says park_lock is) */
} ServerObject;

#define KK_RBUF_SIZE (64 * 1024)
#define KK_BATCH_MAX 64    /* epoll events a lone worker takes at once; deferred writes at most */
#define KK_DEFER_US 500     /* an answer's write is deferred at most this long (plus one handler) */
#define KK_SLOW_US 100      /* a handler call over this long is slow: answers do not wait for the next */
#define KK_BLOCK_US 1000    /* one over this long blocked: the fast streak starts again */
#define KK_FAST_STREAK 32   /* answers wait for a handler only after this many fast calls */

/* A connection answered but not yet written: its responses are
 * out[off, off + len). */
typedef struct {
    kk_conn *c;
    size_t off, len;
} kk_pending;

/* One worker thread's private state (worker-local, on its stack). */
typedef struct {
    ServerObject *srv;
    PyThreadState *ts;          /* saved while detached */
    long tok;                   /* the loop token it holds (index into srv->tokens), or -1 */
    kk_header *headers;         /* [limits.max_headers] */
    size_t headers_cap;
    char *rbuf;                 /* KK_RBUF_SIZE: reads land here when the connection has nothing pending */
    kk_buf out;                 /* responses not yet written, for every connection of the batch */
    size_t out_base;            /* where the current connection's responses start in `out` */
    kk_pending *pend;           /* [KK_BATCH_MAX]: answered connections whose write is deferred */
    int npend;
    uint64_t pend_since_us;     /* when the oldest deferred answer was made */
    int slow;                   /* a handler call since the last poll took over KK_SLOW_US */
    uint64_t now_us;            /* the clock at the last epoll wake-up or handler return */
    kk_buf scratch;             /* JSON encoding */
    kk_date date;
} kk_worker;

/* One client connection. Owned by the worker holding it (EPOLLONESHOT);
 * prev/next are guarded by srv->lock; busy and deadline_ms are atomics the
 * sweeper reads. */
struct kk_conn {
    int fd;
    kk_buf in;                  /* bytes of a request not yet complete (empty when idle) */
    kk_buf out;                 /* response bytes the socket did not take yet */
    size_t out_off;
    uint64_t head_start_ms;     /* first byte of the current partial head, or 0 */
    int closing;                /* close after `out` is written */
    int draining;               /* half-closed after an error: discard input until EOF */
    size_t drained;
    int sent_continue;          /* 100 Continue already sent for the current request */
    int chunk_active;           /* a chunked body is being decoded in `in` */
    kk_chunked ck;
    size_t chunk_decoded;       /* decoded body bytes so far, right after the head in `in` */
    /* What is known of the partial request at in[0], so that a read adds work
     * in proportion to its own bytes, not to what is already buffered (a client
     * sending its head or body a byte at a time must not cost a re-parse per
     * read). All 0 while nothing is known; reset when a request is served. */
    size_t part_need;           /* head + Content-Length: bytes needed before serving */
    size_t part_head;           /* head length, once the head is complete and its body is not */
    size_t part_parsed;         /* bytes buffered when the head was last found incomplete */
    size_t part_scanned;        /* bytes searched for the head's end (CRLF CRLF) since */
    unsigned long nreq;
    uint64_t body_start_ms;     /* a body is on its way: when its head was complete; else 0 */
    uint32_t armed;             /* lone: the events registered now (EPOLLIN or EPOLLOUT) */
    _Atomic int busy;           /* held by a worker */
    _Atomic int swept;          /* the sweeper has shut it down */
    _Atomic int idle;           /* parked between requests with nothing pending */
    _Atomic uint64_t deadline_ms; /* 0: none */
    kk_conn *prev, *next;       /* guarded by srv->lock */
};

/* conn.c */
void kk_conn_event(kk_worker *w, kk_conn *c, uint32_t events);
void kk_conn_flush_batch(kk_worker *w);
uint64_t kk_now_us(void);
void kk_conn_close(ServerObject *srv, kk_conn *c);
int kk_conn_arm(ServerObject *srv, kk_conn *c, uint32_t events);

/* The epoll flags added to a connection's EPOLLIN or EPOLLOUT: one-shot with
 * several workers, level-triggered and resident with one. EPOLLRDHUP only while
 * waiting to read: a client that half-closes while its answer is still being
 * written can still read it, and reporting the half-close again and again
 * would only wake the worker for a write the socket cannot take. */
static inline uint32_t kk_conn_flags(const ServerObject *srv, uint32_t events) {
    return (events == EPOLLIN ? EPOLLRDHUP : 0) | (srv->lone ? 0 : EPOLLONESHOT);
}

/* A connection's hand-off between workers (EPOLLONESHOT). The kernel orders
 * it: a worker re-arms c (epoll_ctl) only after its last access to c, and
 * another gets c only from a later epoll_wait. Neither C11 nor
 * ThreadSanitizer knows that epoll orders memory (TSan models EPOLL_CTL_ADD
 * only), so the hand-off is also written as a release of c->busy by the
 * giver (kk_conn_arm, after its last access) and an acquire by the taker
 * (kk_conn_take, before its first). On x86 each is the one locked
 * instruction the plain seq_cst stores already were. */
static inline void kk_conn_take(kk_conn *c) {
    atomic_exchange_explicit(&c->busy, 1, memory_order_acq_rel);
}

#if defined(__SANITIZE_THREAD__)
#  define KK_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define KK_TSAN 1
#  endif
#endif

/* server.c: re-arms the paused listener (server.h, listener_paused) unless
 * stopping; of racing callers one wins. Any thread, detached. */
void kk_listener_resume(ServerObject *srv);

/* pool.c */
int kk_pool_init(ServerObject *srv, long target, long max_threads);
void kk_pool_free(ServerObject *srv);
int kk_pool_regain(kk_worker *w);
void kk_pool_release(kk_worker *w);
void kk_pool_left(ServerObject *srv);
void kk_pool_stop(ServerObject *srv);
PyObject *kk_pool_monitor(ServerObject *srv);
PyObject *kk_pool_join(ServerObject *srv, double timeout);
/* server.c: one serving thread's life (Server.serve, and spares). Attached on
 * entry and exit. New reference (None), or NULL with an exception. */
PyObject *kk_serve(ServerObject *srv, int spare);

/* Around a handler call (conn.c): the token says the holder is in a handler,
 * and since when, so the monitor can tell a blocked one; afterwards the
 * holder takes it back, unless the monitor gave it away meanwhile. */
static inline void kk_pool_handler_begin(kk_worker *w, uint64_t t0) {
    if (w->tok < 0) return;
    kk_token *t = &w->srv->tokens[w->tok];
    atomic_store_explicit(&t->since_us, t0, memory_order_relaxed);
    atomic_store_explicit(&t->state, KK_TOK_HANDLER, memory_order_release);
}

static inline void kk_pool_handler_end(kk_worker *w) {
    if (w->tok < 0) return;
    int h = KK_TOK_HANDLER;
    if (!atomic_compare_exchange_strong_explicit(&w->srv->tokens[w->tok].state, &h, KK_TOK_LOOP,
                                                 memory_order_acq_rel, memory_order_acquire))
        w->tok = -1; /* handed to another thread while the handler blocked */
}

static inline void kk_attach(kk_worker *w) { PyEval_RestoreThread(w->ts); }
static inline void kk_detach(kk_worker *w) { w->ts = PyEval_SaveThread(); }

#endif
