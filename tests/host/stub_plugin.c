/*
 * stub_plugin.c: a tiny pure-C Fluent Bit proxy-ABI plugin used to self-test flbhost.
 * Built twice: -DSTUB_INPUT -> stub_in.so, -DSTUB_OUTPUT -> stub_out.so; both register "stub".
 *
 * Both: show=k1,k2 (log get_property results), fail_init=on (Init returns 0).
 * Output properties: retry_first=on (return FLB_RETRY once, for the first chunk),
 *                    fail_init=on (Init returns 0), result=N (fixed flush return value),
 *                    sleep_ms=N (each flush sleeps N ms first).
 * Input properties:  records=N (records per collect, default 3), fail_init=on.
 * Env STUB_WRITE_EVENT_TYPE=1 makes Register write def->event_type (offset 32), to test --def-size 32.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct def { int type, proxy, flags; char *name, *description; int event_type; void *config_map; };
struct api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
};
struct plugin { char *name; struct api *api; void *ins; void *context; };   /* common prefix */

static struct api *g_api;
#define LOG(ins, chk, lvl, ...) do { char m_[512]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        if (g_api && (!(ins) || g_api->chk((ins), (lvl)))) g_api->log_print((lvl), __FILE__, __LINE__, "%s", m_); } while (0)

static int on(const char *v) { return v && (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcmp(v, "1")); }
/* property show=k1,k2,...: log what get_property returns for each key (NULL shown as <null>) */
static void show_props(const char *(*get)(const char *, void *), void *ins)
{
    const char *v = get("show", ins); char buf[256], *save = NULL;
    if (!v) return;
    snprintf(buf, sizeof buf, "%s", v);
    for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        const char *x = get(k, ins);
        g_api->log_print(3, __FILE__, __LINE__, "[stub] prop %s=%s", k, x ? x : "<null>");
    }
}
static const char *tname(void) { static __thread char n[16]; pthread_getname_np(pthread_self(), n, sizeof n); return n; }

int FLBPluginRegister(struct def *def)
{
#ifdef STUB_INPUT
    def->type = 1;
#else
    def->type = 2;
#endif
    def->proxy = 11;
    def->flags = 0;
    def->name = "stub";
    def->description = "flbhost self-test stub";
    if (getenv("STUB_WRITE_EVENT_TYPE")) def->event_type = 1;   /* only valid on 4.2.3+/5.x defs */
    return 0;
}

void FLBPluginUnregister(struct def *def)
{
    fprintf(stderr, "[stub] Unregister %s (type %d) on %s\n", def->name, def->type, tname());
}

#ifdef STUB_OUTPUT
struct out_state { void *ins; int retry_first, result, sleep_ms; long records, flushes; pthread_mutex_t mu; };

static long count_objects(const uint8_t *p, const uint8_t *e);

int FLBPluginInit(void *plugin)
{
    struct plugin *pl = plugin; struct out_state *st;
    g_api = pl->api;
    show_props(g_api->output_get_property, pl->ins);
    if (on(g_api->output_get_property("fail_init", pl->ins))) return 0;
    st = calloc(1, sizeof *st);
    st->ins = pl->ins;
    st->retry_first = on(g_api->output_get_property("retry_first", pl->ins));
    const char *r = g_api->output_get_property("result", pl->ins);
    st->result = r ? atoi(r) : -1;
    const char *sl = g_api->output_get_property("sleep_ms", pl->ins);
    st->sleep_ms = sl ? atoi(sl) : 0;
    pthread_mutex_init(&st->mu, NULL);
    *(void **) pl->context = st;   /* remote_context, offset 0 */
    LOG(st->ins, output_log_check, 3, "[stub] output Init on %s (retry_first=%d, match prop=%s)", tname(),
        st->retry_first, g_api->output_get_property("match", pl->ins) ? "served!" : "consumed");
    return 1;
}

int FLBPluginFlushCtx(void *ctx, const void *data, size_t size, char *tag)
{
    struct out_state *st = ctx; int ret = 1; long n = count_objects(data, (const uint8_t *) data + size);
    if (st->sleep_ms > 0) usleep((useconds_t) st->sleep_ms * 1000);
    pthread_mutex_lock(&st->mu);
    if (st->retry_first) { st->retry_first = 0; ret = 2; }
    else if (st->result >= 0) ret = st->result;
    else st->records += n;
    st->flushes++;
    pthread_mutex_unlock(&st->mu);
    LOG(st->ins, output_log_check, 4, "[stub] flush tag=%s size=%zu records=%ld on %s (tid %lx) -> %d", tag, size, n, tname(), (unsigned long) pthread_self() % 0xffff, ret);
    return ret;
}

int FLBPluginOutputPreRun(int hot) { (void) hot; LOG(NULL, output_log_check, 3, "[stub] OutputPreRun on %s", tname()); return 0; }
void FLBPluginOutputPreExit(int hot) { (void) hot; LOG(NULL, output_log_check, 3, "[stub] OutputPreExit on %s", tname()); }

int FLBPluginExitCtx(void *ctx)
{
    struct out_state *st = ctx;
    LOG(st->ins, output_log_check, 3, "[stub] output ExitCtx on %s: %ld records in %ld flushes",
        tname(), st->records, st->flushes);
    pthread_mutex_destroy(&st->mu); free(st);
    return 0;
}

