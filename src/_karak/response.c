/* response.c: the Response type (its thread rule: response.h), and the
 * writer of status line, headers and body into a connection's output buffer. */
#include "response.h"

#include <stdio.h>

/* ======================================================================
 * Status line, Date, header block
 * ====================================================================== */

const char *kk_reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* Formats "Date: <IMF-fixdate>\r\n" when the second has changed. Worker-local
 * cache, so no locale and no lock are involved. */
void kk_date_update(kk_date *d) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    if (now == d->sec && d->len) return;
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = snprintf(d->line, sizeof d->line, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                     days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    d->len = (n > 0 && (size_t)n < sizeof d->line) ? (size_t)n : 0;
    d->sec = now;
}

static int status_has_body(int status) {
    return !((status >= 100 && status < 200) || status == 204 || status == 304);
}

/* Appends "HTTP/1.1 <status> <reason>\r\n", Date, framing and connection
 * headers. */
static int emit_head(kk_buf *out, const kk_date *date, int status, const char *ctype,
                     size_t ctype_len, size_t body_len, int flags) {
    /* status is 100..999: Response, Plan (the decorators) and HTTPException are
     * held to 200..599 by kk_check_status, the engine's own are constants. */
    const char *reason = kk_reason_phrase(status);
    char code[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    if (KK_BUF_LIT(out, "HTTP/1.1 ") < 0 || kk_buf_append(out, code, sizeof code) < 0 ||
        kk_buf_append(out, reason, strlen(reason)) < 0 || KK_BUF_LIT(out, "\r\n") < 0)
        return -1;
    if (kk_buf_append(out, date->line, date->len) < 0) return -1;
    if (ctype && status_has_body(status)) {
        if (KK_BUF_LIT(out, "Content-Type: ") < 0 || kk_buf_append(out, ctype, ctype_len) < 0 ||
            KK_BUF_LIT(out, "\r\n") < 0)
            return -1;
    }
    if (status_has_body(status)) {
        /* 205 Reset Content: the server MUST NOT generate content (RFC 9110 15.3.6),
         * and says so with Content-Length: 0. */
        if (KK_BUF_LIT(out, "Content-Length: ") < 0 ||
            kk_buf_put_u64(out, status == 205 ? 0 : body_len) < 0 || KK_BUF_LIT(out, "\r\n") < 0)
            return -1;
    }
    if (flags & KK_EMIT_CLOSE) {
        if (KK_BUF_LIT(out, "Connection: close\r\n") < 0) return -1;
    } else if (flags & KK_EMIT_KEEPALIVE10) {
        if (KK_BUF_LIT(out, "Connection: keep-alive\r\n") < 0) return -1;
    }
    return 0;
}

static int emit_tail(kk_buf *out, int status, const char *body, size_t body_len, int flags) {
    if (KK_BUF_LIT(out, "\r\n") < 0) return -1;
    if (!(flags & KK_EMIT_HEAD_ONLY) && status_has_body(status) && status != 205)
        return kk_buf_append(out, body, body_len);
    return 0;
}

int kk_emit_simple(kk_buf *out, const kk_date *date, int status, const char *extra_headers,
                   const char *body, size_t body_len, int flags) {
    static const char json[] = "application/json";
    if (emit_head(out, date, status, body ? json : NULL, sizeof json - 1, body_len, flags) < 0)
        return -1;
    if (extra_headers && kk_buf_append(out, extra_headers, strlen(extra_headers)) < 0) return -1;
    return emit_tail(out, status, body, body_len, flags);
}

/* A header name is a token (RFC 9110 5.1). */
static int is_token(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 32 || c >= 127) return 0;
        if (strchr("\"(),/:;<=>?@[\\]{}", c)) return 0;
    }
    return 1;
}

/* A field value has no CR, LF or NUL (other controls are refused too, HTAB allowed). */
int kk_field_value_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 32 && c != '\t') || c == 127) return 0;
    }
    return 1;
}

/* Appends one user header "name: value\r\n" to hb after checking it. Sets
 * *has_ctype when it is a Content-Type. Framing headers the engine owns
 * (Content-Length, Transfer-Encoding, Connection, Date) are skipped.
 * Returns 0, or -1 with a Python exception. */
