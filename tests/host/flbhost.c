/*
 * flbhost: a small test host that loads Fluent Bit "Go proxy" ABI plugins (.so)
 * the way Fluent Bit v5.1.1 does.  Written from scratch; references such as
 * "mirrors src/flb_plugin_proxy.c ..." name the Fluent Bit source whose
 * behaviour is reproduced (see docs/fluent-bit-abi.md for the facts).
 *
 * Threads: main (parse, -e load/Register, signals, Unregister/dlclose),
 * engine "flb-pipeline" (init order, ring-buffer drain into per-tag chunks, flush
 * timer, routing, flushes with workers 0, retries, storage backlog, output exit), one thread per input "flb-in-<ins>-w0", and N worker threads
 * "flb-out-<ins>-wK" per output with `workers N`.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOST_ASAN 1
#endif
#endif
#ifdef HOST_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

enum { FLB_ERROR = 0, FLB_OK = 1, FLB_RETRY = 2 };
enum { T_INPUT = 1, T_OUTPUT = 2, PROXY_GOLANG = 11, OUT_LOGS = 1 };
enum { L_OFF, L_ERROR, L_WARN, L_INFO, L_DEBUG, L_TRACE };

/* ---- ABI structures (include/fluent-bit/flb_plugin_proxy.h, flb_api.h, src/proxy/go/go.h) ---- */
struct proxy_def {
    int type, proxy, flags;
    char *name, *description;
    int event_type;            /* v4.2.3+ */
    void *config_map;          /* v5.1.1 */
};
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};
struct out_ctx { void *remote_context; void *proxy; };               /* flb_plugin_proxy_context */
struct in_ctx { int coll_fd; void *remote_context; void *proxy; };   /* flb_plugin_input_proxy_context */
struct go_out { char *name; void *api, *o_ins; struct out_ctx *context; void *cb[5]; };
struct go_in { char *name; void *api, *i_ins; struct in_ctx *context; void *cb[6]; };
_Static_assert(sizeof(struct proxy_def) == 48 && offsetof(struct proxy_def, event_type) == 32, "def");
_Static_assert(sizeof(struct flb_api) == 72 && offsetof(struct flb_api, log_print) == 32, "api");
_Static_assert(offsetof(struct in_ctx, remote_context) == 8 && sizeof(struct in_ctx) == 24, "in_ctx");
_Static_assert(sizeof(struct go_out) == 72 && sizeof(struct go_in) == 80, "go structs");

/* ---- host data ---- */
struct dso {                          /* one loaded .so == Fluent Bit's struct flb_plugin_proxy */
    char *path; void *h;
    unsigned char *defmem; struct proxy_def *def; int registered, def_size;
    struct flb_api api;
    struct go_out gout; struct go_in gin;   /* ONE per .so (proxy->data), not per instance */
    int (*pre_register)(int), (*reg)(struct proxy_def *), (*init)(void *);
    void (*unreg)(struct proxy_def *);
    int (*flush)(const void *, size_t, const char *), (*flush_ctx)(void *, const void *, size_t, char *);
    int (*exit_)(void), (*exit_ctx)(void *), (*out_pre_run)(int), (*in_pre_run)(int);
    void (*out_pre_exit)(int), (*in_pre_exit)(int), (*in_pause)(void), (*in_resume)(void);
    int (*collect)(void **, size_t *), (*collect_ctx)(void *, void **, size_t *);
    int (*cleanup)(void *), (*cleanup_ctx)(void *, void *);
    struct dso *next;
};
enum kind { K_PROXY, K_FEED, K_SINK, K_NULL };
struct prop { char *key, *val; struct prop *next; };
struct task;
/* threaded-input ring buffer: mirrors src/flb_ring_buffer.c (lwrb of pointers) as used by
 * append_to_ring_buffer in src/flb_input_chunk.c; capacity in entries, window in percent */
struct rb_entry { unsigned char *data; size_t len; };
struct ring { struct rb_entry *e; long cap, head, count, window; int flush_pending; pthread_mutex_t mu; };
struct ins {
    int is_input, kind, id, log_level, workers, retry_limit, initialised;
    char name[64], *sect; struct dso *dso;
    struct prop *props, **ptail, *raw, **rtail;   /* raw = -p/-t/-m as given, in order */
    char *tag, *match, *alias, *match_regex; regex_t re; int has_re;
    void *ctx;                               /* per-instance calloc'd proxy context */
    /* input thread */
    pthread_t th; int th_up; pthread_mutex_t mu; pthread_cond_t cv;
    int init_done, init_ret, cmd_prerun, prerun_done, started, want_paused, paused, cmd_exit;
    FILE *feed; long feed_up; int feed_merge;   /* feed: frames streamed, at most feed_up chunks in flight */
    struct ring rb; long rb_cap, rb_window;      /* proxy inputs (threaded) */
    long cmt_records, cmt_rb_failures, cmt_rb_writes; /* the input's cmetrics counters (atomic) */
    int fs;                                      /* storage.type filesystem */
    /* output */
    pthread_t *wth; struct task *qh, *qt; pthread_cond_t wcv; int wstop; FILE *sink;
    struct ins *next;
};
/* one buffered chunk: mirrors struct flb_input_chunk (include/fluent-bit/flb_input_chunk.h) */
struct chunk {
    char id[64], *tag, *in_name; unsigned char *data; size_t size, cap; long records;
    int pending, busy, locked, keep, backlog, task_id; struct ins *in;
    char *path; FILE *fp;                     /* storage.type filesystem: its file, open while appendable */
    struct chunk *next;
};
struct task { struct chunk *c; struct ins *out; int attempts, id; int64_t due; struct task *next; };

/* Fluent Bit defaults mirrored here */
#define CHUNK_FS_MAX_SIZE 2048000   /* FLB_INPUT_CHUNK_FS_MAX_SIZE: a chunk above it is locked */
#define TASK_MAP_LIMIT 16384        /* FLB_CONFIG_DEFAULT_TASK_MAP_SIZE_LIMIT (map grows from 2048) */
#define RB_CAPACITY 1024            /* src/flb_input.c FLB_INPUT_RING_BUFFER_CAPACITY (entries) */
#define RB_WINDOW 5                 /* FLB_INPUT_RING_BUFFER_WINDOW (percent) */
#define RB_RETRIES 10               /* append_to_ring_buffer: retry_limit 10, usleep(100000) */
#define CHUNK_MAGIC "flbhost-chunk-1\n" /* the host's own file format, not chunkio's */

static struct {
    int64_t stack, interval, first_delay, duration, retry_wait, grace, flush_ms, rb_ms;
    double retry_scale; int sched_base, sched_cap;
    long stop_after; int log_level, def_size, no_setter; const char *stats_file, *storage_path;
    struct dso *dsos; struct ins *inputs, *outputs;
    pthread_mutex_t mu; pthread_cond_t cv;   /* engine lock: chunks, queues + lifecycle flags */
    struct task *rh, *rt, *retry;            /* ready FIFO, retry list */
    struct chunk *chunks, **ctail;           /* every chunk not yet released, oldest first */
    unsigned char task_map[TASK_MAP_LIMIT];
    long tasks, live_chunks; int64_t last_id_ns;
    int stop, stopping, done, exit_code, n_feed, feeds_done, n_in, rb_signal;
} G = { .stack = 24576, .interval = 1000, .first_delay = 400, .retry_wait = -1, .grace = 5000,
        .flush_ms = 1000, .rb_ms = 250, .retry_scale = 1.0, .sched_base = 5, .sched_cap = 2000,
        .log_level = L_INFO, .def_size = 48, .mu = PTHREAD_MUTEX_INITIALIZER, .ctail = &G.chunks };

static struct { long chunks_in, flush_calls, flush_ok, flush_retry, flush_error, chunks_dropped,
                records_out, input_collects, input_records, input_bytes, input_errors, flush_ticks,
                appends, rb_retries, rb_drops, rb_dropped_records, backlog_chunks, chunks_left; } S;
#define INC(f, n) __atomic_fetch_add(&S.f, (n), __ATOMIC_RELAXED)

/* ---- small utilities ---- */
static int64_t now_ms(void)
{
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a; pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC); pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    pthread_cond_timedwait(cv, mu, &ts);
}
static void set_thread_name(const char *fmt, const char *a, int k)
{   /* mirrors mk_utils_worker_rename (prctl): silently truncated to 15 chars */
    char n[96]; snprintf(n, sizeof n, fmt, a, k); n[15] = '\0'; pthread_setname_np(pthread_self(), n);
}
static void *xcalloc(size_t n, size_t s) { void *p = calloc(n, s); if (!p) abort(); return p; }
static char *xstrdup(const char *s) { char *p = s ? strdup(s) : NULL; if (s && !p) abort(); return p; }

