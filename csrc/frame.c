/*
 * frame.c - rows packed as msgpack arrays -> Fluent Bit v2 events (maps), in C.
 *
 * The poll input packs a page of rows with one msgpack.Packer call as an array of
 * row arrays (msgpack's C packer: no dict per row, no Python per value). This file
 * re-frames those bytes: every row array becomes `head` + a map header + for each
 * emitted column its packed key followed by the column's packed value, copied as
 * is. Nothing is decoded or re-encoded; values are only skipped over to find their
 * length, except that a column marked FRAME_UNQUOTE loses the quotes of a JSON
 * string literal (a timestamp the server rendered with to_json). flbsql/events/frame.py is the Python side and holds the same algorithm in
 * Python (the fallback and the test oracle).
 *
 * Built as the cffi extension module flbsql.events.cframe (csrc/build_shim.py).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FRAME_MALFORMED (-1)
#define FRAME_NO_ROOM (-2)
#define FRAME_UNQUOTE 2 /* emit[c]: the column's strings are JSON string literals */

static uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#define PG_EPOCH_MICROS 946684800000000LL /* 2000-01-01, PostgreSQL's epoch */

/*
 * A row's own header: `head` with the time of v (bin 8 of 8 bytes: PostgreSQL's binary
 * timestamp, big-endian int64 microseconds since 2000-01-01 UTC) at `stamp_at`.
 * Returns 1 and fills own[] (head_len bytes), or 0 for a time outside 0..max_sec
 * seconds since 1970 (infinity included): the row gets `head` (codec.header_of_pg_micros).
 */
static int own_header(const unsigned char *v, const unsigned char *head, size_t head_len,
                      size_t stamp_at, uint32_t max_sec, unsigned char *own)
{
    uint64_t raw = ((uint64_t)be32(v) << 32) | be32(v + 4);
    int64_t micros = (int64_t)raw;
    uint64_t unix_us, sec, nsec;
    if (micros < -PG_EPOCH_MICROS || micros > (int64_t)max_sec * 1000000 - PG_EPOCH_MICROS) {
        return 0;
    }
    unix_us = (uint64_t)(micros + PG_EPOCH_MICROS);
    sec = unix_us / 1000000;
    nsec = unix_us % 1000000 * 1000;
    memcpy(own, head, head_len);
    own[stamp_at] = (unsigned char)(sec >> 24);
    own[stamp_at + 1] = (unsigned char)(sec >> 16);
    own[stamp_at + 2] = (unsigned char)(sec >> 8);
    own[stamp_at + 3] = (unsigned char)sec;
    own[stamp_at + 4] = (unsigned char)(nsec >> 24);
    own[stamp_at + 5] = (unsigned char)(nsec >> 16);
    own[stamp_at + 6] = (unsigned char)(nsec >> 8);
    own[stamp_at + 7] = (unsigned char)nsec;
    return 1;
}

/*
 * Skip one complete msgpack object at in[*off]; nested arrays and maps are skipped
 * with a counter of objects still to skip, not by recursion. Returns 0, or
 * FRAME_MALFORMED when the object is truncated or uses the reserved byte 0xc1.
 */