static int add_user_header(kk_buf *hb, PyObject *name, PyObject *value, int *has_ctype) {
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "response header name must be str, not %.100s",
                     Py_TYPE(name)->tp_name);
        return -1;
    }
    PyObject *vstr = PyUnicode_Check(value) ? Py_NewRef(value) : PyObject_Str(value);
    if (!vstr) return -1;
    Py_ssize_t nlen, vlen;
    const char *n = PyUnicode_AsUTF8AndSize(name, &nlen);
    const char *v = n ? PyUnicode_AsUTF8AndSize(vstr, &vlen) : NULL;
    int rc = -1;
    if (!v) goto done;
    if (!is_token(n, (size_t)nlen)) {
        PyErr_Format(PyExc_ValueError, "invalid response header name %R", name);
        goto done;
    }
    if (!kk_field_value_ok(v, (size_t)vlen)) {
        PyErr_Format(PyExc_ValueError,
                     "response header %R has a control character (CR, LF or NUL) in its value", name);
        goto done;
    }
    if (kk_span_ieq(n, (size_t)nlen, "content-length") ||
        kk_span_ieq(n, (size_t)nlen, "transfer-encoding") ||
        kk_span_ieq(n, (size_t)nlen, "connection") || kk_span_ieq(n, (size_t)nlen, "date")) {
        rc = 0;
        goto done;
    }
    if (kk_span_ieq(n, (size_t)nlen, "content-type")) *has_ctype = 1;
    if (kk_buf_append(hb, n, (size_t)nlen) < 0 || KK_BUF_LIT(hb, ": ") < 0 ||
        kk_buf_append(hb, v, (size_t)vlen) < 0 || KK_BUF_LIT(hb, "\r\n") < 0) {
        PyErr_NoMemory();
        goto done;
    }
    rc = 0;
done:
    Py_DECREF(vstr);
    return rc;
}

/* Collects the user's headers (a dict, or an iterable of (name, value) pairs).
 * The container may be shared (a Response's .headers, an HTTPException's) and
 * a value's __str__ may mutate it, so it is first copied, atomically, into a
 * list or tuple of our own whose items we hold: nothing borrowed from the
 * user's container lives across the Python code add_user_header may run. */
static int collect_headers(kk_buf *hb, PyObject *headers, int *has_ctype) {
    int rc = 0;
    if (PyDict_Check(headers)) {
        if (PyDict_GET_SIZE(headers) == 0) return 0;
        /* PyDict_Items locks the dict itself (wrapping it in our own critical
         * section on the same dict made every call take the slow, spinning
         * path on 3.13t). */
        PyObject *items = PyDict_Items(headers);
        if (!items) return -1;
        Py_ssize_t n = PyList_GET_SIZE(items);
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
            PyObject *kv = PyList_GET_ITEM(items, i); /* ours: nobody else can reach it */
            rc = add_user_header(hb, PyTuple_GET_ITEM(kv, 0), PyTuple_GET_ITEM(kv, 1), has_ctype);
        }
        Py_DECREF(items);
        return rc;
    }
    if (PyList_CheckExact(headers) && PyList_GET_SIZE(headers) == 0) return 0;
    /* A list is copied under its own lock (PyList_AsTuple); another iterable
     * is iterated into a new tuple. */
    if (!Py_TYPE(headers)->tp_iter && !PySequence_Check(headers)) {
        PyErr_SetString(PyExc_TypeError, "response headers must be a dict or pairs");
        return -1;
    }
    PyObject *pairs = PySequence_Tuple(headers);
    if (!pairs) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(pairs);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *kv = PyTuple_GET_ITEM(pairs, i); /* held by pairs, which is ours */
        if (!PyTuple_Check(kv) || PyTuple_GET_SIZE(kv) != 2) {
            PyErr_SetString(PyExc_TypeError, "response header pairs must be (name, value) tuples");
            rc = -1;
            break;
        }
        /* a tuple's items never change: held by kv, held by pairs */
        rc = add_user_header(hb, PyTuple_GET_ITEM(kv, 0), PyTuple_GET_ITEM(kv, 1), has_ctype);
    }
    Py_DECREF(pairs);
    return rc;
}

int kk_emit(kk_buf *out, const kk_date *date, int status, const char *ctype, size_t ctype_len,
            PyObject *headers, const char *body, size_t body_len, int flags) {
    kk_buf hb = {0};
    int has_ctype = 0;
    if (headers && headers != Py_None) {
        if (collect_headers(&hb, headers, &has_ctype) < 0) {
            kk_buf_free(&hb);
            return -1;
        }
    }
    size_t mark = out->len;
    if (emit_head(out, date, status, has_ctype ? NULL : ctype, ctype_len, body_len, flags) < 0 ||
        kk_buf_append(out, hb.data, hb.len) < 0 || emit_tail(out, status, body, body_len, flags) < 0) {
        out->len = mark;
        kk_buf_free(&hb);
        PyErr_NoMemory();
        return -1;
    }
    kk_buf_free(&hb);
    return 0;
}

