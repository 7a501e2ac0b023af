/* compat.h: the few C-API names Karak uses that are newer than CPython 3.11.
 *
 * The extension is built for free-threaded 3.13t and for ordinary (GIL)
 * 3.11 and 3.12. On GIL builds a critical section is not needed (the GIL
 * serialises object access), so the macros reduce to a block.
 */
#ifndef KK_COMPAT_H
#define KK_COMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030D0000
#  ifndef Py_BEGIN_CRITICAL_SECTION
#    define Py_BEGIN_CRITICAL_SECTION(op) {
#    define Py_END_CRITICAL_SECTION() }
#  endif

/* New reference or NULL with no exception when missing; -1 on error. */
static inline int kk_compat_dict_getitemref(PyObject *d, PyObject *k, PyObject **out) {
    PyObject *v = PyDict_GetItemWithError(d, k);
    if (v == NULL) {
        *out = NULL;
        return PyErr_Occurred() ? -1 : 0;
    }
    *out = Py_NewRef(v);
    return 1;
}
#  define PyDict_GetItemRef kk_compat_dict_getitemref

static inline PyObject *kk_compat_list_getitemref(PyObject *l, Py_ssize_t i) {
    PyObject *v = PyList_GetItem(l, i);
    return v ? Py_NewRef(v) : NULL;
}
#  define PyList_GetItemRef kk_compat_list_getitemref
#endif

/* Does the caller hold the only reference to ob, so that no other thread can
 * reach it? CPython's own test (pycore_object.h, _PyObject_IsUniquelyReferenced):
 * on free-threaded builds the object must be owned by this thread, with one
 * local reference and no shared ones (the whole shared field zero, flags
 * included, so no other thread can be making a new reference to it). An
 * object reachable by weak references or gc.get_objects() can still be found:
 * callers use it only for exact types without weak references. */
static inline int kk_uniquely_referenced(PyObject *ob) {
#ifdef Py_GIL_DISABLED
    return _Py_IsOwnedByCurrentThread(ob) &&
           _Py_atomic_load_uint32_relaxed(&ob->ob_ref_local) == 1 &&
           _Py_atomic_load_ssize_relaxed(&ob->ob_ref_shared) == 0;
#else
    return Py_REFCNT(ob) == 1;
#endif
}

/* The raised exception, normalised, with its traceback. New reference; the
 * error indicator is cleared. */
static inline PyObject *kk_fetch_exception(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v && tb) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

/* Sets exc (a reference that is stolen) as the raised exception. */
static inline void kk_restore_exception(PyObject *exc) {
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

#endif
