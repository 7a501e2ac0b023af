/* json.c: the JSON encoder declared in json.h.
 *
 * Output is byte-for-byte what
 *     json.dumps(obj, ensure_ascii=False, allow_nan=False,
 *                separators=(",", ":")).encode()
 * gives for native values, written straight into the caller's kk_buf: no
 * intermediate Python objects for str, int (up to 64 bits), float, bool, None.
 * Known differences from json.dumps, both on error paths only:
 *   - nesting deeper than KK_JSON_MAX_DEPTH containers raises RecursionError
 *     (json.dumps goes as deep as the interpreter's recursion limit); this
 *     bound is also what stops circular structures, which json.dumps reports
 *     as ValueError("Circular reference detected");
 *   - anything not native goes to the caller's fallback (Karak passes
 *     pydantic_core.to_json), whose bytes are inserted as they are.
 *
 * Free-threaded builds: dicts are walked with PyDict_Next inside a critical
 * section on the dict, lists by index with PyList_GetItemRef, and every key,
 * value and item is held by a strong reference while it is encoded, because the
 * critical section can be suspended (another lock, a blocking call, Python code
 * in the fallback) and another thread may then replace or delete the entry.
 * A container mutated concurrently yields some valid JSON, never a crash. */
#include "json.h"
#include "compat.h"

#include <math.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

/* CPython 3.11/3.12 shims (critical sections, PyList_GetItemRef) are in compat.h. */

/* Containers nested deeper than this are refused (RecursionError). */
#define KK_JSON_MAX_DEPTH 512

/* Stack-local state of one kk_json_encode call; touched by that thread only. */
typedef struct {
    kk_buf *out;         /* the caller's buffer */
    PyObject *fallback;  /* borrowed from the caller; NULL: none */
    int pydantic_floats; /* write floats as pydantic-core does (see pydantic_float) */
} enc_ctx;

static int enc_value(enc_ctx *c, PyObject *o, int depth);

/* Sets MemoryError and returns -1: the one way a kk_buf failure leaves here. */
static int no_memory(void) {
    PyErr_NoMemory();
    return -1;
}

/* Appends a literal; 0 or -1 with MemoryError. */
#define PUT_LIT(b, lit) (KK_BUF_LIT((b), (lit)) < 0 ? no_memory() : 0)
#define PUT_C(b, ch) (kk_buf_putc((b), (ch)) < 0 ? no_memory() : 0)

/* ===================================================================== */
/* Strings                                                                */
/* ===================================================================== */

/* For each byte: 0 if it is copied as is, else the letter after the
 * backslash ('u' means \u00XX). json.dumps(ensure_ascii=False) escapes only
 * '"', '\\' and the C0 controls; DEL and non-ASCII are copied. */
static const unsigned char esc_tab[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"',
    ['\\'] = '\\',
};

/* High bit set in each byte of w that is < 0x20, '"' or '\\' (SWAR), in any
 * byte order. Borrows can flag bytes above (more significant than) a truly
 * flagged one, never the least significant flagged byte, and never a word
 * with no such byte: a nonzero result always means "needs escaping", and on
 * little-endian targets ctz finds the first such byte. */
static inline uint64_t word_escapes(uint64_t w) {
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t ctl = (w - ones * 0x20) & ~w;
    uint64_t q = w ^ (ones * 0x22), bs = w ^ (ones * 0x5C);
    q = (q - ones) & ~q;
    bs = (bs - ones) & ~bs;
    return (ctl | q | bs) & highs;
}

/* The block scanner: 2 = SSE2, 1 = 64-bit SWAR (little-endian gcc/clang),
 * 0 = byte by byte. Chosen at compile time; -DKK_JSON_SCAN=n forces one
 * (tests/test_json_scan.py builds and checks all three). */
#ifndef KK_JSON_SCAN
#  if defined(__SSE2__)
#    define KK_JSON_SCAN 2
#  elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
      (defined(__GNUC__) || defined(__clang__))