/* ---- logging: mirrors src/flb_log.c flb_log_print/log_prepare_header (4 KiB line, no colours) ---- */
static const char *lvl_str(int l)
{
    static const char *n[] = { NULL, "error", "warn", "info", "debug", "trace", "help" };
    return (l >= 1 && l <= 6) ? n[l] : (l == 10 ? "debug" : NULL);
}
static void log_print(int level, const char *file, int line, const char *fmt, ...)
{
    char body[4096 - sizeof(size_t)], msg[4096 - sizeof(size_t)];
    struct timespec ts; struct tm tm; int hl; size_t blen, avail; va_list ap;
    (void) file; (void) line;
    clock_gettime(CLOCK_REALTIME, &ts); localtime_r(&ts.tv_sec, &tm);
    const char *t = lvl_str(level);
    hl = snprintf(msg, sizeof msg, "[%i/%02i/%02i %02i:%02i:%02i.%03ld] [%5s] ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  ts.tv_nsec / 1000000, t ? t : "(null)");
    if (hl < 0 || (size_t) hl >= sizeof msg - 1) return;
    va_start(ap, fmt);
    if (vsnprintf(body, sizeof body - 2 - hl, fmt, ap) < 0) { va_end(ap); return; }
    va_end(ap);
    blen = strlen(body); avail = sizeof msg - 2 - hl;
    if (blen > avail) blen = avail;
    memcpy(msg + hl, body, blen); msg[hl + blen] = '\n';
    fwrite(msg, 1, hl + blen + 1, stderr);
}
#define hlog(l, ...) do { if (G.log_level >= (l)) log_print((l), __FILE__, __LINE__, __VA_ARGS__); } while (0)

/* ---- struct flb_api entries (src/flb_api.c) ---- */
static const char *get_prop(const char *key, void *p)
{   /* mirrors src/flb_kv.c flb_kv_get_key_value: case-insensitive, first match wins */
    struct ins *ins = p; size_t len;
    if (!key || !ins || !(len = strlen(key))) return NULL;
    for (struct prop *e = ins->props; e; e = e->next)
        if (strlen(e->key) == len && strncasecmp(e->key, key, len) == 0) return e->val;
    return NULL;
}
static int log_check(void *p, int l) { return p && ((struct ins *) p)->log_level >= l; }
static void *no_cmt(void *p) { (void) p; return NULL; }
/* an input's cmetrics context is the instance itself here: what flb_input_get_cmt_instance
 * gives, read with cmetrics' text encoder, which the fluent-bit binary exports (linked with
 * ENABLE_EXPORTS) and so does this host (-rdynamic) */
static void *in_cmt(void *p) { return p; }
char *cmt_encode_text_create(void *cmt);
void cmt_encode_text_destroy(char *text);
char *cmt_encode_text_create(void *cmt)
{   /* lib/cmetrics/src/cmt_encode_text.c: "<ts> <name>{<labels>} = <value>" per line */
    struct ins *in = cmt; char *t = NULL;
    long r = __atomic_load_n(&in->cmt_records, __ATOMIC_RELAXED);
    long f = __atomic_load_n(&in->cmt_rb_failures, __ATOMIC_RELAXED);
    long w = __atomic_load_n(&in->cmt_rb_writes, __ATOMIC_RELAXED);
    if (asprintf(&t, "0 fluentbit_input_records_total{name=\"%s\"} = %ld\n"
                     "0 fluentbit_input_ring_buffer_writes_total{name=\"%s\"} = %ld\n"
                     "0 fluentbit_input_ring_buffer_retry_failures_total{name=\"%s\"} = %ld\n",
                 in->name, r, in->name, w, in->name, f) < 0) return NULL;
    return t;
}
void cmt_encode_text_destroy(char *text) { free(text); }
static const char *custom_prop(const char *k, void *p) { (void) k; (void) p; return NULL; }
static int custom_check(void *p, int l) { (void) p; return G.log_level >= l; }

/* ---- msgpack walking (no library): skip one object, validate log records ---- */
static int rd_be(const uint8_t **p, const uint8_t *e, int n, uint64_t *v)
{
    if (e - *p < n) return -1;
    *v = 0; for (int i = 0; i < n; i++) *v = (*v << 8) | *(*p)++;
    return 0;
}
static const uint8_t *mp_skip(const uint8_t *p, const uint8_t *e)
{   /* iterative: `left` counts objects still to skip; returns NULL if malformed/truncated */
    uint64_t left = 1, len, add, v;
    while (left) {
        if (p >= e) return NULL;
        uint8_t b = *p++; len = add = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) ;
        else if (b <= 0x8f) add = 2 * (b & 0x0f);
        else if (b <= 0x9f) add = b & 0x0f;
        else if (b <= 0xbf) len = b & 0x1f;
        else switch (b) {
            case 0xc4: case 0xd9: if (rd_be(&p, e, 1, &len)) return NULL; break;
            case 0xc5: case 0xda: if (rd_be(&p, e, 2, &len)) return NULL; break;
            case 0xc6: case 0xdb: if (rd_be(&p, e, 4, &len)) return NULL; break;
            case 0xc7: if (rd_be(&p, e, 1, &len)) return NULL; len++; break;
            case 0xc8: if (rd_be(&p, e, 2, &len)) return NULL; len++; break;
            case 0xc9: if (rd_be(&p, e, 4, &len)) return NULL; len++; break;
            case 0xcc: case 0xd0: len = 1; break;
            case 0xcd: case 0xd1: len = 2; break;
            case 0xca: case 0xce: case 0xd2: len = 4; break;
            case 0xcb: case 0xcf: case 0xd3: len = 8; break;
            case 0xd4: len = 2; break; case 0xd5: len = 3; break; case 0xd6: len = 5; break;
            case 0xd7: len = 9; break; case 0xd8: len = 17; break;
            case 0xdc: if (rd_be(&p, e, 2, &add)) return NULL; break;
            case 0xdd: if (rd_be(&p, e, 4, &add)) return NULL; break;
            case 0xde: if (rd_be(&p, e, 2, &v)) return NULL; add = 2 * v; break;
            case 0xdf: if (rd_be(&p, e, 4, &v)) return NULL; add = 2 * v; break;
            default: return NULL;   /* 0xc1 never used */
        }
        if (len > (uint64_t) (e - p)) return NULL;
        p += len; left = left - 1 + add;
        if (left > (uint64_t) (e - p)) return NULL;   /* every object needs >= 1 byte */
    }
    return p;
}
static int mp_array_n(const uint8_t **p, const uint8_t *e, uint64_t *n)
{
    uint8_t b = **p;
    if (b >= 0x90 && b <= 0x9f) { (*p)++; *n = b & 0x0f; return 0; }
    if (b == 0xdc || b == 0xdd) { (*p)++; return rd_be(p, e, b == 0xdc ? 2 : 4, n); }
    return -1;
}
static int mp_is_map(const uint8_t *p) { return (*p >= 0x80 && *p <= 0x8f) || *p == 0xde || *p == 0xdf; }
/* timestamp check: mirrors src/flb_log_event_decoder.c flb_log_event_decoder_decode_timestamp.
 * returns 1 record timestamp, 2 group marker, 0 invalid */
static int ts_kind(const uint8_t *p, const uint8_t *e)
{
    uint8_t b = *p; const uint8_t *x = p + 1; uint64_t v = 0;
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf) || b == 0xca || b == 0xcb) return 1;
    if (b >= 0xd0 && b <= 0xd3) { int n = 1 << (b - 0xd0); rd_be(&x, e, n, &v); return !(v >> (8 * n - 1)); }
    if (b == 0xd7 || (b == 0xc7 && p[1] == 8)) {        /* fixext8 / ext8 with 8 bytes */
        x = p + (b == 0xd7 ? 1 : 2);
        if (*x++ != 0) return 0;                          /* ext type must be 0 (EventTime) */
        uint64_t sec = 0, ns = 0; rd_be(&x, e, 4, &sec); rd_be(&x, e, 4, &ns);
        if (sec >= 0xFFFFFFFEu) return ns ? 0 : 2;       /* group start/end markers */
        return 1;
    }
    return 0;
}
/* [ts, map] or [[ts, map], map]; mirrors flb_event_decoder_decode_object */
static int valid_record(const uint8_t *p, const uint8_t *e)
{
    uint64_t n; const uint8_t *h;
    if (mp_array_n(&p, e, &n) || n != 2) return 0;
    h = p;
    if (mp_array_n(&h, e, &n) == 0) {            /* v2 header [ts, metadata] */
        if (n != 2) return 0;
        int k = ts_kind(h, e); const uint8_t *m = mp_skip(h, e);
        if (k != 1 || !m || !mp_is_map(m)) return 0;
    } else if (ts_kind(p, e) != 1) return 0;
    return (p = mp_skip(p, e)) && p < e && mp_is_map(p);
}
static long count_records(const uint8_t *p, size_t len)
{
    const uint8_t *e = p + len, *q; long n = 0;
    for (; p < e && (q = mp_skip(p, e)); p = q) n += valid_record(p, q);
    return n;
}

/* ---- engine: chunks, tasks, routing, retries (src/flb_engine.c, src/flb_task.c) ---- */
static int route_match(const char *tag, const char *m)
{   /* '*' wildcard, mirrors src/flb_router.c router_match */
    if (!m) return 0;
    for (; *m; m++, tag++) {
        if (*m == '*') {
            while (*m == '*') m++;
            if (!*m) return 1;
            for (; *tag; tag++) if (*tag == *m && route_match(tag, m)) return 1;
            return 0;
        }
        if (*tag != *m) return 0;
    }
    return *tag == '\0';
}
static int out_matches(struct ins *o, const char *tag)
{   /* flb_router_match: Match_Regex first (onig_match: anchored at the tag's start, match
     * length > 0), then the Match wildcard; an output with neither matches nothing */
    regmatch_t m;
    if (o->has_re && regexec(&o->re, tag, 1, &m, 0) == 0 && m.rm_so == 0 && m.rm_eo > 0) return 1;
    return route_match(tag, o->match);
}
static int out_takes_logs(struct ins *o)
{
    return o->kind != K_PROXY || o->dso->def_size <= 32 || o->dso->def->event_type == 0 ||
           (o->dso->def->event_type & OUT_LOGS);
}
static const char *nm(struct ins *x) { return x->alias ? x->alias : x->name; }   /* flb_*_name */
static void push_ready(struct task *t)   /* G.mu held */
{
    t->next = NULL; if (G.rt) G.rt->next = t; else G.rh = t; G.rt = t;
    pthread_cond_broadcast(&G.cv);
}

/* chunk files (storage.type filesystem): DIR/<input instance name>/<chunk id>, like chunkio's
 * stream-per-input layout (src/flb_storage.c); content = magic, u32le tag length, tag, msgpack */
