/*
 * flbsql_abi.h - the Fluent Bit "Go proxy" plugin ABI, as Fluent Bit itself lays it out.
 *
 * Mirrors (fluent/fluent-bit, v4.1.0 .. v5.1.1):
 *   include/fluent-bit/flb_plugin_proxy.h   struct flb_plugin_proxy_def, *_proxy_context
 *   include/fluent-bit/flb_api.h            struct flb_api
 *   src/proxy/go/go.h                       struct flbgo_output_plugin / flbgo_input_plugin
 * and fluent/fluent-bit-go output/flb_plugin.h, except where fluent-bit-go is wrong:
 * its input header puts remote_context at offset 0; Fluent Bit has it at offset 8.
 * See docs/fluent-bit-abi.md §2-§4 for the facts behind every field.
 */
#ifndef FLBSQL_ABI_H
#define FLBSQL_ABI_H

#include <stddef.h>

/* return codes (flb_macros.h) */
#define FLB_ERROR 0
#define FLB_OK    1
#define FLB_RETRY 2

/* proxy types (flb_plugin_proxy.h); GOLANG is the only proxy Fluent Bit implements */
#define FLB_PROXY_INPUT_PLUGIN  1
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG        11

/* log levels (flb_log.h) */
#define FLB_LOG_OFF   0
#define FLB_LOG_ERROR 1
#define FLB_LOG_WARN  2
#define FLB_LOG_INFO  3
#define FLB_LOG_DEBUG 4
#define FLB_LOG_TRACE 5

/*
 * Filled by FLBPluginRegister. Only the first 32 bytes exist before v4.2.3 (malloc'd),
 * so the shim never writes event_type or config_map: zero (calloc, 4.2.3+) means logs.
 */
struct flb_plugin_proxy_def {
    int type;            /*  0 */
    int proxy;           /*  4 */
    int flags;           /*  8 */
    char *name;          /* 16 strdup'ed by Fluent Bit */
    char *description;   /* 24 pointer kept: must stay valid for the process lifetime */
};

struct flb_api {
    const char *(*output_get_property)(const char *key, void *o_ins);
    const char *(*input_get_property)(const char *key, void *i_ins);
    void *(*output_get_cmt_instance)(void *o_ins);
    void *(*input_get_cmt_instance)(void *i_ins);
    void (*log_print)(int level, const char *file, int line, const char *fmt, ...);
    int (*input_log_check)(void *i_ins, int level);
    int (*output_log_check)(void *o_ins, int level);
    /* v4.0.3+: custom_get_property, custom_log_check (unused here) */
};

struct flb_plugin_proxy_context {          /* per OUTPUT instance */
    void *remote_context;                  /* 0: ours */
    void *proxy;                           /* 8: Fluent Bit's */
};

struct flb_plugin_input_proxy_context {    /* per INPUT instance, v4.1.0+ layout */
    int coll_fd;                           /* 0 */
    void *remote_context;                  /* 8: ours */
    void *proxy;                           /* 16: Fluent Bit's */
};

struct flbgo_output_plugin {               /* one per loaded .so, NOT per instance */
    char *name;
    struct flb_api *api;
    void *o_ins;                           /* valid for the current Init only */
    struct flb_plugin_proxy_context *context;
    void *cb_init, *cb_flush, *cb_flush_ctx, *cb_exit, *cb_exit_ctx;
};

struct flbgo_input_plugin {                /* one per loaded .so, NOT per instance */
    char *name;
    struct flb_api *api;
    void *i_ins;                           /* valid for the current Init only */
    struct flb_plugin_input_proxy_context *context;
    void *cb_init, *cb_collect, *cb_collect_ctx, *cb_cleanup, *cb_cleanup_ctx, *cb_exit;
};

#define FLBSQL_STATIC_ASSERT(c, m) _Static_assert(c, m)
FLBSQL_STATIC_ASSERT(offsetof(struct flb_plugin_proxy_def, description) == 24, "def layout");
FLBSQL_STATIC_ASSERT(offsetof(struct flb_api, log_print) == 32, "flb_api layout");
FLBSQL_STATIC_ASSERT(offsetof(struct flb_api, output_log_check) == 48, "flb_api layout");
FLBSQL_STATIC_ASSERT(offsetof(struct flb_plugin_input_proxy_context, remote_context) == 8,
                     "input context layout (v4.1.0+)");
FLBSQL_STATIC_ASSERT(offsetof(struct flbgo_output_plugin, context) == 24, "go output layout");
FLBSQL_STATIC_ASSERT(offsetof(struct flbgo_input_plugin, context) == 24, "go input layout");

#endif
