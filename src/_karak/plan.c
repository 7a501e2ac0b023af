/* plan.c: executing a handler's plan.
 *
 * The Python side reads a handler's signature once, at registration, and
 * compiles it into a Plan: one step per parameter (path, query, header, body,
 * request, dependency) with its converter. Per request, C walks the steps,
 * builds only the arguments the handler asked for, records FastAPI-shaped 422
 * errors, calls the handler with vectorcall, and turns the result (or the
 * exception) into response bytes.
 */
#include "karak.h"
#include "response.h"

#include <math.h>
#include <stdio.h>

/* ======================================================================
 * Plan construction (registration time, one thread)
 * ====================================================================== */

static void plan_free_steps(PlanObject *p) {
    if (!p->steps) return;
    for (Py_ssize_t i = 0; i < p->nsteps; i++) {
        Py_CLEAR(p->steps[i].key);
        Py_CLEAR(p->steps[i].match);
        Py_CLEAR(p->steps[i].default_value);
        Py_CLEAR(p->steps[i].validator);
    }
    PyMem_Free(p->steps);
    p->steps = NULL;
    p->nsteps = 0;
}

/* Plan(call, steps, status_code=200, deps=None, ret_validator=None,
 *      ret_serializer=None, is_generator=False, ret_shape=None)
 * steps: sequence of (kind, name, key, conv, required, default, validator, is_list, dep). */
static int Plan_init(PlanObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"call", "steps", "status_code", "deps", "ret_validator",
                             "ret_serializer", "is_generator", "ret_shape", NULL};
    PyObject *call, *steps, *deps = Py_None, *rv = Py_None, *rs = Py_None, *shape = Py_None;
    int status = 200, is_gen = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|iOOOpO:Plan", kwlist, &call, &steps, &status,
                                     &deps, &rv, &rs, &is_gen, &shape))
        return -1;
    if (kk_check_status(status) < 0)
        return -1;
    if (self->call) {
        PyErr_SetString(PyExc_RuntimeError, "a Plan is immutable");
        return -1;
    }
    if (!PyCallable_Check(call)) {
        PyErr_SetString(PyExc_TypeError, "call must be callable");
        return -1;
    }
    /* A tuple of our own: parsing a step runs Python (the "p" conversions call
     * __bool__), which must not be able to free a step still being read. */
    PyObject *seq = PySequence_Tuple(steps);
    if (!seq) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    self->steps = PyMem_Calloc(n ? (size_t)n : 1, sizeof(kk_step));
    PyObject *names = PyTuple_New(n);
    if (!self->steps || !names) {
        Py_DECREF(seq);
        Py_XDECREF(names);
        PyErr_NoMemory();
        return -1;
    }
    self->nsteps = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        kk_step *s = &self->steps[i];
        PyObject *name, *key, *def, *validator;
        int required, is_list;
        Py_ssize_t dep;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(seq, i), "iUUipOOpn:step", &s->kind, &name,
                              &key, &s->conv, &required, &def, &validator, &is_list, &dep))
            goto err;
        if (s->kind < KK_STEP_PATH || s->kind > KK_STEP_COOKIE || s->conv < KK_CONV_STR ||
            s->conv > KK_CONV_RAW) {
            PyErr_SetString(PyExc_ValueError, "bad plan step");
            goto err;
        }
        s->required = required;
        s->is_list = is_list;
        s->dep = dep;
        s->key = Py_NewRef(key);
        /* A header's name is matched case-insensitively against a lower-case
         * copy; its loc keeps the alias as written, as FastAPI's does. */
        s->match = s->kind == KK_STEP_HEADER ? PyObject_CallMethod(key, "lower", NULL)
                                             : Py_NewRef(key);
        if (!s->match) goto err;
        s->key_utf8 = PyUnicode_AsUTF8AndSize(s->match, &s->key_len);
        if (!s->key_utf8) goto err;
        s->default_value = required ? NULL : Py_NewRef(def);
        s->validator = validator == Py_None ? NULL : Py_NewRef(validator);
        if ((s->conv == KK_CONV_VALIDATOR || s->conv == KK_CONV_INT ||
             s->conv == KK_CONV_FLOAT) && !s->validator) {
            /* int and float: pydantic's validator has the last word (convert()) */
            PyErr_SetString(PyExc_ValueError, "validator step without a validator");
            goto err;
        }
        if (s->kind == KK_STEP_BODY && !s->validator) {
            PyErr_SetString(PyExc_ValueError, "body step without a validator");
            goto err;
        }
        PyTuple_SET_ITEM(names, i, Py_NewRef(name));
    }
    Py_DECREF(seq);
    if (deps != Py_None) {
        self->deps = PySequence_Tuple(deps);
        if (!self->deps) goto err2;
        kk_state *st = kk_state_from_type(Py_TYPE(self));
        if (!st) goto err2;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(self->deps); i++) {
            if (!PyObject_TypeCheck(PyTuple_GET_ITEM(self->deps, i), st->plan_type)) {
                PyErr_SetString(PyExc_TypeError, "deps must be Plans");
                goto err2;
            }
        }
    }
    self->kwnames = n ? names : NULL;
    if (!n) Py_DECREF(names);
    self->call = Py_NewRef(call);
    self->status_code = status;
    self->is_generator = is_gen;
    self->ret_validator = rv == Py_None ? NULL : Py_NewRef(rv);
    self->ret_serializer = rs == Py_None ? NULL : Py_NewRef(rs);
    self->ret_shape = shape == Py_None || !self->ret_serializer ? NULL : Py_NewRef(shape);
    return 0;