static int mkdir_p(const char *path)
{
    char tmp[4096]; snprintf(tmp, sizeof tmp, "%s", path);
    for (char *q = tmp + 1; *q; q++) if (*q == '/') { *q = 0; mkdir(tmp, 0755); *q = '/'; }
    return (mkdir(tmp, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}
/* mirrors flb_input_chunk_create: name "<pid>-<sec>.<nsec>.flb"; G.mu held */
static struct chunk *chunk_new(struct ins *in, const char *in_name, const char *tag)
{
    struct timespec ts; struct chunk *c = xcalloc(1, sizeof *c);
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (ns <= G.last_id_ns) ns = G.last_id_ns + 1;   /* unique names, even within one ns */
    G.last_id_ns = ns;
    snprintf(c->id, sizeof c->id, "%d-%" PRId64 ".%09" PRId64 ".flb", (int) getpid(), ns / 1000000000, ns % 1000000000);
    c->tag = xstrdup(tag); c->in = in; c->in_name = xstrdup(in_name); c->task_id = -1;
    if (in && in->fs) {
        char dir[4096]; uint8_t h[4]; uint32_t tl = (uint32_t) strlen(tag);
        snprintf(dir, sizeof dir, "%s/%s", G.storage_path, in->name);
        c->path = xcalloc(1, strlen(dir) + strlen(c->id) + 2);
        sprintf(c->path, "%s/%s", dir, c->id);
        if (!(c->fp = fopen(c->path, "wb"))) {
            hlog(L_ERROR, "[storage] cannot create chunk file %s: %s", c->path, strerror(errno));
            free(c->path); c->path = NULL;
        } else {
            for (int i = 0; i < 4; i++) h[i] = tl >> (8 * i);
            fwrite(CHUNK_MAGIC, 1, strlen(CHUNK_MAGIC), c->fp); fwrite(h, 1, 4, c->fp);
            fwrite(tag, 1, tl, c->fp); fflush(c->fp);
        }
    }
    *G.ctail = c; G.ctail = &c->next; G.live_chunks++;
    INC(chunks_in, 1);
    return c;
}
static void chunk_bytes(struct chunk *c, const unsigned char *data, size_t len)
{   /* append content; a file chunk is written through at once (mmap'd in chunkio, so it
     * survives a killed process without fsync; storage.sync normal) */
    if (!len) return;
    if (c->size + len > c->cap) {
        c->cap = 2 * (c->size + len);
        if (!(c->data = realloc(c->data, c->cap))) abort();
    }
    memcpy(c->data + c->size, data, len); c->size += len;
    c->records += count_records(data, len);
    if (c->fp) { fwrite(data, 1, len, c->fp); fflush(c->fp); }
}
static void chunk_lock(struct chunk *c)
{
    c->locked = 1;
    if (c->fp) { fclose(c->fp); c->fp = NULL; }
}
/* input_chunk_append_raw (src/flb_input_chunk.c): the open chunk of this tag takes the data
 * (input_chunk_get: not busy, not locked), else a new chunk; above FS_MAX_SIZE it is locked.
 * G.mu held. */
static void engine_append(struct ins *in, const unsigned char *data, size_t len)
{
    struct chunk *c;
    for (c = G.chunks; c; c = c->next)
        if (c->in == in && !c->busy && !c->locked && strcmp(c->tag, in->tag) == 0) break;
    if (!c) c = chunk_new(in, nm(in), in->tag);
    /* fluentbit_input_records_total: counted before the write, as Fluent Bit does */
    __atomic_fetch_add(&in->cmt_records, count_records(data, len), __ATOMIC_RELAXED);
    chunk_bytes(c, data, len);
    INC(appends, 1);
    if (c->size > CHUNK_FS_MAX_SIZE) chunk_lock(c);
}
/* release a chunk (flb_input_chunk_destroy); its file is deleted unless keep; G.mu held */
static void chunk_release(struct chunk *c)
{
    for (struct chunk **pp = &G.chunks; *pp; pp = &(*pp)->next)
        if (*pp == c) { *pp = c->next; if (G.ctail == &c->next) G.ctail = pp; break; }
    if (c->fp) fclose(c->fp);
    if (c->path && !c->keep) unlink(c->path);
    if (c->task_id >= 0) G.task_map[c->task_id] = 0;
    free(c->path); free(c->tag); free(c->in_name); free(c->data); free(c);
    G.live_chunks--;
    pthread_cond_broadcast(&G.cv);   /* a feed may be waiting for room */
}
/* flb_engine_flush -> flb_engine_dispatch (src/flb_engine_dispatch.c): every chunk that is not
 * busy becomes a task for each output whose Match/Match_Regex takes its tag; G.mu held */
static void engine_flush(void)
{
    for (struct chunk *c = G.chunks, *n; c; c = n) {
        n = c->next;
        if (c->busy) continue;
        int id = 0;
        while (id < TASK_MAP_LIMIT && G.task_map[id]) id++;
        if (id == TASK_MAP_LIMIT) break;           /* no task id left: later */
        c->busy = 1; chunk_lock(c);
        int routed = 0;
        for (struct ins *o = G.outputs; o && c->records > 0; o = o->next) {
            if (!out_takes_logs(o) || !out_matches(o, c->tag)) continue;
            struct task *t = xcalloc(1, sizeof *t);
            t->c = c; t->out = o; t->id = id; c->pending++; G.tasks++; routed++; push_ready(t);
        }
        if (routed) { c->task_id = id; G.task_map[id] = 1; continue; }
        /* zero valid records (dropped at flush time in Fluent Bit) or no route */
        hlog(L_DEBUG, "[engine] chunk '%s' dropped (%ld records, no route or no valid record)", c->id, c->records);
        INC(chunks_dropped, 1); chunk_release(c);
    }
}
static void task_finish(struct task *t)  /* G.mu held */
{
    struct chunk *c = t->c;
    if (--c->pending == 0) chunk_release(c);
    free(t); G.tasks--;
    pthread_cond_broadcast(&G.cv);
}
/* flb_sched_request_create (src/flb_scheduler.c): backoff_full_jitter = random_uniform(base,
 * min(cap, base * 2^n)) seconds, + 1; 0 + 1 while shutting down. Scaled by --retry-scale. */
static int random_uniform(int min, int max)
{
    static unsigned seed; static int seeded;
    if (!seeded) { seed = (unsigned) time(NULL) ^ (unsigned) getpid(); seeded = 1; }
    return min + (int) ((unsigned) rand_r(&seed) % (unsigned) (max - min + 1));
}
static int backoff_seconds(int n)
{
    if (G.stopping) return 1;
    double temp = G.sched_base;
    for (int i = 0; i < n && temp < G.sched_cap; i++) temp *= 2;
    int hi = temp < G.sched_cap ? (int) temp : G.sched_cap;
    if (hi < G.sched_base) hi = G.sched_base;
    return random_uniform(G.sched_base, hi) + 1;
}
/* result handling: mirrors src/flb_engine.c handle_output_event + flb_task_retry_create */
static void task_done(struct task *t, int ret)
{
    struct ins *o = t->out; const char *in_name = t->c->in_name;
    pthread_mutex_lock(&G.mu);
    if (ret == FLB_OK) {
        INC(flush_ok, 1); INC(records_out, t->c->records);
        if (t->attempts > 0)
            hlog(L_INFO, "[engine] flush chunk '%s' succeeded at retry %i: task_id=%i, input=%s > "
                 "output=%s (out_id=%i)", t->c->id, t->attempts, t->id, in_name, nm(o), o->id);
        else if (t->c->backlog)
            hlog(L_INFO, "[engine] flush backlog chunk '%s' succeeded: task_id=%i, input=%s > "
                 "output=%s (out_id=%i)", t->c->id, t->id, in_name, nm(o), o->id);
        if (G.stop_after > 0 && S.records_out >= G.stop_after) G.stop = 1;
    } else if (ret == FLB_RETRY) {
        INC(flush_retry, 1);
        if (o->retry_limit == 0) {
            hlog(L_INFO, "[engine] chunk '%s' is not retried (no retry config): task_id=%i, "
                 "input=%s > output=%s (out_id=%i)", t->c->id, t->id, in_name, nm(o), o->id);
        } else if (o->retry_limit > 0 && t->attempts >= o->retry_limit) {
            hlog(L_ERROR, "[engine] chunk '%s' cannot be retried: task_id=%i, input=%s > output=%s",
                 t->c->id, t->id, in_name, nm(o));
        } else {
            t->attempts++;
            int secs = backoff_seconds(t->attempts);
            int64_t wait = G.retry_wait >= 0 ? G.retry_wait : (int64_t) (secs * 1000.0 * G.retry_scale);
            t->due = now_ms() + wait;
            hlog(L_WARN, "[engine] failed to flush chunk '%s', retry in %i seconds: task_id=%i, "
                 "input=%s > output=%s (out_id=%i)", t->c->id, secs, t->id, in_name, nm(o), o->id);
            hlog(L_DEBUG, "[engine] (host) retry %i of chunk '%s' due in %" PRId64 " ms", t->attempts,
                 t->c->id, wait);
            t->next = G.retry; G.retry = t;
            pthread_cond_broadcast(&G.cv); pthread_mutex_unlock(&G.mu);
            return;
        }
        INC(chunks_dropped, 1);
    } else {
        INC(flush_error, 1); INC(chunks_dropped, 1);
    }
    task_finish(t);
    pthread_mutex_unlock(&G.mu);
}

/* ---- threaded-input ring buffer (src/flb_input_chunk.c append_to_ring_buffer,
 *      flb_input_chunk_ring_buffer_collector; src/flb_ring_buffer.c) ---- */
static int ring_write(struct ins *in, unsigned char *data, size_t len)
{   /* takes ownership of data; the input thread sleeps 100 ms per failed try, 10 tries */
    struct ring *r = &in->rb; int signal = 0;
    for (int tries = 0;; tries++) {
        if (tries >= RB_RETRIES) {
            log_print(L_ERROR, __FILE__, __LINE__, "[input:%s:%s] could not enqueue records into the ring buffer",
                      in->dso->def->name, nm(in));
            INC(rb_drops, 1); INC(rb_dropped_records, count_records(data, len));
            __atomic_fetch_add(&in->cmt_rb_failures, 1, __ATOMIC_RELAXED);
            free(data);
            return -1;
        }
        pthread_mutex_lock(&r->mu);
        if (r->count < r->cap) {
            r->e[(r->head + r->count) % r->cap] = (struct rb_entry) { data, len };
            r->count++;
            __atomic_fetch_add(&in->cmt_rb_writes, 1, __ATOMIC_RELAXED);
            if (!r->flush_pending && r->count * (long) sizeof(void *) >= r->window) { r->flush_pending = 1; signal = 1; }
            pthread_mutex_unlock(&r->mu);
            break;
        }
        pthread_mutex_unlock(&r->mu);
        if (in->log_level >= L_DEBUG)
            log_print(L_DEBUG, __FILE__, __LINE__, "[input:%s:%s] failed buffer write, retries=%i\n",
                      in->dso->def->name, nm(in), tries);
        INC(rb_retries, 1);
        usleep(100000);
    }
    if (signal) {   /* the ring's signal channel wakes the engine loop (FLB_ENGINE_EV_THREAD_INPUT) */
        pthread_mutex_lock(&G.mu); G.rb_signal = 1; pthread_cond_broadcast(&G.cv); pthread_mutex_unlock(&G.mu);
    }
    return 0;
}
static void rings_drain(void)   /* G.mu held: every entry becomes an append, input by input */
{
    for (struct ins *in = G.inputs; in; in = in->next) {
        struct ring *r = &in->rb;
        if (!r->e) continue;
        for (;;) {
            struct rb_entry e;
            pthread_mutex_lock(&r->mu);
            if (!r->count) {
                r->flush_pending = 0;   /* flb_ring_buffer_mark_flushed */
                pthread_mutex_unlock(&r->mu);
                break;
            }
            e = r->e[r->head]; r->head = (r->head + 1) % r->cap; r->count--;
            pthread_mutex_unlock(&r->mu);
            engine_append(in, e.data, e.len);
            free(e.data);
        }
    }
}
/* ---- storage backlog (plugins/in_storage_backlog/sb.c): chunk files left in --storage-path
 *      are registered at start as chunks of the input "storage_backlog.N" ---- */
/* chunk ids are "<pid>-<sec>.<nsec>.flb": order by the time part (then by name), as
 * src/flb_storage.c sort_chunk_cmp does after cio_load (4.1 and 5.1: cio_qsort) */
static int chunk_time_cmp(const struct dirent **a, const struct dirent **b)
{
    const char *x = strchr((*a)->d_name, '-'), *y = strchr((*b)->d_name, '-');
    double tx = x ? strtod(x + 1, NULL) : 0, ty = y ? strtod(y + 1, NULL) : 0;
    if (tx != ty) return tx < ty ? -1 : 1;
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void backlog_load(void)   /* G.mu held, before any input runs */
{
    char bl[64], dpath[4096], fpath[8192];
    snprintf(bl, sizeof bl, "storage_backlog.%d", G.n_in);
    DIR *root = opendir(G.storage_path);
    if (!root) return;
    for (struct dirent *s; (s = readdir(root));) {
        if (s->d_name[0] == '.') continue;
        snprintf(dpath, sizeof dpath, "%s/%s", G.storage_path, s->d_name);
        struct dirent **files = NULL;
        /* chunkio's cio_scan.c reads in readdir order; Fluent Bit then sorts by creation time */
        int nfiles = scandir(dpath, &files, NULL, chunk_time_cmp);
        if (nfiles < 0) continue;
        for (int fi = 0; fi < nfiles; fi++) {
            struct dirent *f = files[fi];
            if (f->d_name[0] == '.') continue;
            snprintf(fpath, sizeof fpath, "%s/%s", dpath, f->d_name);
            FILE *fp = fopen(fpath, "rb");
            if (!fp) continue;
            size_t ml = strlen(CHUNK_MAGIC); char magic[64]; uint8_t h[4]; uint32_t tl = 0;
            unsigned char *buf = NULL; size_t n = 0, cap = 0; char *tag = NULL; int ok = 0;
            if (fread(magic, 1, ml, fp) == ml && !memcmp(magic, CHUNK_MAGIC, ml) && fread(h, 1, 4, fp) == 4) {
                tl = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t) h[3] << 24;
                tag = tl < 65536 ? xcalloc(1, tl + 1) : NULL;
                ok = tag && fread(tag, 1, tl, fp) == tl && tl > 0;
            }
            for (size_t r; ok; n += r) {
                if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 65536))) abort();
                if (!(r = fread(buf + n, 1, cap - n, fp))) break;
            }
            fclose(fp);
            /* a kill during a write leaves a truncated last object: keep the complete ones */
            const uint8_t *p = buf, *e = buf + n, *q;
            while (p && p < e && (q = mp_skip(p, e))) p = q;
            n = buf ? (size_t) (p - buf) : 0;
            if (!ok || n == 0) {
                hlog(L_ERROR, "[input:storage_backlog:%s] discarding irrecoverable chunk %s/%s", bl, s->d_name, f->d_name);
                unlink(fpath); free(buf); free(tag); continue;
            }
            int routed = 0;
            for (struct ins *o = G.outputs; o; o = o->next) routed |= out_takes_logs(o) && out_matches(o, tag);
            if (!routed) {
                hlog(L_INFO, "[input:storage_backlog:%s] no matching route for %s/%s, keeping it on disk",
                     bl, s->d_name, f->d_name);
                free(buf); free(tag); continue;
            }
            hlog(L_INFO, "[input:storage_backlog:%s] register %s/%s", bl, s->d_name, f->d_name);
            struct chunk *c = chunk_new(NULL, bl, tag);
            size_t il = strnlen(f->d_name, sizeof c->id - 1);
            memcpy(c->id, f->d_name, il); c->id[il] = 0;
            c->path = xstrdup(fpath); c->backlog = 1; c->locked = 1;
            c->data = buf; c->size = c->cap = n; c->records = count_records(buf, n);
            INC(backlog_chunks, 1); free(tag);
        }
        for (int fi = 0; fi < nfiles; fi++) free(files[fi]);
        free(files);
    }
    closedir(root);
}