#    define KK_JSON_SCAN 1
#  else
#    define KK_JSON_SCAN 0
#  endif
#endif

/* copy16_find_escape copies 16 bytes from src to dst and returns the index
 * (0..15) of the first byte that needs escaping, or 16 if none does; dst must
 * have room for 16. copy8_find_escape is the same for 8 bytes. */
#if KK_JSON_SCAN == 2
static inline size_t copy16_find_escape(char *dst, const char *src) {
    __m128i x = _mm_loadu_si128((const __m128i *)src);
    _mm_storeu_si128((__m128i *)dst, x);
    __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    /* unsigned x <= 0x1f  <=>  min(x, 0x1f) == x */
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl));
    return mask ? (size_t)__builtin_ctz(mask) : 16;
}

/* The same for 8 bytes (returns 0..7, or 8). */
static inline size_t copy8_find_escape(char *dst, const char *src) {
    __m128i x = _mm_loadl_epi64((const __m128i *)src);
    _mm_storel_epi64((__m128i *)dst, x);
    __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl)) & 0xff;
    return mask ? (size_t)__builtin_ctz(mask) : 8;
}
#elif KK_JSON_SCAN == 1
static inline size_t copy16_find_escape(char *dst, const char *src) {
    uint64_t w0, w1, m;
    memcpy(&w0, src, 8);
    memcpy(&w1, src + 8, 8);
    memcpy(dst, &w0, 8);
    memcpy(dst + 8, &w1, 8);
    if ((m = word_escapes(w0)) != 0) return (size_t)__builtin_ctzll(m) / 8;
    if ((m = word_escapes(w1)) != 0) return 8 + (size_t)__builtin_ctzll(m) / 8;
    return 16;
}

static inline size_t copy8_find_escape(char *dst, const char *src) {
    uint64_t w, m;
    memcpy(&w, src, 8);
    memcpy(dst, &w, 8);
    return (m = word_escapes(w)) != 0 ? (size_t)__builtin_ctzll(m) / 8 : 8;
}
#else
static inline size_t copy16_find_escape(char *dst, const char *src) {
    memcpy(dst, src, 16);
    for (size_t k = 0; k < 16; k++)
        if (esc_tab[(unsigned char)src[k]]) return k;
    return 16;
}

static inline size_t copy8_find_escape(char *dst, const char *src) {
    memcpy(dst, src, 8);
    for (size_t k = 0; k < 8; k++)
        if (esc_tab[(unsigned char)src[k]]) return k;
    return 8;
}
#endif

/* Copies a run of n < 16 bytes that needs no escaping to dst in a fixed number
 * of loads and stores, and returns 1; returns 0 (dst may be scribbled on
 * within [dst, dst + n)) if some byte needs escaping. The loads overlap (8 + 8
 * for 8..15 bytes, 4 + 4 for 4..7, first/middle/last for 1..3), so no byte
 * outside s[0:n] is read: short keys and values, the usual JSON, take no loop. */
static inline Py_ALWAYS_INLINE int copy_short_clean(char *dst, const char *s, size_t n) {
    if (n >= 8) {
        uint64_t a, z;
        memcpy(&a, s, 8);
        memcpy(&z, s + n - 8, 8);
        if (word_escapes(a) | word_escapes(z)) return 0;
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &z, 8);
        return 1;
    }
    if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        if (word_escapes((uint64_t)a | (uint64_t)z << 32)) return 0;
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &z, 4);
        return 1;
    }
    if (n == 0) return 1;
    unsigned char x = (unsigned char)s[0], y = (unsigned char)s[n >> 1],
                  z = (unsigned char)s[n - 1];
    if (esc_tab[x] | esc_tab[y] | esc_tab[z]) return 0;
    dst[0] = (char)x;
    dst[n >> 1] = (char)y;
    dst[n - 1] = (char)z;
    return 1;
}