err:
    Py_DECREF(seq);
err2:
    Py_DECREF(names);
    Py_CLEAR(self->deps);
    plan_free_steps(self);
    return -1;
}

static int Plan_traverse(PlanObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->call);
    Py_VISIT(self->deps);
    Py_VISIT(self->ret_validator);
    Py_VISIT(self->ret_serializer);
    Py_VISIT(self->ret_shape);
    for (Py_ssize_t i = 0; i < self->nsteps; i++) {
        Py_VISIT(self->steps[i].default_value);
        Py_VISIT(self->steps[i].validator);
    }
    return 0;
}

static int Plan_clear(PlanObject *self) {
    Py_CLEAR(self->call);
    Py_CLEAR(self->kwnames);
    Py_CLEAR(self->deps);
    Py_CLEAR(self->ret_validator);
    Py_CLEAR(self->ret_serializer);
    Py_CLEAR(self->ret_shape);
    plan_free_steps(self);
    return 0;
}

static void Plan_dealloc(PlanObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Plan_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *Plan_repr(PlanObject *self) {
    return PyUnicode_FromFormat("<Plan %R, %zd steps>", self->call ? self->call : Py_None,
                                self->nsteps);
}

static PyType_Slot Plan_slots[] = {
    {Py_tp_doc, "A handler's compiled signature. Immutable once built; shared by all workers."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Plan_init},
    {Py_tp_dealloc, Plan_dealloc},
    {Py_tp_traverse, Plan_traverse},
    {Py_tp_clear, Plan_clear},
    {Py_tp_repr, Plan_repr},
    {0, NULL}};

PyType_Spec kk_plan_spec = {
    .name = "karak._karak.Plan",
    .basicsize = sizeof(PlanObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Plan_slots,
};

/* ======================================================================
 * Validation errors (FastAPI's shape)
 * ====================================================================== */

static int add_error(kk_ctx *ctx, const char *type, PyObject *where, PyObject *key, const char *msg,
                     PyObject *input) {
    kk_state *st = ctx->st;
    if (!ctx->errors && !(ctx->errors = PyList_New(0))) return -1;
    PyObject *loc = PyList_New(key ? 2 : 1);
    if (!loc) return -1;
    PyList_SET_ITEM(loc, 0, Py_NewRef(where));
    if (key) PyList_SET_ITEM(loc, 1, Py_NewRef(key));
    PyObject *d = Py_BuildValue("{sssOsssO}", "type", type, "loc", loc, "msg", msg, "input",
                                input ? input : Py_None);
    (void)st;
    Py_DECREF(loc);
    if (!d) return -1;
    int rc = PyList_Append(ctx->errors, d);
    Py_DECREF(d);
    return rc;
}

/* exc.json(include_url=False[, include_input=False]). New reference. */
static PyObject *errors_json(kk_state *st, PyObject *exc, int with_input) {
    PyObject *kwnames = with_input ? PyTuple_Pack(1, st->s_include_url)
                                   : PyTuple_Pack(2, st->s_include_url, st->s_include_input);
    PyObject *argv[3] = {exc, Py_False, Py_False};
    PyObject *text = kwnames ? PyObject_VectorcallMethod(st->s_json, argv,
                                                         1 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames)
                             : NULL;
    Py_XDECREF(kwnames);
    return text;
}

/* The current exception is a pydantic ValidationError: append its errors with
 * their loc prefixed by `where` (and `key`). Returns 0, or -1 if it was some
 * other exception (left set). */
static int add_validation_errors(kk_ctx *ctx, PyObject *where, PyObject *key) {
    kk_state *st = ctx->st;
    if (!PyErr_ExceptionMatches(st->validation_error)) return -1;
    PyObject *exc = kk_fetch_exception();
    /* exc.json() is JSON-able (ctx objects turned to str) and all in Rust, except
     * when an input is bytes that are not UTF-8 (a body that is not): then the
     * errors are taken without their inputs, and a body's input is the body
     * with its invalid bytes replaced. */
    PyObject *text = errors_json(st, exc, 1);
    int lossy = !text && PyErr_ExceptionMatches(PyExc_ValueError);
    if (lossy) {
        PyErr_Clear();
        text = errors_json(st, exc, 0);
    }
    PyObject *list = text ? PyObject_CallOneArg(st->from_json, text) : NULL;
    Py_XDECREF(text);
    Py_DECREF(exc);
    if (!list) return -1;
    if (!ctx->errors && !(ctx->errors = PyList_New(0))) {
        Py_DECREF(list);
        return -1;
    }
    Py_ssize_t n = PyList_Check(list) ? PyList_GET_SIZE(list) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(list, i);
        if (!PyDict_Check(e)) continue;
        PyObject *old = NULL;
        if (PyDict_GetItemRef(e, st->s_loc, &old) < 0) goto fail;
        Py_ssize_t m = old && PyList_Check(old) ? PyList_GET_SIZE(old) : 0;
        PyObject *loc = PyList_New(0);
        if (!loc || PyList_Append(loc, where) < 0 || (key && PyList_Append(loc, key) < 0)) {
            Py_XDECREF(loc);
            Py_XDECREF(old);
            goto fail;
        }
        for (Py_ssize_t j = 0; j < m; j++)
            if (PyList_Append(loc, PyList_GET_ITEM(old, j)) < 0) {
                Py_DECREF(loc);
                Py_XDECREF(old);
                goto fail;
            }
        Py_XDECREF(old);
        int rc = PyDict_SetItem(e, st->s_loc, loc);
        Py_DECREF(loc);
        if (rc == 0 && lossy) {
            PyObject *input = where == st->s_body && ctx->body
                                  ? PyUnicode_DecodeUTF8(ctx->body, (Py_ssize_t)ctx->body_len,
                                                         "replace")
                                  : Py_NewRef(Py_None);
            rc = input ? PyDict_SetItem(e, st->s_input, input) : -1;
            Py_XDECREF(input);
        }
        if (rc < 0 || PyList_Append(ctx->errors, e) < 0) goto fail;
    }
    Py_DECREF(list);
    return 0;
fail:
    Py_DECREF(list);
    return -1;
}

/* ======================================================================
 * Conversions
 * ====================================================================== */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Trims outer ASCII whitespace (pydantic trims these and more, so a value the
 * fast paths below accept after trimming is one pydantic accepts too). */
static void trim_ws(const char **s, size_t *n) {
    while (*n && is_ws(**s)) (*s)++, (*n)--;
    while (*n && is_ws((*s)[*n - 1])) (*n)--;
}

/* str -> int for the common form only: an optional sign and 1 to 18 digits,
 * where our answer is pydantic's. New reference, or NULL with no exception for
 * anything else (underscores, "1.0", Unicode spaces, long numbers), which
 * convert() hands to pydantic, so its lax rules and its errors apply exactly. */
static PyObject *fast_int(const char *s, size_t n) {
    trim_ws(&s, &n);
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n || n - i > 18) return NULL;
    long long v = 0;
    for (size_t j = i; j < n; j++) {
        if (!is_digit(s[j])) return NULL;
        v = v * 10 + (s[j] - '0');
    }
    return PyLong_FromLongLong(neg ? -v : v);
}