/* ---- flush on a small user-space stack: mirrors libco coroutines (src/flb_coro.c,
 *      output_pre_cb_flush in include/fluent-bit/flb_output.h): heap stack, no guard page ---- */
struct coro { ucontext_t caller, co; struct task *t; int ret; void *fake; const void *cbot; size_t csize; };
static __thread struct coro *cur_coro;

static int proxy_flush(struct task *t)
{   /* mirrors src/proxy/go/go.c proxy_go_output_flush + src/flb_plugin_proxy.c proxy_cb_flush */
    struct dso *d = t->out->dso; struct out_ctx *ctx = t->out->ctx; int ret;
    char *tag = xstrdup(t->c->tag);                       /* fresh copy, freed after the call */
    void *buf = malloc(t->c->size ? t->c->size : 1);      /* valid only during the call */
    if (!buf) abort();
    memcpy(buf, t->c->data, t->c->size);
    if (d->flush_ctx) ret = d->flush_ctx(ctx->remote_context, buf, t->c->size, tag);
    else if (d->flush) ret = d->flush(buf, t->c->size, tag);
    else { hlog(L_ERROR, "[go proxy]: plugin '%s' has no flush callback", d->gout.name); ret = FLB_ERROR; }
    free(buf); free(tag);
    if (ret != FLB_OK && ret != FLB_RETRY && ret != FLB_ERROR) ret = FLB_ERROR;
    return ret;
}
static void coro_main(void)
{
    struct coro *c = cur_coro;
#ifdef HOST_ASAN
    __sanitizer_finish_switch_fiber(NULL, &c->cbot, &c->csize);
#endif
    c->ret = proxy_flush(c->t);
#ifdef HOST_ASAN
    __sanitizer_start_switch_fiber(NULL, c->cbot, c->csize);   /* this fiber dies: uc_link */
#endif
}
static int flush_in_coro(struct task *t)
{
    struct coro c; void *stack = malloc(G.stack);
    if (!stack) abort();
    memset(&c, 0, sizeof c); c.t = t;
    getcontext(&c.co);
    c.co.uc_stack.ss_sp = stack; c.co.uc_stack.ss_size = G.stack; c.co.uc_link = &c.caller;
    makecontext(&c.co, coro_main, 0);
    cur_coro = &c;
#ifdef HOST_ASAN
    __sanitizer_start_switch_fiber(&c.fake, stack, G.stack);
#endif
    swapcontext(&c.caller, &c.co);
#ifdef HOST_ASAN
    __sanitizer_finish_switch_fiber(c.fake, NULL, NULL);
#endif
    cur_coro = NULL; free(stack);
    return c.ret;
}
static void run_task(struct task *t)
{
    struct ins *o = t->out; int ret = FLB_OK;
    INC(flush_calls, 1);
    if (o->kind == K_PROXY) ret = flush_in_coro(t);
    else if (o->kind == K_SINK && o->sink) {   /* frame: u32le tag_len, tag, u32le data_len, data */
        uint32_t tl = (uint32_t) strlen(t->c->tag), dl = (uint32_t) t->c->size;
        uint8_t h[4];
        flockfile(o->sink);
        for (int i = 0; i < 4; i++) h[i] = tl >> (8 * i);
        fwrite(h, 1, 4, o->sink); fwrite(t->c->tag, 1, tl, o->sink);
        for (int i = 0; i < 4; i++) h[i] = dl >> (8 * i);
        fwrite(h, 1, 4, o->sink); fwrite(t->c->data, 1, dl, o->sink); fflush(o->sink);
        funlockfile(o->sink);
    }
    task_done(t, ret);
}
/* output worker: mirrors src/flb_output_thread.c output_thread */
struct wk { struct ins *o; int k; };
static void *worker_main(void *arg)
{
    struct wk w = *(struct wk *) arg; struct ins *o = w.o; free(arg);
    set_thread_name("flb-out-%s-w%i", o->name, w.k);
    hlog(L_INFO, "[output:%s:%s] worker #%i started", o->sect, o->name, w.k);   /* flb_output_thread.c */
    pthread_mutex_lock(&G.mu);
    for (;;) {
        struct task *t = o->qh;
        if (!t) { if (o->wstop) break; pthread_cond_wait(&o->wcv, &G.mu); continue; }
        o->qh = t->next; if (!o->qh) o->qt = NULL;
        pthread_mutex_unlock(&G.mu); run_task(t); pthread_mutex_lock(&G.mu);
    }
    pthread_mutex_unlock(&G.mu);
    return NULL;
}

