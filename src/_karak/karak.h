/* karak.h: declarations shared by the Python-facing parts of the engine
 * (module, server, connection, request, response, plan). The pure parts
 * (parse, router, buf) have their own headers and no Python.h.
 */
#ifndef KK_KARAK_H
#define KK_KARAK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#include "compat.h"
#include "buf.h"
#include "parse.h"
#include "router.h"
#include "json.h"

/* ---- module state ------------------------------------------------------ */

/* One per module object. Written at module init and by _configure() (called
 * once by `import karak`, before any server exists, and refused after that);
 * read-only afterwards, so workers read it without a lock. */
typedef struct {
    _Atomic int configured;     /* _configure() has run (it runs once) */
    PyTypeObject *request_type;
    PyTypeObject *headers_type;
    PyTypeObject *response_type;
    PyTypeObject *plan_type;
    PyTypeObject *server_type;
    PyObject *http_exception;   /* karak.HTTPException */
    PyObject *validation_error; /* pydantic_core.ValidationError */
    PyObject *to_json;          /* pydantic_core.to_json: JSON fallback for other types */
    PyObject *from_json;        /* pydantic_core.from_json: Request.json() */
    PyObject *any_json;         /* TypeAdapter(Any).validator: a body of members, parsed */
    PyObject *log_exception;    /* callable(exc, where): logs with traceback */
    PyObject *log_warning;      /* callable(message): the engine's own warnings (logger karak) */
    /* interned names */
    PyObject *s_status_code, *s_detail, *s_headers, *s_validate_python,
             *s_validate_json, *s_to_json, *s_errors, *s_loc, *s_json,
             *s_include_url, *s_body, *s_query, *s_path, *s_header,
             *s_type, *s_msg, *s_input, *s_missing, *s_send, *s_close,
             *s_include_input, *s_throw, *s_by_alias, *s_cookie, *s_from_attributes,
             *s_text_plain, *s_application_json; /* the default media types */
    PyObject *kw_by_alias;      /* ("by_alias",): kwnames for serializer.to_json(v, by_alias=True) */
    PyObject *kw_from_attributes; /* ("from_attributes",): validate_python(v, from_attributes=True) */
} kk_state;

kk_state *kk_get_state(PyObject *module);
kk_state *kk_state_from_type(PyTypeObject *tp);

/* ---- per-request context ----------------------------------------------- */

/* What a plan needs to know about the request being served. Lives on the
 * worker's stack for one request; every span points into the connection's
 * (or worker's) read buffer and is valid only until the response is built. */
typedef struct {
    kk_state *st;
    const kk_request *req;
    const char *body; size_t body_len;    /* decoded body */
    const kk_match *match;
    PyObject *request;        /* Request object, created on first use. New ref or NULL. */
    PyObject **dep_values;    /* [ndeps]: each NULL until computed, then a new ref */
    PyObject *deps;           /* the root plan's tuple of dependency plans (borrowed) */
    PyObject *errors;         /* list of 422 error dicts, or NULL */
    PyObject *gens;           /* list of generator dependencies to finish, or NULL */
    PyObject *body_obj;       /* the body parsed for its members (Body(embed)), or NULL */
    int body_state;           /* 0 not read yet, 1 body_obj set, 2 no JSON (empty or
                               * not declared JSON), -1 not JSON (422 recorded) */
    _Atomic int *stopping;    /* the server's shutdown flag: checked after the handler */
    int flags_used;           /* KK_EMIT_* the response was written with */
} kk_ctx;

/* ---- plan ------------------------------------------------------------- */

enum { KK_STEP_PATH = 0, KK_STEP_QUERY = 1, KK_STEP_HEADER = 2, KK_STEP_BODY = 3,
       KK_STEP_REQUEST = 4, KK_STEP_DEP = 5, KK_STEP_COOKIE = 6 };
enum { KK_CONV_STR = 0, KK_CONV_INT = 1, KK_CONV_FLOAT = 2, KK_CONV_BOOL = 3,
       KK_CONV_VALIDATOR = 4, KK_CONV_RAW = 5 };

typedef struct {
    int kind;                /* KK_STEP_* */
    int conv;                /* KK_CONV_* */
    int required;
    int is_list;             /* query or header: every value, as a list; body: one
                              * member of the body's JSON object (Body(embed)) */
    PyObject *key;           /* str: the name, as 422 errors give it in "loc" */
    PyObject *match;         /* str: the name matched (headers: key lower-cased) */
    const char *key_utf8;    /* borrowed from match, lives as long as it */
    Py_ssize_t key_len;
    PyObject *default_value; /* new ref, or NULL when required */
    PyObject *validator;     /* SchemaValidator-like object, or NULL */
    Py_ssize_t dep;          /* KK_STEP_DEP: index into the root plan's deps */
} kk_step;

/* A handler's (or a dependency's) compiled signature. Immutable after
 * construction: any worker may execute it concurrently without a lock. */
typedef struct {
    PyObject_HEAD
    PyObject *call;           /* the user's function */
    PyObject *kwnames;        /* tuple of parameter names, or NULL when none */
    Py_ssize_t nsteps;
    kk_step *steps;           /* PyMem_Calloc'd, nsteps entries */
    PyObject *deps;           /* root plans: tuple of dependency plans; else NULL */
    PyObject *ret_validator;  /* response model validator, or NULL */
    PyObject *ret_serializer; /* response model serializer, or NULL */
    PyObject *ret_shape;      /* plain response model's shape (karak/_shapes.py), or NULL */
    int status_code;          /* default success status */
    int is_generator;         /* dependency written with `yield` */
    /* The one mutable field, a hint shared by all workers (relaxed atomic;
     * racing updates only make it count a call more or less): how many fast
     * calls (at most KK_SLOW_US), up to KK_FAST_STREAK, since the plan was new
     * or a call blocked (over KK_BLOCK_US: back to 0); a slow call in between
     * lowers it to KK_FAST_STREAK - 1 at most. Below KK_FAST_STREAK, answers
     * waiting to be written go out before the handler runs (see conn.c,
     * "Deferred writes"). */
    _Atomic int fast_streak;
} PlanObject;