/* Appends s[0:n] (UTF-8) as a quoted, escaped JSON string, in one pass:
 * 16-byte blocks are copied while they are tested, and the output position
 * only advances to the first byte that needs escaping; a clean rest of under
 * 16 bytes is copied at once (copy_short_clean), else in an 8-byte block and
 * byte by byte through esc_tab. 0, or -1 with MemoryError. */
Py_NO_INLINE static int write_escaped(kk_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    /* Invariant at the top of each step: cap - o >= (n - i) + 1, so a block
     * store fits whenever that many input bytes remain. */
    if (kk_buf_room(b, n + 2) < 0) return no_memory();
    char *d = b->data;
    size_t o = b->len;
    size_t i = 0;
    d[o++] = '"';
    while (i < n) {
        if (n - i < 16 && copy_short_clean(d + o, s + i, n - i)) {
            o += n - i;
            break;
        }
        if (n - i >= 16) {
            size_t k = copy16_find_escape(d + o, s + i);
            o += k;
            i += k;
            if (k == 16) continue;
        } else if (n - i >= 8) {
            size_t k = copy8_find_escape(d + o, s + i);
            o += k;
            i += k;
            if (k == 8) continue;
        } else if (esc_tab[(unsigned char)s[i]] == 0) {
            d[o++] = s[i++];
            continue;
        }
        /* s[i] needs escaping: up to 6 output bytes for 1 input byte. */
        unsigned char ch = (unsigned char)s[i];
        unsigned char e = esc_tab[ch];
        b->len = o;
        if (kk_buf_reserve(b, 6 + (n - i - 1) + 1) < 0) return no_memory();
        d = b->data;
        d[o++] = '\\';
        d[o++] = (char)e;
        if (e == 'u') {
            d[o++] = '0';
            d[o++] = '0';
            d[o++] = hex[ch >> 4];
            d[o++] = hex[ch & 15];
        }
        i++;
    }
    d[o++] = '"';
    b->len = o;
    return 0;
}

/* Appends str o (exact or subclass) as a JSON string. ASCII strings are read
 * in place; others through their cached UTF-8 form, so a lone surrogate
 * raises UnicodeEncodeError as str.encode() would. 0, or -1 with an error. */
static int write_str(kk_buf *b, PyObject *o) {
    const char *s;
    Py_ssize_t n;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(o) < 0) return -1;
#endif
    if (PyUnicode_IS_ASCII(o)) {
        s = (const char *)PyUnicode_DATA(o);
        n = PyUnicode_GET_LENGTH(o);
    } else {
        s = PyUnicode_AsUTF8AndSize(o, &n);
        if (s == NULL) return -1;
    }
    /* The usual short, clean string: written here, without write_escaped's loop. */
    if (n < 16 && b->cap - b->len >= (size_t)n + 2) {
        char *d = b->data + b->len;
        if (copy_short_clean(d + 1, s, (size_t)n)) {
            d[0] = '"';
            d[n + 1] = '"';
            b->len += (size_t)n + 2;
            return 0;
        }
    }
    return write_escaped(b, s, (size_t)n);
}

/* ===================================================================== */
/* Numbers                                                                */
/* ===================================================================== */

/* Appends the decimal form of v (sign if negative). 0, or -1 with MemoryError. */
static int write_ll(kk_buf *b, long long v) {
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        if (PUT_C(b, '-') < 0) return -1;
        u = (uint64_t)0 - u;
    }
    return kk_buf_put_u64(b, u) < 0 ? no_memory() : 0;
}

/* Appends int o (exact, subclass such as IntEnum, not bool) in decimal, like
 * int.__repr__. Values beyond 64 bits go through int.__repr__ itself, so
 * sys.set_int_max_str_digits applies as in json.dumps. 0, or -1 with an error. */