/* ---- inputs: one thread per instance (src/flb_input_thread.c) ---- */
static void proxy_collect(struct ins *in)
{   /* mirrors src/flb_plugin_proxy.c flb_proxy_input_cb_collect + go.c proxy_go_input_collect */
    struct dso *d = in->dso; struct in_ctx *ctx = in->ctx; void *data = NULL; size_t len = 0; int ret;
    if (d->collect_ctx) ret = d->collect_ctx(ctx->remote_context, &data, &len);
    else if (d->collect) ret = d->collect(&data, &len);
    else return;
    INC(input_collects, 1);
    if (len == 0) return;                       /* nothing ingested, cleanup NOT called */
    if (ret == -1) { INC(input_errors, 1); return; }  /* error, cleanup NOT called */
    if (!data) {   /* Fluent Bit would read from NULL here */
        INC(input_errors, 1);
        hlog(L_ERROR, "[input:%s] plugin returned NULL data with size %zu", in->name, len);
        return;
    }
    unsigned char *copy = malloc(len);          /* bytes COPIED, no re-encoding */
    if (!copy) abort();
    memcpy(copy, data, len);
    INC(input_records, count_records(copy, len)); INC(input_bytes, (long) len);
    ring_write(in, copy, len);                  /* flb_input_log_append: threaded -> ring buffer */
    if (d->cleanup_ctx) ret = d->cleanup_ctx(ctx->remote_context, data);   /* proxy_go_input_cleanup */
    else if (d->cleanup) ret = d->cleanup(data);
    else free(data);
}
static void feed_emit(struct ins *in)
{   /* frames: u32le length + msgpack bytes, streamed from the file with at most feed_up chunks
     * buffered (like storage.max_chunks_up). Each frame is one whole, locked chunk (as the
     * storage backlog hands over chunks), dispatched at the next flush; with merge=on frames
     * are appended to the open chunk of the tag like records from an input. */
    unsigned char hdr[4];
    size_t n;
    while (fread(hdr, 1, 4, in->feed) == 4) {
        n = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (size_t) hdr[3] << 24;
        unsigned char *b = malloc(n ? n : 1);
        if (!b) abort();
        if (fread(b, 1, n, in->feed) != n) {
            free(b);
            hlog(L_WARN, "[input:feed:%s] truncated frame ignored", in->name);
            break;
        }
        pthread_mutex_lock(&G.mu);
        while (G.live_chunks >= in->feed_up && !G.stop && !G.stopping) pthread_cond_wait(&G.cv, &G.mu);
        int stopping = G.stop || G.stopping;
        if (!stopping && in->feed_merge) engine_append(in, b, n);
        else if (!stopping) {
            struct chunk *c = chunk_new(in, nm(in), in->tag);
            chunk_bytes(c, b, n); chunk_lock(c); INC(appends, 1);
        }
        pthread_mutex_unlock(&G.mu);
        free(b);
        if (stopping) break;
    }
    fclose(in->feed); in->feed = NULL;
    pthread_mutex_lock(&G.mu); G.feeds_done++; pthread_cond_broadcast(&G.cv); pthread_mutex_unlock(&G.mu);
}
static int input_init(struct ins *in)
{
    if (in->fs) {   /* flb_storage_input_create: a stream (directory) per input instance */
        char dir[4096];
        if (!G.storage_path) {
            hlog(L_ERROR, "[storage] instance '%s' requested filesystem storage but no filesystem "
                 "path was defined.", nm(in));
            return -1;
        }
        snprintf(dir, sizeof dir, "%s/%s", G.storage_path, in->name);
        if (mkdir_p(dir) < 0) { hlog(L_ERROR, "[storage] cannot create stream for instance %s", in->name); return -1; }
    }
    if (in->kind == K_FEED) {
        const char *f = get_prop("file", in), *up = get_prop("chunks_up", in);
        in->feed = f ? fopen(f, "rb") : NULL;
        if (!in->feed) { hlog(L_ERROR, "[input:feed:%s] cannot open file '%s'", in->name, f ? f : "(unset)"); return -1; }
        in->feed_up = up ? atol(up) : 32;
        const char *mg = get_prop("merge", in);
        in->feed_merge = mg && (!strcasecmp(mg, "on") || !strcasecmp(mg, "true") || !strcmp(mg, "1"));
        if (in->feed_up < 1) in->feed_up = 1;
        return 0;
    }
    /* mirrors flb_proxy_input_cb_init + go.c proxy_go_input_init */
    struct dso *d = in->dso; struct in_ctx *ctx = in->ctx;
    d->gin.api = &d->api; d->gin.i_ins = in; d->gin.context = ctx;
    int ret = d->init(&d->gin);
    if (ret <= 0) {
        hlog(L_ERROR, "[go proxy]: plugin '%s' failed to initialize", d->gin.name);
        hlog(L_ERROR, "Could not initialize proxy for threaded input plugin");
        hlog(L_ERROR, "failed initialize input %s", in->name);
        return -1;
    }
    ctx->coll_fd = 0;   /* first collector id */
    in->rb.cap = in->rb_cap > 0 ? in->rb_cap : RB_CAPACITY;   /* created in flb_input_new */
    in->rb.e = xcalloc(in->rb.cap, sizeof *in->rb.e);
    /* flb_ring_buffer_add_event_loop: data_window = floor(size * window / 100) bytes */
    in->rb.window = (long) (in->rb.cap * sizeof(void *) * (in->rb_window > 0 ? in->rb_window : RB_WINDOW) / 100);
    return 0;
}
static void *input_main(void *arg)
{
    struct ins *in = arg; struct dso *d = in->dso; int64_t next = 0; int was_started = 0;
    set_thread_name("flb-in-%s-w%i", in->name, 0);
    int ret = input_init(in);
    pthread_mutex_lock(&in->mu);
    in->init_ret = ret; in->init_done = 1; pthread_cond_broadcast(&in->cv);
    if (ret < 0) { pthread_mutex_unlock(&in->mu); return NULL; }
    in->initialised = 1;
    for (;;) {
        if (in->cmd_prerun) {   /* flb_proxy_input_cb_pre_run */
            in->cmd_prerun = 0; pthread_mutex_unlock(&in->mu);
            if (in->kind == K_PROXY && d->in_pre_run) d->in_pre_run(0);
            pthread_mutex_lock(&in->mu); in->prerun_done = 1; pthread_cond_broadcast(&in->cv); continue;
        }
        if (in->cmd_exit) break;
        if (in->want_paused != in->paused) {   /* flb_proxy_input_cb_pause / _resume */
            int p = in->want_paused; pthread_mutex_unlock(&in->mu);
            if (in->kind == K_PROXY && p && d->in_pause) d->in_pause();
            if (in->kind == K_PROXY && !p && d->in_resume) d->in_resume();
            pthread_mutex_lock(&in->mu); in->paused = p; pthread_cond_broadcast(&in->cv);
            if (!p) next = now_ms() + G.interval;    /* collector timer re-armed */
            continue;
        }
        if (in->started && !was_started && !in->paused) { was_started = 1; next = now_ms() + G.first_delay;
            if (in->kind == K_FEED) { pthread_mutex_unlock(&in->mu); feed_emit(in); pthread_mutex_lock(&in->mu); continue; } }
        if (in->kind == K_PROXY && was_started && !in->paused) {
            int64_t t = now_ms();
            if (t >= next) {
                pthread_mutex_unlock(&in->mu); proxy_collect(in); pthread_mutex_lock(&in->mu);
                t = now_ms(); do next += G.interval; while (next <= t);   /* timerfd semantics */
                continue;
            }
            cond_wait_until(&in->cv, &in->mu, next);
        } else pthread_cond_wait(&in->cv, &in->mu);
    }
    pthread_mutex_unlock(&in->mu);
    if (in->kind == K_PROXY) {   /* flb_engine_shutdown: pause again, then flb_proxy_input_cb_exit */
        if (d->in_pause) d->in_pause();
        if (d->in_pre_exit) d->in_pre_exit(0);
        if (d->exit_) d->exit_();   /* inputs have no Ctx variant: once per instance */
        free(in->ctx); in->ctx = NULL;
    }
    return NULL;
}
static void input_cmd(struct ins *in, int *flag, int v)
{
    pthread_mutex_lock(&in->mu); *flag = v; pthread_cond_broadcast(&in->cv); pthread_mutex_unlock(&in->mu);
}
static void inputs_exit_reverse(struct ins *in)
{   /* flb_input_exit_all walks the inputs in reverse; each thread is joined before the next */
    if (!in) return;
    inputs_exit_reverse(in->next);
    if (!in->th_up) return;
    input_cmd(in, &in->cmd_exit, 1); pthread_join(in->th, NULL); in->th_up = 0;
}

/* ---- outputs ---- */
static int output_init(struct ins *o)
{
    if (o->kind == K_SINK) {
        const char *f = get_prop("file", o);
        if (f && !(o->sink = fopen(f, "wb"))) {
            hlog(L_ERROR, "[output:sink:%s] cannot open '%s': %s", o->name, f, strerror(errno));
            return -1;
        }
    } else if (o->kind == K_PROXY) {   /* mirrors flb_proxy_output_cb_init + go.c proxy_go_output_init */
        struct dso *d = o->dso;
        d->gout.api = &d->api; d->gout.o_ins = o; d->gout.context = o->ctx;
        if (d->init(&d->gout) <= 0) {
            hlog(L_ERROR, "[go proxy]: plugin '%s' failed to initialize", d->gout.name);
            hlog(L_ERROR, "[output] could not initialize '%s' plugin", d->def->name);
            return -1;
        }
    }
    o->initialised = 1;
    if (o->workers > 0) {   /* flb_output_enable_multi_threading */
        o->wth = xcalloc(o->workers, sizeof(pthread_t));
        for (int k = 0; k < o->workers; k++) {
            struct wk *w = xcalloc(1, sizeof *w); w->o = o; w->k = k;
            pthread_create(&o->wth[k], NULL, worker_main, w);
        }
    }
    return 0;
}
static void output_exit(struct ins *o)
{   /* mirrors flb_proxy_output_cb_exit + go.c proxy_go_output_destroy, on the engine thread */
    if (o->kind == K_PROXY && o->initialised) {
        struct dso *d = o->dso;
        if (d->out_pre_exit) d->out_pre_exit(0);
        if (d->exit_ctx) d->exit_ctx(((struct out_ctx *) o->ctx)->remote_context);
        else if (d->exit_) d->exit_();
    }
    free(o->ctx); o->ctx = NULL;
    if (o->sink) fclose(o->sink);
    o->sink = NULL;
}