/* ======================================================================
 * The Response type
 * ====================================================================== */

/* Swaps v (a new reference, stolen) into *field under self's critical
 * section; the old value is dropped after the section (its finaliser may run
 * Python). The one way a field of a live Response changes (response.h). */
static void swap_field(ResponseObject *self, PyObject **field, PyObject *v) {
    PyObject *old;
    Py_BEGIN_CRITICAL_SECTION(self);
    old = *field;
    *field = v;
    Py_END_CRITICAL_SECTION();
    Py_XDECREF(old);
}

/* *field as a new reference, read under self's critical section. */
static PyObject *read_field(ResponseObject *self, PyObject **field) {
    PyObject *v;
    Py_BEGIN_CRITICAL_SECTION(self);
    v = Py_NewRef(*field);
    Py_END_CRITICAL_SECTION();
    return v;
}

static void set_status(ResponseObject *self, int status) {
    Py_BEGIN_CRITICAL_SECTION(self);
    self->status_code = status;
    Py_END_CRITICAL_SECTION();
}

void kk_response_view_take(kk_state *st, PyObject *resp, kk_response_view *v) {
    ResponseObject *r = (ResponseObject *)resp;
    if (Py_IS_TYPE(resp, st->response_type) && kk_uniquely_referenced(resp)) {
        /* Ours alone (response.h): move the fields out; the dealloc below
         * clears NULLs and runs no Python that could look at them. */
        v->status_code = r->status_code;
        v->headers = r->headers;
        v->body = r->body;
        v->media_type = r->media_type;
        r->headers = r->body = r->media_type = NULL;
    } else {
        Py_BEGIN_CRITICAL_SECTION(r);
        v->status_code = r->status_code;
        v->headers = Py_XNewRef(r->headers);
        v->body = Py_XNewRef(r->body);
        v->media_type = Py_XNewRef(r->media_type);
        Py_END_CRITICAL_SECTION();
    }
    Py_DECREF(resp);
}

void kk_response_view_release(kk_response_view *v) {
    Py_CLEAR(v->headers);
    Py_CLEAR(v->body);
    Py_CLEAR(v->media_type);
}

/* The body as bytes from bytes, bytearray, memoryview, str (UTF-8) or None.
 * New reference. */
static PyObject *body_bytes(PyObject *content) {
    if (content == NULL || content == Py_None) return PyBytes_FromStringAndSize("", 0);
    if (PyBytes_Check(content)) return Py_NewRef(content);
    if (PyUnicode_Check(content)) return PyUnicode_AsUTF8String(content);
    if (PyObject_CheckBuffer(content)) return PyBytes_FromObject(content);
    PyErr_Format(PyExc_TypeError, "Response content must be bytes or str, not %.100s",
                 Py_TYPE(content)->tp_name);
    return NULL;
}

static int set_body(ResponseObject *self, PyObject *content) {
    PyObject *b = body_bytes(content);
    if (!b) return -1;
    swap_field(self, &self->body, b);
    return 0;
}

/* headers: None, a mapping (copied into a dict), or an iterable of
 * (name, value) pairs, kept as a list of 2-tuples so that a name may repeat
 * (two Set-Cookie). Names and values are checked when the response is sent.
 * New reference. The argument is the caller's: it is iterated from a tuple
 * copy, never by borrowed items (a pair's iteration runs Python, which may
 * change the caller's list). */
static PyObject *headers_value(PyObject *headers) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    if (!headers || headers == Py_None || PyDict_Merge(d, headers, 1) == 0) return d;
    Py_DECREF(d);
    if (!PyErr_ExceptionMatches(PyExc_AttributeError) && !PyErr_ExceptionMatches(PyExc_TypeError))
        return NULL;
    PyErr_Clear(); /* not a mapping: pairs */
    if (!Py_TYPE(headers)->tp_iter && !PySequence_Check(headers)) {
        PyErr_SetString(PyExc_TypeError,
                        "response headers must be a mapping or (name, value) pairs");
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(headers);
    if (!seq) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        PyObject *kv = PySequence_Tuple(PyTuple_GET_ITEM(seq, i));
        if (kv && PyTuple_GET_SIZE(kv) != 2) {
            Py_CLEAR(kv);
            PyErr_SetString(PyExc_TypeError, "response header pairs must be (name, value)");
        }
        if (!kv) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, kv);
    }
    Py_DECREF(seq);
    return list;
}