/* count top-level msgpack objects (minimal skipper) */
static const uint8_t *skip(const uint8_t *p, const uint8_t *e)
{
    uint64_t left = 1;
    while (left && p < e) {
        uint8_t b = *p++; uint64_t len = 0, add = 0; int hb = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) ;
        else if (b <= 0x8f) add = 2 * (b & 15);
        else if (b <= 0x9f) add = b & 15;
        else if (b <= 0xbf) len = b & 31;
        else switch (b) {
            case 0xc4: case 0xd9: case 0xc7: hb = 1; break;
            case 0xc5: case 0xda: case 0xc8: case 0xdc: case 0xde: hb = 2; break;
            case 0xc6: case 0xdb: case 0xc9: case 0xdd: case 0xdf: hb = 4; break;
            case 0xcc: case 0xd0: len = 1; break; case 0xcd: case 0xd1: case 0xd4: len = 2; break;
            case 0xd5: len = 3; break; case 0xca: case 0xce: case 0xd2: len = 4; break;
            case 0xd6: len = 5; break; case 0xcb: case 0xcf: case 0xd3: len = 8; break;
            case 0xd7: len = 9; break; case 0xd8: len = 17; break;
            default: return NULL;
        }
        if (hb) {
            uint64_t v = 0;
            if (e - p < hb) return NULL;
            for (int i = 0; i < hb; i++) v = v << 8 | *p++;
            if (b == 0xdc || b == 0xdd) add = v; else if (b == 0xde || b == 0xdf) add = 2 * v;
            else len = v + (b >= 0xc7 && b <= 0xc9);
        }
        if (len > (uint64_t) (e - p)) return NULL;
        p += len; left += add - 1;
    }
    return left ? NULL : p;
}
static long count_objects(const uint8_t *p, const uint8_t *e)
{
    long n = 0;
    while (p < e && (p = skip(p, e))) n++;
    return n;
}
#endif

#ifdef STUB_INPUT
/* Pause/Resume/Exit get no context: map the calling thread to its instance */
struct in_state { void *ins; pthread_t th; int paused, per, n; };
static struct in_state *g_states[64];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static struct in_state *mine(void)
{
    struct in_state *s = NULL;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < 64 && !s; i++) if (g_states[i] && pthread_equal(g_states[i]->th, pthread_self())) s = g_states[i];
    pthread_mutex_unlock(&g_mu);
    return s;
}

int FLBPluginInit(void *plugin)
{
    struct plugin *pl = plugin; struct in_state *st;
    g_api = pl->api;
    show_props(g_api->input_get_property, pl->ins);
    if (on(g_api->input_get_property("fail_init", pl->ins))) return 0;
    st = calloc(1, sizeof *st);
    st->ins = pl->ins; st->th = pthread_self();
    const char *r = g_api->input_get_property("records", pl->ins);
    st->per = r ? atoi(r) : 3;
    *(void **) ((char *) pl->context + 8) = st;   /* remote_context at offset 8 */
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < 64; i++) if (!g_states[i]) { g_states[i] = st; break; }
    pthread_mutex_unlock(&g_mu);
    LOG(st->ins, input_log_check, 3, "[stub] input Init on %s (tag prop=%s)", tname(),
        g_api->input_get_property("tag", pl->ins) ? "served!" : "consumed");
    return 1;
}

int FLBPluginInputPreRun(int hot) { (void) hot; LOG(NULL, input_log_check, 3, "[stub] InputPreRun on %s", tname()); return 0; }

/* v2 records [[EventTime,{}],{"n":i}] in a malloc'd buffer */
int FLBPluginInputCallbackCtx(void *ctx, void **data, size_t *size)
{
    struct in_state *st = ctx; struct timespec ts; uint8_t *b, *p;
    if (st->paused || st->per <= 0) { *size = 0; return 0; }
    clock_gettime(CLOCK_REALTIME, &ts);
    p = b = malloc((size_t) st->per * 21);   /* 21 bytes per record */
    for (int i = 0; i < st->per; i++) {
        uint32_t s = (uint32_t) ts.tv_sec, ns = (uint32_t) ts.tv_nsec, n = (uint32_t) st->n++;
        *p++ = 0x92; *p++ = 0x92; *p++ = 0xd7; *p++ = 0x00;
        for (int k = 3; k >= 0; k--) *p++ = s >> (8 * k);
        for (int k = 3; k >= 0; k--) *p++ = ns >> (8 * k);
        *p++ = 0x80; *p++ = 0x81; *p++ = 0xa1; *p++ = 'n'; *p++ = 0xce;
        for (int k = 3; k >= 0; k--) *p++ = n >> (8 * k);
    }
    *data = b; *size = (size_t) (p - b);
    return 0;
}

int FLBPluginInputCleanupCallbackCtx(void *ctx, void *data) { (void) ctx; free(data); return 0; }

void FLBPluginInputPause(void)
{
    struct in_state *st = mine(); if (st) st->paused = 1;
    LOG(st ? st->ins : NULL, input_log_check, 3, "[stub] InputPause on %s", tname());
}
void FLBPluginInputResume(void)
{
    struct in_state *st = mine(); if (st) st->paused = 0;
    LOG(st ? st->ins : NULL, input_log_check, 3, "[stub] InputResume on %s", tname());
}
void FLBPluginInputPreExit(int hot) { (void) hot; LOG(NULL, input_log_check, 3, "[stub] InputPreExit on %s", tname()); }

int FLBPluginExit(void)
{
    struct in_state *st = mine();
    LOG(st ? st->ins : NULL, input_log_check, 3, "[stub] input Exit on %s (%d records made)", tname(), st ? st->n : -1);
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < 64; i++) if (g_states[i] == st) g_states[i] = NULL;
    pthread_mutex_unlock(&g_mu);
    free(st);
    return 0;
}
#endif