/* ---- engine thread "flb-pipeline": mirrors src/flb_engine.c flb_engine_start/shutdown ---- */
static void *engine_main(void *arg)
{
    (void) arg; int ok = 1; int64_t deadline = 0, grace_end = 0;
    set_thread_name("%s", "flb-pipeline", 0);
    for (struct ins *in = G.inputs; in && ok; in = in->next) {   /* input Inits, one at a time */
        pthread_create(&in->th, NULL, input_main, in); in->th_up = 1;
        pthread_mutex_lock(&in->mu);
        while (!in->init_done) pthread_cond_wait(&in->cv, &in->mu);
        ok = in->init_ret >= 0; pthread_mutex_unlock(&in->mu);
        if (!ok) hlog(L_ERROR, "[engine] input initialization failed");
    }
    for (struct ins *in = G.inputs; in && ok; in = in->next) {   /* input pre-run */
        input_cmd(in, &in->cmd_prerun, 1);
        pthread_mutex_lock(&in->mu);
        while (!in->prerun_done) pthread_cond_wait(&in->cv, &in->mu);
        pthread_mutex_unlock(&in->mu);
    }
    for (struct ins *o = G.outputs; o && ok; o = o->next)         /* output Inits, in sequence */
        if (output_init(o) < 0) { ok = 0; hlog(L_ERROR, "[engine] output initialization failed"); }
    for (struct ins *o = G.outputs; o && ok; o = o->next)
        if (o->kind == K_PROXY && o->dso->out_pre_run) o->dso->out_pre_run(0);
    if (!ok) G.exit_code = 255;
    pthread_mutex_lock(&G.mu);
    if (ok && G.storage_path) backlog_load();   /* flb_storage_create scans the path first */
    pthread_mutex_unlock(&G.mu);
    int64_t t0 = now_ms(), next_flush = t0 + G.flush_ms, next_rb = t0 + G.rb_ms;
    if (ok) {
        if (G.duration > 0) deadline = t0 + G.duration;
        for (struct ins *in = G.inputs; in; in = in->next) input_cmd(in, &in->started, 1);
    }
    pthread_mutex_lock(&G.mu);
    if (!ok) G.stop = 1;   /* an Init failed: run the shutdown sequence for what did start */
    for (;;) {
        int64_t t = now_ms();
        /* ring buffer collector: a permanent 250 ms timer (FLB_DEV_RB_MS), or at once when a
         * ring crossed its window; it runs on this thread, so a slow flush here delays it */
        if (G.rb_signal || t >= next_rb) {
            G.rb_signal = 0; rings_drain();
            if (t >= next_rb) do next_rb += G.rb_ms; while (next_rb <= t);
        }
        if (t >= next_flush) {   /* the [SERVICE] flush timer: flb_engine_flush */
            INC(flush_ticks, 1); engine_flush();
            do next_flush += G.flush_ms; while (next_flush <= t);
        }
        if (!G.stopping && (G.stop || (deadline && t >= deadline) ||
                          ((G.n_in || G.storage_path) && G.n_feed == G.n_in && G.feeds_done == G.n_feed && G.live_chunks == 0))) {
            /* FLB_ENGINE_STOP: flush enqueued data, retries rescheduled at once, inputs
             * paused (flb_engine_stop_ingestion) */
            G.stopping = 1;
            if (G.grace % 1000 == 0) hlog(L_WARN, "[engine] service will shutdown in max %" PRId64 " seconds", G.grace / 1000);
            else hlog(L_WARN, "[engine] service will shutdown in max %.1f seconds", G.grace / 1000.0);
            engine_flush();
            for (struct task *x = G.retry; x; x = x->next) x->due = t;
            hlog(L_INFO, "[engine] pausing all inputs..");
            pthread_mutex_unlock(&G.mu);
            for (struct ins *in = G.inputs; in; in = in->next) {   /* wait: no collect in flight after this */
                pthread_mutex_lock(&in->mu); in->want_paused = 1; pthread_cond_broadcast(&in->cv);
                while (in->th_up && in->initialised && !in->paused) pthread_cond_wait(&in->cv, &in->mu);
                pthread_mutex_unlock(&in->mu);
            }
            pthread_mutex_lock(&G.mu);
            grace_end = now_ms() + G.grace; t = now_ms();
        }
        if (G.stopping) {
            /* the shutdown timer re-flushes whatever is buffered (Fluent Bit: once a second) */
            rings_drain(); engine_flush();
            if (G.tasks == 0 && G.live_chunks == 0) break;
            if (t >= grace_end) {   /* grace expired: queued tasks are dropped; file chunks stay */
                struct task *l[2] = { G.rh, G.retry }; G.rh = G.rt = G.retry = NULL;
                for (int i = 0; i < 2; i++) for (struct task *x = l[i], *n; x; x = n) {
                    n = x->next; INC(chunks_dropped, 1); x->c->keep = 1;
                    hlog(L_WARN, "[engine] chunk '%s' dropped at shutdown (grace expired)", x->c->id);
                    task_finish(x);
                }
                if (G.tasks == 0) break;
            }
        }
        int64_t wake = next_flush < next_rb ? next_flush : next_rb;
        if (G.stopping && wake > t + 100) wake = t + 100;
        for (struct task **pp = &G.retry; *pp;) {   /* due retries -> ready (flb_sched) */
            struct task *x = *pp;
            if (x->due <= t) { *pp = x->next; push_ready(x); }
            else { if (x->due < wake) wake = x->due; pp = &x->next; }
        }
        struct task *x = G.rh;
        if (!x) { if (!G.rb_signal) cond_wait_until(&G.cv, &G.mu, wake); continue; }
        G.rh = x->next; if (!G.rh) G.rt = NULL;
        struct ins *o = x->out;
        if (o->workers > 0) {
            x->next = NULL; if (o->qt) o->qt->next = x; else o->qh = x; o->qt = x;
            pthread_cond_signal(&o->wcv);
        } else { pthread_mutex_unlock(&G.mu); run_task(x); pthread_mutex_lock(&G.mu); }
    }
    hlog(L_INFO, "[engine] service has stopped (%ld pending tasks)", G.tasks);
    for (struct ins *o = G.outputs; o; o = o->next) { o->wstop = 1; pthread_cond_broadcast(&o->wcv); }
    pthread_mutex_unlock(&G.mu);
    for (struct ins *o = G.outputs; o; o = o->next) {
        for (int k = 0; o->wth && k < o->workers; k++) pthread_join(o->wth[k], NULL);
        free(o->wth); o->wth = NULL;
    }
    /* flb_engine_shutdown: flb_output_exit (all outputs) BEFORE flb_input_exit_all */
    for (struct ins *o = G.outputs; o; o = o->next) output_exit(o);
    inputs_exit_reverse(G.inputs);
    pthread_mutex_lock(&G.mu); G.done = 1; pthread_mutex_unlock(&G.mu);
    return NULL;
}

/* ---- loading: mirrors src/flb_plugin.c flb_plugin_load_router, src/flb_plugin_proxy.c
 *      flb_plugin_proxy_create/flb_plugin_proxy_register and go.c proxy_go_*_register ---- */
static void *sym(struct dso *d, const char *name)
{
    dlerror(); void *s = dlsym(d->h, name);
    return dlerror() ? NULL : s;
}
#define SYM(f, n) (*(void **) &d->f = sym(d, n))
static void load_plugin(const char *path)
{
    char *tmp = xstrdup(path); int native = strncmp(basename(tmp), "flb-", 4) == 0; free(tmp);
    if (native) {
        hlog(L_ERROR, "[plugin] error loading DSO C plugin: %s (flb-* goes to the native loader)", path);
        exit(1);
    }
    void *h = dlopen(path, RTLD_LAZY);   /* local scope: no RTLD_GLOBAL */
    if (!h) {
        hlog(L_ERROR, "[proxy] error opening plugin %s: '%s'", path, dlerror());
        hlog(L_ERROR, "[plugin] error loading proxy plugin: %s", path);
        exit(1);
    }
    struct dso *d = xcalloc(1, sizeof *d), **pp = &G.dsos;
    while (*pp) pp = &(*pp)->next;
    *pp = d;
    d->path = xstrdup(path); d->h = h; d->def_size = G.def_size;
    d->api = (struct flb_api) { get_prop, get_prop, no_cmt, in_cmt, log_print, log_check, log_check,
                                custom_prop, custom_check };
    d->defmem = malloc(48);   /* 48 bytes always; [def_size, 48) is a 0xAA guard */
    if (!d->defmem) abort();
    memset(d->defmem, d->def_size <= 32 ? 0xAA : 0, 48);   /* <= 32: malloc'd, garbage */
    memset(d->defmem + d->def_size, 0xAA, 48 - d->def_size);
    d->def = (struct proxy_def *) d->defmem;
    d->def->type = 0;   /* flb_plugin_proxy_create sets type = 0 */
    SYM(pre_register, "FLBPluginPreRegister");
    if (d->pre_register && d->pre_register(0) == -1) return;
    if (!SYM(reg, "FLBPluginRegister")) return;
    int ret = d->reg(d->def);
    for (int i = d->def_size; i < 48; i++)
        if (d->defmem[i] != 0xAA) {
            hlog(L_ERROR, "plugin wrote past the %d-byte def (%s, byte %d)", d->def_size, path, i);
            exit(3);
        }
    if (ret == -1 || d->def->proxy != PROXY_GOLANG || (d->def->type != T_INPUT && d->def->type != T_OUTPUT))
        return;   /* silently not registered */
    if (!d->def->name) { hlog(L_ERROR, "[proxy] %s registered without a name", path); return; }
    if (!SYM(init, "FLBPluginInit")) { hlog(L_ERROR, "[go proxy]: could not load FLBPluginInit symbol"); return; }
    SYM(unreg, "FLBPluginUnregister"); SYM(exit_, "FLBPluginExit");
    if (d->def->type == T_OUTPUT) {
        SYM(flush, "FLBPluginFlush"); SYM(flush_ctx, "FLBPluginFlushCtx"); SYM(exit_ctx, "FLBPluginExitCtx");
        SYM(out_pre_run, "FLBPluginOutputPreRun"); SYM(out_pre_exit, "FLBPluginOutputPreExit");
        d->gout.name = xstrdup(d->def->name);
        void *cb[5] = { (void *) d->init, (void *) d->flush, (void *) d->flush_ctx, (void *) d->exit_, (void *) d->exit_ctx };
        memcpy(d->gout.cb, cb, sizeof cb);
    } else {
        SYM(collect, "FLBPluginInputCallback"); SYM(collect_ctx, "FLBPluginInputCallbackCtx");
        SYM(cleanup, "FLBPluginInputCleanupCallback"); SYM(cleanup_ctx, "FLBPluginInputCleanupCallbackCtx");
        SYM(in_pre_run, "FLBPluginInputPreRun"); SYM(in_pause, "FLBPluginInputPause");
        SYM(in_resume, "FLBPluginInputResume"); SYM(in_pre_exit, "FLBPluginInputPreExit");
        d->gin.name = xstrdup(d->def->name);
        void *cb[6] = { (void *) d->init, (void *) d->collect, (void *) d->collect_ctx, (void *) d->cleanup,
                        (void *) d->cleanup_ctx, (void *) d->exit_ };
        memcpy(d->gin.cb, cb, sizeof cb);
    }
    d->registered = 1;
}

