/* module.c: karak._karak: module state, types, and the functions the Python
 * surface calls. Multi-phase init, heap types, no mutable C globals; declares
 * that it does not need the GIL (Py_MOD_GIL_NOT_USED). */
#include "server.h"

static struct PyModuleDef kk_module;

kk_state *kk_get_state(PyObject *module) { return (kk_state *)PyModule_GetState(module); }

kk_state *kk_state_from_type(PyTypeObject *tp) {
    PyObject *m = PyType_GetModuleByDef(tp, &kk_module);
    return m ? kk_get_state(m) : NULL;
}

/* json_dumps(obj, fallback=None) -> bytes: the C encoder, as used for responses. */
static PyObject *kk_json_dumps(PyObject *module, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"obj", "fallback", NULL};
    PyObject *obj, *fallback = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:json_dumps", kwlist, &obj, &fallback))
        return NULL;
    kk_buf b = {0};
    if (kk_json_encode(&b, obj, fallback == Py_None ? NULL : fallback) < 0) {
        kk_buf_free(&b);
        return NULL;
    }
    PyObject *r = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    kk_buf_free(&b);
    return r;
}

/* _configure(http_exception, validation_error, to_json, from_json, log_exception,
 * any_json, log_warning): called once by `import karak`, before any Server
 * exists. Workers read these fields without a lock, so they are set once and
 * never replaced: a second call (which could free a callback a worker is
 * calling) is refused. The first call runs during the import, which the
 * import lock serialises; the flag makes a racing direct call fail too. */
static PyObject *kk_configure(PyObject *module, PyObject *args) {
    kk_state *st = kk_get_state(module);
    PyObject *he, *ve, *tj, *fj, *le, *aj, *lw;
    if (!PyArg_ParseTuple(args, "OOOOOOO:_configure", &he, &ve, &tj, &fj, &le, &aj, &lw))
        return NULL;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&st->configured, &zero, 1)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "karak._karak._configure() was already called: the engine's callbacks "
                        "are set once, before any server runs, and never replaced");
        return NULL;
    }
    Py_XSETREF(st->log_warning, Py_NewRef(lw));
    Py_XSETREF(st->any_json, Py_NewRef(aj));
    Py_XSETREF(st->http_exception, Py_NewRef(he));
    Py_XSETREF(st->validation_error, Py_NewRef(ve));
    Py_XSETREF(st->to_json, Py_NewRef(tj));
    Py_XSETREF(st->from_json, Py_NewRef(fj));
    Py_XSETREF(st->log_exception, Py_NewRef(le));
    Py_RETURN_NONE;
}

static PyObject *kk_pct_decode_py(PyObject *module, PyObject *args) {
    const char *s;
    Py_ssize_t n;
    int plus = 0;
    if (!PyArg_ParseTuple(args, "y#|p:percent_decode", &s, &n, &plus)) return NULL;
    PyObject *r = PyBytes_FromStringAndSize(NULL, n);
    if (!r) return NULL;
    size_t m = kk_pct_decode(PyBytes_AS_STRING(r), s, (size_t)n, plus);
    _PyBytes_Resize(&r, (Py_ssize_t)m);
    return r;
}

static PyMethodDef kk_functions[] = {
    {"json_dumps", (PyCFunction)(void (*)(void))kk_json_dumps, METH_VARARGS | METH_KEYWORDS,
     "json_dumps(obj, fallback=None) -> bytes\n\nCompact UTF-8 JSON, encoded in C."},
    {"_configure", kk_configure, METH_VARARGS, "Internal: wire the Python surface to the engine."},
    {"percent_decode", kk_pct_decode_py, METH_VARARGS,
     "percent_decode(data: bytes, plus_as_space=False) -> bytes"},
    {NULL}};

#define INTERN(field, text)                                                     \
    do {                                                                        \
        if (!(st->field = PyUnicode_InternFromString(text))) return -1;         \
    } while (0)