static int write_int(kk_buf *b, PyObject *o) {
#if PY_VERSION_HEX >= 0x030C0000
    /* One digit or none (|v| < 2**30): read in place, no call; 0..99, the
     * commonest ints in JSON (counts, small ids), straight from the table. */
    if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
        Py_ssize_t v = PyUnstable_Long_CompactValue((PyLongObject *)o);
        if ((size_t)v < 100 && b->cap - b->len >= 2) {
            if (v < 10) {
                b->data[b->len++] = (char)('0' + v);
            } else {
                memcpy(b->data + b->len, kk_digit_pairs + 2 * v, 2);
                b->len += 2;
            }
            return 0;
        }
        return write_ll(b, (long long)v);
    }
#endif
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
        if (v == -1 && PyErr_Occurred()) return -1;
        return write_ll(b, v);
    }
    PyObject *s = PyLong_Type.tp_repr(o);
    if (s == NULL) return -1;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    int rc = p == NULL ? -1 : kk_buf_append(b, p, (size_t)n) < 0 ? no_memory() : 0;
    Py_DECREF(s);
    return rc;
}

/* Exact powers of ten (every one up to 1e22 is a double). */
static const double pow10_tab[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The fast path for float repr of "short" decimals (9.99, 0.125, 48.8566):
 * finds the smallest k >= 1 such that an integer m < 2**50 has m / 10**k == |v|
 * in double arithmetic, and writes m with k decimals (with "0." and leading
 * zeros when m has fewer than k digits) to out, which has room for 40 bytes.
 * Returns the length written, or 0 when |v| is outside [1e-4, 2**50 / 10) or
 * needs more digits: the caller then uses PyOS_double_to_string.
 *
 * Why this is exactly float.__repr__: m / 10**k is a correctly rounded
 * division of two exact doubles, so it equals v iff the decimal text parses
 * back to v. If some m0 round-trips at k, |m0 - v*10**k| <= ulp(v)*10**k/2
 * <= 2**-3 (ulp(v) <= v * 2**-52 and v*10**k < 2**50), and fl(v*10**k) is
 * within 2**-3 of the exact product, so rounding it yields m0: no k is
 * skipped, and since ulp(v) < 10**-k at most one m round-trips per k. So the
 * result has the fewest digits, is unique, and repr prints it in fixed
 * notation because 1e-4 <= |v| < 1e16. Needs IEEE double evaluation. */
static size_t short_decimal(double v, char *out) {
#if FLT_EVAL_METHOD == 0 && FLT_RADIX == 2 && DBL_MANT_DIG == 53
    const double two50 = 1125899906842624.0;
    double a = fabs(v);
    if (!(a >= 1e-4 && a < two50 / 10)) return 0;
    for (int k = 1; k <= 19; k++) {
        double x = a * pow10_tab[k];
        if (x >= two50) return 0;
        uint64_t m = (uint64_t)(x + 0.5);
        if ((double)m / pow10_tab[k] != a) continue;
        char digits[24];
        char *end = digits + sizeof digits;
        char *p = kk_fmt_u64(end, m);
        size_t nd = (size_t)(end - p), kk = (size_t)k, len = 0;
        if (v < 0) out[len++] = '-';
        if (nd > kk) {
            memcpy(out + len, p, nd - kk);
            len += nd - kk;
            out[len++] = '.';
            memcpy(out + len, p + nd - kk, kk);
            len += kk;
        } else {
            out[len++] = '0';
            out[len++] = '.';
            memset(out + len, '0', kk - nd);
            len += kk - nd;
            memcpy(out + len, p, nd);
            len += nd;
        }
        return len;
    }
#else
    (void)v;
    (void)out;
    (void)pow10_tab;
#endif
    return 0;
}

/* Appends float o like float.__repr__ ("1.0", "1e+16", "1.5e-07", "-0.0").
 * NaN and infinities raise ValueError, with json.dumps's message for this
 * CPython version. 0, or -1 with an error. */
static int write_float(kk_buf *b, PyObject *o) {
    double v = PyFloat_AS_DOUBLE(o);
    if (!isfinite(v)) {
#if PY_VERSION_HEX >= 0x030D0000
        PyErr_Format(PyExc_ValueError,
                     "Out of range float values are not JSON compliant: %R", o);
#else
        PyErr_SetString(PyExc_ValueError,
                        "Out of range float values are not JSON compliant");
#endif
        return -1;
    }
    /* Integral values below 2**53 print as "<integer>.0": repr uses fixed
     * notation below 1e16, and every such integer is exact in a double. */
    if (v > -9007199254740992.0 && v < 9007199254740992.0) {
        long long i = (long long)v;
        if ((double)i == v) {
            char tmp[32];
            char *end = tmp + sizeof tmp;
            *--end = '0';
            *--end = '.';
            char *p = kk_fmt_u64(end, i < 0 ? (uint64_t)-i : (uint64_t)i);
            if (signbit(v)) *--p = '-';
            return kk_buf_append(b, p, (size_t)(tmp + sizeof tmp - p)) < 0 ? no_memory() : 0;
        }
    }
    char tmp[40];
    size_t len = short_decimal(v, tmp);
    if (len) return kk_buf_append(b, tmp, len) < 0 ? no_memory() : 0;
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (s == NULL) return -1;
    int rc = kk_buf_append(b, s, strlen(s)) < 0 ? no_memory() : 0;
    PyMem_Free(s);
    return rc;
}

/* Rewrites the float just written at b->data[at..] (float.__repr__) the way
 * pydantic-core writes it (Rust's ryu): the same digits, but decimal notation
 * down to 1e-5 rather than 1e-4, and exponents without '+' or leading zeros
 * ("1e+16" -> "1e16", "1.5e-07" -> "1.5e-7", "2e-05" -> "0.00002").
 * Checked against pydantic_core.to_json on 900,000 doubles. */
static int pydantic_float(kk_buf *b, size_t at) {
    char *s = b->data + at, *e = memchr(s, 'e', b->len - at);
    if (e == NULL) return 0;
    char tmp[64];
    size_t mlen = (size_t)(e - s), n = 0;
    const char *p = e + 1, *end = b->data + b->len; /* not NUL-terminated */
    int neg = p < end && *p == '-';
    if (p < end && (*p == '-' || *p == '+')) p++;
    long x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) x = x * 10 + (*p - '0');
    if (neg) x = -x;
    if (mlen > 32) return 0; /* cannot happen: repr has at most 17 digits */
    if (x == -5) {
        size_t i = 0;
        if (s[0] == '-') tmp[n++] = s[i++];
        memcpy(tmp + n, "0.0000", 6);
        n += 6;
        for (; i < mlen; i++)
            if (s[i] != '.') tmp[n++] = s[i];
    } else {
        memcpy(tmp, s, mlen);
        n = mlen + (size_t)snprintf(tmp + mlen, sizeof tmp - mlen, "e%ld", x);
    }
    b->len = at;
    return kk_buf_append(b, tmp, n) < 0 ? no_memory() : 0;
}

