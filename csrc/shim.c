/*
 * shim.c - the C side of in_sql.so / out_sql.so.
 *
 * It is included by the cffi-generated module (see build_shim.py) and compiled twice:
 * with FLBSQL_KIND_INPUT for in_sql.so and with FLBSQL_KIND_OUTPUT for out_sql.so.
 * It holds no logic, only what must happen in C, each item answering one trap of
 * docs/fluent-bit-abi.md §12:
 *   T1  libpython re-opened RTLD_GLOBAL so C extension modules can link;
 *   T6  this .so pinned with RTLD_NODELETE against Fluent Bit's dlclose();
 *   T2  CPython booted from C with PyConfig pointing at the project's venv;
 *   T3  output flushes handed to a shim-owned thread with a normal 8 MiB stack;
 *   T5  every entry point returns an explicit code (the Python side never lets cffi
 *       fall back to its silent 0);
 *   section 7: log lines gated by the instance's log_level, long ones split, lines from
 *       the executor thread replayed on the Fluent Bit thread that owns the flush.
 * Register does no Python work (static name), so the plugin name is known before any
 * configuration exists.
 */
#include <Python.h> /* first: its pyconfig.h defines _GNU_SOURCE (dladdr) */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flbsql_abi.h"

#if defined(FLBSQL_KIND_INPUT)
#define SHIM_KIND FLB_PROXY_INPUT_PLUGIN
#define SHIM_DESC "SQL input: tables, queries and PostgreSQL CDC (flbsql)"
#elif defined(FLBSQL_KIND_OUTPUT)
#define SHIM_KIND FLB_PROXY_OUTPUT_PLUGIN
#define SHIM_DESC "SQL output: PostgreSQL, MySQL/MariaDB, Oracle, SQL Server, SQLite (flbsql)"
#else
#error "define FLBSQL_KIND_INPUT or FLBSQL_KIND_OUTPUT"
#endif

#define SHIM_PLUGIN_NAME "sql"
#define SHIM_LOG_PIECE 3800            /* flb_log truncates a line at 4 KiB */
#define SHIM_EXEC_STACK (8u << 20)     /* a normal thread stack, guard page included */

/* extern "Python" callbacks, defined by cffi from the cdef in build_shim.py */
#if defined(FLBSQL_KIND_OUTPUT)
static int py_output_init(void *api, void *ins, void **handle);
static int py_output_flush(void *ctx, const void *data, size_t size, const char *tag);
static int py_output_exit(void *ctx);
#else
static int py_input_init(void *api, void *ins, void **handle);
static int py_input_collect(void *ctx, void **data, size_t *size);
static int py_input_cleanup(void *ctx);
static void py_input_event(void *ctx, int event);
#endif

/* ------------------------------------------------------------------------- */
/* T1 + T6: promote libpython to global scope, pin ourselves                  */
/* ------------------------------------------------------------------------- */

