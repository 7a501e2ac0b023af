/* response.h: the Response type and what the writer reads of it.
 *
 * Thread rule. A Response is an ordinary mutable Python object: user code may
 * keep one at module level, return it from several handlers at once, and
 * assign its fields from any thread while workers send it. So:
 *   - every field below is read and written only under the object's own
 *     critical section (Py_BEGIN_CRITICAL_SECTION(self)), by the getters and
 *     setters in response.c and by kk_response_view;
 *   - a setter builds its new value first (that may run Python: a buffer's
 *     export, a mapping's keys()), swaps it in under the section, and drops
 *     the old value after leaving it (a drop may run a finaliser);
 *   - C never keeps a borrowed field across anything that can run Python:
 *     the writer takes a kk_response_view (strong references, one consistent
 *     state of all four fields) and sends that, whatever a header value's
 *     __str__ or another thread does to the Response meanwhile;
 *   - the headers container itself (a dict or a list the user can reach
 *     through .headers and mutate in place) is never walked by borrowed
 *     items: kk_emit copies it (PyDict_Items, PySequence_Tuple: each atomic
 *     under the container's own lock) before converting any value to str.
 * On GIL builds the critical sections are empty blocks (compat.h); the GIL
 * gives the same exclusion there.
 */
#ifndef KK_RESPONSE_H
#define KK_RESPONSE_H

#include "karak.h"

typedef struct {
    PyObject_HEAD
    /* all four guarded by the object's critical section (see above) */
    int status_code;
    PyObject *headers;    /* dict (str -> str) or list of 2-tuples, owned */
    PyObject *body;       /* bytes, owned */
    PyObject *media_type; /* str or None, owned */
} ResponseObject;

/* One consistent state of a Response, held by strong references: what one
 * answer is written from. On the stack of the worker that writes it. */
typedef struct {
    int status_code;
    PyObject *headers;    /* new reference */
    PyObject *body;       /* new reference (bytes) */
    PyObject *media_type; /* new reference (str or None) */
} kk_response_view;

/* Fills v from resp (a Response or a subclass) and consumes the caller's
 * reference to resp. Under resp's critical section; or, when the caller held
 * the only reference to an exact Response (a fresh one, the common case: no
 * other thread can reach it, and its dealloc runs no Python), by moving the
 * fields out of it. Never fails. Release with kk_response_view_release. */
void kk_response_view_take(kk_state *st, PyObject *resp, kk_response_view *v);
void kk_response_view_release(kk_response_view *v);

#endif