/* ===================================================================== */
/* Containers                                                             */
/* ===================================================================== */

/* Refuses to open a container at nesting level `depth` (0 = top). */
static int check_depth(int depth) {
    if (depth < KK_JSON_MAX_DEPTH) return 0;
    PyErr_Format(PyExc_RecursionError,
                 "maximum JSON nesting depth (%d) exceeded while encoding "
                 "(or a circular reference)", KK_JSON_MAX_DEPTH);
    return -1;
}

/* Appends a dict key as a JSON string, converting non-str keys as json.dumps
 * does: float -> repr, True/False/None -> "true"/"false"/"null", int -> decimal.
 * Other types raise TypeError. 0, or -1 with an error. */
static int write_key(kk_buf *b, PyObject *k) {
    if (PyUnicode_Check(k)) return write_str(b, k);
    if (k == Py_True) return PUT_LIT(b, "\"true\"");
    if (k == Py_False) return PUT_LIT(b, "\"false\"");
    if (k == Py_None) return PUT_LIT(b, "\"null\"");
    if (PyFloat_Check(k) || PyLong_Check(k)) {
        if (PUT_C(b, '"') < 0) return -1;
        if ((PyFloat_Check(k) ? write_float(b, k) : write_int(b, k)) < 0) return -1;
        return PUT_C(b, '"');
    }
    PyErr_Format(PyExc_TypeError,
                 "keys must be str, int, float, bool or None, not %.100s",
                 Py_TYPE(k)->tp_name);
    return -1;
}

