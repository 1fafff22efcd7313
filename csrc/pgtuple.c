/*
 * pgtuple.c - a pgoutput TupleData -> the msgpack map of a change record, in C.
 *
 * The CDC hot path: an insert's new row arrives as TupleData (int16 column count,
 * then per column 'n' (NULL), 'u' (unchanged TOAST) or 't' + int32 length + the
 * value's text). flbsql/cdc/pgoutput.py decodes it in Python with one decoder per
 * column type (flbsql/cdc/types.py); this file does the same for the decoders that
 * need no catalog, and writes the map straight into msgpack with the packed column
 * names given by the caller, exactly the bytes msgpack.packb(dict) would give:
 *
 *   KIND_TEXT   str as sent            (text, varchar, numeric, date, uuid, ...)
 *   KIND_INT    int                    (int2/4/8, oid, xid, cid)
 *   KIND_FLOAT  float64                (float4/8; numeric with `decimal float`)
 *   KIND_BOOL   true when "t"
 *   KIND_TS     ISO 8601 str           ("2024-01-02 03:04:05+00" -> "...T...+00:00")
 *   KIND_BYTEA  bin                    ("\x0a0b" -> 0a0b; other text: its bytes)
 *
 * Anything else (unchanged TOAST, binary values, a number that does not parse,
 * odd hex) returns PGT_FALLBACK and the caller decodes the message in Python.
 * Built as the cffi extension module flbsql.cdc.cpgoutput (csrc/build_shim.py).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PGT_FALLBACK (-1)
#define PGT_NO_ROOM (-2)

enum { KIND_TEXT, KIND_INT, KIND_FLOAT, KIND_BOOL, KIND_TS, KIND_BYTEA };

typedef struct {
    unsigned char *p;
    size_t w, cap;
} pgt_out;

static int put(pgt_out *o, const void *src, size_t n)
{
    if (n > o->cap - o->w) {
        return PGT_NO_ROOM;
    }
    memcpy(o->p + o->w, src, n);
    o->w += n;
    return 0;
}

static int put_be(pgt_out *o, unsigned char tag, uint64_t v, int bytes)
{
    unsigned char b[9];
    int i;
    b[0] = tag;
    for (i = 0; i < bytes; i++) {
        b[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    }
    return put(o, b, (size_t)bytes + 1);
}

/* msgpack-python's choice of integer format: the smallest that holds the value. */
static int put_int(pgt_out *o, int64_t v)
{
    unsigned char b;
    if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u < 128) { b = (unsigned char)u; return put(o, &b, 1); }
        if (u <= 0xff) return put_be(o, 0xcc, u, 1);
        if (u <= 0xffff) return put_be(o, 0xcd, u, 2);
        if (u <= 0xffffffffu) return put_be(o, 0xce, u, 4);
        return put_be(o, 0xcf, u, 8);
    }
    if (v >= -32) { b = (unsigned char)(int8_t)v; return put(o, &b, 1); }
    if (v >= -128) return put_be(o, 0xd0, (uint64_t)v & 0xff, 1);
    if (v >= -32768) return put_be(o, 0xd1, (uint64_t)v & 0xffff, 2);
    if (v >= INT32_MIN) return put_be(o, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    return put_be(o, 0xd3, (uint64_t)v, 8);
}

static int put_str_head(pgt_out *o, size_t n, int bin)
{
    unsigned char b;
    if (bin) {
        if (n <= 0xff) return put_be(o, 0xc4, n, 1);
        if (n <= 0xffff) return put_be(o, 0xc5, n, 2);
        return put_be(o, 0xc6, n, 4);
    }
    if (n < 32) { b = (unsigned char)(0xa0 | n); return put(o, &b, 1); }
    if (n <= 0xff) return put_be(o, 0xd9, n, 1);
    if (n <= 0xffff) return put_be(o, 0xda, n, 2);
    return put_be(o, 0xdb, n, 4);
}

static int put_str(pgt_out *o, const unsigned char *s, size_t n)
{
    int rc = put_str_head(o, n, 0);
    return rc ? rc : put(o, s, n);
}

