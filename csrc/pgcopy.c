/*
 * pgcopy.c - a Fluent Bit chunk -> bulk rows of the default table shape (tag, time,
 * record as JSON), in C: PostgreSQL binary COPY rows (flbsql_pg_copy_default),
 * MySQL/MariaDB LOAD DATA text (flbsql_tsv_default) and SQLite's time and JSON lines
 * (flbsql_lines_iso), the last two at the end of this file.
 *
 * The output's hot path. In Python a chunk is decoded into dicts
 * (flbsql/events/decode.py), each record dumped to JSON by orjson
 * (flbsql/output/convert.py) and framed by flbsql/dialects/pgbinary.py; this file
 * goes from the msgpack bytes to the COPY bytes directly, writing JSON exactly as
 * orjson does (the tests compare the two paths byte for byte). Whatever it does not
 * handle returns COPY_FALLBACK and the chunk takes the Python path, which also
 * isolates bad records: binary and ext values, non-string keys, invalid UTF-8, a NUL
 * in a string (jsonb cannot hold it), non-EventTime timestamps, malformed entries.
 * Built as the cffi extension module flbsql.dialects.cpgcopy (csrc/build_shim.py).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_FALLBACK (-1)
#define COPY_NO_ROOM (-2)
#define MAX_DEPTH 64
#define PG_EPOCH_US 946684800000000LL

typedef struct {
    const unsigned char *in;
    size_t len, off;
    unsigned char *out;
    size_t w, cap;
} cx;

static int room(cx *c, size_t n) { return n <= c->cap - c->w ? 0 : COPY_NO_ROOM; }

static int emit(cx *c, const void *p, size_t n)
{
    if (room(c, n)) return COPY_NO_ROOM;
    memcpy(c->out + c->w, p, n);
    c->w += n;
    return 0;
}

static int need(cx *c, size_t n) { return n <= c->len - c->off ? 0 : COPY_FALLBACK; }

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    int i;
    for (i = n - 1; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

/* ---- JSON text exactly as orjson writes it ---------------------------------------- */

/* The length of the UTF-8 sequence at s (1..4 bytes), or 0 when it is not one
 * (overlong, a surrogate, beyond U+10FFFF, cut short): Python's strict decoding. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t k, j;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf) { k = 1; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { k = 2; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { k = 3; cp = b & 0x07; }
    else return 0;
    if (k >= n) return 0;
    for (j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[j] & 0x3f);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return k + 1;
}

/* 1 for the bytes a JSON string takes as they are: printable ASCII but " and \ */
static const unsigned char PLAIN[256] = {
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
    R16(0), R16(0),
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20..0x2f: " is 0x22 */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50..0x5f: \ is 0x5c */
    R16(1), R16(1),
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
#undef R16
};

static int json_str(cx *c, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    unsigned char *o;
    if (room(c, 2 + 6 * n)) return COPY_NO_ROOM;
    o = c->out + c->w;
    *o++ = '"';
    while (i < n) {
        size_t j = i;
        unsigned char b;
        while (j < n && PLAIN[s[j]]) j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n) break;
        i = j;
        b = s[i];
        if (b >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k == 0) return COPY_FALLBACK;
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (b == 0) return COPY_FALLBACK; /* jsonb cannot hold \u0000 */
        *o++ = '\\';
        switch (b) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = (unsigned char)hex[b >> 4];
            *o++ = (unsigned char)hex[b & 0xf];
        }
        i++;
    }
    *o++ = '"';
    c->w = (size_t)(o - c->out);
    return 0;
}

/* v in decimal at p, zero-padded to at least width digits; returns the length. The hot
 * path's numbers (ints, a double's digits, times) go through here, not snprintf. */
static int put_dec(char *p, uint64_t v, int width)
{
    char t[24];
    int n = 0, i;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n < width) t[n++] = '0';
    for (i = 0; i < n; i++) p[i] = t[n - 1 - i];
    return n;
}

/* True when m * 10^e reads back as d. */
static int reads_back(uint64_t m, int e, double d)
{
    char buf[48];
    snprintf(buf, sizeof buf, "%llue%d", (unsigned long long)m, e);
    return strtod(buf, NULL) == d;
}