/* str -> float for the common form only: [+-]digits[.digits][(e|E)[+-]digits],
 * at most 64 characters, with a finite result. Both we (David Gay's dtoa,
 * through PyOS_string_to_double) and pydantic round correctly, so the answers
 * agree. NULL with no exception for anything else (convert() asks pydantic). */
static PyObject *fast_float(const char *s, size_t n) {
    trim_ws(&s, &n);
    if (n == 0 || n > 64) return NULL;
    size_t i = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    size_t d0 = i;
    while (i < n && is_digit(s[i])) i++;
    if (i == d0) return NULL;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && is_digit(s[i])) i++;
        if (i == f0) return NULL;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && is_digit(s[i])) i++;
        if (i == e0) return NULL;
    }
    if (i != n) return NULL;
    char tmp[65];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double v = PyOS_string_to_double(tmp, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (end != tmp + n || !isfinite(v)) return NULL;
    return PyFloat_FromDouble(v);
}

static PyObject *conv_bool(const char *s, size_t n) {
    static const char *yes[] = {"1", "on", "t", "true", "y", "yes"};
    static const char *no[] = {"0", "off", "f", "false", "n", "no"};
    for (size_t i = 0; i < 6; i++) {
        if (kk_span_ieq(s, n, yes[i])) Py_RETURN_TRUE;
        if (kk_span_ieq(s, n, no[i])) Py_RETURN_FALSE;
    }
    return NULL;
}

/* A raw value as str. Header values are UTF-8 when they decode as such and
 * Latin-1 otherwise, as Request.headers reads them; path and query values
 * (percent-decoded) are UTF-8 with invalid bytes replaced, as Starlette does.
 * New reference. */
static PyObject *decode_value(kk_ctx *ctx, PyObject *where, const char *v, size_t n) {
    if (where == ctx->st->s_header || where == ctx->st->s_cookie)
        return kk_header_value_str(v, n);
    return PyUnicode_DecodeUTF8(v, (Py_ssize_t)n, "replace");
}

/* Converts a decoded value for step s. New reference; NULL with an exception
 * on a real error; NULL without one when the value was invalid (the error is
 * recorded in ctx->errors). int and float try their fast path, then the step's
 * pydantic validator (int or float, required by Plan), which has the last word. */
