/* pool.c: the elastic pool of serving threads (server.h, "the pool";
 * docs/ARCHITECTURE.md, "Threads").
 *
 * `workers` loop tokens stand for the CPUs: only a thread holding one waits
 * on the epoll set. A CPU-light handler runs on the thread that read its
 * request and the token never moves (no hand-off on the hot path). A handler
 * that blocks would take its token, and so a CPU's worth of event loop, with
 * it; so a monitor thread watches the token holders, Go's sysmon in small:
 *
 *   - a holder in a handler call for over KK_SAMPLE_US is sampled: its
 *     thread's CPU clock is read at two monitor ticks, and its scheduler
 *     state (/proc/self/task/TID/stat) at the second. Asleep (S or D) with
 *     under half a CPU in between, it is blocked (sleep, socket, database,
 *     lock); else it is computing, or runnable and waiting for a CPU (a
 *     computing thread the scheduler preempted reads as little CPU over a
 *     short window, but as R, not S), and keeps its token (CPU-bound handlers
 *     on `workers` threads, no oversubscription), checked again
 *     KK_RECHECK_US later;
 *   - a blocked holder loses its token only while events wait for a poller
 *     (the epoll set is readable) and another thread can take it: a parked
 *     one, or a new one while fewer than max_workers exist. At the bound no
 *     token moves; requests wait in the kernel's ready list, in order;
 *   - the blocked thread finishes the connection it holds when its handler
 *     returns (its answer, its pipelined requests), then takes a free token
 *     if there is one, else parks; a thread parked for worker_idle_timeout
 *     exits, so the thread count returns to `workers` after a burst.
 *
 * Who touches what: kk_token.state is the holder's (LOOP <-> HANDLER) but for
 * the monitor's HANDLER -> FREE (a compare-and-swap both sides use, so exactly
 * one wins); the monitor's sample fields are its own; the free list, the
 * parked count and both condition variables are guarded by park_lock, which
 * is never held across Python or a blocking call other than the wait itself.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KK_SAMPLE_US 100       /* a handler call this long is sampled */
#define KK_RECHECK_US 1000    /* a computing one is sampled again after this */
#define KK_TICK_FAST_US 50    /* while a call is being sampled */
#define KK_TICK_BUSY_US 1000  /* while calls run but none needs sampling */
#define KK_TICK_IDLE_US 20000 /* nothing in a handler: backs off to this */

/* ======================================================================
 * Tokens, the free list, parking
 * ====================================================================== */

int kk_pool_init(ServerObject *srv, long target, long max_threads) {
    srv->target = target;
    srv->max_threads = max_threads;
    srv->tokens = PyMem_RawCalloc((size_t)target, sizeof(kk_token));
    srv->free_tok = PyMem_RawMalloc((size_t)target * sizeof(long));
    if (!srv->tokens || !srv->free_tok) return -1;
    for (long i = 0; i < target; i++) {
        srv->free_tok[i] = target - 1 - i; /* token 0 first */
        srv->tokens[i].stat_fd = -1;
    }
    srv->nfree = target;
    if (pthread_mutex_init(&srv->park_lock, NULL) != 0) return -1;
    /* Deadlines are CLOCK_MONOTONIC times (the default clock is the wall clock). */
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&srv->park_cond, &ca);
    if (rc == 0) rc = pthread_cond_init(&srv->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc == 0 ? 0 : -1;
}

void kk_pool_free(ServerObject *srv) {
    for (long i = 0; srv->tokens && i < srv->target; i++)
        if (srv->tokens[i].stat_fd >= 0) close(srv->tokens[i].stat_fd);
    PyMem_RawFree(srv->tokens);
    PyMem_RawFree(srv->free_tok);
    srv->tokens = NULL;
    srv->free_tok = NULL;
}