/* The shortest digits that read back as d > 0, as repr and orjson pick them. *m gets
 * the digits, *exp10 the exponent of the first one; returns how many digits.
 *
 * Up to 15 significant digits a decimal is closer to one double than any other
 * 15-digit decimal can be, so when d has a representation of 15 digits or fewer, its
 * correctly rounded 15 digits are that representation padded with zeros (or one step
 * off it where d's rounding interval is lopsided, next to a power of two): try them,
 * strip the zeros. Otherwise 16, then 17 digits, the same way. One or two snprintf
 * and strtod calls for the usual value. Subnormal numbers carry fewer digits: every
 * length from 1 is tried for them. */
static int shortest(double d, uint64_t *m, int *exp10)
{
    static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                                   1e18, 1e19, 1e20, 1e21, 1e22};
    char buf[40];
    int p, k;
    /* The usual value (123.456, 0.25, 1500.0): v / 10^k with v < 10^15 reads back as d
     * exactly when it is d (v and 10^k are exact doubles and IEEE division rounds
     * correctly, as strtod does), and the first k that works gives the fewest
     * digits. No string conversion at all. */
    if (d >= 1e-7 && d < 1e15) {
        for (k = 0; k <= 22; k++) {
            double scaled = d * POW10[k];
            double v;
            if (scaled >= 1e15) break;
            v = nearbyint(scaled);
            if (v >= 1 && v / POW10[k] == d) {
                uint64_t u = (uint64_t)v;
                int nd = 1;
                uint64_t t;
                for (t = u; t >= 10; t /= 10) nd++;
                while (u % 10 == 0 && nd > 1) { u /= 10; nd--; k--; }
                *m = u;
                *exp10 = nd - 1 - k;
                return nd;
            }
        }
    }
    for (p = d < DBL_MIN ? 1 : 15; p <= 17; p++) {
        uint64_t v = 0, low = 1, high, best;
        int e, i, n;
        char *s = buf, *ex;
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        ex = strchr(buf, 'e');
        for (; s < ex; s++) if (*s != '.') v = v * 10 + (uint64_t)(*s - '0');
        e = atoi(ex + 1);
        for (i = 1; i < p; i++) low *= 10;
        high = low * 10;
        if (reads_back(v, e - p + 1, d)) best = v;
        else if (v + 1 < high && reads_back(v + 1, e - p + 1, d)) best = v + 1;
        else if (v - 1 >= low && reads_back(v - 1, e - p + 1, d)) best = v - 1;
        else continue;
        for (n = p; n > 1 && best % 10 == 0; n--) best /= 10;
        *m = best;
        *exp10 = e;
        return n;
    }
    return 0; /* never: 17 digits always read back */
}

/* d placed as orjson places it: fixed for 1e-5 <= |d| < 1e16 (".0" when integral),
 * else d.ddde+x / d.ddde-x. */
static int json_double(cx *c, double d)
{
    char digits[24], out[48];
    int exp10 = 0, nd, kk, i, o = 0;
    uint64_t m;
    if (isnan(d) || isinf(d)) return emit(c, "null", 4);
    if (d == 0) return emit(c, signbit(d) ? "-0.0" : "0.0", signbit(d) ? 4 : 3);
    if (d < 0) { out[o++] = '-'; d = -d; }
    nd = shortest(d, &m, &exp10);
    if (nd == 0) return COPY_FALLBACK;
    put_dec(digits, m, nd);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    kk = exp10 + 1; /* 10^(kk-1) <= d < 10^kk */
    if (kk <= 16 && kk >= nd) {                            /* 1234e7 -> 12340000000.0 */
        for (i = 0; i < nd; i++) out[o++] = digits[i];
        for (; i < kk; i++) out[o++] = '0';
        out[o++] = '.'; out[o++] = '0';
    }
    else if (kk > 0 && kk <= 16) {                         /* 12.34 */
        for (i = 0; i < nd; i++) { if (i == kk) out[o++] = '.'; out[o++] = digits[i]; }
    }
    else if (kk > -5 && kk <= 0) {                         /* 0.001234 */
        out[o++] = '0'; out[o++] = '.';
        for (i = kk; i < 0; i++) out[o++] = '0';
        for (i = 0; i < nd; i++) out[o++] = digits[i];
    }
    else {                                                 /* 1.234e+33, 1e-7 */
        out[o++] = digits[0];
        if (nd > 1) { out[o++] = '.'; for (i = 1; i < nd; i++) out[o++] = digits[i]; }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%d", kk - 1 < 0 ? '-' : '+',
                      abs(kk - 1));
    }
    return emit(c, out, (size_t)o);
}