static int set_headers(ResponseObject *self, PyObject *headers) {
    PyObject *h = headers_value(headers);
    if (!h) return -1;
    swap_field(self, &self->headers, h);
    return 0;
}

/* A new Response of type tp. body: bytes, stolen. media_type: borrowed (one
 * of the module's interned strings), or NULL for None. New reference. */
static PyObject *make_response(PyTypeObject *tp, int status, PyObject *body, PyObject *headers,
                               PyObject *media_type) {
    ResponseObject *r = (ResponseObject *)tp->tp_alloc(tp, 0);
    if (!r) {
        Py_DECREF(body);
        return NULL;
    }
    /* r is new: no other thread can reach it yet, so no critical section */
    r->status_code = status;
    r->body = body;
    r->media_type = Py_NewRef(media_type ? media_type : Py_None);
    if (!(r->headers = headers_value(headers))) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

/* See karak.h. */
int kk_check_status(long status) {
    if (status < 200 || status > 599) {
        PyErr_Format(PyExc_ValueError, "status_code must be between 200 and 599, not %ld", status);
        return -1;
    }
    return 0;
}

static int Response_init(ResponseObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"content", "status_code", "headers", "media_type", NULL};
    PyObject *content = NULL, *headers = NULL, *media_type = Py_None;
    int status = 200;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OiOO:Response", kwlist, &content, &status,
                                     &headers, &media_type))
        return -1;
    if (kk_check_status(status) < 0) return -1;
    if (media_type != Py_None && !PyUnicode_Check(media_type)) {
        PyErr_SetString(PyExc_TypeError, "media_type must be str or None");
        return -1;
    }
    /* __init__ may be called again on a Response other threads are sending:
     * every field goes through the setters' critical section. */
    if (set_body(self, content) < 0 || set_headers(self, headers) < 0) return -1;
    if (media_type == Py_None && content && PyUnicode_Check(content)) {
        kk_state *st = kk_state_from_type(Py_TYPE(self));
        if (!st) return -1;
        media_type = st->s_text_plain; /* str content: text/plain */
    }
    swap_field(self, &self->media_type, Py_NewRef(media_type));
    set_status(self, status);
    return 0;
}

/* Response.json(data, status_code=200, headers=None). New reference. */
static PyObject *Response_json(PyObject *cls, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", "status_code", "headers", NULL};
    PyObject *data, *headers = NULL;
    int status = 200;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|iO:json", kwlist, &data, &status, &headers))
        return NULL;
    if (kk_check_status(status) < 0) return NULL;
    kk_state *st = kk_state_from_type((PyTypeObject *)cls);
    if (!st) return NULL;
    kk_buf b = {0};
    if (kk_json_encode(&b, data, st->to_json) < 0) {
        kk_buf_free(&b);
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    kk_buf_free(&b);
    if (!bytes) return NULL;
    return make_response((PyTypeObject *)cls, status, bytes, headers, st->s_application_json);
}

/* Response.text(content, status_code=200, headers=None). New reference. */
static PyObject *Response_text(PyObject *cls, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"content", "status_code", "headers", NULL};
    PyObject *content, *headers = NULL;
    int status = 200;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|iO:text", kwlist, &content, &status, &headers))
        return NULL;
    if (kk_check_status(status) < 0) return NULL;
    kk_state *st = kk_state_from_type((PyTypeObject *)cls);
    if (!st) return NULL;
    PyObject *bytes = PyUnicode_AsUTF8String(content);
    if (!bytes) return NULL;
    return make_response((PyTypeObject *)cls, status, bytes, headers, st->s_text_plain);
}

/* Response.empty(status_code=204, headers=None). New reference. */
static PyObject *Response_empty(PyObject *cls, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"status_code", "headers", NULL};
    PyObject *headers = NULL;
    int status = 204;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iO:empty", kwlist, &status, &headers))
        return NULL;
    if (kk_check_status(status) < 0) return NULL;
    PyObject *bytes = PyBytes_FromStringAndSize("", 0);
    if (!bytes) return NULL;
    return make_response((PyTypeObject *)cls, status, bytes, headers, NULL);
}

static PyObject *Response_get_body(ResponseObject *self, void *c) {
    return read_field(self, &self->body);
}

static int Response_set_body(ResponseObject *self, PyObject *v, void *c) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete body");
        return -1;
    }
    return set_body(self, v);
}