/* Appends `,`? key `:` value, both held by the caller. */
static int write_pair(enc_ctx *c, PyObject *k, PyObject *v, int first, int depth) {
    if (!first && PUT_C(c->out, ',') < 0) return -1;
    if (write_key(c->out, k) < 0) return -1;
    if (PUT_C(c->out, ':') < 0) return -1;
    return enc_value(c, v, depth);
}

/* Exact dict: PyDict_Next under the dict's critical section, key and value
 * held by strong references while they are encoded (see the file comment).
 * No `return` between BEGIN and END: the section must be closed. */
static int enc_dict(enc_ctx *c, PyObject *d, int depth) {
    if (check_depth(depth) < 0 || PUT_C(c->out, '{') < 0) return -1;
    int rc = 0, first = 1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    Py_BEGIN_CRITICAL_SECTION(d);
    while (PyDict_Next(d, &pos, &k, &v)) {
        Py_INCREF(k);
        Py_INCREF(v);
        rc = write_pair(c, k, v, first, depth + 1);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0) break;
        first = 0;
    }
    Py_END_CRITICAL_SECTION();
    if (rc < 0) return -1;
    return PUT_C(c->out, '}');
}

/* Dict subclass: encoded from list(d.items()) as json.dumps does, so that an
 * OrderedDict keeps its own order and an overridden items() is honoured. */
static int enc_dict_items(enc_ctx *c, PyObject *d, int depth) {
    if (check_depth(depth) < 0) return -1;
    PyObject *items = PyMapping_Items(d);
    if (items == NULL) return -1;
    int rc = PUT_C(c->out, '{');
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(items); i++) {
        PyObject *it = PyList_GetItemRef(items, i);
        if (it == NULL) {
            rc = -1;
            break;
        }
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2) {
            PyErr_SetString(PyExc_ValueError, "items must return 2-tuples");
            rc = -1;
        } else {
            rc = write_pair(c, PyTuple_GET_ITEM(it, 0), PyTuple_GET_ITEM(it, 1), i == 0,
                            depth + 1);
        }
        Py_DECREF(it);
    }
    Py_DECREF(items);
    if (rc < 0) return -1;
    return PUT_C(c->out, '}');
}

/* Exact list: by index, re-reading the size each step, each item a strong
 * reference. A list shrunk by another thread simply ends early. */
static int enc_list(enc_ctx *c, PyObject *l, int depth) {
    if (check_depth(depth) < 0 || PUT_C(c->out, '[') < 0) return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l); i++) {
        PyObject *it = PyList_GetItemRef(l, i);
        if (it == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_IndexError)) return -1;
            PyErr_Clear(); /* shrunk under us */
            break;
        }
        int rc = (i == 0 ? 0 : PUT_C(c->out, ','));
        if (rc == 0) rc = enc_value(c, it, depth + 1);
        Py_DECREF(it);
        if (rc < 0) return -1;
    }
    return PUT_C(c->out, ']');
}

/* Exact tuple: immutable, items borrowed from the tuple, which the caller
 * holds. */
static int enc_tuple(enc_ctx *c, PyObject *t, int depth) {
    if (check_depth(depth) < 0 || PUT_C(c->out, '[') < 0) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && PUT_C(c->out, ',') < 0) return -1;
        if (enc_value(c, PyTuple_GET_ITEM(t, i), depth + 1) < 0) return -1;
    }
    return PUT_C(c->out, ']');
}

/* List or tuple subclass: encoded from list(iter(o)), as json.dumps does
 * (PySequence_Fast), so an overridden __iter__ is honoured. */
