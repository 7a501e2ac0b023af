/* json.h: JSON encoder for Python objects, in C. */
#ifndef KK_JSON_H
#define KK_JSON_H

#include <Python.h>
#include "buf.h"

/* Appends the compact JSON text of obj to out (UTF-8, separators "," ":",
 * like json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))).
 * Native: dict (keys str, or int/float/bool/None converted as json.dumps does),
 * list, tuple, str, int (any size), float (repr; NaN/Infinity refused), bool, None.
 * Anything else: fallback(obj) is called and must return bytes, which are
 * inserted as a raw JSON value (Karak passes pydantic_core.to_json); fallback
 * NULL means TypeError. Returns 0, or -1 with a Python exception set (out may
 * hold a partial result; the caller discards it). Thread: the caller's; shared
 * dicts and lists are read inside critical sections. */
int kk_json_encode(kk_buf *out, PyObject *obj, PyObject *fallback);

/* Appends obj's JSON like kk_json_encode, led by `shape` (built and checked by
 * src/karak/_shapes.py; read only): model instances of exactly the shape's
 * class are written from their __dict__, field by field. Returns 0; 1 when
 * obj does not have the shape (no exception: the caller serialises it another
 * way); -1 with an exception set. On 1 and -1, out may hold a partial result. */
int kk_json_encode_shaped(kk_buf *out, PyObject *obj, PyObject *shape, PyObject *fallback);

#endif