static PyObject *Response_get_status(ResponseObject *self, void *c) {
    int s;
    Py_BEGIN_CRITICAL_SECTION(self);
    s = self->status_code;
    Py_END_CRITICAL_SECTION();
    return PyLong_FromLong(s);
}

static int Response_set_status(ResponseObject *self, PyObject *v, void *c) {
    long s = v ? PyLong_AsLong(v) : -1;
    if (s == -1 && PyErr_Occurred()) return -1;
    if (kk_check_status(s) < 0) return -1;
    set_status(self, (int)s);
    return 0;
}

static PyObject *Response_get_headers(ResponseObject *self, void *c) {
    return read_field(self, &self->headers);
}

static int Response_set_headers(ResponseObject *self, PyObject *v, void *c) {
    return set_headers(self, v);
}

static PyObject *Response_get_media_type(ResponseObject *self, void *c) {
    return read_field(self, &self->media_type);
}

/* str or None, as in the constructor (the value is checked again when sent:
 * no CR, LF or other control character). */
static int Response_set_media_type(ResponseObject *self, PyObject *v, void *c) {
    if (!v || (v != Py_None && !PyUnicode_Check(v))) {
        PyErr_SetString(PyExc_TypeError, "media_type must be str or None");
        return -1;
    }
    swap_field(self, &self->media_type, Py_NewRef(v));
    return 0;
}

static PyObject *Response_repr(ResponseObject *self) {
    kk_state *st = kk_state_from_type(Py_TYPE(self));
    if (!st) return NULL;
    kk_response_view v;
    kk_response_view_take(st, Py_NewRef(self), &v);
    PyObject *r = PyUnicode_FromFormat("<Response %d, %zd bytes>", v.status_code,
                                       PyBytes_GET_SIZE(v.body));
    kk_response_view_release(&v);
    return r;
}

static int Response_traverse(ResponseObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->headers);
    Py_VISIT(self->body);
    Py_VISIT(self->media_type);
    return 0;
}

static int Response_clear(ResponseObject *self) {
    Py_CLEAR(self->headers);
    Py_CLEAR(self->body);
    Py_CLEAR(self->media_type);
    return 0;
}

static void Response_dealloc(ResponseObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Response_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *Response_new(PyTypeObject *tp, PyObject *args, PyObject *kwds) {
    ResponseObject *self = (ResponseObject *)tp->tp_alloc(tp, 0);
    if (!self) return NULL;
    self->status_code = 200;
    self->body = PyBytes_FromStringAndSize("", 0);
    self->headers = PyDict_New();
    self->media_type = Py_NewRef(Py_None);
    if (!self->body || !self->headers) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMethodDef Response_methods[] = {
    {"json", (PyCFunction)(void (*)(void))Response_json, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "json(data, status_code=200, headers=None)\n--\n\nA JSON response, encoded in C."},
    {"text", (PyCFunction)(void (*)(void))Response_text, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "text(content, status_code=200, headers=None)\n--\n\nA text/plain UTF-8 response."},
    {"empty", (PyCFunction)(void (*)(void))Response_empty, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "empty(status_code=204, headers=None)\n--\n\nA response with no body."},
    {NULL}};

static PyGetSetDef Response_getset[] = {
    {"body", (getter)Response_get_body, (setter)Response_set_body, "The body (bytes).", NULL},
    {"status_code", (getter)Response_get_status, (setter)Response_set_status, "The status.", NULL},
    {"headers", (getter)Response_get_headers, (setter)Response_set_headers,
     "The headers: a dict, or a list of (name, value) pairs when given as pairs.", NULL},
    {"media_type", (getter)Response_get_media_type, (setter)Response_set_media_type,
     "Content-Type (str), or None.", NULL},
    {NULL}};

static PyType_Slot Response_slots[] = {
    {Py_tp_doc, "Response(content=b'', status_code=200, headers=None, media_type=None)\n\n"
                "A response sent as is. Safe to share between threads: each answer is "
                "written from one consistent state of its fields."},
    {Py_tp_new, Response_new},
    {Py_tp_init, Response_init},
    {Py_tp_dealloc, Response_dealloc},
    {Py_tp_traverse, Response_traverse},
    {Py_tp_clear, Response_clear},
    {Py_tp_repr, Response_repr},
    {Py_tp_methods, Response_methods},
    {Py_tp_getset, Response_getset},
    {0, NULL}};

PyType_Spec kk_response_spec = {
    .name = "karak._karak.Response",
    .basicsize = sizeof(ResponseObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Response_slots,
};