static PyObject *convert(kk_ctx *ctx, const kk_step *s, PyObject *where, const char *v, size_t n) {
    PyObject *r = NULL;
    if (s->conv == KK_CONV_INT) r = fast_int(v, n);
    else if (s->conv == KK_CONV_FLOAT) r = fast_float(v, n);
    else if (s->conv == KK_CONV_BOOL) r = conv_bool(v, n);
    if (r || PyErr_Occurred()) return r;
    PyObject *str = decode_value(ctx, where, v, n);
    if (!str) return NULL;
    if (s->validator) {
        r = PyObject_CallMethodOneArg(s->validator, ctx->st->s_validate_python, str);
        Py_DECREF(str);
        if (!r && add_validation_errors(ctx, where, s->key) == 0) return NULL;
        return r;
    }
    if (s->conv != KK_CONV_BOOL) return str; /* CONV_STR, CONV_RAW */
    (void)add_error(ctx, "bool_parsing", where, s->key,
                    "Input should be a valid boolean, unable to interpret input", str);
    Py_DECREF(str);
    return NULL;
}

/* ======================================================================
 * Steps
 * ====================================================================== */

static PyObject *missing_or_default(kk_ctx *ctx, const kk_step *s, PyObject *where) {
    if (!s->required) return Py_NewRef(s->default_value);
    add_error(ctx, "missing", where, s->key, "Field required", NULL);
    return NULL;
}

static PyObject *step_path(kk_ctx *ctx, const kk_step *s) {
    const kk_match *m = ctx->match;
    for (size_t i = 0; m && i < m->num_params; i++) {
        const kk_param *p = &m->params[i];
        if (p->name_len != (size_t)s->key_len || memcmp(p->name, s->key_utf8, p->name_len)) continue;
        char tmp[256], *heap;
        size_t n;
        const char *v = kk_pct_span(p->value, p->value_len, 0, tmp, sizeof tmp, &n, &heap);
        if (!v) return NULL; /* MemoryError set */
        PyObject *r = convert(ctx, s, ctx->st->s_path, v, n);
        PyMem_Free(heap);
        return r;
    }
    return missing_or_default(ctx, s, ctx->st->s_path);
}

/* list[T] for a repeated query key or header field: the validator (list[T])
 * converts every item at once. Steals list. */
static PyObject *validate_list(kk_ctx *ctx, const kk_step *s, PyObject *where, PyObject *list) {
    if (!s->validator) return list;
    PyObject *r = PyObject_CallMethodOneArg(s->validator, ctx->st->s_validate_python, list);
    Py_DECREF(list);
    if (!r && add_validation_errors(ctx, where, s->key) == 0) return NULL;
    return r;
}

/* Is the (raw) query key q[0..n) equal to key once decoded? */
static int query_key_eq(const char *q, size_t n, const char *key, size_t klen) {
    if (n == klen && memcmp(q, key, n) == 0) return 1;
    if (!memchr(q, '%', n) && !memchr(q, '+', n)) return 0;
    if (n > 1024) return 0;
    char tmp[1024];
    size_t m = kk_pct_decode(tmp, q, n, 1);
    return m == klen && memcmp(tmp, key, m) == 0;
}

static PyObject *step_query(kk_ctx *ctx, const kk_step *s) {
    const char *q = ctx->req->query;
    size_t qn = q ? ctx->req->query_len : 0;
    PyObject *where = ctx->st->s_query;
    PyObject *list = NULL;
    const char *last = NULL;
    size_t last_n = 0;
    int found = 0;
    size_t pos = 0, kn, vn;
    const char *k, *v;
    while (kk_query_next(q, qn, &pos, &k, &kn, &v, &vn)) {
        if (!query_key_eq(k, kn, s->key_utf8, (size_t)s->key_len)) continue;
        found++;
        if (s->is_list) {
            PyObject *str = kk_decoded_str(v, vn, 1);
            if (!str) goto err;
            if (!list && !(list = PyList_New(0))) {
                Py_DECREF(str);
                goto err;
            }
            int rc = PyList_Append(list, str);
            Py_DECREF(str);
            if (rc < 0) goto err;
        } else {
            last = v; /* the last value wins, as in Starlette */
            last_n = vn;
        }
    }
    if (!found) return missing_or_default(ctx, s, where);
    if (s->is_list) return validate_list(ctx, s, where, list);
    char tmp[256], *heap;
    size_t n;
    const char *d = kk_pct_span(last, last_n, 1, tmp, sizeof tmp, &n, &heap);
    if (!d) return NULL; /* MemoryError set */
    PyObject *r = convert(ctx, s, where, d, n);
    PyMem_Free(heap);
    return r;
err:
    Py_XDECREF(list);
    return NULL;
}

/* The request's first header field named `lower` (lowercase), or NULL. */
static const kk_header *find_header(const kk_request *req, const char *lower) {
    for (size_t i = 0; i < req->num_headers; i++)
        if (kk_span_ieq(req->headers[i].name, req->headers[i].name_len, lower))
            return &req->headers[i];
    return NULL;
}