/* Runs the plan: gathers arguments (recording 422 errors in ctx->errors) and
 * calls the function. New reference; NULL with an exception set on error, or
 * NULL with no exception when ctx->errors holds validation errors. */
PyObject *kk_plan_call(PlanObject *plan, kk_ctx *ctx);

/* ---- response writing --------------------------------------------------- */

/* Per-worker cache of the formatted Date header (worker-local). */
typedef struct {
    time_t sec;
    char line[48];            /* "Date: Wed, 25 Nov 2026 08:00:00 GMT\r\n" */
    size_t len;
} kk_date;

void kk_date_update(kk_date *d);

enum {
    KK_EMIT_HEAD_ONLY = 1,    /* HEAD request: headers as for GET, no body */
    KK_EMIT_CLOSE = 2,        /* send Connection: close */
    KK_EMIT_KEEPALIVE10 = 4,  /* HTTP/1.0 keep-alive: send Connection: keep-alive */
};

/* A response field value: no CR, LF, NUL or other control (HTAB allowed). */
int kk_field_value_ok(const char *s, size_t n);
/* A final response's status: 200 to 599 (a 1xx is interim: sent as the answer
 * it would put the connection out of step). 0, or -1 with ValueError. */
int kk_check_status(long status);
/* Appends a whole response to out. ctype may be NULL (no Content-Type);
 * headers is NULL or a dict / sequence of pairs of the user's headers (str).
 * Returns 0, or -1 with a Python exception set when a user header is invalid
 * (CR, LF or NUL, or a bad name): nothing is appended then. */
int kk_emit(kk_buf *out, const kk_date *date, int status, const char *ctype,
            size_t ctype_len, PyObject *headers, const char *body, size_t body_len,
            int flags);

/* Same, with no user headers and no Python involvement: engine answers such as
 * 400, 404, 413. body is a JSON document. Never fails (but for memory). */
int kk_emit_simple(kk_buf *out, const kk_date *date, int status, const char *extra_headers,
                   const char *body, size_t body_len, int flags);

const char *kk_reason_phrase(int status);

/* Runs the handler plan and appends its whole response to out (a 500 when
 * anything fails, 422 for validation errors, the HTTPException's status).
 * Returns 0, or -1 only when out of memory. */
int kk_plan_serve(PlanObject *plan, kk_ctx *ctx, kk_buf *out, kk_buf *scratch,
                  const kk_date *date, int flags);


/* The Response type and its thread rule: response.h. */

/* ---- Request type --------------------------------------------------------- */

/* Builds a Request that owns a copy of the head and body. New reference. */
PyObject *kk_request_new(kk_state *st, const kk_request *req, const kk_match *m,
                         const char *body, size_t body_len);

/* ---- type specs (defined in their files, registered by module.c) --------- */
extern PyType_Spec kk_request_spec;
extern PyType_Spec kk_headers_spec;
extern PyType_Spec kk_response_spec;
extern PyType_Spec kk_plan_spec;
extern PyType_Spec kk_server_spec;

/* Percent-decodes src into dst (room for n bytes); plus_as_space for queries.
 * Returns the decoded length (never more than n). */
size_t kk_pct_decode(char *dst, const char *src, size_t n, int plus_as_space);

/* A percent-decoded view of src[0..n): src itself when nothing is encoded,
 * else the decoded bytes in tmp (or in *heap, PyMem_Malloc'd, when longer than
 * tmpcap; the caller PyMem_Free's *heap). NULL with MemoryError on failure. */
const char *kk_pct_span(const char *src, size_t n, int plus_as_space, char *tmp, size_t tmpcap,
                        size_t *outn, char **heap);

/* The percent-decoded span as str (UTF-8, invalid bytes replaced). New reference. */
PyObject *kk_decoded_str(const char *s, size_t n, int plus_as_space);

/* A header (or cookie) value as str: UTF-8 when it decodes as such, Latin-1
 * otherwise (HTTP's historical charset). New reference, or NULL with an
 * exception (never a UnicodeDecodeError). */
PyObject *kk_header_value_str(const char *s, size_t n);

/* Iterates the "name=value" pairs of a raw query string q[0..n), from *pos
 * (start at 0). Empty pairs ("a&&b") are skipped; a pair without '=' has an
 * empty value. Spans are raw (still percent-encoded). Returns 1 with a pair,
 * 0 at the end. */
static inline int kk_query_next(const char *q, size_t n, size_t *pos, const char **k, size_t *kn,
                                const char **v, size_t *vn) {
    size_t i = *pos;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&') j++;
        *pos = j + 1;
        if (j > i) {
            size_t eq = i;
            while (eq < j && q[eq] != '=') eq++;
            *k = q + i;
            *kn = eq - i;
            *v = eq < j ? q + eq + 1 : q + j;
            *vn = eq < j ? j - eq - 1 : 0;
            return 1;
        }
        i = j + 1;
    }
    *pos = n;
    return 0;
}

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t kk_now_ms(void);

#endif