/* ---- properties: mirrors flb_output_set_property / flb_input_set_property ---- */
static char *env_translate(const char *v)
{   /* ${VAR} and ${VAR:-default}, like src/flb_env.c flb_env_var_translate */
    size_t cap = strlen(v) + 1, n = 0; char *o = xcalloc(1, cap);
    while (*v) {
        const char *s = strstr(v, "${"), *e = s ? strchr(s, '}') : NULL;
        size_t pre = (s && e) ? (size_t) (s - v) : strlen(v);
        const char *val = NULL; size_t vl = 0;
        if (s && e) {
            char var[4096]; size_t l = e - s - 2; if (l >= sizeof var) l = sizeof var - 1;
            memcpy(var, s + 2, l); var[l] = 0;
            char *sep = strstr(var, ":-"), *def = NULL;
            if (sep) { *sep = 0; def = sep + 2; }
            val = getenv(var);
            if ((!val || (def && !*val)) && def) val = def;
            if (val) vl = strlen(val);
        }
        if (n + pre + vl + 1 > cap) { cap = 2 * (n + pre + vl + 1); if (!(o = realloc(o, cap))) abort(); }
        memcpy(o + n, v, pre); n += pre; if (vl) memcpy(o + n, val, vl); n += vl; o[n] = 0;
        v += pre; if (s && e) v = e + 1;
    }
    return o;
}
static int key_is(const char *k, const char *name) { return strcasecmp(k, name) == 0; }
static int key_pre(const char *k, const char *p) { return strncasecmp(k, p, strlen(p)) == 0; }
static int parse_level(const char *s)
{
    const char *n[] = { "off", "error", "warn", "info", "debug", "trace" };
    for (int i = 0; i < 6; i++) if (strcasecmp(s, n[i]) == 0) return i;
    return strcasecmp(s, "warning") == 0 ? L_WARN : -1;
}
static int set_property_of(struct ins *ins, int out, const char *k, const char *raw);
static int set_property(struct ins *ins, const char *k, const char *raw)
{
    return set_property_of(ins, !ins->is_input, k, raw);
}

/*
 * Exported as Fluent Bit exports its own (ENABLE_EXPORTS): out_sql probes it to find an
 * output's worker count and sets one where the operator set none (docs/fluent-bit-abi.md
 * section 8.2). Like Fluent Bit's, it reads nothing of the instance before "workers".
 */
int flb_output_set_property(struct ins *ins, const char *k, const char *v)
{
    return G.no_setter ? -1 : set_property_of(ins, 1, k, v);
}

static int set_property_of(struct ins *ins, int out, const char *k, const char *raw)
{
    char *v = env_translate(raw);
    if (!*v) { free(v); v = NULL; }   /* "" is stored as NULL */
    if (key_is(k, "log_level")) {
        int l = v ? parse_level(v) : ins->log_level;
        free(v); if (l < 0) return -1;
        ins->log_level = l; return 0;
    }
    if (key_is(k, "alias") && v) { free(ins->alias); ins->alias = v; return 0; }
    if (!out && key_is(k, "tag") && v) { free(ins->tag); ins->tag = v; return 0; }
    if (out && key_is(k, "match")) { free(ins->match); ins->match = v; return 0; }
    if (out && key_is(k, "match_regex")) {   /* onigmo (Ruby syntax) in Fluent Bit; POSIX ERE here */
        if (ins->has_re) { regfree(&ins->re); ins->has_re = 0; }
        free(ins->match_regex); ins->match_regex = v;
        if (v && regcomp(&ins->re, v, REG_EXTENDED) != 0) return -1;
        ins->has_re = v != NULL;
        return 0;
    }
    if (!out && key_is(k, "storage.type")) {   /* src/flb_input.c: memory (default) | filesystem */
        int fs = v && !strcasecmp(v, "filesystem"), mem = !v || !strcasecmp(v, "memory");
        free(v);
        if (!fs && !mem) return -1;
        ins->fs = fs; return 0;
    }
    if (!out && (key_is(k, "thread.ring_buffer.capacity") || key_is(k, "thread.ring_buffer.window"))) {
        long n = v ? atol(v) : 0; int cap = key_is(k, "thread.ring_buffer.capacity");
        free(v);
        if (n <= 0 || (!cap && n > 100)) return -1;   /* window must be between 1 and 100 */
        if (cap) ins->rb_cap = n; else ins->rb_window = n;
        return 0;
    }
    if (out && key_is(k, "workers") && v) { ins->workers = atoi(v); if (ins->workers < 0) ins->workers = 0; free(v); return 0; }
    if (out && key_is(k, "retry_limit")) {
        if (!v) ins->retry_limit = 1;
        else if (!strcasecmp(v, "no_limits") || !strcasecmp(v, "false") || !strcasecmp(v, "off")) ins->retry_limit = -1;
        else if (!strcasecmp(v, "no_retries")) ins->retry_limit = 0;
        else if ((ins->retry_limit = atoi(v)) <= 0) {
            hlog(L_WARN, "[config] invalid retry_limit. set default."); ins->retry_limit = 1;
        }
        free(v); return 0;
    }
    static const char *both[] = { "alias", "log_level", "log_suppress_interval", "host", "port", "ipv6", "tls", NULL };
    static const char *outs[] = { "match", "match_regex", "retry_limit", "workers", "storage.total_limit_size", NULL };
    static const char *ins_[] = { "tag", "routable", "listen", "mem_buf_limit", "storage.type",
                                  "storage.pause_on_chunks_overlimit", "threaded", "rate_window", NULL };
    int consumed = key_pre(k, "net.") || key_pre(k, "oauth2") || key_pre(k, "tls.") ||
                   (out ? key_pre(k, "_debug.http.") : (key_pre(k, "thread.ring_buffer.") || key_pre(k, "rate_gate")));
    for (const char **l = both; !consumed && *l; l++) consumed = key_is(k, *l);
    for (const char **l = out ? outs : ins_; !consumed && *l; l++) consumed = key_is(k, *l);
    if (consumed) { free(v); return 0; }   /* kept by the instance, never served to the plugin */
    struct prop *p = xcalloc(1, sizeof *p);
    p->key = xstrdup(k); p->val = v; *ins->ptail = p; ins->ptail = &p->next;
    return 0;
}
static void add_raw(struct ins *ins, const char *k, const char *v)
{
    struct prop *p = xcalloc(1, sizeof *p);
    p->key = xstrdup(k); p->val = xstrdup(v); *ins->rtail = p; ins->rtail = &p->next;
}
static void free_props(struct prop *p) { for (struct prop *n; p; p = n) { n = p->next; free(p->key); free(p->val); free(p); } }

/* resolve a section's plugin name (flb_input_new / flb_output_new: built-ins first, case-insensitive) */
static int bind_instance(struct ins *ins, int id)
{
    const char *n = ins->sect;
    ins->id = id;
    if (ins->is_input && !strcasecmp(n, "feed")) ins->kind = K_FEED;
    else if (!ins->is_input && !strcasecmp(n, "sink")) ins->kind = K_SINK;
    else if (!ins->is_input && !strcasecmp(n, "null")) ins->kind = K_NULL;
    else {
        for (struct dso *d = G.dsos; d && !ins->dso; d = d->next)
            if (d->registered && d->def->type == (ins->is_input ? T_INPUT : T_OUTPUT) && !strcasecmp(d->def->name, n))
                ins->dso = d;
        if (!ins->dso) {
            hlog(L_ERROR, "[config] section '%s' tried to instance a plugin name that doesn't exist", n);
            return -1;
        }
        ins->kind = K_PROXY;
        if (ins->is_input) { struct in_ctx *c = xcalloc(1, sizeof *c); c->proxy = ins->dso; ins->ctx = c; }
        else { struct out_ctx *c = xcalloc(1, sizeof *c); c->proxy = ins->dso; ins->ctx = c; }
    }
    snprintf(ins->name, sizeof ins->name, "%s.%d", ins->dso ? ins->dso->def->name : n, id);
    for (struct prop *p = ins->raw; p; p = p->next)
        if (set_property(ins, p->key, p->val) < 0) {
            hlog(L_ERROR, "[config] could not set property '%s' on %s", p->key, ins->name);
            return -1;
        }
    if (ins->is_input && !ins->tag) ins->tag = xstrdup(ins->name);   /* default tag: instance name */
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: flbhost [options] [-e plugin.so]... [-i NAME [-t TAG] [-p k=v]...]... [-o NAME [-m MATCH] [-p k=v]...]...\n"
        "  -e PATH                load a proxy plugin (dlopen RTLD_LAZY, Register on the main thread)\n"
        "  -i NAME / -o NAME      start an input / output section (built-ins: input feed; outputs sink, null)\n"
        "  -p KEY=VALUE           property for the last section;  -t TAG / -m MATCH: same as -p tag= / match=\n"
        "  --stack BYTES          flush coroutine stack (default 24576)\n"
        "  --interval MS          input collect interval (1000);  --first-delay MS  first collect (400)\n"
        "  --duration MS          stop after MS;  --stop-after-records N  stop when outputs counted N records\n"
        "  --flush SECONDS        [SERVICE] flush: chunks are dispatched on this timer (1; fractions ok)\n"
        "  --retry-scale F        multiply the scheduler's retry wait (1; e.g. 0.01 for tests)\n"
        "  --sched-base N / --sched-cap N   scheduler.base (5) / scheduler.cap (2000), seconds\n"
        "  --retry-wait MS        fixed retry delay instead of the backoff;  --grace MS  shutdown grace (5000)\n"
        "  --storage-path DIR     storage.path: file chunks of storage.type filesystem inputs, backlog loaded at start\n"
        "  --log-level LEVEL      off|error|warn|info|debug|trace (info)\n"
        "  --def-size 32|40|48    emulate the Fluent Bit version's proxy def size (48)\n"
        "  --setter on|off        off: the exported flb_output_set_property refuses (on)\n"
        "  --stats FILE           write final JSON stats (always printed as the last stdout line)\n"
        "  -h                     this help\n"
        "signals: SIGUSR1 pause inputs, SIGUSR2 resume, SIGINT/SIGTERM stop\n");
}
static int64_t num_arg(const char *o, const char *v)
{
    char *e; long long n = v ? strtoll(v, &e, 10) : -1;
    if (!v || *e || n < 0) { fprintf(stderr, "flbhost: bad value for %s\n", o); usage(stderr); exit(2); }
    return n;
}

