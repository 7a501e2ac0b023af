/* request.c: the Request and Headers types.
 *
 * A Request is made only when a handler or dependency asks for one. It owns a
 * copy of the request head (one bytes object) and of the body; its attributes
 * are built from offsets into that copy on first access and then cached, so a
 * handler that reads nothing pays for one memcpy.
 *
 * Thread rule. A Request is made for one handler's thread, but user code may
 * keep it and read it from others. What it copied at creation (raw, body,
 * offsets, path_params' identity) is immutable. Each lazy cache is read and
 * filled under the Request's critical section (cached(), below); a cache
 * filled by another thread while this one built its value wins, and this
 * one's copy is dropped, so a reader always gets the one cached object.
 * Headers is immutable once built (a bytes object and offsets into it).
 */
#include "karak.h"

#include <stdio.h>

/* One header field as offsets into the owner's head bytes. */
typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} kk_hdr_off;

typedef struct {
    PyObject_HEAD
    PyObject *raw;        /* bytes: the request head, owned */
    kk_hdr_off *fields;   /* PyMem_Malloc'd, n entries */
    Py_ssize_t n;
} HeadersObject;

typedef struct {
    PyObject_HEAD
    PyObject *raw;          /* bytes: copy of the request head, owned */
    PyObject *body;         /* bytes: decoded body, owned */
    uint32_t method_off, method_len, path_off, path_len, query_off, query_len;
    int has_query;
    int minor_version;
    kk_hdr_off *fields;     /* PyMem_Malloc'd */
    Py_ssize_t nfields;
    PyObject *path_params;  /* dict, owned; the pointer never changes (the dict is the user's) */
    /* caches, created on first access; guarded by the object's critical section */
    PyObject *method, *path, *query_string, *query_params, *headers, *json, *cookies;
} RequestObject;

/* *slot, made by make(r) on first use, under r's critical section. make may
 * run code that suspends the section (pydantic-core, an allocation that
 * collects): the slot is checked again before it is filled. New reference. */
static PyObject *cached(RequestObject *r, PyObject **slot, PyObject *(*make)(RequestObject *)) {
    PyObject *v;
    Py_BEGIN_CRITICAL_SECTION(r);
    v = Py_XNewRef(*slot);
    if (!v && (v = make(r))) {
        if (*slot) {
            Py_SETREF(v, Py_NewRef(*slot)); /* filled meanwhile: keep the first */
        } else {
            *slot = Py_NewRef(v);
        }
    }
    Py_END_CRITICAL_SECTION();
    return v;
}

/* ======================================================================
 * Helpers
 * ====================================================================== */

size_t kk_pct_decode(char *dst, const char *src, size_t n, int plus_as_space) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%' && i + 2 < n) {
            int h = kk_hexval((unsigned char)src[i + 1]), l = kk_hexval((unsigned char)src[i + 2]);
            if (h >= 0 && l >= 0) {
                dst[o++] = (char)(h * 16 + l);
                i += 2;
                continue;
            }
        }
        dst[o++] = (plus_as_space && c == '+') ? ' ' : c;
    }
    return o;
}

const char *kk_pct_span(const char *src, size_t n, int plus_as_space, char *tmp, size_t tmpcap,
                        size_t *outn, char **heap) {
    *heap = NULL;
    if (!memchr(src, '%', n) && !(plus_as_space && memchr(src, '+', n))) {
        *outn = n;
        return src;
    }
    char *d = tmp;
    if (n > tmpcap) {
        d = *heap = PyMem_Malloc(n);
        if (!d) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    *outn = kk_pct_decode(d, src, n, plus_as_space);
    return d;
}

PyObject *kk_decoded_str(const char *s, size_t n, int plus_as_space) {
    char tmp[256], *heap;
    size_t m;
    const char *d = kk_pct_span(s, n, plus_as_space, tmp, sizeof tmp, &m, &heap);
    PyObject *r = d ? PyUnicode_DecodeUTF8(d, (Py_ssize_t)m, "replace") : NULL;
    PyMem_Free(heap);
    return r;
}

static int ascii_ieq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return 0;
    }
    return 1;
}