static int skip_object(const unsigned char *in, size_t len, size_t *off)
{
    size_t pending = 1;
    size_t o = *off;

    while (pending > 0) {
        unsigned char b;
        size_t payload = 0; /* bytes after the type byte and its length field */
        size_t children = 0;

        if (o >= len) {
            return FRAME_MALFORMED;
        }
        b = in[o++];
        pending--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, negative fixint, nil, false, true */
        }
        else if (b >= 0xa0 && b <= 0xbf) {
            payload = b & 0x1f;
        }
        else if (b >= 0x90 && b <= 0x9f) {
            children = b & 0x0f;
        }
        else if (b >= 0x80 && b <= 0x8f) {
            children = 2 * (size_t)(b & 0x0f);
        }
        else {
            size_t need;
            switch (b) {
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xca: case 0xce: case 0xd2: payload = 4; break;
            case 0xcb: case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;   /* fixext 1: type + 1 */
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xc4: case 0xd9:            /* bin 8, str 8 */
                if (o + 1 > len) return FRAME_MALFORMED;
                payload = in[o]; o += 1; break;
            case 0xc5: case 0xda:            /* bin 16, str 16 */
                if (o + 2 > len) return FRAME_MALFORMED;
                payload = be16(in + o); o += 2; break;
            case 0xc6: case 0xdb:            /* bin 32, str 32 */
                if (o + 4 > len) return FRAME_MALFORMED;
                payload = be32(in + o); o += 4; break;
            case 0xc7:                       /* ext 8: length, type, data */
                if (o + 1 > len) return FRAME_MALFORMED;
                payload = (size_t)in[o] + 1; o += 1; break;
            case 0xc8:
                if (o + 2 > len) return FRAME_MALFORMED;
                payload = (size_t)be16(in + o) + 1; o += 2; break;
            case 0xc9:
                if (o + 4 > len) return FRAME_MALFORMED;
                payload = (size_t)be32(in + o) + 1; o += 4; break;
            case 0xdc: case 0xde:            /* array 16, map 16 */
                if (o + 2 > len) return FRAME_MALFORMED;
                need = be16(in + o); o += 2;
                children = b == 0xdc ? need : 2 * need;
                break;
            case 0xdd: case 0xdf:            /* array 32, map 32 */
                if (o + 4 > len) return FRAME_MALFORMED;
                need = be32(in + o); o += 4;
                children = b == 0xdd ? need : 2 * need;
                break;
            default:                         /* 0xc1: never used */
                return FRAME_MALFORMED;
            }
        }
        if (payload > len - o) {
            return FRAME_MALFORMED;
        }
        o += payload;
        if (children > len - o) { /* every child takes one byte at least */
            return FRAME_MALFORMED;
        }
        pending += children;
    }
    *off = o;
    return 0;
}

/*
 * Copy the packed value v (n bytes) to out; a string that is a JSON string literal
 * without escapes ("2024-05-01T12:00:00+00:00", as PostgreSQL's to_json renders a
 * timestamp) is written without its quotes. Anything else is copied as it is. The
 * result is never longer than the value. Returns the bytes written.
 */
static size_t unquote(const unsigned char *v, size_t n, unsigned char *out)
{
    size_t hl, len;

    if (v[0] >= 0xa0 && v[0] <= 0xbf) {
        hl = 1;
    }
    else if (v[0] == 0xd9) {
        hl = 2;
    }
    else if (v[0] == 0xda) {
        hl = 3;
    }
    else if (v[0] == 0xdb) {
        hl = 5;
    }
    else {
        hl = 0;
    }
    len = hl ? n - hl : 0;
    if (len < 2 || v[hl] != '"' || v[n - 1] != '"' || memchr(v + hl, '\\', len) != NULL) {
        memcpy(out, v, n);
        return n;
    }
    len -= 2;
    if (len < 32) {
        out[0] = (unsigned char)(0xa0 | len);
        hl = 1;
    }
    else if (len <= 0xff) {
        out[0] = 0xd9;
        out[1] = (unsigned char)len;
        hl = 2;
    }
    else if (len <= 0xffff) {
        out[0] = 0xda;
        out[1] = (unsigned char)(len >> 8);
        out[2] = (unsigned char)(len & 0xff);
        hl = 3;
    }
    else {
        out[0] = 0xdb;
        out[1] = (unsigned char)(len >> 24);
        out[2] = (unsigned char)((len >> 16) & 0xff);
        out[3] = (unsigned char)((len >> 8) & 0xff);
        out[4] = (unsigned char)(len & 0xff);
        hl = 5;
    }
    memcpy(out + hl, v + (n - len - 1), len);
    return hl + len;
}

/* The header of an array at in[*off]: its element count, or -1. */
static long array_header(const unsigned char *in, size_t len, size_t *off)
{
    size_t o = *off;
    long n;

    if (o >= len) {
        return -1;
    }
    if (in[o] >= 0x90 && in[o] <= 0x9f) {
        n = in[o] & 0x0f;
        o += 1;
    }
    else if (in[o] == 0xdc && o + 3 <= len) {
        n = (long)be16(in + o + 1);
        o += 3;
    }
    else if (in[o] == 0xdd && o + 5 <= len) {
        n = (long)be32(in + o + 1);
        o += 5;
    }
    else {
        return -1;
    }
    *off = o;
    return n;
}