int main(int argc, char **argv)
{
    sigset_t ss; sigemptyset(&ss);
    int sigs[] = { SIGINT, SIGTERM, SIGUSR1, SIGUSR2 };
    for (int i = 0; i < 4; i++) sigaddset(&ss, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);   /* every thread inherits this: signals go to sigtimedwait */
    signal(SIGPIPE, SIG_IGN);
    cond_init(&G.cv);

    struct ins *cur = NULL, **itail = &G.inputs, **otail = &G.outputs;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "flbhost: missing value for %s\n", a); usage(stderr); return 2; }
        i++;
        if (!strcmp(a, "-e")) load_plugin(v);
        else if (!strcmp(a, "-i") || !strcmp(a, "-o")) {
            cur = xcalloc(1, sizeof *cur);
            cur->is_input = a[1] == 'i'; cur->sect = xstrdup(v); cur->retry_limit = 1; cur->log_level = -1;
            cur->ptail = &cur->props; cur->rtail = &cur->raw;
            pthread_mutex_init(&cur->mu, NULL); pthread_mutex_init(&cur->rb.mu, NULL); cond_init(&cur->cv); pthread_cond_init(&cur->wcv, NULL);
            if (cur->is_input) { *itail = cur; itail = &cur->next; } else { *otail = cur; otail = &cur->next; }
        } else if (!strcmp(a, "-p") || !strcmp(a, "-t") || !strcmp(a, "-m")) {
            const char *eq = strchr(v, '=');
            if (!cur || (a[1] == 'p' && (!eq || eq == v))) { fprintf(stderr, "flbhost: %s needs a preceding -i/-o%s\n", a, a[1] == 'p' ? " and key=value" : ""); return 2; }
            if (a[1] == 'p') { char *k = strndup(v, eq - v); add_raw(cur, k, eq + 1); free(k); }
            else add_raw(cur, a[1] == 't' ? "tag" : "match", v);
        }
        else if (!strcmp(a, "--stack")) G.stack = num_arg(a, v);
        else if (!strcmp(a, "--interval")) G.interval = num_arg(a, v);
        else if (!strcmp(a, "--first-delay")) G.first_delay = num_arg(a, v);
        else if (!strcmp(a, "--duration")) G.duration = num_arg(a, v);
        else if (!strcmp(a, "--stop-after-records")) G.stop_after = num_arg(a, v);
        else if (!strcmp(a, "--retry-wait")) G.retry_wait = num_arg(a, v);
        else if (!strcmp(a, "--retry-scale") || !strcmp(a, "--flush")) {
            char *e; double d = strtod(v, &e);
            if (*e || !(d > 0)) { fprintf(stderr, "flbhost: bad value for %s\n", a); usage(stderr); return 2; }
            if (a[2] == 'r') G.retry_scale = d;
            else if ((G.flush_ms = (int64_t) (d * 1000 + 0.5)) < 1) G.flush_ms = 1;
        }
        else if (!strcmp(a, "--sched-base")) G.sched_base = (int) num_arg(a, v);
        else if (!strcmp(a, "--sched-cap")) G.sched_cap = (int) num_arg(a, v);
        else if (!strcmp(a, "--storage-path")) G.storage_path = v;
        else if (!strcmp(a, "--grace")) G.grace = num_arg(a, v);
        else if (!strcmp(a, "--stats")) G.stats_file = v;
        else if (!strcmp(a, "--log-level")) {
            if ((G.log_level = parse_level(v)) < 0) { fprintf(stderr, "flbhost: bad --log-level\n"); return 2; }
        } else if (!strcmp(a, "--setter")) {
            if (strcmp(v, "on") && strcmp(v, "off")) { fprintf(stderr, "flbhost: --setter must be on or off\n"); return 2; }
            G.no_setter = !strcmp(v, "off");
        } else if (!strcmp(a, "--def-size")) {
            G.def_size = (int) num_arg(a, v);
            if (G.def_size != 32 && G.def_size != 40 && G.def_size != 48) { fprintf(stderr, "flbhost: --def-size must be 32, 40 or 48\n"); return 2; }
        } else { fprintf(stderr, "flbhost: unknown option %s\n", a); usage(stderr); return 2; }
    }
    const char *rb_env = getenv("FLB_DEV_RB_MS");   /* src/flb_engine.c: DEV/TEST knob */
    if (rb_env && atoi(rb_env) > 0) G.rb_ms = atoi(rb_env);
    if (G.sched_base < 1 || G.sched_cap < G.sched_base) { fprintf(stderr, "flbhost: need 1 <= --sched-base <= --sched-cap\n"); return 2; }
    if (G.stack < 4096 || G.interval == 0) { fprintf(stderr, "flbhost: --stack >= 4096 and --interval > 0 required\n"); return 2; }

    int id = 0, rc = 0;
    for (struct ins *in = G.inputs; in && !rc; in = in->next, G.n_in++) {
        rc = bind_instance(in, id++);
        if (in->kind == K_FEED) G.n_feed++;
    }
    id = 0;
    for (struct ins *o = G.outputs; o && !rc; o = o->next) rc = bind_instance(o, id++);
    if (rc) rc = 1;   /* configuration error */
    /* flb_router_io_set (src/flb_router.c): with exactly one input and one output, an output
     * without Match gets "*"; otherwise it gets nothing. The storage_backlog input that
     * --storage-path creates (flb_storage_create runs first) counts as an input (observed
     * with v5.1.1: dummy -> stdout without Match and a storage.path delivered nothing). */
    int n_out = 0;
    for (struct ins *o = G.outputs; o; o = o->next) n_out++;
    for (struct ins *o = G.outputs; o && !rc; o = o->next) {
        if (o->match || o->has_re) continue;
        if (G.n_in + (G.storage_path != NULL) == 1 && n_out == 1) o->match = xstrdup("*");
        else for (int i = 0; i < G.n_in + (G.storage_path != NULL); i++)   /* once per input (observed) */
            hlog(L_WARN, "[router] NO match for %s output instance", o->name);
    }
    for (struct ins *x = G.inputs; x; x = x->next) if (x->log_level < 0) x->log_level = G.log_level;
    for (struct ins *x = G.outputs; x; x = x->next) if (x->log_level < 0) x->log_level = G.log_level;

    pthread_t eng;
    if (!rc) {
        pthread_create(&eng, NULL, engine_main, NULL);
        for (;;) {   /* main: signal handling (no plugin code runs in a signal handler) */
            struct timespec to = { 0, 100 * 1000000 }; int sig = sigtimedwait(&ss, NULL, &to);
            pthread_mutex_lock(&G.mu); int done = G.done;
            if (sig == SIGINT || sig == SIGTERM) { G.stop = 1; pthread_cond_broadcast(&G.cv); }
            if ((sig == SIGUSR1 || sig == SIGUSR2) && !G.stopping) {   /* G.mu held: no race with shutdown */
                hlog(L_INFO, "[engine] %s inputs", sig == SIGUSR1 ? "pausing" : "resuming");
                for (struct ins *in = G.inputs; in; in = in->next) input_cmd(in, &in->want_paused, sig == SIGUSR1);
            }
            pthread_mutex_unlock(&G.mu);
            if (done) break;
        }
        pthread_join(eng, NULL);
        rc = G.exit_code;
    }
    /* main thread: Unregister + dlclose per registered .so, inputs' first (flb_plugins_unregister
     * -> flb_proxy_*_cb_destroy); unregistered .so's are only dlclose'd */
    for (int pass = 0; pass < 3; pass++)
        for (struct dso *d = G.dsos; d; d = d->next) {
            int type = d->registered ? d->def->type : 0;
            if (type != (pass == 0 ? T_INPUT : pass == 1 ? T_OUTPUT : 0)) continue;
            if (d->registered && d->unreg) d->unreg(d->def);
            dlclose(d->h);
            /* not Fluent Bit: report whether the plugin survived dlclose (pinned, ABI doc T6) */
            void *still = dlopen(d->path, RTLD_LAZY | RTLD_NOLOAD);
            hlog(L_DEBUG, "[plugin] %s %s after dlclose", d->path,
                 still ? "still mapped" : "unmapped");
            if (still) dlclose(still);
        }
    for (struct dso *d = G.dsos, *n; d; d = n) {
        n = d->next; free(d->gout.name); free(d->gin.name); free(d->defmem); free(d->path); free(d);
    }
    /* what is still buffered is lost (memory) or stays on disk (filesystem) */
    for (struct ins *in = G.inputs; in; in = in->next) {
        for (; in->rb.count; in->rb.count--, in->rb.head = (in->rb.head + 1) % in->rb.cap) {
            free(in->rb.e[in->rb.head].data);
        }
        free(in->rb.e); pthread_mutex_destroy(&in->rb.mu);
    }
    while (G.chunks) { INC(chunks_left, 1); G.chunks->keep = 1; chunk_release(G.chunks); }
    struct ins *lists[2] = { G.inputs, G.outputs };
    for (int l = 0; l < 2; l++) for (struct ins *x = lists[l], *n; x; x = n) {
        n = x->next; free_props(x->props); free_props(x->raw);
        free(x->tag); free(x->match); free(x->alias); free(x->match_regex);
        if (x->has_re) regfree(&x->re);
        free(x->sect); free(x->ctx); if (x->feed) fclose(x->feed);
        pthread_mutex_destroy(&x->mu); pthread_cond_destroy(&x->cv); pthread_cond_destroy(&x->wcv); free(x);
    }
    if (rc == 1) return 1;   /* configuration error: no run, no stats */
    /* peak RSS of this program image only: VmHWM, not getrusage's ru_maxrss, which Linux
     * carries over exec from the (v)forking parent, e.g. a benchmark holding a big dataset */
    long hwm_kb = -1;
    FILE *st = fopen("/proc/self/status", "r");
    if (st) {
        char line[256];
        while (fgets(line, sizeof line, st))
            if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1) break;
        fclose(st);
    }
    char js[2048];
    snprintf(js, sizeof js, "{\"peak_rss_kb\":%ld,\"chunks_in\":%ld,\"flush_calls\":%ld,\"flush_ok\":%ld,\"flush_retry\":%ld,"
             "\"flush_error\":%ld,\"chunks_dropped\":%ld,\"records_out\":%ld,\"input_collects\":%ld,"
             "\"input_records\":%ld,\"input_bytes\":%ld,\"input_errors\":%ld,\"flush_ticks\":%ld,\"appends\":%ld,"
             "\"rb_retries\":%ld,\"rb_drops\":%ld,\"rb_dropped_records\":%ld,\"backlog_chunks\":%ld,"
             "\"chunks_left\":%ld}", hwm_kb, S.chunks_in, S.flush_calls,
             S.flush_ok, S.flush_retry, S.flush_error, S.chunks_dropped, S.records_out, S.input_collects,
             S.input_records, S.input_bytes, S.input_errors, S.flush_ticks, S.appends, S.rb_retries,
             S.rb_drops, S.rb_dropped_records, S.backlog_chunks, S.chunks_left);
    if (G.stats_file) {
        FILE *f = fopen(G.stats_file, "w");
        if (f) { fprintf(f, "%s\n", js); fclose(f); }
        else fprintf(stderr, "flbhost: cannot write %s: %s\n", G.stats_file, strerror(errno));
    }
    printf("%s\n", js); fflush(stdout);
    return rc;
}