static int enc_seq_subclass(enc_ctx *c, PyObject *o, int depth) {
    if (check_depth(depth) < 0) return -1;
    PyObject *l = PySequence_List(o);
    if (l == NULL) return -1;
    int rc = enc_list(c, l, depth);
    Py_DECREF(l);
    return rc;
}

/* ===================================================================== */
/* Dispatch                                                               */
/* ===================================================================== */

/* Non-native value: fallback(o) must return bytes, appended as they are. */
static int enc_fallback(enc_ctx *c, PyObject *o) {
    if (c->fallback == NULL) {
        PyObject *name = PyType_GetName(Py_TYPE(o));
        if (name == NULL) return -1;
        PyErr_Format(PyExc_TypeError, "Object of type %U is not JSON serializable", name);
        Py_DECREF(name);
        return -1;
    }
    PyObject *r = PyObject_CallOneArg(c->fallback, o);
    if (r == NULL) return -1;
    int rc;
    if (!PyBytes_Check(r)) {
        PyErr_Format(PyExc_TypeError,
                     "JSON fallback must return bytes, not %.100s (for an object of type %.100s)",
                     Py_TYPE(r)->tp_name, Py_TYPE(o)->tp_name);
        rc = -1;
    } else {
        rc = kk_buf_append(c->out, PyBytes_AS_STRING(r), (size_t)PyBytes_GET_SIZE(r)) < 0
                 ? no_memory()
                 : 0;
    }
    Py_DECREF(r);
    return rc;
}

/* Appends o (held by the caller for the duration) at nesting level `depth`.
 * Type tests follow json.dumps's order; subclasses encode as their base. */
static int enc_value(enc_ctx *c, PyObject *o, int depth) {
    if (o == Py_None) return PUT_LIT(c->out, "null");
    if (o == Py_True) return PUT_LIT(c->out, "true");
    if (o == Py_False) return PUT_LIT(c->out, "false");
    if (PyUnicode_Check(o)) return write_str(c->out, o);
    if (PyLong_Check(o)) return write_int(c->out, o);
    /* The exact containers before PyFloat_Check: for anything not a float that
     * is a walk of the type's MRO (str, int, list, tuple and dict are checked by
     * a flag bit), and lists and dicts are what a payload is made of. */
    if (PyList_CheckExact(o)) return enc_list(c, o, depth);
    if (PyDict_CheckExact(o)) return enc_dict(c, o, depth);
    if (PyFloat_Check(o)) {
        size_t at = c->out->len;
        int rc = write_float(c->out, o);
        return rc == 0 && c->pydantic_floats ? pydantic_float(c->out, at) : rc;
    }
    if (PyTuple_CheckExact(o)) return enc_tuple(c, o, depth);
    if (PyList_Check(o) || PyTuple_Check(o)) return enc_seq_subclass(c, o, depth);
    if (PyDict_Check(o)) return enc_dict_items(c, o, depth);
    return enc_fallback(c, o);
}

/* See json.h. A fallback of Py_None is treated as NULL. */
int kk_json_encode(kk_buf *out, PyObject *obj, PyObject *fallback) {
    enc_ctx c = {out, fallback == Py_None ? NULL : fallback, 0};
    return enc_value(&c, obj, 0);
}

/* ===================================================================== */
/* Response models by shape (src/karak/_shapes.py)                        */
/* ===================================================================== */

/* Shape tags: the same numbers as SHAPE_* in src/karak/_shapes.py. */
enum { SHAPE_MODEL = 1, SHAPE_LIST = 2, SHAPE_DICT = 3, SHAPE_OPTIONAL = 4 };

/* enc_shaped's result when the value is not of its shape: no exception set,
 * the caller lets pydantic serialise the whole value instead. */
#define MISMATCH 1

static int enc_shaped(enc_ctx *c, PyObject *o, PyObject *shape, int depth);

/* An instance of exactly `cls`: its fields, in declaration order, from its
 * __dict__. A missing field is a mismatch (model_construct, del). */
