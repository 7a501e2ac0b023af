/* json_scan_mod.c: the C JSON encoder (src/_karak/json.c) alone, as a tiny
 * extension module, so tests/test_json_scan.py can build it with each block
 * scanner forced (-DKK_JSON_SCAN=0, 1, 2) and check every one against
 * json.dumps: the shipped module only ever has the one its compiler picks.
 * Module name: _json_scan; one function, dumps(obj) -> bytes. */
#include <Python.h>
#include "json.h"

static PyObject *scan_dumps(PyObject *module, PyObject *obj) {
    (void)module;
    kk_buf b = {0};
    if (kk_json_encode(&b, obj, NULL) < 0) {
        kk_buf_free(&b);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    kk_buf_free(&b);
    return out;
}

static PyObject *scan_variant(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
#ifdef KK_JSON_SCAN
    return PyLong_FromLong(KK_JSON_SCAN);
#else
    return PyLong_FromLong(-1); /* not forced: json.c chose */
#endif
}

static PyMethodDef scan_methods[] = {
    {"dumps", scan_dumps, METH_O, "dumps(obj) -> bytes: kk_json_encode, no fallback."},
    {"variant", scan_variant, METH_NOARGS, "variant() -> int: the KK_JSON_SCAN it was built with."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot scan_slots[] = {
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT, "_json_scan", NULL, 0, scan_methods, scan_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__json_scan(void) { return PyModuleDef_Init(&scan_module); }