static int kk_exec(PyObject *m) {
    kk_state *st = kk_get_state(m);
    struct {
        PyType_Spec *spec;
        PyTypeObject **slot;
        const char *name;
    } types[] = {
        {&kk_request_spec, &st->request_type, "Request"},
        {&kk_headers_spec, &st->headers_type, "Headers"},
        {&kk_response_spec, &st->response_type, "Response"},
        {&kk_plan_spec, &st->plan_type, "Plan"},
        {&kk_server_spec, &st->server_type, "Server"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        PyObject *t = PyType_FromModuleAndSpec(m, types[i].spec, NULL);
        if (!t) return -1;
        *types[i].slot = (PyTypeObject *)t;
        if (PyModule_AddObjectRef(m, types[i].name, t) < 0) return -1;
    }
    INTERN(s_status_code, "status_code");
    INTERN(s_detail, "detail");
    INTERN(s_headers, "headers");
    INTERN(s_validate_python, "validate_python");
    INTERN(s_validate_json, "validate_json");
    INTERN(s_to_json, "to_json");
    INTERN(s_errors, "errors");
    INTERN(s_loc, "loc");
    INTERN(s_json, "json");
    INTERN(s_include_url, "include_url");
    INTERN(s_body, "body");
    INTERN(s_query, "query");
    INTERN(s_path, "path");
    INTERN(s_header, "header");
    INTERN(s_cookie, "cookie");
    INTERN(s_from_attributes, "from_attributes");
    INTERN(s_type, "type");
    INTERN(s_msg, "msg");
    INTERN(s_input, "input");
    INTERN(s_missing, "missing");
    INTERN(s_send, "send");
    INTERN(s_close, "close");
    INTERN(s_include_input, "include_input");
    INTERN(s_throw, "throw");
    INTERN(s_by_alias, "by_alias");
    INTERN(s_text_plain, "text/plain; charset=utf-8");
    INTERN(s_application_json, "application/json");
    if (!(st->kw_by_alias = PyTuple_Pack(1, st->s_by_alias))) return -1;
    if (!(st->kw_from_attributes = PyTuple_Pack(1, st->s_from_attributes))) return -1;
    if (PyModule_AddIntConstant(m, "STEP_PATH", KK_STEP_PATH) < 0 ||
        PyModule_AddIntConstant(m, "STEP_QUERY", KK_STEP_QUERY) < 0 ||
        PyModule_AddIntConstant(m, "STEP_HEADER", KK_STEP_HEADER) < 0 ||
        PyModule_AddIntConstant(m, "STEP_BODY", KK_STEP_BODY) < 0 ||
        PyModule_AddIntConstant(m, "STEP_REQUEST", KK_STEP_REQUEST) < 0 ||
        PyModule_AddIntConstant(m, "STEP_DEP", KK_STEP_DEP) < 0 ||
        PyModule_AddIntConstant(m, "STEP_COOKIE", KK_STEP_COOKIE) < 0 ||
        PyModule_AddIntConstant(m, "CONV_STR", KK_CONV_STR) < 0 ||
        PyModule_AddIntConstant(m, "CONV_INT", KK_CONV_INT) < 0 ||
        PyModule_AddIntConstant(m, "CONV_FLOAT", KK_CONV_FLOAT) < 0 ||
        PyModule_AddIntConstant(m, "CONV_BOOL", KK_CONV_BOOL) < 0 ||
        PyModule_AddIntConstant(m, "CONV_VALIDATOR", KK_CONV_VALIDATOR) < 0 ||
        PyModule_AddIntConstant(m, "CONV_RAW", KK_CONV_RAW) < 0)
        return -1;
    return 0;
}

static int kk_traverse(PyObject *m, visitproc visit, void *arg) {
    kk_state *st = kk_get_state(m);
    if (!st) return 0;
    Py_VISIT(st->request_type);
    Py_VISIT(st->headers_type);
    Py_VISIT(st->response_type);
    Py_VISIT(st->plan_type);
    Py_VISIT(st->server_type);
    Py_VISIT(st->http_exception);
    Py_VISIT(st->validation_error);
    Py_VISIT(st->to_json);
    Py_VISIT(st->from_json);
    Py_VISIT(st->any_json);
    Py_VISIT(st->log_exception);
    Py_VISIT(st->log_warning);
    return 0;
}

static int kk_clear(PyObject *m) {
    kk_state *st = kk_get_state(m);
    if (!st) return 0;
    Py_CLEAR(st->request_type);
    Py_CLEAR(st->headers_type);
    Py_CLEAR(st->response_type);
    Py_CLEAR(st->plan_type);
    Py_CLEAR(st->server_type);
    Py_CLEAR(st->http_exception);
    Py_CLEAR(st->validation_error);
    Py_CLEAR(st->to_json);
    Py_CLEAR(st->from_json);
    Py_CLEAR(st->any_json);
    Py_CLEAR(st->log_exception);
    Py_CLEAR(st->log_warning);
    PyObject **names[] = {&st->s_status_code, &st->s_detail, &st->s_headers,
                          &st->s_validate_python, &st->s_validate_json, &st->s_to_json,
                          &st->s_errors, &st->s_loc, &st->s_json, &st->s_include_url,
                          &st->s_body, &st->s_query, &st->s_path, &st->s_header, &st->s_type,
                          &st->s_msg, &st->s_input, &st->s_missing, &st->s_send, &st->s_close,
                          &st->s_include_input, &st->s_throw, &st->s_by_alias, &st->s_cookie,
                          &st->s_from_attributes, &st->s_text_plain, &st->s_application_json,
                          &st->kw_by_alias, &st->kw_from_attributes};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) Py_CLEAR(*names[i]);
    return 0;
}

static void kk_free(void *m) { kk_clear((PyObject *)m); }

static PyModuleDef_Slot kk_slots[] = {
    {Py_mod_exec, kk_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}};

static struct PyModuleDef kk_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "karak._karak",
    .m_doc = "Karak's engine: HTTP/1.1 server, router, plans, JSON, in C.",
    .m_size = sizeof(kk_state),
    .m_methods = kk_functions,
    .m_slots = kk_slots,
    .m_traverse = kk_traverse,
    .m_clear = kk_clear,
    .m_free = kk_free,
};

PyMODINIT_FUNC PyInit__karak(void) { return PyModuleDef_Init(&kk_module); }