static int enc_model(enc_ctx *c, PyObject *o, PyObject *shape, int depth) {
    if (!Py_IS_TYPE(o, (PyTypeObject *)PyTuple_GET_ITEM(shape, 1))) return MISMATCH;
    if (check_depth(depth) < 0) return -1;
    PyObject *names = PyTuple_GET_ITEM(shape, 2), *shapes = PyTuple_GET_ITEM(shape, 3);
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (d == NULL) return -1;
    int rc = PUT_C(c->out, '{');
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i), *v;
        int found = PyDict_GetItemRef(d, name, &v);
        if (found <= 0) {
            rc = found < 0 ? -1 : MISMATCH;
            break;
        }
        if (i > 0) rc = PUT_C(c->out, ',');
        if (rc == 0) rc = write_str(c->out, name);
        if (rc == 0) rc = PUT_C(c->out, ':');
        if (rc == 0) rc = enc_shaped(c, v, PyTuple_GET_ITEM(shapes, i), depth + 1);
        Py_DECREF(v);
    }
    Py_DECREF(d);
    return rc != 0 ? rc : PUT_C(c->out, '}');
}

static int enc_shaped_list(enc_ctx *c, PyObject *l, PyObject *item_shape, int depth) {
    if (!PyList_CheckExact(l)) return MISMATCH;
    if (check_depth(depth) < 0 || PUT_C(c->out, '[') < 0) return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l); i++) {
        PyObject *it = PyList_GetItemRef(l, i);
        if (it == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_IndexError)) return -1;
            PyErr_Clear(); /* shrunk under us */
            break;
        }
        int rc = (i == 0 ? 0 : PUT_C(c->out, ','));
        if (rc == 0) rc = enc_shaped(c, it, item_shape, depth + 1);
        Py_DECREF(it);
        if (rc != 0) return rc;
    }
    return PUT_C(c->out, ']');
}

static int enc_shaped_dict(enc_ctx *c, PyObject *d, PyObject *value_shape, int depth) {
    if (!PyDict_CheckExact(d)) return MISMATCH;
    if (check_depth(depth) < 0 || PUT_C(c->out, '{') < 0) return -1;
    int rc = 0, first = 1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    Py_BEGIN_CRITICAL_SECTION(d);
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_Check(k)) {
            rc = MISMATCH;
            break;
        }
        Py_INCREF(k);
        Py_INCREF(v);
        rc = first ? 0 : PUT_C(c->out, ',');
        if (rc == 0) rc = write_str(c->out, k);
        if (rc == 0) rc = PUT_C(c->out, ':');
        if (rc == 0) rc = enc_shaped(c, v, value_shape, depth + 1);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc != 0) break;
        first = 0;
    }
    Py_END_CRITICAL_SECTION();
    return rc != 0 ? rc : PUT_C(c->out, '}');
}

static int enc_shaped(enc_ctx *c, PyObject *o, PyObject *shape, int depth) {
    if (shape == Py_None) return enc_value(c, o, depth);
    switch (PyLong_AsLong(PyTuple_GET_ITEM(shape, 0))) {
    case SHAPE_MODEL:
        return enc_model(c, o, shape, depth);
    case SHAPE_LIST:
        return enc_shaped_list(c, o, PyTuple_GET_ITEM(shape, 1), depth);
    case SHAPE_DICT:
        return enc_shaped_dict(c, o, PyTuple_GET_ITEM(shape, 1), depth);
    case SHAPE_OPTIONAL:
        return o == Py_None ? PUT_LIT(c->out, "null")
                            : enc_shaped(c, o, PyTuple_GET_ITEM(shape, 1), depth);
    default:
        return MISMATCH;
    }
}

/* See json.h. */
int kk_json_encode_shaped(kk_buf *out, PyObject *obj, PyObject *shape, PyObject *fallback) {
    enc_ctx c = {out, fallback == Py_None ? NULL : fallback, 1};
    return enc_shaped(&c, obj, shape, 0);
}