static PyObject *step_header(kk_ctx *ctx, const kk_step *s) {
    PyObject *where = ctx->st->s_header;
    if (!s->is_list) {
        const kk_header *h = find_header(ctx->req, s->key_utf8);
        if (h) return convert(ctx, s, where, h->value, h->value_len);
        return missing_or_default(ctx, s, where);
    }
    /* list[T]: every field of that name, in order, each value whole (not split
     * at commas), as Starlette's headers.getlist(name). */
    PyObject *list = NULL;
    for (size_t i = 0; i < ctx->req->num_headers; i++) {
        const kk_header *h = &ctx->req->headers[i];
        if (!kk_span_ieq(h->name, h->name_len, s->key_utf8)) continue;
        PyObject *str = decode_value(ctx, where, h->value, h->value_len);
        if (!str || (!list && !(list = PyList_New(0))) || PyList_Append(list, str) < 0) {
            Py_XDECREF(str);
            Py_XDECREF(list);
            return NULL;
        }
        Py_DECREF(str);
    }
    if (!list) return missing_or_default(ctx, s, where);
    return validate_list(ctx, s, where, list);
}

/* A cookie by name (case-sensitive) from every Cookie field; the last pair of
 * that name wins, as in Starlette's request.cookies. The value is unquoted
 * (kk_cookie_unquote), then decoded as header values are. */
static PyObject *step_cookie(kk_ctx *ctx, const kk_step *s) {
    PyObject *where = ctx->st->s_cookie;
    const char *last = NULL;
    size_t last_n = 0;
    for (size_t i = 0; i < ctx->req->num_headers; i++) {
        const kk_header *h = &ctx->req->headers[i];
        if (!kk_span_ieq(h->name, h->name_len, "cookie")) continue;
        size_t pos = 0, kn, vn;
        const char *k, *v;
        while (kk_cookie_next(h->value, h->value_len, &pos, &k, &kn, &v, &vn))
            if (kn == (size_t)s->key_len && memcmp(k, s->key_utf8, kn) == 0) {
                last = v;
                last_n = vn;
            }
    }
    if (!last) return missing_or_default(ctx, s, where);
    char tmp[256];
    char *buf = last_n <= sizeof tmp ? tmp : PyMem_Malloc(last_n);
    if (!buf) return PyErr_NoMemory();
    size_t n = kk_cookie_unquote(buf, last, last_n);
    PyObject *r = convert(ctx, s, where, buf, n);
    if (buf != tmp) PyMem_Free(buf);
    return r;
}

/* Is the body declared JSON? No Content-Type, application/json, or
 * application/<anything>+json, parameters aside: FastAPI's rule. A browser
 * form can send text/plain across origins without a preflight, so reading
 * that as JSON would let another site post to a JSON API (CSRF). */
static int body_is_json(const kk_request *req) {
    const kk_header *h = find_header(req, "content-type");
    if (!h) return 1;
    const char *v = h->value;
    size_t n = 0;
    while (n < h->value_len && v[n] != ';' && v[n] != ' ' && v[n] != '\t') n++;
    if (n < 12 || !kk_span_ieq(v, 12, "application/")) return 0;
    return kk_span_ieq(v + 12, n - 12, "json") || (n - 12 > 5 && kk_span_ieq(v + n - 5, 5, "+json"));
}

/* validator.validate_json(body) when the body is declared JSON (a leading
 * UTF-8 BOM skipped), else validator.validate_python(body bytes). New
 * reference, or NULL with the validator's exception set. */
static PyObject *validate_body(kk_ctx *ctx, PyObject *validator, int is_json) {
    kk_state *st = ctx->st;
    size_t skip = is_json ? kk_utf8_bom_len(ctx->body, ctx->body_len) : 0;
    PyObject *bytes = PyBytes_FromStringAndSize(ctx->body + skip, (Py_ssize_t)(ctx->body_len - skip));
    if (!bytes) return NULL;
    PyObject *r = PyObject_CallMethodOneArg(validator, is_json ? st->s_validate_json
                                                               : st->s_validate_python,
                                            bytes);
    Py_DECREF(bytes);
    return r;
}

static PyObject *step_body(kk_ctx *ctx, const kk_step *s) {
    kk_state *st = ctx->st;
    if (ctx->body_len == 0) {
        if (!s->required) return Py_NewRef(s->default_value);
        add_error(ctx, "missing", st->s_body, NULL, "Field required", NULL);
        return NULL;
    }
    /* Not declared JSON: the bytes themselves are validated, as FastAPI does,
     * so a model gets pydantic's "valid dictionary" 422. */
    PyObject *r = validate_body(ctx, s->validator, body_is_json(ctx->req));
    if (!r && add_validation_errors(ctx, st->s_body, NULL) == 0) return NULL;
    return r;
}

/* A member of the body's JSON object (Body(embed=True), or one of several body
 * parameters): FastAPI's rules. The body is parsed once per request (st->any_json,
 * so bad JSON is one json_invalid 422 at ["body"], as for a single body
 * parameter). No body, or one not declared JSON: every member is absent (its
 * default, or "missing"). JSON that is not an object (a list, null ...): every
 * member is "missing", defaults or not. A member present is validated by the
 * parameter's validator, its errors at ["body", key, ...]. */