/* CLOCK_MONOTONIC now plus ms: a deadline for the condition variables. */
static struct timespec monotonic_after(uint64_t ms) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static uint64_t cpu_ns(int clock) {
    struct timespec ts;
    if (clock_gettime((clockid_t)clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Is thread tid asleep (state S or D in /proc/self/task/TID/stat)? The
 * monitor keeps the file of each token's holder open. 1 asleep, 0 not (or
 * unknown). */
static int asleep(kk_token *t, int tid) {
    if (t->stat_tid != tid || t->stat_fd < 0) {
        if (t->stat_fd >= 0) close(t->stat_fd);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
        t->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
        t->stat_tid = tid;
        if (t->stat_fd < 0) return 0;
    }
    char buf[512];
    ssize_t n = pread(t->stat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        close(t->stat_fd);
        t->stat_fd = -1;
        return 0;
    }
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold anything but ends at the last ')' */
    return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

/* Takes token i (popped from the free list by the caller). */
static void take_token(kk_worker *w, long i) {
    kk_token *t = &w->srv->tokens[i];
    clockid_t clock;
    if (pthread_getcpuclockid(pthread_self(), &clock) != 0) clock = CLOCK_THREAD_CPUTIME_ID;
    atomic_store_explicit(&t->cpu_clock, (int)clock, memory_order_relaxed);
    atomic_store_explicit(&t->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    atomic_store_explicit(&t->state, KK_TOK_LOOP, memory_order_release);
    w->tok = i;
}

/* Gets w a token, parking until one is free. Detached; w holds no connection
 * (the caller wrote its deferred answers). Returns 0 with w->tok set, or -1
 * when the thread should leave serve(): the server is stopping, or w stayed
 * parked for idle_exit_ms. Any parked thread may leave so: the token holders,
 * `workers` of them, never park, so the threads never drop below `workers`
 * (a worker app.run started may leave while a spare keeps its token). */
int kk_pool_regain(kk_worker *w) {
    ServerObject *srv = w->srv;
    int rc = -1;
    struct timespec until = monotonic_after(srv->idle_exit_ms);
    pthread_mutex_lock(&srv->park_lock);
    for (;;) {
        if (atomic_load(&srv->stopping)) break;
        if (srv->nfree > 0) {
            take_token(w, srv->free_tok[--srv->nfree]);
            rc = 0;
            break;
        }
        srv->nparked++;
        int e = pthread_cond_timedwait(&srv->park_cond, &srv->park_lock, &until);
        srv->nparked--;
        if (e == ETIMEDOUT && srv->nfree == 0) break; /* idle: leaves */
    }
    pthread_mutex_unlock(&srv->park_lock);
    return rc;
}

/* Puts token i on the free list and wakes a parked thread for it. Returns 1
 * when nobody was parked (the caller may start a thread). */
static int give_token(ServerObject *srv, long i) {
    pthread_mutex_lock(&srv->park_lock);
    srv->free_tok[srv->nfree++] = i;
    int nobody = srv->nparked == 0;
    if (!nobody) pthread_cond_signal(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
    return nobody;
}

/* w leaves serve() holding a token: free it for whoever is parked. */
void kk_pool_release(kk_worker *w) {
    if (w->tok < 0) return;
    atomic_store(&w->srv->tokens[w->tok].state, KK_TOK_FREE);
    give_token(w->srv, w->tok);
    w->tok = -1;
}

/* A serving thread has left serve() (srv->workers already decremented). */
void kk_pool_left(ServerObject *srv) {
    pthread_mutex_lock(&srv->park_lock);
    if (atomic_load(&srv->workers) == 0 && atomic_load(&srv->starting) == 0)
        pthread_cond_broadcast(&srv->done_cond);
    pthread_mutex_unlock(&srv->park_lock);
}

/* stop(): parked threads leave. */
void kk_pool_stop(ServerObject *srv) {
    pthread_mutex_lock(&srv->park_lock);
    pthread_cond_broadcast(&srv->park_cond);
    pthread_mutex_unlock(&srv->park_lock);
}

/* Server.join(timeout): waits until every serving thread, spares included,
 * has left serve(). True when none is left. */
PyObject *kk_pool_join(ServerObject *srv, double timeout) {
    if (!srv->lock_ready) Py_RETURN_TRUE;
    /* NaN and negatives wait not at all; the cap keeps the conversion defined. */
    struct timespec until =
        monotonic_after(timeout > 0 ? (uint64_t)((timeout < 1e7 ? timeout : 1e7) * 1000) : 0);
    int done;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&srv->park_lock);
    while (!(done = atomic_load(&srv->workers) == 0 && atomic_load(&srv->starting) == 0)) {
        if (pthread_cond_timedwait(&srv->done_cond, &srv->park_lock, &until) == ETIMEDOUT) {
            done = atomic_load(&srv->workers) == 0 && atomic_load(&srv->starting) == 0;
            break;
        }
    }
    pthread_mutex_unlock(&srv->park_lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(done);
}

/* ======================================================================
 * Spare threads
 * ====================================================================== */

/* A spare: a thread of C's own with a thread state of its own, serving as
 * any worker does until it parks too long or the server stops. Holds a
 * reference to the server (taken by the monitor before starting it). */
static void *spare_main(void *arg) {
    ServerObject *srv = arg;
    pthread_setname_np(pthread_self(), "karak-spare");
    PyThreadState *ts = PyThreadState_New(srv->interp);
    if (!ts) {
        atomic_fetch_sub(&srv->starting, 1);
        kk_pool_left(srv);
        return NULL; /* the server reference is leaked: no thread state to drop it */
    }
    PyEval_RestoreThread(ts);
    PyObject *r = kk_serve(srv, 1);
    if (!r) PyErr_WriteUnraisable((PyObject *)srv);
    Py_XDECREF(r);
    Py_DECREF(srv);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
    return NULL;
}

/* Starts a spare. The monitor is detached; *mts is its saved thread state
 * (it attaches to take the spare's reference to the server). */
static void start_spare(ServerObject *srv, PyThreadState **mts) {
    atomic_fetch_add(&srv->starting, 1);
    PyEval_RestoreThread(*mts);
    Py_INCREF(srv);
    *mts = PyEval_SaveThread();
    pthread_attr_t a;
    pthread_t t;
    int rc = pthread_attr_init(&a);
    if (rc == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &a, spare_main, srv);
        pthread_attr_destroy(&a);
    }
    if (rc != 0) {
        /* The token stays on the free list: the blocked thread takes it back. */
        atomic_fetch_sub(&srv->starting, 1);
        PyEval_RestoreThread(*mts);
        Py_DECREF(srv);
        *mts = PyEval_SaveThread();
        return;
    }
    atomic_fetch_add_explicit(&srv->spawned, 1, memory_order_relaxed);
}

/* ======================================================================
 * The monitor
 * ====================================================================== */

/* Is an event waiting for a poller? (An epoll set is readable while its
 * ready list is not empty; one-shot connections held by a thread are not on
 * it.) */
static int events_waiting(ServerObject *srv) {
    struct pollfd p = {.fd = srv->epoll_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static int can_hand_off(ServerObject *srv) {
    pthread_mutex_lock(&srv->park_lock);
    long parked = srv->nparked;
    pthread_mutex_unlock(&srv->park_lock);
    return parked > 0 ||
           atomic_load(&srv->workers) + atomic_load(&srv->starting) < srv->max_threads;
}

/* One look at every token. Returns the next tick in microseconds. */
static uint64_t monitor_tick(ServerObject *srv, PyThreadState **mts) {
    uint64_t now = kk_now_us(), tick = KK_TICK_IDLE_US;
    for (long i = 0; i < srv->target; i++) {
        kk_token *t = &srv->tokens[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) != KK_TOK_HANDLER) {
            t->seen_since = 0;
            continue;
        }
        uint64_t since = atomic_load_explicit(&t->since_us, memory_order_relaxed);
        if (tick > KK_TICK_BUSY_US) tick = KK_TICK_BUSY_US;
        if (now < since + KK_SAMPLE_US) {
            if (now >= since + KK_SAMPLE_US / 2) tick = KK_TICK_FAST_US; /* due soon */
            continue;
        }
        if (since == t->seen_since && now < t->recheck_us) continue; /* computing */
        uint64_t cpu = cpu_ns(atomic_load_explicit(&t->cpu_clock, memory_order_relaxed));
        if (since != t->seen_since || !cpu) { /* first look at this call: a second follows */
            t->seen_since = since;
            t->seen_cpu_ns = cpu;
            t->seen_at_us = now;
            t->recheck_us = 0;
            tick = KK_TICK_FAST_US;
            continue;
        }
        uint64_t wall_ns = (now - t->seen_at_us) * 1000u, used = cpu - t->seen_cpu_ns;
        t->seen_cpu_ns = cpu;
        t->seen_at_us = now;
        if (used * 2 >= wall_ns ||
            !asleep(t, atomic_load_explicit(&t->tid, memory_order_relaxed))) {
            /* computing, or preempted (runnable): keeps its token */
            t->recheck_us = now + KK_RECHECK_US;
            continue;
        }
        /* Blocked. Its token moves only if work waits and a thread can take it;
         * else look again at the busy pace. */
        if (!events_waiting(srv) || !can_hand_off(srv)) continue;
        int h = KK_TOK_HANDLER;
        if (!atomic_compare_exchange_strong(&t->state, &h, KK_TOK_FREE)) continue; /* returned */
        t->seen_since = 0;
        atomic_fetch_add_explicit(&srv->handoffs, 1, memory_order_relaxed);
        if (give_token(srv, i) && atomic_load(&srv->workers) + atomic_load(&srv->starting) <
                                      srv->max_threads)
            start_spare(srv, mts);
        tick = KK_TICK_FAST_US; /* the next blocked holder may be close behind */
    }
    return tick;
}

/* Server.monitor(): watches the token holders until the server stops (run by
 * app.run on a thread of its own). One at a time. */
PyObject *kk_pool_monitor(ServerObject *srv) {
    if (!srv->lock_ready || !srv->tokens) {
        PyErr_SetString(PyExc_RuntimeError, "server was never opened");
        return NULL;
    }
    int zero = 0;
    if (!atomic_compare_exchange_strong(&srv->monitoring, &zero, 1)) {
        PyErr_SetString(PyExc_RuntimeError, "this server already has a monitor");
        return NULL;
    }
    PyThreadState *mts = PyEval_SaveThread();
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* ticks of 50 us mean 50 us */
    uint64_t tick = KK_TICK_BUSY_US;
    while (!atomic_load(&srv->stopping)) {
        struct timespec d = {.tv_sec = 0, .tv_nsec = (long)tick * 1000L};
        nanosleep(&d, NULL);
        uint64_t next = monitor_tick(srv, &mts);
        /* Nothing in a handler: back off gradually, so a quiet server costs
         * a wake-up every 20 ms, and a busy one that calls only fast handlers
         * one a millisecond. */
        tick = next == KK_TICK_IDLE_US ? (tick * 2 < KK_TICK_IDLE_US ? tick * 2 : KK_TICK_IDLE_US)
                                       : next;
    }
    PyEval_RestoreThread(mts);
    atomic_store(&srv->monitoring, 0);
    Py_RETURN_NONE;
}