static int json_int(cx *c, int neg, uint64_t u)
{
    char buf[24];
    int n = 0;
    if (neg) { buf[n++] = '-'; u = (uint64_t)0 - u; }   /* u held the int64's bits */
    n += put_dec(buf + n, u, 1);
    return emit(c, buf, (size_t)n);
}

static int json_value(cx *c, int depth);

static int json_items(cx *c, size_t n, int is_map, int depth)
{
    size_t i;
    int rc;
    if (depth > MAX_DEPTH) return COPY_FALLBACK;
    if ((rc = emit(c, is_map ? "{" : "[", 1))) return rc;
    for (i = 0; i < n; i++) {
        if (i && (rc = emit(c, ",", 1))) return rc;
        if (is_map) {
            unsigned char b;
            if (need(c, 1)) return COPY_FALLBACK;
            b = c->in[c->off];
            if (b < 0xa0 || (b > 0xbf && b != 0xd9 && b != 0xda && b != 0xdb))
                return COPY_FALLBACK; /* a key that is not a string: Python's way */
            if ((rc = json_value(c, depth + 1))) return rc;
            if ((rc = emit(c, ":", 1))) return rc;
        }
        if ((rc = json_value(c, depth + 1))) return rc;
    }
    return emit(c, is_map ? "}" : "]", 1);
}

static int json_value(cx *c, int depth)
{
    unsigned char b;
    size_t n;
    if (need(c, 1)) return COPY_FALLBACK;
    b = c->in[c->off++];
    if (b <= 0x7f) return json_int(c, 0, b);
    if (b >= 0xe0) return json_int(c, 1, (uint64_t)(int64_t)(int8_t)b);
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
        goto str;
    }
    if (b >= 0x90 && b <= 0x9f) return json_items(c, b & 0x0f, 0, depth);
    if (b >= 0x80 && b <= 0x8f) return json_items(c, b & 0x0f, 1, depth);
    switch (b) {
    case 0xc0: return emit(c, "null", 4);
    case 0xc2: return emit(c, "false", 5);
    case 0xc3: return emit(c, "true", 4);
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        int k = 1 << (b - 0xcc);
        if (need(c, (size_t)k)) return COPY_FALLBACK;
        c->off += (size_t)k;
        return json_int(c, 0, be(c->in + c->off - k, k));
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int k = 1 << (b - 0xd0);
        uint64_t u;
        int64_t v;
        if (need(c, (size_t)k)) return COPY_FALLBACK;
        u = be(c->in + c->off, k);
        c->off += (size_t)k;
        v = k == 1 ? (int8_t)u : k == 2 ? (int16_t)u : k == 4 ? (int32_t)u : (int64_t)u;
        return json_int(c, v < 0, (uint64_t)v);
    }
    case 0xca: {
        uint32_t u;
        float f;
        if (need(c, 4)) return COPY_FALLBACK;
        u = (uint32_t)be(c->in + c->off, 4);
        c->off += 4;
        memcpy(&f, &u, 4);
        return json_double(c, (double)f);
    }
    case 0xcb: {
        uint64_t u;
        double d;
        if (need(c, 8)) return COPY_FALLBACK;
        u = be(c->in + c->off, 8);
        c->off += 8;
        memcpy(&d, &u, 8);
        return json_double(c, d);
    }
    case 0xd9: case 0xda: case 0xdb: {
        int k = 1 << (b - 0xd9);
        if (need(c, (size_t)k)) return COPY_FALLBACK;
        n = (size_t)be(c->in + c->off, k);
        c->off += (size_t)k;
        goto str;
    }
    case 0xdc: case 0xdd: case 0xde: case 0xdf: {
        int k = (b == 0xdc || b == 0xde) ? 2 : 4;
        if (need(c, (size_t)k)) return COPY_FALLBACK;
        n = (size_t)be(c->in + c->off, k);
        c->off += (size_t)k;
        if (n > c->len - c->off) return COPY_FALLBACK;
        return json_items(c, n, b >= 0xde, depth);
    }
    default: /* bin, ext (and the reserved 0xc1): the Python path */
        return COPY_FALLBACK;
    }