static PyObject *step_body_member(kk_ctx *ctx, const kk_step *s) {
    kk_state *st = ctx->st;
    if (ctx->body_state == 0) {
        if (ctx->body_len == 0 || !body_is_json(ctx->req)) {
            ctx->body_state = 2;
        } else {
            ctx->body_obj = validate_body(ctx, st->any_json, 1);
            if (!ctx->body_obj) {
                if (add_validation_errors(ctx, st->s_body, NULL) < 0) return NULL;
                ctx->body_state = -1;
                return NULL;
            }
            ctx->body_state = 1;
        }
    }
    if (ctx->body_state < 0) return NULL; /* its 422 is recorded once */
    PyObject *v = NULL;
    if (ctx->body_state == 1) {
        if (!PyDict_Check(ctx->body_obj)) {
            add_error(ctx, "missing", st->s_body, s->key, "Field required", NULL);
            return NULL;
        }
        if (PyDict_GetItemRef(ctx->body_obj, s->key, &v) < 0) return NULL;
    }
    if (!v) return missing_or_default(ctx, s, st->s_body);
    PyObject *r = PyObject_CallMethodOneArg(s->validator, st->s_validate_python, v);
    Py_DECREF(v);
    if (!r && add_validation_errors(ctx, st->s_body, s->key) == 0) return NULL;
    return r;
}

static PyObject *step_request(kk_ctx *ctx) {
    if (!ctx->request) {
        ctx->request = kk_request_new(ctx->st, ctx->req, ctx->match, ctx->body, ctx->body_len);
        if (!ctx->request) return NULL;
    }
    return Py_NewRef(ctx->request);
}

static PyObject *step_dep(kk_ctx *ctx, const kk_step *s) {
    if (!ctx->deps || s->dep < 0 || s->dep >= PyTuple_GET_SIZE(ctx->deps)) {
        PyErr_SetString(PyExc_RuntimeError, "dependency index out of range");
        return NULL;
    }
    if (ctx->dep_values[s->dep]) return Py_NewRef(ctx->dep_values[s->dep]);
    PlanObject *dp = (PlanObject *)PyTuple_GET_ITEM(ctx->deps, s->dep);
    PyObject *v = kk_plan_call(dp, ctx);
    if (!v) return NULL;
    if (dp->is_generator) {
        /* A `yield` dependency: the yielded value is the dependency; the
         * generator is finished after the handler. */
        PyObject *gen = v;
        v = PyIter_Next(gen);
        if (!v) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "generator dependency did not yield");
            Py_DECREF(gen);
            return NULL;
        }
        if ((!ctx->gens && !(ctx->gens = PyList_New(0))) || PyList_Append(ctx->gens, gen) < 0) {
            Py_DECREF(gen);
            Py_DECREF(v);
            return NULL;
        }
        Py_DECREF(gen);
    }
    ctx->dep_values[s->dep] = Py_NewRef(v);
    return v;
}

#define KK_MAX_ARGS 64

PyObject *kk_plan_call(PlanObject *plan, kk_ctx *ctx) {
    PyObject *argv[KK_MAX_ARGS + 1];
    PyObject **args = argv + 1; /* argv[0] is scratch for PY_VECTORCALL_ARGUMENTS_OFFSET */
    Py_ssize_t n = plan->nsteps, got = 0;
    if (n > KK_MAX_ARGS) {
        PyErr_SetString(PyExc_RuntimeError, "too many parameters");
        return NULL;
    }
    int failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const kk_step *s = &plan->steps[i];
        PyObject *v = NULL;
        switch (s->kind) {
        case KK_STEP_PATH: v = step_path(ctx, s); break;
        case KK_STEP_QUERY: v = step_query(ctx, s); break;
        case KK_STEP_HEADER: v = step_header(ctx, s); break;
        case KK_STEP_COOKIE: v = step_cookie(ctx, s); break;
        case KK_STEP_BODY: v = s->is_list ? step_body_member(ctx, s) : step_body(ctx, s); break;
        case KK_STEP_REQUEST: v = step_request(ctx); break;
        case KK_STEP_DEP: v = step_dep(ctx, s); break;
        }
        if (!v) {
            if (PyErr_Occurred()) {
                failed = 1;
                break;
            }
            /* validation error recorded: keep going to report every one */
            v = Py_NewRef(Py_None);
            failed = -1;
        }
        args[got++] = v;
    }
    PyObject *r = NULL;
    if (!failed)
        r = PyObject_Vectorcall(plan->call, args, PY_VECTORCALL_ARGUMENTS_OFFSET, plan->kwnames);
    for (Py_ssize_t i = 0; i < got; i++) Py_DECREF(args[i]);
    return r;
}

/* ======================================================================
 * Serving: result or exception -> response bytes
 * ====================================================================== */

/* Logs exc with the request it broke ("GET /path"). */
static void log_exception(kk_ctx *ctx, PyObject *exc) {
    kk_state *st = ctx->st;
    /* snprintf, not PyUnicode_FromFormat: "%.*s" there needs 3.12. */
    char line[1024];
    int n = snprintf(line, sizeof line, "%.*s %.*s", (int)ctx->req->method_len, ctx->req->method,
                     (int)ctx->req->target_len, ctx->req->target);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    PyObject *where = PyUnicode_DecodeLatin1(line, n, NULL);
    PyObject *r = where ? PyObject_CallFunctionObjArgs(st->log_exception, exc, where, NULL) : NULL;
    Py_XDECREF(where);
    if (!r) PyErr_WriteUnraisable(st->log_exception);
    Py_XDECREF(r);
}