/* Python's int(text) for what PostgreSQL writes: optional '-', digits. */
static int put_int_text(pgt_out *o, const unsigned char *s, size_t n)
{
    char tmp[32];
    char *end;
    long long v;
    if (n == 0 || n >= sizeof tmp) return PGT_FALLBACK;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno || end != tmp + n || tmp[0] == ' ' || tmp[0] == '+') return PGT_FALLBACK;
    return put_int(o, (int64_t)v);
}

/* Python's float(text): strtod is correctly rounded too; NaN/Infinity by name. */
static int put_float_text(pgt_out *o, const unsigned char *s, size_t n)
{
    char tmp[512];
    char *end;
    double d;
    uint64_t bits;
    if (n == 0 || n >= sizeof tmp) return PGT_FALLBACK;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (strcmp(tmp, "NaN") == 0) {
        bits = 0x7ff8000000000000ull; /* float('nan') */
        return put_be(o, 0xcb, bits, 8);
    }
    if (!((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '-' || tmp[0] == '.' || tmp[0] == 'I'))
        return PGT_FALLBACK;
    d = strtod(tmp, &end);
    if (end != tmp + n || isnan(d)) return PGT_FALLBACK;
    memcpy(&bits, &d, sizeof bits);
    return put_be(o, 0xcb, bits, 8);
}

/* types.iso_timestamp: "YYYY-MM-DD HH:MM:SS[.f]+HH[:MM]" -> 'T' and a full offset. */
static int put_ts_text(pgt_out *o, const unsigned char *s, size_t n)
{
    int rc;
    int short_offset;
    if (n < 11 || s[10] != ' ' || (n >= 3 && memcmp(s + n - 3, " BC", 3) == 0)) {
        return put_str(o, s, n); /* infinity, -infinity, BC: as PostgreSQL writes them */
    }
    short_offset = s[n - 3] == '+' || s[n - 3] == '-';
    rc = put_str_head(o, n + (short_offset ? 3 : 0), 0);
    if (!rc) rc = put(o, s, 10);
    if (!rc) rc = put(o, "T", 1);
    if (!rc) rc = put(o, s + 11, n - 11);
    if (!rc && short_offset) rc = put(o, ":00", 3);
    return rc;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int put_bytea_text(pgt_out *o, const unsigned char *s, size_t n)
{
    size_t i, len;
    int rc;
    if (n < 2 || s[0] != '\\' || s[1] != 'x') {
        rc = put_str_head(o, n, 1); /* types._bytea: text.encode() */
        return rc ? rc : put(o, s, n);
    }
    if ((n - 2) % 2) return PGT_FALLBACK;
    len = (n - 2) / 2;
    rc = put_str_head(o, len, 1);
    if (rc) return rc;
    if (len > o->cap - o->w) return PGT_NO_ROOM;
    for (i = 0; i < len; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) return PGT_FALLBACK;
        o->p[o->w++] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/*
 * buf[off..len): a TupleData of `ncols` columns; keys: their packed names,
 * concatenated; kinds: KIND_* per column. Writes the map into out and returns its
 * length, PGT_FALLBACK (decode in Python) or PGT_NO_ROOM.
 */
long flbsql_pg_tuple(const char *buf_, size_t len, size_t off, const char *keys_,
                     const size_t *key_len, const unsigned char *kinds, size_t ncols,
                     char *out_, size_t out_cap)
{
    const unsigned char *buf = (const unsigned char *)buf_;
    const unsigned char *key = (const unsigned char *)keys_;
    pgt_out o = {(unsigned char *)out_, 0, out_cap};
    size_t c;
    int rc;

    if (off + 2 > len || (((size_t)buf[off] << 8) | buf[off + 1]) != ncols) {
        return PGT_FALLBACK;
    }
    off += 2;
    if (ncols < 16) {
        unsigned char b = (unsigned char)(0x80 | ncols);
        rc = put(&o, &b, 1);
    }
    else {
        rc = put_be(&o, 0xde, ncols, 2);
    }
    if (rc) return rc;
    for (c = 0; c < ncols; c++) {
        unsigned char kind;
        uint32_t n;
        const unsigned char *s;
        rc = put(&o, key, key_len[c]);
        if (rc) return rc;
        key += key_len[c];
        if (off >= len) return PGT_FALLBACK;
        kind = buf[off++];
        if (kind == 'n') {
            unsigned char nil = 0xc0;
            rc = put(&o, &nil, 1);
            if (rc) return rc;
            continue;
        }
        if (kind != 't' || off + 4 > len) return PGT_FALLBACK; /* 'u', 'b': Python */
        n = ((uint32_t)buf[off] << 24) | ((uint32_t)buf[off + 1] << 16) |
            ((uint32_t)buf[off + 2] << 8) | buf[off + 3];
        off += 4;
        if (n > len - off) return PGT_FALLBACK;
        s = buf + off;
        off += n;
        switch (kinds[c]) {
        case KIND_TEXT: rc = put_str(&o, s, n); break;
        case KIND_INT: rc = put_int_text(&o, s, n); break;
        case KIND_FLOAT: rc = put_float_text(&o, s, n); break;
        case KIND_BOOL: rc = put(&o, (n == 1 && s[0] == 't') ? "\xc3" : "\xc2", 1); break;
        case KIND_TS: rc = put_ts_text(&o, s, n); break;
        case KIND_BYTEA: rc = put_bytea_text(&o, s, n); break;
        default: return PGT_FALLBACK;
        }
        if (rc) return rc;
    }
    return (long)o.w;
}

/*
 * A run of inserts into one relation, as whole change events (flbsql/cdc/record.py
 * ChangeEncoder.change with before=None and the map above as `after`):
 *
 *   prefix  <pos>  "seq" <seq>  "before" nil  "after" <map>
 *
 * prefix: the event header, the body's map header and every field up to the "pos"
 * key, the same for each insert of the transaction. msgs: the peek's messages
 * concatenated, ends[i] where message i ends. From message `first` on, while a
 * message is an 'I' ('N' new tuple) of relation `oid` that flbsql_pg_tuple packs,
 * writes its event with pos0 + k and seq0 + 1 + k. Stops before any other message,
 * and after the event that brings the run to max_rows events or max_bytes bytes
 * (the stream's chunk bounds: it hands over there). Returns the number of messages
 * (= events) written; *written: their bytes. 0: the caller decodes `first` itself.
 */
long flbsql_pg_inserts(const char *msgs_, const size_t *ends, size_t first, size_t count,
                       uint32_t oid, const char *prefix, size_t prefix_len,
                       const char *keys, const size_t *key_len, const unsigned char *kinds,
                       size_t ncols, int64_t pos0, int64_t seq0, size_t max_rows,
                       size_t max_bytes, char *out_, size_t out_cap, size_t *written)
{
    static const unsigned char seq_key[] = {0xa3, 's', 'e', 'q'};
    static const unsigned char before_nil_after[] = {0xa6, 'b', 'e', 'f', 'o', 'r', 'e',
                                                     0xc0, 0xa5, 'a', 'f', 't', 'e', 'r'};
    const unsigned char *msgs = (const unsigned char *)msgs_;
    pgt_out o = {(unsigned char *)out_, 0, out_cap};
    size_t i, rows = 0;

    *written = 0;
    for (i = first; i < count && rows < max_rows && o.w < max_bytes; i++) {
        size_t start = i ? ends[i - 1] : 0, len = ends[i] - start;
        const unsigned char *m = msgs + start;
        size_t mark = o.w;
        long n;
        if (len < 6 || m[0] != 'I' || m[5] != 'N' ||
            (((uint32_t)m[1] << 24) | ((uint32_t)m[2] << 16) | ((uint32_t)m[3] << 8) | m[4]) != oid) {
            break;
        }
        if (put(&o, prefix, prefix_len) || put_int(&o, pos0 + (int64_t)rows) ||
            put(&o, seq_key, sizeof seq_key) || put_int(&o, seq0 + 1 + (int64_t)rows) ||
            put(&o, before_nil_after, sizeof before_nil_after)) {
            o.w = mark;
            break;
        }
        n = flbsql_pg_tuple((const char *)m, len, 6, keys, key_len, kinds, ncols,
                            (char *)o.p + o.w, o.cap - o.w);
        if (n < 0) { /* a value for Python, or no room: the run ends before it */
            o.w = mark;
            break;
        }
        o.w += (size_t)n;
        rows++;
    }
    *written = o.w;
    return (long)rows;
}