str:
    if (need(c, n)) return COPY_FALLBACK;
    c->off += n;
    return json_str(c, c->in + c->off - n, n);
}

/* ---- events ------------------------------------------------------------------------ */

/* An EventTime (fixext 8, type 0) at the cursor -> sec, nsec. */
static int event_time(cx *c, uint32_t *sec, uint32_t *nsec)
{
    if (need(c, 10) || c->in[c->off] != 0xd7 || c->in[c->off + 1] != 0x00) return COPY_FALLBACK;
    *sec = (uint32_t)be(c->in + c->off + 2, 4);
    *nsec = (uint32_t)be(c->in + c->off + 6, 4);
    c->off += 10;
    return 0;
}

/* Skip an empty or small metadata map of string keys and simple values. */
static int skip_meta(cx *c)
{
    size_t mark = c->w;
    int rc;
    if (need(c, 1) || c->in[c->off] < 0x80 || c->in[c->off] > 0x8f) return COPY_FALLBACK;
    rc = json_value(c, 0); /* validates it as a map; the text is dropped */
    c->w = mark;
    return rc;
}

/* One event's [time, metadata] at the cursor (v1 or v2), up to its body, a map. */
static int event_head(cx *c, uint32_t *sec, uint32_t *nsec)
{
    int rc;
    if (c->in[c->off] != 0x92) return COPY_FALLBACK;
    c->off++;
    if (need(c, 1)) return COPY_FALLBACK;
    if (c->in[c->off] == 0x92) { /* v2: [[time, metadata], body] */
        c->off++;
        if ((rc = event_time(c, sec, nsec)) || (rc = skip_meta(c))) return rc;
    }
    else if ((rc = event_time(c, sec, nsec))) { /* v1: [time, body] */
        return rc;
    }
    if (need(c, 1)) return COPY_FALLBACK;
    {
        unsigned char b = c->in[c->off];
        if (!((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)) return COPY_FALLBACK;
    }
    if (*nsec == 0 && (*sec == 0xffffffffu || *sec == 0xfffffffeu)) {
        return COPY_FALLBACK; /* a group marker: the Python path skips it */
    }
    return 0;
}

/*
 * in: a chunk; tag: the tag column's bytes; jsonb: 1 for a jsonb column (version
 * byte), 0 for json/text. Writes one COPY row (3 fields) per record into out and
 * stores the row count in *rows. Returns the bytes written, COPY_FALLBACK or
 * COPY_NO_ROOM (call again with more room).
 */
long flbsql_pg_copy_default(const char *in, size_t len, const char *tag, size_t tag_len,
                            int jsonb, char *out, size_t cap, size_t *rows)
{
    cx c = {(const unsigned char *)in, len, 0, (unsigned char *)out, 0, cap};
    size_t n = 0;
    int rc;
    while (c.off < len) {
        uint32_t sec, nsec;
        size_t lenpos;
        int64_t micros;
        if ((rc = event_head(&c, &sec, &nsec))) return rc;
        if (room(&c, 2 + 4 + tag_len + 4 + 8 + 4 + 1)) return COPY_NO_ROOM;
        put_be(c.out + c.w, 3, 2);
        put_be(c.out + c.w + 2, tag_len, 4);
        memcpy(c.out + c.w + 6, tag, tag_len);
        c.w += 6 + tag_len;
        micros = (int64_t)sec * 1000000 + nsec / 1000 - PG_EPOCH_US;
        put_be(c.out + c.w, 8, 4);
        put_be(c.out + c.w + 4, (uint64_t)micros, 8);
        c.w += 12;
        lenpos = c.w;
        c.w += 4;
        if (jsonb) c.out[c.w++] = 0x01;
        if ((rc = json_value(&c, 0))) return rc;
        put_be(c.out + lenpos, c.w - lenpos - 4, 4);
        n++;
    }
    *rows = n;
    return (long)c.w;
}

/* ---- MySQL/MariaDB: LOAD DATA's default text format --------------------------------- */

/* Days since 1970-01-01 -> civil date (H. Hinnant's days_from_civil, inverted). */
static void civil(int64_t z, int *y, unsigned *m, unsigned *d)
{
    int64_t era, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    yoe = z - era * 146097;
    yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
    doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 'YYYY-MM-DD HH:MM:SS' and '.ffffff' when there is a fraction: Python's str(datetime). */
/* The time in UTC as text: "YYYY-MM-DD HH:MM:SS[.ffffff]" (MySQL DATETIME), or with
 * iso: "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00" (Python's isoformat() of an aware UTC time,
 * what the SQLite path writes into a TEXT column). The fraction only when nonzero. */
static int utc_text(cx *c, uint32_t sec, uint32_t nsec, int iso)
{
    char buf[48], *p = buf;
    int y;
    unsigned mo, d, us = nsec / 1000, sod = sec % 86400;
    civil((int64_t)(sec / 86400), &y, &mo, &d);
    if (y < 0 || y > 9999) return COPY_FALLBACK;
    p += put_dec(p, (uint64_t)y, 4);
    *p++ = '-';
    p += put_dec(p, mo, 2);
    *p++ = '-';
    p += put_dec(p, d, 2);
    *p++ = iso ? 'T' : ' ';
    p += put_dec(p, sod / 3600, 2);
    *p++ = ':';
    p += put_dec(p, sod / 60 % 60, 2);
    *p++ = ':';
    p += put_dec(p, sod % 60, 2);
    if (us) { *p++ = '.'; p += put_dec(p, us, 6); }
    if (iso) { memcpy(p, "+00:00", 6); p += 6; }
    return emit(c, buf, (size_t)(p - buf));
}

/*
 * in: a chunk; tag: the tag field, escaped already. Writes one line per record:
 * tag TAB the time in UTC TAB the record as JSON (orjson's bytes, backslashes doubled:
 * JSON text holds no raw tab, newline or NUL) NEWLINE, and stores the row count in
 * *rows. Returns the bytes written, COPY_FALLBACK or COPY_NO_ROOM.
 */
long flbsql_tsv_default(const char *in, size_t len, const char *tag, size_t tag_len,
                        char *out, size_t cap, size_t *rows)
{
    cx c = {(const unsigned char *)in, len, 0, (unsigned char *)out, 0, cap};
    size_t n = 0;
    int rc;
    while (c.off < len) {
        uint32_t sec, nsec;
        size_t mark, slashes = 0, i, j;
        if ((rc = event_head(&c, &sec, &nsec))) return rc;
        if ((rc = emit(&c, tag, tag_len)) || (rc = emit(&c, "\t", 1))) return rc;
        if ((rc = utc_text(&c, sec, nsec, 0)) || (rc = emit(&c, "\t", 1))) return rc;
        mark = c.w;
        if ((rc = json_value(&c, 0))) return rc;
        for (i = mark; i < c.w; i++) slashes += c.out[i] == '\\';
        if (room(&c, slashes + 1)) return COPY_NO_ROOM;
        if (slashes) { /* double them, from the end */
            for (i = c.w, j = c.w + slashes; i > mark;) {
                unsigned char ch = c.out[--i];
                c.out[--j] = ch;
                if (ch == '\\') c.out[--j] = ch;
            }
            c.w += slashes;
        }
        c.out[c.w++] = '\n';
        n++;
    }
    *rows = n;
    return (long)c.w;
}

/*
 * in: a chunk (tag unused: the caller binds it). Writes, per record, the time in UTC as
 * ISO text NEWLINE the record as JSON (orjson's bytes) NEWLINE, and stores the row count
 * in *rows: the caller splits the text on newlines (JSON text holds no raw newline) into
 * the time and JSON columns of a (tag TEXT, time TEXT, data TEXT) SQLite table. Returns
 * the bytes written, COPY_FALLBACK or COPY_NO_ROOM.
 */
long flbsql_lines_iso(const char *in, size_t len, const char *tag, size_t tag_len,
                      char *out, size_t cap, size_t *rows)
{
    cx c = {(const unsigned char *)in, len, 0, (unsigned char *)out, 0, cap};
    size_t n = 0;
    int rc;
    (void)tag;
    (void)tag_len;
    while (c.off < len) {
        uint32_t sec, nsec;
        if ((rc = event_head(&c, &sec, &nsec))) return rc;
        if ((rc = utc_text(&c, sec, nsec, 1)) || (rc = emit(&c, "\n", 1))) return rc;
        if ((rc = json_value(&c, 0)) || (rc = emit(&c, "\n", 1))) return rc;
        n++;
    }
    *rows = n;
    return (long)c.w;
}