/*
 * in:       msgpack array of rows, each an array of exactly `ncols` values
 * head:     the bytes before every map (the event header: [[EventTime, {}], )
 * head_col: -1, or the column holding each row's time (PostgreSQL's binary timestamp,
 *           8 bytes; nil or out of range: `head`): its header is `head` with that
 *           time's seconds and nanoseconds at `stamp_at` (input/encoding.py)
 * keys:     the packed keys of the emitted columns, concatenated, in column order
 * key_len:  the length of each emitted column's key
 * emit:     per column, 1 when it goes into the map, 0 when it is skipped, 2 when
 *           it goes in and a JSON string literal in it loses its quotes (unquote)
 * tail:     packed key/value pairs added to every map after the columns (`ntail`
 *           pairs: the input's table_key field), or tail_len 0
 * offs:     room for ncols + 1 offsets (scratch)
 * out:      room for out_cap bytes
 *
 * Returns the bytes written, FRAME_MALFORMED when `in` is not such an array, or
 * FRAME_NO_ROOM when out_cap is too small (frame.py sizes it so this cannot happen).
 */
long flbsql_frame(const char *in_, size_t in_len, const char *head, size_t head_len,
                  long head_col, size_t stamp_at, uint32_t max_sec,
                  const char *keys, const size_t *key_len,
                  const unsigned char *emit, size_t ncols, const char *tail,
                  size_t tail_len, size_t ntail, size_t *offs, char *out_, size_t out_cap)
{
    const unsigned char *in = (const unsigned char *)in_;
    unsigned char *out = (unsigned char *)out_;
    size_t off = 0, w = 0, nemit = 0, c;
    unsigned char map_head[3];
    unsigned char own[32];
    size_t map_head_len;
    long rows, r;

    for (c = 0; c < ncols; c++) {
        nemit += emit[c] ? 1 : 0;
    }
    nemit += ntail;
    if (nemit < 16) {
        map_head[0] = (unsigned char)(0x80 | nemit);
        map_head_len = 1;
    }
    else if (nemit <= 0xffff) {
        map_head[0] = 0xde;
        map_head[1] = (unsigned char)(nemit >> 8);
        map_head[2] = (unsigned char)(nemit & 0xff);
        map_head_len = 3;
    }
    else {
        return FRAME_MALFORMED;
    }
    if (head_col >= (long)ncols || (head_col >= 0 && (head_len > sizeof own ||
                                                      stamp_at + 8 > head_len))) {
        return FRAME_MALFORMED;
    }
    rows = array_header(in, in_len, &off);
    if (rows < 0) {
        return FRAME_MALFORMED;
    }
    for (r = 0; r < rows; r++) {
        const char *key = keys;
        const unsigned char *h = (const unsigned char *)head;
        size_t hlen = head_len, k = 0;
        if (array_header(in, in_len, &off) != (long)ncols) {
            return FRAME_MALFORMED;
        }
        for (c = 0; c < ncols; c++) { /* where each value starts, and the row's end */
            offs[c] = off;
            if (skip_object(in, in_len, &off) != 0) {
                return FRAME_MALFORMED;
            }
        }
        offs[ncols] = off;
        if (head_col >= 0) {
            const unsigned char *v = in + offs[head_col];
            if (v[0] == 0xc4 && v[1] == 8 && offs[head_col + 1] - offs[head_col] == 10) {
                if (own_header(v + 2, (const unsigned char *)head, head_len, stamp_at,
                               max_sec, own)) {
                    h = own;
                }
            }
            else if (v[0] != 0xc0) { /* nil: the default header */
                return FRAME_MALFORMED;
            }
        }
        if (hlen + map_head_len > out_cap - w) {
            return FRAME_NO_ROOM;
        }
        memcpy(out + w, h, hlen);
        w += hlen;
        memcpy(out + w, map_head, map_head_len);
        w += map_head_len;
        for (c = 0; c < ncols; c++) {
            size_t n = offs[c + 1] - offs[c];
            if (!emit[c]) {
                continue;
            }
            if (key_len[k] + n > out_cap - w) {
                return FRAME_NO_ROOM;
            }
            memcpy(out + w, key, key_len[k]);
            w += key_len[k];
            key += key_len[k];
            k++;
            if (emit[c] == FRAME_UNQUOTE) {
                w += unquote(in + offs[c], n, out + w);
                continue;
            }
            memcpy(out + w, in + offs[c], n);
            w += n;
        }
        if (tail_len > out_cap - w) {
            return FRAME_NO_ROOM;
        }
        memcpy(out + w, tail, tail_len);
        w += tail_len;
    }
    if (off != in_len) {
        return FRAME_MALFORMED;
    }
    return (long)w;
}