__attribute__((constructor)) static void shim_on_load(void)
{
    Dl_info di;

    if (dladdr((void *) &Py_IsInitialized, &di) && di.dli_fname)
        (void) dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (dladdr((void *) &shim_on_load, &di) && di.dli_fname)
        (void) dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* ------------------------------------------------------------------------- */
/* logging (docs/fluent-bit-abi.md §7)                                        */
/* ------------------------------------------------------------------------- */

struct log_line {
    struct log_line *next;
    struct flb_api *api;
    int level;
    char text[];
};

/* set on executor threads: lines are queued and replayed by the flushing thread */
static __thread struct log_line **tls_log_queue;

static int shim_log_check(int kind, void *api, void *ins, int level)
{
    struct flb_api *a = api;

    if (!a || !ins)
        return level <= FLB_LOG_INFO;
    if (kind == FLB_PROXY_INPUT_PLUGIN)
        return a->input_log_check ? a->input_log_check(ins, level) : 1;
    return a->output_log_check ? a->output_log_check(ins, level) : 1;
}

static void shim_emit(struct flb_api *a, int level, const char *msg)
{
    size_t len = strlen(msg), off = 0;

    if (!a || !a->log_print) {
        fprintf(stderr, "[flbsql] %s\n", msg);
        return;
    }
    do {   /* long lines (tracebacks) in pieces; always "%s", never msg as format */
        size_t n = len - off > SHIM_LOG_PIECE ? SHIM_LOG_PIECE : len - off;
        a->log_print(level, NULL, 0, "%.*s", (int) n, msg + off);
        off += n;
    } while (off < len);
}

/* called from Python; returns 1 if the line was admitted by the instance's log_level */
static int shim_log(int kind, void *api, void *ins, int level, const char *msg)
{
    struct log_line *l, **tail;
    size_t n;

    if (!msg || !shim_log_check(kind, api, ins, level))
        return 0;
    if (tls_log_queue) {
        n = strlen(msg);
        l = malloc(sizeof(*l) + n + 1);
        if (!l)
            return 0;
        l->next = NULL;
        l->api = api;
        l->level = level;
        memcpy(l->text, msg, n + 1);
        for (tail = tls_log_queue; *tail; tail = &(*tail)->next)
            ;
        *tail = l;
        return 1;
    }
    shim_emit(api, level, msg);
    return 1;
}

/* a message from C, before or without Python: through Fluent Bit's logger when we can */
static void shim_log_c(struct flb_api *api, int level, const char *what, const char *detail)
{
    char msg[1024];

    snprintf(msg, sizeof(msg), "[flbsql] %s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
    shim_emit(api, level, msg);
}

/* ------------------------------------------------------------------------- */
/* properties and buffers, for Python                                          */
/* ------------------------------------------------------------------------- */

static const char *shim_get_property(int kind, void *api, void *ins, const char *key)
{
    struct flb_api *a = api;

    if (!a || !ins || !key)
        return NULL;
    if (kind == FLB_PROXY_INPUT_PLUGIN)
        return a->input_get_property(key, ins);
    return a->output_get_property(key, ins);
}

/* input buffers come from malloc and go back to free() in the cleanup callback */
static void *shim_alloc(size_t n) { return malloc(n ? n : 1); }

#if defined(FLBSQL_KIND_INPUT)
/* ------------------------------------------------------------------------- */
/* what the engine took, for Python (docs/fluent-bit-abi.md section 9)          */
/* ------------------------------------------------------------------------- */

/* cmetrics' text encoder, exported by the fluent-bit binary (ENABLE_EXPORTS) */
typedef char *(*shim_cmt_text_fn)(void *cmt);
typedef void (*shim_cmt_free_fn)(char *text);
static shim_cmt_text_fn shim_cmt_text;
static shim_cmt_free_fn shim_cmt_free;
static pthread_once_t shim_cmt_once = PTHREAD_ONCE_INIT;

static void shim_cmt_resolve(void)
{
    shim_cmt_text = (shim_cmt_text_fn) dlsym(RTLD_DEFAULT, "cmt_encode_text_create");
    shim_cmt_free = (shim_cmt_free_fn) dlsym(RTLD_DEFAULT, "cmt_encode_text_destroy");
}

static long long shim_metric(const char *text, const char *name)
{
    const char *p = strstr(text, name), *eq;

    if (!p || !(eq = strstr(p, " = ")))
        return -1;
    return (long long) strtod(eq + 3, NULL);
}

/*
 * Three counters of an input instance's own cmetrics context:
 *   out[0] fluentbit_input_records_total: records the ENGINE thread has taken off the
 *          ring buffer into its chunks (input_chunk_append_raw, src/flb_input_chunk.c);
 *   out[1] fluentbit_input_ring_buffer_retry_failures_total: batches Fluent Bit dropped
 *          because the ring buffer stayed full (append_to_ring_buffer);
 *   out[2] fluentbit_input_ring_buffer_writes_total: entries written into the ring buffer
 *          (none for a batch whose records the input's processors all dropped).
 * Returns 0, or -1 (out untouched) when this host does not expose them.
 */
static int shim_input_counters(void *api, void *ins, long long *out)
{
    struct flb_api *a = api;
    void *cmt;
    char *text;

    if (!a || !ins || !a->input_get_cmt_instance)
        return -1;
    pthread_once(&shim_cmt_once, shim_cmt_resolve);
    if (!shim_cmt_text || !shim_cmt_free || !(cmt = a->input_get_cmt_instance(ins)))
        return -1;
    if (!(text = shim_cmt_text(cmt)))
        return -1;
    out[0] = shim_metric(text, "fluentbit_input_records_total{");
    out[1] = shim_metric(text, "fluentbit_input_ring_buffer_retry_failures_total{");
    out[2] = shim_metric(text, "fluentbit_input_ring_buffer_writes_total{");
    shim_cmt_free(text);
    return out[0] < 0 || out[1] < 0 || out[2] < 0 ? -1 : 0;
}
#endif

/* ------------------------------------------------------------------------- */
/* T2: boot CPython on the project's interpreter                              */
/* ------------------------------------------------------------------------- */

#ifndef FLBSQL_BUILD_PYTHON
#define FLBSQL_BUILD_PYTHON ""
#endif

/* <dir>/pyvenv.cfg above this .so (an installed wheel), else the build's python */
static int shim_find_python(const char *override, char *out, size_t outlen)
{
    Dl_info di;
    char path[PATH_MAX], probe[PATH_MAX + 32];
    char *slash;
    const char *env = getenv("FLBSQL_PYTHON");

    if (override && *override)
        return snprintf(out, outlen, "%s", override) < (int) outlen ? 0 : -1;
    if (env && *env)
        return snprintf(out, outlen, "%s", env) < (int) outlen ? 0 : -1;
    if (dladdr((void *) &shim_find_python, &di) && di.dli_fname &&
        realpath(di.dli_fname, path)) {
        while ((slash = strrchr(path, '/')) && slash != path) {
            *slash = '\0';
            snprintf(probe, sizeof(probe), "%s/pyvenv.cfg", path);
            if (access(probe, R_OK) == 0) {
                snprintf(probe, sizeof(probe), "%s/bin/python", path);
                if (access(probe, X_OK) == 0)
                    return snprintf(out, outlen, "%s", probe) < (int) outlen ? 0 : -1;
            }
        }
    }
    if (*FLBSQL_BUILD_PYTHON)
        return snprintf(out, outlen, "%s", FLBSQL_BUILD_PYTHON) < (int) outlen ? 0 : -1;
    return -1;
}

static pthread_mutex_t boot_lock = PTHREAD_MUTEX_INITIALIZER;

static int shim_boot_python(struct flb_api *api, const char *override)
{
    PyStatus st;
    PyConfig cfg;
    char python[PATH_MAX];
    int rc = 0;

    pthread_mutex_lock(&boot_lock);
    if (!Py_IsInitialized()) {          /* the other plugin .so may have booted it (T10) */
        if (shim_find_python(override, python, sizeof(python)) != 0) {
            shim_log_c(api, FLB_LOG_ERROR, "no Python interpreter found",
                       "set FLBSQL_PYTHON or the python property to <venv>/bin/python");
            pthread_mutex_unlock(&boot_lock);
            return -1;
        }
        PyConfig_InitPythonConfig(&cfg);
        cfg.install_signal_handlers = 0;  /* Fluent Bit owns SIGINT/SIGTERM/SIGHUP */
        cfg.parse_argv = 0;
        cfg.buffered_stdio = 0;
        st = PyConfig_SetBytesString(&cfg, &cfg.program_name, python);
        if (!PyStatus_Exception(st))
            st = PyConfig_SetBytesString(&cfg, &cfg.executable, python);
        if (!PyStatus_Exception(st))
            st = Py_InitializeFromConfig(&cfg);
        PyConfig_Clear(&cfg);
        if (PyStatus_Exception(st)) {   /* never Py_ExitStatusException(): keep Fluent Bit up */
            shim_log_c(api, FLB_LOG_ERROR, "python init failed", st.err_msg);
            pthread_mutex_unlock(&boot_lock);
            return -1;
        }
        PyEval_SaveThread();            /* release the GIL; cffi takes it per call */
    }
    pthread_mutex_unlock(&boot_lock);
    rc = cffi_start_python();           /* this module's embedding init code */
    if (rc != 0) {
        char python[PATH_MAX];
        if (shim_find_python(override, python, sizeof(python)) != 0)
            snprintf(python, sizeof(python), "%s", "?");
        shim_log_c(api, FLB_LOG_ERROR,
                   "cannot start the plugin's Python code (traceback on stderr); are cffi "
                   "and flbsql installed for this interpreter?", python);
    }
    return rc;
}

/* ------------------------------------------------------------------------- */
/* registration (main thread, no Python)                                      */
/* ------------------------------------------------------------------------- */

CFFI_DLLEXPORT int FLBPluginRegister(struct flb_plugin_proxy_def *def)
{
    if (!def)
        return -1;
    def->type = SHIM_KIND;
    def->proxy = FLB_PROXY_GOLANG;
    def->flags = 0;     /* never FLB_OUTPUT_NET: host/port would be consumed by Fluent Bit */
    def->name = SHIM_PLUGIN_NAME;                 /* strdup'ed by Fluent Bit */
    def->description = SHIM_DESC;                 /* kept: static storage */
    /* event_type (offset 32) and config_map (40) are left alone: see flbsql_abi.h */
    return 0;
}

CFFI_DLLEXPORT void FLBPluginUnregister(struct flb_plugin_proxy_def *def)
{
    (void) def;   /* module state is shared with a re-registration on hot reload (T7) */
}

#if defined(FLBSQL_KIND_OUTPUT)
/* ------------------------------------------------------------------------- */
/* outputs                                                                    */
/* ------------------------------------------------------------------------- */

/* T3: one executor thread per calling Fluent Bit thread, with a real stack */
struct executor {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;                  /* 0 idle, 1 job posted, 2 job done, 3 quit */
    void *ctx;
    const void *data;
    size_t size;
    const char *tag;
    int result;
    struct log_line *logs;
    int engine;                 /* the calling thread is Fluent Bit's engine ("flb-pipeline") */
};

/* on an executor thread: its caller is Fluent Bit's engine thread (no `workers`) */
static __thread int tls_on_engine;

/* for Python, from a flush: 1 when Fluent Bit called it on its engine thread */
static int shim_flush_on_engine(void) { return tls_on_engine; }

static pthread_key_t exec_key;
static pthread_once_t exec_once = PTHREAD_ONCE_INIT;

static void *executor_main(void *arg)
{
    struct executor *ex = arg;

    tls_log_queue = &ex->logs;
    tls_on_engine = ex->engine;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (ex->state != 1 && ex->state != 3)
            pthread_cond_wait(&ex->cv, &ex->mu);
        if (ex->state == 3)
            break;
        pthread_mutex_unlock(&ex->mu);
        ex->result = py_output_flush(ex->ctx, ex->data, ex->size, ex->tag);
        pthread_mutex_lock(&ex->mu);
        ex->state = 2;
        pthread_cond_broadcast(&ex->cv);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

/* the Fluent Bit thread that owned this executor ended (e.g. workers after a reload) */
static void executor_release(void *arg)
{
    struct executor *ex = arg;

    pthread_mutex_lock(&ex->mu);
    ex->state = 3;
    pthread_cond_broadcast(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    pthread_join(ex->thread, NULL);
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

static void executor_key_init(void) { (void) pthread_key_create(&exec_key, executor_release); }

static struct executor *executor_get(void)
{
    struct executor *ex;
    pthread_attr_t attr;

    pthread_once(&exec_once, executor_key_init);
    ex = pthread_getspecific(exec_key);
    if (ex)
        return ex;
    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    {   /* src/flb_lib.c names the engine thread "flb-pipeline"; workers "flb-out-..." */
        char name[16] = "";
        ex->engine = pthread_getname_np(pthread_self(), name, sizeof(name)) == 0 &&
                     strcmp(name, "flb-pipeline") == 0;
    }
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->cv, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SHIM_EXEC_STACK);
    if (pthread_create(&ex->thread, &attr, executor_main, ex) != 0) {
        pthread_attr_destroy(&attr);
        free(ex);
        return NULL;
    }
    pthread_attr_destroy(&attr);
    pthread_setname_np(ex->thread, "flbsql-flush");
    pthread_setspecific(exec_key, ex);
    return ex;
}

/* ------------------------------------------------------------------------- */
/* default workers (docs/fluent-bit-abi.md section 8.2)                       */
/* ------------------------------------------------------------------------- */

/*
 * Fluent Bit gives a proxy output no workers (flb_proxy_register_output copies only
 * the flags), so its flushes hold the engine thread. Its own setter,
 * flb_output_set_property(ins, "workers", v), is exported (ENABLE_EXPORTS) and stores
 * the count in an int of the instance: run it on scratch memory to learn where, read the
 * operator's count there, and only when it is 0 set ours, as a core plugin's `.workers`.
 * The scratch instance points every field at a zeroed block (its config, its plugin,
 * config->env), which is all the setter reads on its way to "workers" (4.1, 5.1).
 */
typedef int (*shim_set_prop_fn)(void *ins, const char *key, const char *val);

#define SHIM_PROBE_BYTES (64u << 10)

/* the offset of the count in an instance, or -1 */
static long shim_probe_workers(shim_set_prop_fn set)
{
    void **scratch = malloc(SHIM_PROBE_BYTES), **pristine = malloc(SHIM_PROBE_BYTES);
    void *zero = calloc(1, SHIM_PROBE_BYTES);
    const char *vals[2] = {"1907", "2113"};
    long found = -1;
    size_t i, w, words = SHIM_PROBE_BYTES / sizeof(int);

    if (!scratch || !pristine || !zero)
        goto out;
    for (i = 0; i < SHIM_PROBE_BYTES / sizeof(void *); i++)
        pristine[i] = zero;
    for (i = 0; i < 2; i++) {
        long at = -1;
        memcpy(scratch, pristine, SHIM_PROBE_BYTES);
        if (set(scratch, "workers", vals[i]) != 0)
            goto fail;
        for (w = 0; w < words; w++) {   /* exactly one int changed, to the value */
            if (((int *) scratch)[w] == ((int *) pristine)[w])
                continue;
            if (at >= 0 || ((int *) scratch)[w] != atoi(vals[i]))
                goto fail;
            at = (long) (w * sizeof(int));
        }
        if (at < 0 || (i == 1 && at != found))
            goto fail;
        found = at;
    }
    goto out;
fail:
    found = -1;
out:
    free(scratch);
    free(pristine);
    free(zero);
    return found;
}

static long shim_workers_at = -2;   /* -2: not probed yet (Init runs on the main thread) */

/*
 * For Python, at Init: the instance's worker count, after setting it to `want` when the
 * operator set none (0); -1 when this host does not let us read it.
 */
static int shim_output_workers(void *ins, int want)
{
    shim_set_prop_fn set = (shim_set_prop_fn) dlsym(RTLD_DEFAULT, "flb_output_set_property");
    char buf[16];
    int *count;

    if (!set || !ins)
        return -1;
    if (shim_workers_at == -2)
        shim_workers_at = shim_probe_workers(set);
    if (shim_workers_at < 0)
        return -1;
    count = (int *) ((char *) ins + shim_workers_at);
    if (*count == 0 && want > 0) {
        snprintf(buf, sizeof(buf), "%d", want);
        if (set(ins, "workers", buf) != 0 || *count != want)
            return -1;
    }
    return *count;
}

CFFI_DLLEXPORT int FLBPluginInit(void *plugin)
{
    struct flbgo_output_plugin *p = plugin;
    void *handle = NULL;
    int rc;

    if (!p || !p->context)
        return FLB_ERROR;
    if (shim_boot_python(p->api, shim_get_property(SHIM_KIND, p->api, p->o_ins, "python")))
        return FLB_ERROR;
    rc = py_output_init(p->api, p->o_ins, &handle);
    if (rc != FLB_OK || !handle)
        return FLB_ERROR;
    p->context->remote_context = handle;
    return FLB_OK;
}

CFFI_DLLEXPORT int FLBPluginFlushCtx(void *ctx, const void *data, size_t size, char *tag)
{
    struct executor *ex = executor_get();
    struct log_line *l, *next;
    int rc;

    if (!ex) {
        shim_log_c(NULL, FLB_LOG_ERROR, "no flush executor thread", "retrying the chunk");
        return FLB_RETRY;
    }
    /* we run on Fluent Bit's small coroutine stack: do nothing here but hand off */
    pthread_mutex_lock(&ex->mu);
    ex->ctx = ctx;
    ex->data = data;
    ex->size = size;
    ex->tag = tag;
    ex->state = 1;
    pthread_cond_broadcast(&ex->cv);
    while (ex->state != 2)
        pthread_cond_wait(&ex->cv, &ex->mu);
    ex->state = 0;
    rc = ex->result;
    l = ex->logs;
    ex->logs = NULL;
    pthread_mutex_unlock(&ex->mu);

    for (; l; l = next) {   /* replay lines on this thread, which has the log context */
        next = l->next;
        shim_emit(l->api, l->level, l->text);
        free(l);
    }
    return (rc == FLB_OK || rc == FLB_RETRY) ? rc : FLB_ERROR;
}

CFFI_DLLEXPORT int FLBPluginExitCtx(void *ctx)
{
    if (ctx)
        (void) py_output_exit(ctx);
    return FLB_OK;
}

#else
/* ------------------------------------------------------------------------- */
/* inputs: every call comes on the instance's own thread, normal stack        */
/* ------------------------------------------------------------------------- */

/* Exit/Pause/Resume get no context: the instance whose Init ran on this thread */
static __thread void *tls_input_ctx;

enum { EV_PAUSE = 1, EV_RESUME = 2, EV_PRE_EXIT = 3, EV_EXIT = 4 };

CFFI_DLLEXPORT int FLBPluginInit(void *plugin)
{
    struct flbgo_input_plugin *p = plugin;
    void *handle = NULL;
    int rc;

    if (!p || !p->context)
        return FLB_ERROR;
    if (shim_boot_python(p->api, shim_get_property(SHIM_KIND, p->api, p->i_ins, "python")))
        return FLB_ERROR;
    rc = py_input_init(p->api, p->i_ins, &handle);
    if (rc != FLB_OK || !handle)
        return FLB_ERROR;
    p->context->remote_context = handle;
    tls_input_ctx = handle;
    return FLB_OK;
}

CFFI_DLLEXPORT int FLBPluginInputCallbackCtx(void *ctx, void **data, size_t *size)
{
    int rc;

    *data = NULL;
    *size = 0;
    if (!ctx)
        return -1;
    rc = py_input_collect(ctx, data, size);
    if (rc == -1 || *size == 0) {   /* Fluent Bit frees nothing in these cases */
        free(*data);
        *data = NULL;
        *size = 0;
        return rc == -1 ? -1 : 0;
    }
    return 0;
}

CFFI_DLLEXPORT int FLBPluginInputCleanupCallbackCtx(void *ctx, void *data)
{
    int rc = ctx ? py_input_cleanup(ctx) : -1;   /* Fluent Bit took the batch */

    free(data);
    return rc;
}

CFFI_DLLEXPORT void FLBPluginInputPause(void)
{
    if (tls_input_ctx)
        py_input_event(tls_input_ctx, EV_PAUSE);
}

CFFI_DLLEXPORT void FLBPluginInputResume(void)
{
    if (tls_input_ctx)
        py_input_event(tls_input_ctx, EV_RESUME);
}

CFFI_DLLEXPORT void FLBPluginInputPreExit(int hot_reload)
{
    (void) hot_reload;
    if (tls_input_ctx)
        py_input_event(tls_input_ctx, EV_PRE_EXIT);
}

CFFI_DLLEXPORT int FLBPluginExit(void)
{
    if (tls_input_ctx) {
        py_input_event(tls_input_ctx, EV_EXIT);
        tls_input_ctx = NULL;
    }
    return FLB_OK;
}
#endif