/* Logs the current exception and appends a 500. */
static int emit_500(kk_ctx *ctx, kk_buf *out, const kk_date *date, int flags) {
    PyObject *exc = kk_fetch_exception();
    if (exc) {
        log_exception(ctx, exc);
        Py_DECREF(exc);
    }
    static const char body[] = "{\"detail\":\"Internal Server Error\"}";
    return kk_emit_simple(out, date, 500, NULL, body, sizeof body - 1, flags);
}

/* {"detail": detail} with status; headers may be NULL. */
static int emit_detail(kk_ctx *ctx, kk_buf *out, kk_buf *scratch, const kk_date *date,
                       int status, PyObject *detail, PyObject *headers, int flags) {
    kk_state *st = ctx->st;
    scratch->len = 0;
    if (KK_BUF_LIT(scratch, "{\"detail\":") < 0 || kk_json_encode(scratch, detail, st->to_json) < 0 ||
        kk_buf_putc(scratch, '}') < 0) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return emit_500(ctx, out, date, flags);
    }
    if (kk_emit(out, date, status, "application/json", 16, headers, scratch->data, scratch->len,
                flags) < 0)
        return emit_500(ctx, out, date, flags);
    return 0;
}

static int emit_http_exception(kk_ctx *ctx, kk_buf *out, kk_buf *scratch, const kk_date *date,
                               PyObject *exc, int flags) {
    kk_state *st = ctx->st;
    PyObject *code = PyObject_GetAttr(exc, st->s_status_code);
    long c = code ? PyLong_AsLong(code) : -1;
    Py_XDECREF(code);
    PyErr_Clear();
    if (kk_check_status(c) < 0) /* a 1xx (or no status) cannot end a request */
        return emit_500(ctx, out, date, flags);
    int status = (int)c;
    PyObject *detail = PyObject_GetAttr(exc, st->s_detail);
    if (!detail) {
        PyErr_Clear();
        detail = PyUnicode_FromString(kk_reason_phrase(status));
        if (!detail) return emit_500(ctx, out, date, flags);
    }
    PyObject *headers = PyObject_GetAttr(exc, st->s_headers);
    if (!headers) PyErr_Clear();
    int rc = emit_detail(ctx, out, scratch, date, status, detail, headers, flags);
    Py_DECREF(detail);
    Py_XDECREF(headers);
    return rc;
}

/* Appends the answer a Response view describes. 0, or -1 with an exception
 * (a media type with a control character, an invalid user header). */
static int emit_response(kk_buf *out, const kk_date *date, const kk_response_view *v, int flags) {
    const char *ct = NULL;
    Py_ssize_t ctn = 0;
    if (v->media_type && PyUnicode_Check(v->media_type)) {
        ct = PyUnicode_AsUTF8AndSize(v->media_type, &ctn);
        if (!ct) return -1;
        if (!kk_field_value_ok(ct, (size_t)ctn)) {
            PyErr_Format(PyExc_ValueError,
                         "response media_type %R has a control character (CR, LF or NUL)",
                         v->media_type);
            return -1;
        }
    }
    return kk_emit(out, date, v->status_code, ct, (size_t)ctn, v->headers,
                   PyBytes_AS_STRING(v->body), (size_t)PyBytes_GET_SIZE(v->body), flags);
}

/* Logs the current exception, if any, and clears it. */
static void log_current(kk_ctx *ctx) {
    PyObject *e = kk_fetch_exception();
    if (e) log_exception(ctx, e);
    Py_XDECREF(e);
}

/* Finishes `yield` dependencies in reverse order, as nested `with` blocks
 * (and FastAPI) do:
 * - the handler returned: next(gen) must raise StopIteration;
 * - the handler (or a dependency) raised: its exception is thrown into each
 *   generator in turn (gen.throw), so `except`/`finally` around the yield run.
 *   A generator that raises another exception replaces it (for the generators
 *   outside it, and for the response); one that swallows it (returns) leaves
 *   the original to decide the response;
 * - arguments failed validation (422, no exception): the generators are closed.
 * A generator that yields again is closed and logged. */
static void finish_generators(kk_ctx *ctx, int handler_failed) {
    if (!ctx->gens) return;
    kk_state *st = ctx->st;
    PyObject *exc = handler_failed ? kk_fetch_exception() : NULL;
    for (Py_ssize_t i = PyList_GET_SIZE(ctx->gens) - 1; i >= 0; i--) {
        PyObject *gen = PyList_GET_ITEM(ctx->gens, i);
        PyObject *r;
        if (exc) {
            r = PyObject_CallMethodOneArg(gen, st->s_throw, exc);
            if (!r && PyErr_ExceptionMatches(PyExc_StopIteration)) {
                PyErr_Clear(); /* swallowed: the original exception still decides */
            } else if (!r) {
                Py_SETREF(exc, kk_fetch_exception()); /* re-raised, or replaced */
            }
        } else if (handler_failed) {
            r = PyObject_CallMethodNoArgs(gen, st->s_close);
            if (!r) log_current(ctx);
            Py_XDECREF(r);
            continue;
        } else {
            r = PyIter_Next(gen);
            if (!r && PyErr_Occurred()) log_current(ctx);
        }
        if (r) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_RuntimeError, "generator dependency yielded more than once");
            log_current(ctx);
            PyObject *c = PyObject_CallMethodNoArgs(gen, st->s_close);
            if (!c) log_current(ctx);
            Py_XDECREF(c);
        }
    }
    if (exc) kk_restore_exception(exc);
}