static PyObject *lower_str(const char *s, size_t n) {
    PyObject *u = PyUnicode_New((Py_ssize_t)n, 127);
    if (!u) return NULL;
    char *d = (char *)PyUnicode_DATA(u);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        d[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    return u;
}

/* Header values are Latin-1 by HTTP's history; valid UTF-8 is what clients send today. */
PyObject *kk_header_value_str(const char *s, size_t n) {
    PyObject *r = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
    if (r || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return r;
    PyErr_Clear();
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

/* ======================================================================
 * Headers
 * ====================================================================== */

static const char *hraw(HeadersObject *h) { return PyBytes_AS_STRING(h->raw); }

/* Looks up `key` (str); calls back for each match. Returns the number found or -1. */
static Py_ssize_t headers_find(HeadersObject *h, PyObject *key, PyObject *list, PyObject **first) {
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "header names are str");
        return -1;
    }
    Py_ssize_t klen;
    const char *k = PyUnicode_AsUTF8AndSize(key, &klen);
    if (!k) return -1;
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < h->n; i++) {
        kk_hdr_off *f = &h->fields[i];
        if ((Py_ssize_t)f->name_len != klen || !ascii_ieq(hraw(h) + f->name_off, k, (size_t)klen))
            continue;
        if (first) {
            *first = kk_header_value_str(hraw(h) + f->value_off, f->value_len);
            return *first ? 1 : -1;
        }
        PyObject *v = kk_header_value_str(hraw(h) + f->value_off, f->value_len);
        if (!v || PyList_Append(list, v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
        found++;
    }
    return found;
}

static PyObject *Headers_getitem(HeadersObject *h, PyObject *key) {
    PyObject *v = NULL;
    Py_ssize_t n = headers_find(h, key, NULL, &v);
    if (n < 0) return NULL;
    if (n == 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return v;
}

static PyObject *Headers_get(HeadersObject *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(name, default=None)");
        return NULL;
    }
    PyObject *v = NULL;
    Py_ssize_t n = headers_find(h, args[0], NULL, &v);
    if (n < 0) return NULL;
    if (n == 0) return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    return v;
}

static PyObject *Headers_getlist(HeadersObject *h, PyObject *key) {
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    if (headers_find(h, key, list, NULL) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

static int Headers_contains(HeadersObject *h, PyObject *key) {
    if (!PyUnicode_Check(key)) return 0;
    PyObject *v = NULL;
    Py_ssize_t n = headers_find(h, key, NULL, &v);
    Py_XDECREF(v);
    return n < 0 ? -1 : n > 0;
}

static Py_ssize_t Headers_len(HeadersObject *h) { return h->n; }

/* which: 0 names, 1 values, 2 (name, value) pairs. New reference (list). */
static PyObject *headers_list(HeadersObject *h, int which) {
    PyObject *list = PyList_New(h->n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < h->n; i++) {
        kk_hdr_off *f = &h->fields[i];
        PyObject *item = NULL, *k = NULL, *v = NULL;
        if (which != 1) k = lower_str(hraw(h) + f->name_off, f->name_len);
        if (which != 0) v = kk_header_value_str(hraw(h) + f->value_off, f->value_len);
        if ((which != 1 && !k) || (which != 0 && !v)) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(list);
            return NULL;
        }
        if (which == 0) item = k;
        else if (which == 1) item = v;
        else {
            item = PyTuple_Pack(2, k, v);
            Py_DECREF(k);
            Py_DECREF(v);
            if (!item) {
                Py_DECREF(list);
                return NULL;
            }
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *Headers_keys(HeadersObject *h, PyObject *u) { return headers_list(h, 0); }
static PyObject *Headers_values(HeadersObject *h, PyObject *u) { return headers_list(h, 1); }
static PyObject *Headers_items(HeadersObject *h, PyObject *u) { return headers_list(h, 2); }

static PyObject *Headers_iter(HeadersObject *h) {
    PyObject *keys = headers_list(h, 0);
    if (!keys) return NULL;
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

static PyObject *Headers_repr(HeadersObject *h) {
    PyObject *items = headers_list(h, 2);
    if (!items) return NULL;
    PyObject *r = PyUnicode_FromFormat("Headers(%R)", items);
    Py_DECREF(items);
    return r;
}

static void Headers_dealloc(HeadersObject *h) {
    PyTypeObject *tp = Py_TYPE(h);
    Py_XDECREF(h->raw);
    PyMem_Free(h->fields);
    tp->tp_free(h);
    Py_DECREF(tp);
}

static PyMethodDef Headers_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Headers_get, METH_FASTCALL,
     "get(name, default=None): the first value of a field, case-insensitive."},
    {"getlist", (PyCFunction)Headers_getlist, METH_O, "getlist(name): every value of a field."},
    {"keys", (PyCFunction)Headers_keys, METH_NOARGS, "Field names, lower-case, in order."},
    {"values", (PyCFunction)Headers_values, METH_NOARGS, "Field values, in order."},
    {"items", (PyCFunction)Headers_items, METH_NOARGS, "(name, value) pairs, names lower-case."},
    {NULL}};

static PyType_Slot Headers_slots[] = {
    {Py_tp_doc, "Request headers: a read-only, case-insensitive, multi-valued mapping."},
    {Py_tp_dealloc, Headers_dealloc},
    {Py_tp_iter, Headers_iter},
    {Py_tp_repr, Headers_repr},
    {Py_tp_methods, Headers_methods},
    {Py_mp_subscript, Headers_getitem},
    {Py_mp_length, Headers_len},
    {Py_sq_contains, Headers_contains},
    {Py_sq_length, Headers_len},
    {0, NULL}};

PyType_Spec kk_headers_spec = {
    .name = "karak._karak.Headers",
    .basicsize = sizeof(HeadersObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Headers_slots,
};

/* ======================================================================
 * Request
 * ====================================================================== */

PyObject *kk_request_new(kk_state *st, const kk_request *req, const kk_match *m,
                         const char *body, size_t body_len) {
    /* The head runs from the method to the end of the header section. */
    const char *base = req->method;
    const char *end = req->method; /* furthest byte referenced */
    if (req->target + req->target_len > end) end = req->target + req->target_len;
    for (size_t i = 0; i < req->num_headers; i++) {
        const kk_header *h = &req->headers[i];
        if (h->value + h->value_len > end) end = h->value + h->value_len;
        if (h->name + h->name_len > end) end = h->name + h->name_len;
    }
    /* Absolute-form targets keep path/query inside the target span. */
    RequestObject *r = PyObject_GC_New(RequestObject, st->request_type);
    if (!r) return NULL;
    r->raw = r->body = r->path_params = NULL;
    r->method = r->path = r->query_string = r->query_params = r->headers = r->json = NULL;
    r->cookies = NULL;
    r->fields = NULL;
    r->nfields = 0;
    r->raw = PyBytes_FromStringAndSize(base, end - base);
    r->body = PyBytes_FromStringAndSize(body ? body : "", (Py_ssize_t)body_len);
    r->path_params = PyDict_New();
    if (!r->raw || !r->body || !r->path_params) goto err;
    r->method_off = 0;
    r->method_len = (uint32_t)req->method_len;
    if (req->path >= base && req->path + req->path_len <= end) {
        r->path_off = (uint32_t)(req->path - base);
        r->path_len = (uint32_t)req->path_len;
    } else {
        /* A path that is not a span of the head (e.g. "/" for "http://host"). */
        r->path_off = r->path_len = 0;
        r->path = PyUnicode_FromStringAndSize(req->path, (Py_ssize_t)req->path_len);
        if (!r->path) goto err;
    }
    r->has_query = req->query != NULL;
    r->query_off = r->has_query ? (uint32_t)(req->query - base) : 0;
    r->query_len = (uint32_t)req->query_len;
    r->minor_version = req->minor_version;
    if (req->num_headers) {
        r->fields = PyMem_Malloc(sizeof(kk_hdr_off) * req->num_headers);
        if (!r->fields) {
            PyErr_NoMemory();
            goto err;
        }
        for (size_t i = 0; i < req->num_headers; i++) {
            const kk_header *h = &req->headers[i];
            r->fields[i] = (kk_hdr_off){(uint32_t)(h->name - base), (uint32_t)h->name_len,
                                        (uint32_t)(h->value - base), (uint32_t)h->value_len};
        }
        r->nfields = (Py_ssize_t)req->num_headers;
    }
    if (m) {
        for (size_t i = 0; i < m->num_params; i++) {
            const kk_param *p = &m->params[i];
            PyObject *k = PyUnicode_FromStringAndSize(p->name, (Py_ssize_t)p->name_len);
            PyObject *v = k ? kk_decoded_str(p->value, p->value_len, 0) : NULL;
            int rc = v ? PyDict_SetItem(r->path_params, k, v) : -1;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (rc < 0) goto err;
        }
    }
    PyObject_GC_Track(r);
    return (PyObject *)r;
err:
    Py_XDECREF(r->path);
    Py_XDECREF(r->raw);
    Py_XDECREF(r->body);
    Py_XDECREF(r->path_params);
    PyMem_Free(r->fields);
    r->raw = r->body = r->path_params = NULL;
    r->fields = NULL;
    PyObject_GC_Del(r);
    Py_DECREF(st->request_type);
    return NULL;
}

static const char *rraw(RequestObject *r) { return PyBytes_AS_STRING(r->raw); }

static PyObject *make_method(RequestObject *r) {
    return PyUnicode_DecodeLatin1(rraw(r) + r->method_off, r->method_len, NULL);
}

static PyObject *Request_get_method(RequestObject *r, void *c) {
    return cached(r, &r->method, make_method);
}

static PyObject *make_path(RequestObject *r) {
    return kk_decoded_str(rraw(r) + r->path_off, r->path_len, 0);
}

static PyObject *Request_get_path(RequestObject *r, void *c) {
    return cached(r, &r->path, make_path);
}

static PyObject *make_query_string(RequestObject *r) {
    return PyUnicode_DecodeLatin1(rraw(r) + r->query_off, r->query_len, NULL);
}

static PyObject *Request_get_query_string(RequestObject *r, void *c) {
    return cached(r, &r->query_string, make_query_string);
}

/* Parses the query into a dict of name -> [values] (blank values kept). */
static PyObject *parse_query(const char *q, size_t n) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    size_t pos = 0, kn, vn;
    const char *k0, *v0;
    while (kk_query_next(q, n, &pos, &k0, &kn, &v0, &vn)) {
        PyObject *k = kk_decoded_str(k0, kn, 1);
        PyObject *v = k ? kk_decoded_str(v0, vn, 1) : NULL;
        if (!v) {
            Py_XDECREF(k);
            Py_DECREF(d);
            return NULL;
        }
        PyObject *list;
        int rc = PyDict_GetItemRef(d, k, &list);
        if (rc == 0) {
            list = PyList_New(0);
            rc = list && PyDict_SetItem(d, k, list) == 0 ? 1 : -1;
        }
        if (rc > 0) rc = PyList_Append(list, v) == 0 ? 1 : -1;
        Py_XDECREF(list);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

static PyObject *make_query_params(RequestObject *r) {
    return parse_query(rraw(r) + r->query_off, r->query_len);
}

static PyObject *Request_get_query_params(RequestObject *r, void *c) {
    return cached(r, &r->query_params, make_query_params);
}

static PyObject *Request_query(RequestObject *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "query(name, default=None)");
        return NULL;
    }
    PyObject *qp = Request_get_query_params(r, NULL);
    if (!qp) return NULL;
    PyObject *list;
    int rc = PyDict_GetItemRef(qp, args[0], &list);
    Py_DECREF(qp);
    if (rc < 0) return NULL;
    if (rc == 0 || PyList_GET_SIZE(list) == 0) {
        Py_XDECREF(list);
        return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    }
    PyObject *v = PyList_GetItemRef(list, 0);
    Py_DECREF(list);
    return v;
}

static PyObject *make_headers(RequestObject *r) {
    kk_state *st = kk_state_from_type(Py_TYPE(r));
    if (!st) return NULL;
    HeadersObject *h = PyObject_New(HeadersObject, st->headers_type);
    if (!h) return NULL;
    h->raw = Py_NewRef(r->raw);
    h->n = r->nfields;
    h->fields = PyMem_Malloc(sizeof(kk_hdr_off) * (r->nfields ? r->nfields : 1));
    if (!h->fields) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    if (r->nfields) memcpy(h->fields, r->fields, sizeof(kk_hdr_off) * r->nfields);
    return (PyObject *)h;
}

static PyObject *Request_get_headers(RequestObject *r, void *c) {
    return cached(r, &r->headers, make_headers);
}

/* request.cookies: name -> value from every Cookie field (kk_cookie_next,
 * kk_cookie_unquote); the last pair of a name wins, as in Starlette. */
static PyObject *make_cookies(RequestObject *r) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    const char *raw = rraw(r);
    for (Py_ssize_t i = 0; i < r->nfields; i++) {
        const kk_hdr_off *f = &r->fields[i];
        if (!kk_span_ieq(raw + f->name_off, f->name_len, "cookie")) continue;
        const char *s = raw + f->value_off;
        size_t pos = 0, kn, vn;
        const char *k, *v;
        while (kk_cookie_next(s, f->value_len, &pos, &k, &kn, &v, &vn)) {
            char tmp[256];
            char *buf = vn <= sizeof tmp ? tmp : PyMem_Malloc(vn);
            PyObject *key = buf ? kk_header_value_str(k, kn) : PyErr_NoMemory();
            PyObject *val = key ? kk_header_value_str(buf, kk_cookie_unquote(buf, v, vn)) : NULL;
            if (buf && buf != tmp) PyMem_Free(buf);
            int rc = val ? PyDict_SetItem(d, key, val) : -1;
            Py_XDECREF(key);
            Py_XDECREF(val);
            if (rc < 0) {
                Py_DECREF(d);
                return NULL;
            }
        }
    }
    return d;
}

static PyObject *Request_get_cookies(RequestObject *r, void *c) {
    return cached(r, &r->cookies, make_cookies);
}

static PyObject *Request_get_body(RequestObject *r, void *c) { return Py_NewRef(r->body); }

static PyObject *Request_get_path_params(RequestObject *r, void *c) {
    return Py_NewRef(r->path_params);
}

static PyObject *Request_get_http_version(RequestObject *r, void *c) {
    return PyUnicode_FromString(r->minor_version ? "1.1" : "1.0");
}

/* request.json(): the body parsed by pydantic-core (Rust, no Python code); a
 * leading UTF-8 BOM is skipped, as json.loads does. */
static PyObject *make_json(RequestObject *r) {
    kk_state *st = kk_state_from_type(Py_TYPE(r));
    if (!st) return NULL;
    const char *b = PyBytes_AS_STRING(r->body);
    Py_ssize_t n = PyBytes_GET_SIZE(r->body);
    size_t skip = kk_utf8_bom_len(b, (size_t)n);
    PyObject *src = skip ? PyBytes_FromStringAndSize(b + skip, n - (Py_ssize_t)skip)
                         : Py_NewRef(r->body);
    if (!src) return NULL;
    PyObject *v = PyObject_CallOneArg(st->from_json, src);
    Py_DECREF(src);
    return v;
}

static PyObject *Request_json(RequestObject *r, PyObject *unused) {
    return cached(r, &r->json, make_json);
}

static PyObject *Request_repr(RequestObject *r) {
    /* snprintf, not PyUnicode_FromFormat: "%.*s" there needs 3.12. */
    char line[600];
    int n = snprintf(line, sizeof line, "<Request %.*s %.*s>", (int)r->method_len,
                     rraw(r) + r->method_off, (int)(r->path_len > 512 ? 512 : r->path_len),
                     rraw(r) + r->path_off);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    return PyUnicode_DecodeLatin1(line, n, NULL);
}

static int Request_traverse(RequestObject *r, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->path_params);
    Py_VISIT(r->query_params);
    Py_VISIT(r->headers);
    Py_VISIT(r->json);
    Py_VISIT(r->cookies);
    return 0;
}

static int Request_clear(RequestObject *r) {
    Py_CLEAR(r->path_params);
    Py_CLEAR(r->query_params);
    Py_CLEAR(r->headers);
    Py_CLEAR(r->json);
    Py_CLEAR(r->cookies);
    return 0;
}

static void Request_dealloc(RequestObject *r) {
    PyTypeObject *tp = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    Request_clear(r);
    Py_CLEAR(r->raw);
    Py_CLEAR(r->body);
    Py_CLEAR(r->method);
    Py_CLEAR(r->path);
    Py_CLEAR(r->query_string);
    PyMem_Free(r->fields);
    tp->tp_free(r);
    Py_DECREF(tp);
}

static PyMethodDef Request_methods[] = {
    {"json", (PyCFunction)Request_json, METH_NOARGS, "The body parsed as JSON."},
    {"query", (PyCFunction)(void (*)(void))Request_query, METH_FASTCALL,
     "query(name, default=None): the first value of a query parameter."},
    {NULL}};

static PyGetSetDef Request_getset[] = {
    {"method", (getter)Request_get_method, NULL, "The method, e.g. 'GET'.", NULL},
    {"path", (getter)Request_get_path, NULL, "The path, percent-decoded.", NULL},
    {"query_string", (getter)Request_get_query_string, NULL, "The raw query, without '?'.", NULL},
    {"query_params", (getter)Request_get_query_params, NULL,
     "Query parameters: dict of name -> list of decoded values.", NULL},
    {"headers", (getter)Request_get_headers, NULL, "Case-insensitive, multi-valued headers.", NULL},
    {"cookies", (getter)Request_get_cookies, NULL,
     "Cookies from the Cookie header: dict of name -> value (the last of a name wins).", NULL},
    {"body", (getter)Request_get_body, NULL, "The request body (bytes, de-chunked).", NULL},
    {"path_params", (getter)Request_get_path_params, NULL, "Path parameters (dict of str).", NULL},
    {"http_version", (getter)Request_get_http_version, NULL, "'1.1' or '1.0'.", NULL},
    {NULL}};

static PyType_Slot Request_slots[] = {
    {Py_tp_doc, "The request being served. Built lazily; belongs to the thread running the "
                "handler and is not meant to be shared between threads."},
    {Py_tp_dealloc, Request_dealloc},
    {Py_tp_traverse, Request_traverse},
    {Py_tp_clear, Request_clear},
    {Py_tp_repr, Request_repr},
    {Py_tp_methods, Request_methods},
    {Py_tp_getset, Request_getset},
    {0, NULL}};

PyType_Spec kk_request_spec = {
    .name = "karak._karak.Request",
    .basicsize = sizeof(RequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Request_slots,
};
