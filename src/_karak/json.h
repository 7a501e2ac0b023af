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

#endif