/* Runs the handler plan and appends its response to out. flags: KK_EMIT_*.
 * Always appends a response (a 500 when anything fails); returns 0, or -1
 * when even that was impossible (out of memory). */
int kk_plan_serve(PlanObject *plan, kk_ctx *ctx, kk_buf *out, kk_buf *scratch,
                  const kk_date *date, int flags) {
    kk_state *st = ctx->st;
    PyObject *result = kk_plan_call(plan, ctx);
    finish_generators(ctx, result == NULL);
    /* Shutdown began while the handler ran: this answer is the connection's last. */
    if (ctx->stopping && atomic_load(ctx->stopping))
        flags = (flags | KK_EMIT_CLOSE) & ~KK_EMIT_KEEPALIVE10;
    ctx->flags_used = flags;
    int rc;
    if (!result) {
        if (!PyErr_Occurred() && ctx->errors) {
            rc = emit_detail(ctx, out, scratch, date, 422, ctx->errors, NULL, flags);
        } else if (PyErr_ExceptionMatches(st->http_exception)) {
            PyObject *exc = kk_fetch_exception();
            rc = emit_http_exception(ctx, out, scratch, date, exc, flags);
            Py_DECREF(exc);
        } else {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "handler failed");
            rc = emit_500(ctx, out, date, flags);
        }
        return rc;
    }
    if (Py_IS_TYPE(result, st->response_type) || PyObject_TypeCheck(result, st->response_type)) {
        /* One consistent state of the Response, held strongly: other threads
         * and a header value's __str__ may change the Response while this
         * answer is written (response.h). */
        kk_response_view v;
        kk_response_view_take(st, result, &v); /* consumes result */
        rc = emit_response(out, date, &v, flags);
        kk_response_view_release(&v);
        return rc < 0 ? emit_500(ctx, out, date, flags) : 0;
    }
    if (plan->ret_shape) {
        /* A plain response model (karak/_shapes.py): written by our encoder when
         * the value has the shape; anything else goes to pydantic below. */
        scratch->len = 0;
        rc = kk_json_encode_shaped(scratch, result, plan->ret_shape, st->to_json);
        if (rc == 0) {
            Py_DECREF(result);
            if (kk_emit(out, date, plan->status_code, "application/json", 16, NULL,
                        scratch->data, scratch->len, flags) < 0)
                return emit_500(ctx, out, date, flags);
            return 0;
        }
        if (rc < 0) PyErr_Clear(); /* e.g. NaN: pydantic decides (it writes null) */
    }
    if (plan->ret_serializer) {
        /* Response model: validate (instances pass through) and serialise in
         * pydantic-core. from_attributes=True, as FastAPI validates a return
         * value: another model, a dataclass or an ORM row is read by attribute. */
        PyObject *v;
        if (plan->ret_validator) {
            PyObject *argv[3] = {plan->ret_validator, result, Py_True};
            v = PyObject_VectorcallMethod(st->s_validate_python, argv,
                                          2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                          st->kw_from_attributes);
        } else {
            v = Py_NewRef(result);
        }
        Py_DECREF(result);
        /* by_alias=True: FastAPI's default (response_model_by_alias). */
        PyObject *bytes = NULL;
        if (v) {
            PyObject *argv[3] = {plan->ret_serializer, v, Py_True};
            bytes = PyObject_VectorcallMethod(st->s_to_json, argv, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              st->kw_by_alias);
        }
        Py_XDECREF(v);
        if (!bytes || !PyBytes_Check(bytes)) {
            Py_XDECREF(bytes);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "serializer did not return bytes");
            return emit_500(ctx, out, date, flags);
        }
        rc = kk_emit(out, date, plan->status_code, "application/json", 16, NULL,
                     PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes), flags);
        Py_DECREF(bytes);
        return rc < 0 ? emit_500(ctx, out, date, flags) : 0;
    }
    if (result == Py_None) {
        Py_DECREF(result);
        int status = plan->status_code == 200 ? 204 : plan->status_code;
        return kk_emit_simple(out, date, status, NULL, NULL, 0, flags);
    }
    scratch->len = 0;
    rc = kk_json_encode(scratch, result, st->to_json);
    Py_DECREF(result);
    if (rc < 0) return emit_500(ctx, out, date, flags);
    if (kk_emit(out, date, plan->status_code, "application/json", 16, NULL, scratch->data,
                scratch->len, flags) < 0)
        return emit_500(ctx, out, date, flags);
    return 0;
}
