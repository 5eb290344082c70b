/*
 * harness.c: drives out_trailwatch.so the way Fluent Bit's Go proxy does,
 * without Fluent Bit.
 *
 *   go run ./plugin/harness/chunks -o bin/harness_chunks.h
 *   gcc -O2 -Wall -Wextra -Ibin -o bin/harness plugin/harness/harness.c \
 *       -ldl -lpthread
 *   bin/harness bin/out_trailwatch.so conf/rules [bin/trailwatch]
 *
 * It needs no MessagePack library: the chunks it flushes are written by Go
 * (plugin/harness/chunks, with the project's encoder) into
 * bin/harness_chunks.h, and what comes back through the forward protocol is
 * read by the small reader under "reading MessagePack" below.
 *
 * The last part is a crash test (see crash_test): a child process (this
 * program, --crash-child) flushes chunks through the plugin and is killed
 * with SIGKILL, 25 times over one state file; the state file, read with the
 * trailwatch CLI (the third argument, by default trailwatch beside the
 * harness), must then agree with the alert file. HARNESS_CRASH_SEED repeats a
 * run's random choices, HARNESS_CRASH_ROUNDS changes the number of rounds (a
 * 25 s budget still bounds them).
 *
 * What it emulates (read from Fluent Bit 5.1's src/flb_plugin_proxy.c,
 * src/proxy/go/go.c and include/fluent-bit/flb_api.h; nothing copied):
 *
 *   - dlopen(RTLD_LAZY); FLBPluginPreRegister(hot_reloading) when exported;
 *     FLBPluginRegister(def) on a zeroed definition;
 *   - per [OUTPUT] instance, FLBPluginInit(plugin) where plugin is the go.c
 *     layout {name, api, o_ins, context, callbacks...}, api is laid out like
 *     struct flb_api and context is a {remote_context, proxy} pair that the
 *     plugin fills; init fails when it returns <= 0;
 *   - FLBPluginFlushCtx(remote_context, data, size, tag) with a NUL-ended
 *     copy of the tag; FLBPluginExitCtx(remote_context) at exit;
 *   - on hot reload: dlclose, dlopen again, register and init again.
 *
 * Properties that Fluent Bit's core consumes itself (alias, log_level, match,
 * ...) are not visible through output_get_property, so they are not given.
 *
 * The plugin writes its log to fd 2; the harness points fd 2 at a file in its
 * temporary directory so that it can check log lines, and prints that log
 * when a check fails. Its own report goes to stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Fluent Bit's side of the ABI (layouts as Fluent Bit defines them) ---- */

#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define PROXY_OUTPUT_PLUGIN 2
#define PROXY_GOLANG 11

/* struct flb_plugin_proxy_def (Fluent Bit's full layout; the Go side only
 * writes the first five fields). */
struct proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

/* struct flb_api: field order is Fluent Bit's ABI. */
struct flb_api_view {
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

/* struct flb_plugin_proxy_context */
struct proxy_context {
    void *remote_context;
    void *proxy;
};

/* struct flbgo_output_plugin (go.h): the plugin sees the first four. */
struct go_output_plugin {
    char *name;
    void *api;
    void *o_ins;
    struct proxy_context *context;
    int (*cb_init)(struct go_output_plugin *);
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};

/* ---- report ---- */

static int n_pass, n_fail;
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;

static int check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int cond, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&report_mu);
    fputs(cond ? "ok - " : "not ok - ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    if (cond)
        n_pass++;
    else
        n_fail++;
    pthread_mutex_unlock(&report_mu);
    return cond;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&report_mu);
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&report_mu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char tmpdir[512];
static char logpath[PATH_MAX];

/* What the watchdog (SIGALRM) is timing, and the crash test's child to kill
 * when it fires. */
static const char *volatile watchdog_what = "the harness";
static volatile int watchdog_secs = 60;
static volatile pid_t crash_child_pid;

static void on_alarm(int sig)
{
    char buf[512];
    int n;
    (void)sig;
    if (crash_child_pid > 0)
        kill(crash_child_pid, SIGKILL);
    n = snprintf(buf, sizeof buf,
                 "not ok - watchdog: %s did not finish within %d s (plugin log: %s)\n"
                 "%d passed, %d failed\n", watchdog_what, watchdog_secs, logpath, n_pass, n_fail + 1);
    if (n > 0)
        (void)!write(1, buf, (size_t)n);
    _exit(3);
}

/* ---- the plugin's log (fd 2 points at logpath) ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = (long)fread(buf, 1, (size_t)n, f);
    buf[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static size_t log_mark(void)
{
    struct stat st;
    if (stat(logpath, &st) != 0)
        return 0;
    return (size_t)st.st_size;
}

/* Copies into out the first log line after offset since that contains a and
 * (when not NULL) b. Returns 1 when found. */
static int log_find(size_t since, const char *a, const char *b, char *out, size_t outlen)
{
    size_t len = 0;
    char *buf = read_file(logpath, &len), *p, *nl;
    int found = 0;
    if (!buf)
        return 0;
    if (since > len)
        since = len;
    for (p = buf + since; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p);
        if (memmem(p, (size_t)(nl - p), a, strlen(a)) &&
            (!b || memmem(p, (size_t)(nl - p), b, strlen(b)))) {
            if (out && outlen) {
                size_t n = (size_t)(nl - p) < outlen - 1 ? (size_t)(nl - p) : outlen - 1;
                memcpy(out, p, n);
                out[n] = 0;
            }
            found = 1;
            break;
        }
        if (!*nl)
            break;
    }
    free(buf);
    return found;
}

static int log_count(size_t since, const char *a)
{
    size_t len = 0;
    char *buf = read_file(logpath, &len), *p;
    int n = 0;
    if (!buf)
        return 0;
    if (since > len)
        since = len;
    for (p = buf + since; (p = strstr(p, a)) != NULL; p += strlen(a))
        n++;
    free(buf);
    return n;
}

static void dump_log(void)
{
    char *buf = read_file(logpath, NULL), *p, *nl;
    if (!buf)
        return;
    printf("# ---- plugin log (%s) ----\n", logpath);
    for (p = buf; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) {
            printf("# | %s\n", p);
            break;
        }
        printf("# | %.*s\n", (int)(nl - p), p);
    }
    printf("# ---- end of plugin log ----\n");
    fflush(stdout);
    free(buf);
}

/* ---- the fake output instance and Fluent Bit's API functions ---- */

#define MAXPROP 12

struct fake_ins {
    int nprops;
    const char *key[MAXPROP];
    char *val[MAXPROP];
    int log_level; /* Fluent Bit's: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace */
};

static void set_prop(struct fake_ins *ins, const char *k, const char *v)
{
    int i;
    for (i = 0; i < ins->nprops; i++) {
        if (strcmp(ins->key[i], k) == 0) { /* a second set replaces */
            free((void *)ins->val[i]);
            ins->val[i] = strdup(v);
            return;
        }
    }
    if (ins->nprops < MAXPROP) {
        ins->key[ins->nprops] = k;
        ins->val[ins->nprops] = strdup(v);
        ins->nprops++;
    }
}

static const char *api_output_get_property(const char *key, void *o_ins)
{
    struct fake_ins *ins = o_ins;
    int i;
    if (!ins || !key)
        return NULL;
    for (i = 0; i < ins->nprops; i++)
        if (strcasecmp(ins->key[i], key) == 0)
            return ins->val[i];
    return NULL;
}

static const char *api_input_get_property(const char *key, void *i_ins)
{
    (void)key;
    (void)i_ins;
    return NULL;
}

static void *api_get_cmt_instance(void *ins)
{
    (void)ins;
    return NULL;
}

static void api_log_print(int type, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[harness log_print type=%d %s:%d] ", type, file ? file : "?", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int api_input_log_check(void *ins, int l)
{
    (void)ins;
    return l <= 3;
}

static int api_output_log_check(void *o_ins, int l)
{
    struct fake_ins *ins = o_ins;
    return ins ? l <= ins->log_level : 0;
}

static const char *api_custom_get_property(const char *key, void *ins)
{
    (void)key;
    (void)ins;
    return NULL;
}

static int api_custom_log_check(void *ins, int l)
{
    (void)ins;
    (void)l;
    return 0;
}

static struct flb_api_view flb_api = {
    api_output_get_property, api_input_get_property, api_get_cmt_instance, api_get_cmt_instance,
    api_log_print, api_input_log_check, api_output_log_check, api_custom_get_property,
    api_custom_log_check,
};

/* ---- loading the plugin ---- */

struct plugin {
    void *h;
    int (*pre_register)(int);
    int (*reg)(struct proxy_def *);
    int (*init)(struct go_output_plugin *);
    int (*flush)(const void *, size_t, const char *);
    int (*flush_ctx)(void *, const void *, size_t, char *);
    int (*exit_all)(void);
    int (*exit_ctx)(void *);
    void (*unregister)(struct proxy_def *);
    struct proxy_def def;
    char *name; /* copies of what FLBPluginRegister returned */
};

static struct plugin P;

static void *sym(void *h, const char *name)
{
    void *s;
    dlerror();
    s = dlsym(h, name);
    if (dlerror() != NULL)
        return NULL;
    return s;
}

#define SYM(field, name) (*(void **)(&(field)) = sym(P.h, name))

/* dlopen + dlsym + (pre)register, as flb_plugin_proxy_create and
 * proxy_go_output_register do. Returns 1 when the plugin is usable. */
static int load_plugin(const char *path, int hot_reloading, const char *when)
{
    int ret, ok = 1;

    P.h = dlopen(path, RTLD_LAZY);
    if (!check(P.h != NULL, "%s: dlopen(%s, RTLD_LAZY)%s%s", when, path, P.h ? "" : ": ",
               P.h ? "" : dlerror()))
        return 0;
    SYM(P.pre_register, "FLBPluginPreRegister");
    SYM(P.reg, "FLBPluginRegister");
    SYM(P.init, "FLBPluginInit");
    SYM(P.flush, "FLBPluginFlush");
    SYM(P.flush_ctx, "FLBPluginFlushCtx");
    SYM(P.exit_all, "FLBPluginExit");
    SYM(P.exit_ctx, "FLBPluginExitCtx");
    SYM(P.unregister, "FLBPluginUnregister");
    ok &= check(P.reg && P.init && P.flush_ctx && P.exit_ctx && P.exit_all,
                "%s: exports FLBPluginRegister, FLBPluginInit, FLBPluginFlushCtx, FLBPluginExitCtx, "
                "FLBPluginExit (missing:%s%s%s%s%s)", when, P.reg ? "" : " Register",
                P.init ? "" : " Init", P.flush_ctx ? "" : " FlushCtx", P.exit_ctx ? "" : " ExitCtx",
                P.exit_all ? "" : " Exit");
    if (!ok)
        return 0;
    if (P.pre_register) {
        ret = P.pre_register(hot_reloading);
        ok &= check(ret != -1, "%s: FLBPluginPreRegister(%d) returned %d", when, hot_reloading, ret);
    } else {
        note("%s: FLBPluginPreRegister not exported (optional)", when);
    }

    memset(&P.def, 0, sizeof P.def);
    ret = P.reg(&P.def);
    ok &= check(ret == 0, "%s: FLBPluginRegister returned %d (want 0)", when, ret);
    ok &= check(P.def.type == PROXY_OUTPUT_PLUGIN && P.def.proxy == PROXY_GOLANG,
                "%s: registered as type %d (want 2, output), proxy %d (want 11, Go)", when,
                P.def.type, P.def.proxy);
    ok &= check(P.def.name && strcmp(P.def.name, "trailwatch") == 0,
                "%s: registered name \"%s\" (want \"trailwatch\")", when,
                P.def.name ? P.def.name : "(null)");
    check(P.def.description && *P.def.description, "%s: registered a description (\"%s\")", when,
          P.def.description ? P.def.description : "(null)");
    return ok;
}

/* Releases the registration, as Fluent Bit's destroy path does (it calls
 * FLBPluginUnregister when exported; the strings are the plugin's malloc). */
static void unload_plugin(void)
{
    if (P.unregister) {
        P.unregister(&P.def);
    } else {
        free(P.def.name);
        free(P.def.description);
    }
    P.def.name = P.def.description = NULL;
    if (P.h)
        dlclose(P.h);
    P.h = NULL;
}

/* ---- instances ---- */

struct inst {
    const char *label;
    char db[PATH_MAX];
    struct fake_ins ins;
    struct proxy_context ctx;
    struct go_output_plugin plug;
    int up;
    char name[128]; /* the plugin's instance name, read from its log */
    long exp_records, exp_malformed, exp_alerts;
};

static const char *rules_dir;
static const char *P_so;
static int fwd_port;

static void inst_setup(struct inst *in, const char *label, const char *db, const char *tag)
{
    char addr[64];
    memset(in, 0, sizeof *in);
    in->label = label;
    snprintf(in->db, sizeof in->db, "%s", db);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", fwd_port);
    in->ins.log_level = 3; /* info */
    set_prop(&in->ins, "rules", rules_dir);
    set_prop(&in->ins, "db", db);
    set_prop(&in->ins, "alert_forward", addr);
    set_prop(&in->ins, "alert_tag", tag);
    set_prop(&in->ins, "exit_timeout", "10s");
}

static void inst_free(struct inst *in)
{
    int i;
    for (i = 0; i < in->ins.nprops; i++)
        free(in->ins.val[i]);
    in->ins.nprops = 0;
}

/* FLBPluginInit as proxy_go_output_init calls it. Returns its result. */
static int inst_init(struct inst *in, double *secs)
{
    int ret;
    double t0;
    in->ctx.remote_context = NULL;
    in->ctx.proxy = &P; /* Fluent Bit's flb_plugin_proxy; opaque to the plugin */
    memset(&in->plug, 0, sizeof in->plug);
    in->plug.name = P.def.name;
    in->plug.api = &flb_api;
    in->plug.o_ins = &in->ins;
    in->plug.context = &in->ctx;
    in->plug.cb_init = P.init;
    in->plug.cb_flush = P.flush;
    in->plug.cb_flush_ctx = P.flush_ctx;
    in->plug.cb_exit = P.exit_all;
    in->plug.cb_exit_ctx = P.exit_ctx;
    t0 = now_s();
    ret = P.init(&in->plug);
    if (secs)
        *secs = now_s() - t0;
    in->up = ret > 0;
    return ret;
}

/* The name the plugin logs this instance under, from its start line
 * "... state <db>, ...". */
static void inst_learn_name(struct inst *in, size_t since)
{
    char line[1024], needle[PATH_MAX + 16], *a, *b;
    snprintf(needle, sizeof needle, "state %s,", in->db);
    in->name[0] = 0;
    if (!log_find(since, needle, NULL, line, sizeof line))
        return;
    a = strstr(line, "[output:trailwatch:");
    if (!a)
        return;
    a += strlen("[output:trailwatch:");
    b = strchr(a, ']');
    if (!b)
        return;
    snprintf(in->name, sizeof in->name, "%.*s", (int)(b - a), a);
}

/* ---- chunks ---- */

/* An alert a chunk must make: the event, the rule, the event's action and
 * the instance that flushes it (1, 2, or 4: the reloaded one). */
struct harness_alert {
    const char *event_id;
    const char *rule_id;
    const char *action;
    int inst;
};

/* A chunk in Fluent Bit's format and what it holds: good records (read and
 * evaluated), malformed records (counted and skipped) and group markers
 * (skipped, not records). */
struct harness_chunk {
    const char *what;
    const unsigned char *data;
    size_t size;
    long good, malformed, groups;
    const struct harness_alert *alerts;
    int n_alerts;
};

/* hc_* chunks, RULE_QUERY and RULE_NEWTERMS, the crash test's event
 * template and the listener self-test's messages, written by
 * plugin/harness/chunks. */
#include "harness_chunks.h"

/* ---- expected alerts ---- */

struct expect {
    char event_id[96];
    char rule_id[64];
    char action[64];
    int inst;  /* 1, 2 or 4 (the reloaded one) */
    int phase; /* 1: first chunks, 2: after the failed inits, 3: after reload */
};

#define MAXEXP 64
static struct expect exps[MAXEXP];
static int n_exps;
static int cur_phase = 1;

static void expect(const char *event_id, const char *rule, const char *action, int inst)
{
    if (n_exps < MAXEXP) {
        struct expect *e = &exps[n_exps++];
        snprintf(e->event_id, sizeof e->event_id, "%s", event_id);
        snprintf(e->rule_id, sizeof e->rule_id, "%s", rule);
        snprintf(e->action, sizeof e->action, "%s", action);
        e->inst = inst;
        e->phase = cur_phase;
    }
}

/* The alerts chunk c must make, expected from the current phase on. */
static void expect_chunk(const struct harness_chunk *c)
{
    int i;
    for (i = 0; i < c->n_alerts; i++)
        expect(c->alerts[i].event_id, c->alerts[i].rule_id, c->alerts[i].action, c->alerts[i].inst);
}

/* ---- reading MessagePack: what the plugin sends to the forward listener ----
 *
 * Just enough of the format (github.com/msgpack/msgpack/blob/master/spec.md)
 * to read forward-protocol messages: mp_read() reads one whole object, its
 * header and, for an array or a map, every element after it, and says where
 * it ends; an array's or a map's elements are read again one by one from
 * its body. */

enum { MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

struct mp {
    int type;   /* MP_*: an integer that is not negative is MP_UINT, whatever its format */
    int ext;    /* MP_EXT: the extension type */
    uint32_t n; /* MP_STR, MP_BIN, MP_EXT: bytes of the payload; MP_ARRAY: elements; MP_MAP: pairs */
    const unsigned char *start, *body, *next; /* the object is [start, next); body: the payload or the first element */
};

#define MP_MAXDEPTH 32

static uint64_t mp_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    while (n--)
        v = v << 8 | *p++;
    return v;
}

/* Reads the object at [p, end). Returns 1 and fills *o; 0 when the bytes
 * end inside the object; -1 when they are not MessagePack (the byte 0xc1)
 * or nest deeper than MP_MAXDEPTH. */
static int mp_read_at(const unsigned char *p, const unsigned char *end, struct mp *o, int depth)
{
    size_t avail = (size_t)(end - p), hdr = 1, lenw = 0; /* header bytes; bytes of its length field */
    uint64_t len = 0, i, items = 0;
    const unsigned char *q;
    unsigned b;
    int r;

    if (avail < 1)
        return 0;
    if (depth > MP_MAXDEPTH)
        return -1;
    memset(o, 0, sizeof *o);
    o->start = p;
    b = p[0];
    if (b <= 0x7f) {
        o->type = MP_UINT;
    } else if (b <= 0x8f) {
        o->type = MP_MAP, len = b & 0x0f;
    } else if (b <= 0x9f) {
        o->type = MP_ARRAY, len = b & 0x0f;
    } else if (b <= 0xbf) {
        o->type = MP_STR, len = b & 0x1f;
    } else if (b >= 0xe0) {
        o->type = MP_INT;
    } else if (b == 0xc0) {
        o->type = MP_NIL;
    } else if (b == 0xc2 || b == 0xc3) {
        o->type = MP_BOOL;
    } else if (b >= 0xc4 && b <= 0xc6) { /* bin 8, 16, 32 */
        o->type = MP_BIN, lenw = (size_t)1 << (b - 0xc4);
    } else if (b >= 0xc7 && b <= 0xc9) { /* ext 8, 16, 32: length, then type */
        o->type = MP_EXT, lenw = (size_t)1 << (b - 0xc7), hdr = 1 + lenw + 1;
    } else if (b == 0xca || b == 0xcb) { /* float 32, 64 */
        o->type = MP_FLOAT, hdr = b == 0xca ? 5 : 9;
    } else if (b >= 0xcc && b <= 0xd3) { /* uint 8..64, int 8..64 */
        hdr = 1 + ((size_t)1 << ((b - 0xcc) & 3));
        o->type = b <= 0xcf || (avail > 1 && !(p[1] & 0x80)) ? MP_UINT : MP_INT;
    } else if (b >= 0xd4 && b <= 0xd8) { /* fixext 1, 2, 4, 8, 16 */
        o->type = MP_EXT, hdr = 2, len = (uint64_t)1 << (b - 0xd4);
    } else if (b >= 0xd9 && b <= 0xdb) { /* str 8, 16, 32 */
        o->type = MP_STR, lenw = (size_t)1 << (b - 0xd9);
    } else if (b == 0xdc || b == 0xdd) { /* array 16, 32 */
        o->type = MP_ARRAY, lenw = b == 0xdc ? 2 : 4;
    } else if (b == 0xde || b == 0xdf) { /* map 16, 32 */
        o->type = MP_MAP, lenw = b == 0xde ? 2 : 4;
    } else {
        return -1; /* 0xc1: never used */
    }
    if (lenw && o->type != MP_EXT)
        hdr = 1 + lenw;
    if (avail < hdr)
        return 0;
    if (lenw)
        len = mp_be(p + 1, lenw);
    if (o->type == MP_EXT)
        o->ext = (signed char)p[hdr - 1];
    o->body = p + hdr;
    o->n = (uint32_t)len;
    switch (o->type) {
    case MP_STR:
    case MP_BIN:
    case MP_EXT:
        if (len > avail - hdr)
            return 0;
        o->next = o->body + len;
        return 1;
    case MP_ARRAY:
    case MP_MAP:
        items = o->type == MP_MAP ? 2 * len : len;
        for (q = o->body, i = 0; i < items; i++) {
            struct mp e;
            if ((r = mp_read_at(q, end, &e, depth + 1)) != 1)
                return r;
            q = e.next;
        }
        o->next = q;
        return 1;
    default:
        o->next = p + hdr;
        return 1;
    }
}

static int mp_read(const unsigned char *p, const unsigned char *end, struct mp *o)
{
    return mp_read_at(p, end, o, 0);
}

/* The value of key in map m (read whole by mp_read). Returns 1 when found. */
static int mp_get(const struct mp *m, const char *key, struct mp *val)
{
    const unsigned char *q;
    size_t n = strlen(key);
    uint32_t i;
    struct mp k;
    if (m->type != MP_MAP)
        return 0;
    for (q = m->body, i = 0; i < m->n; i++, q = val->next) {
        if (mp_read(q, m->next, &k) != 1 || mp_read(k.next, m->next, val) != 1)
            return 0;
        if (k.type == MP_STR && k.n == n && memcmp(k.body, key, n) == 0)
            return 1;
    }
    return 0;
}

/* Copies the string o into dst ("" when o is not a string). */
static void copy_str(char *dst, size_t dstlen, const struct mp *o)
{
    size_t n;
    dst[0] = 0;
    if (o->type != MP_STR)
        return;
    n = o->n < dstlen - 1 ? o->n : dstlen - 1;
    memcpy(dst, o->body, n);
    dst[n] = 0;
}

/* Copies the string under key in map m into dst ("" when there is none). */
static void copy_member(char *dst, size_t dstlen, const struct mp *m, const char *key)
{
    struct mp v;
    dst[0] = 0;
    if (mp_get(m, key, &v))
        copy_str(dst, dstlen, &v);
}

/* ---- the forward listener ---- */

struct rx {
    char tag[160];
    char rule_id[64];
    char uuid[64];
    char action[64];
    char event_id[96];
    int mode; /* 1 message, 2 forward, 3 packed forward */
};

#define MAXRX 256
static struct rx rxs[MAXRX];
static int n_rx, n_rx_dropped;
static long n_msgs, n_msgs_chunk, n_acks, n_proto_err, n_bad_time, n_conns;
static char proto_err[256];
static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;

static int listen_fd = -1;
static volatile int stopping;
#define MAXCONN 64
static pthread_t conn_threads[MAXCONN];
static int n_conn_threads;
static pthread_t accept_thread;

static void proto_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void proto_error(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&rx_mu);
    if (n_proto_err++ == 0) {
        va_start(ap, fmt);
        vsnprintf(proto_err, sizeof proto_err, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&rx_mu);
}

static int valid_time(const struct mp *t)
{
    if (t->type == MP_UINT)
        return 1;
    if (t->type == MP_EXT && t->ext == 0 && t->n == 8)
        return 1;
    return 0;
}

static void take_entry(const char *tag, const struct mp *t, const struct mp *rec, int mode)
{
    struct rx r;
    struct mp event;
    if (!valid_time(t)) {
        pthread_mutex_lock(&rx_mu);
        n_bad_time++;
        pthread_mutex_unlock(&rx_mu);
    }
    if (rec->type != MP_MAP) {
        proto_error("record of tag %s is not a map (type %d)", tag, rec->type);
        return;
    }
    memset(&r, 0, sizeof r);
    snprintf(r.tag, sizeof r.tag, "%s", tag);
    r.mode = mode;
    copy_member(r.rule_id, sizeof r.rule_id, rec, "kibana.alert.rule.rule_id");
    copy_member(r.uuid, sizeof r.uuid, rec, "kibana.alert.uuid");
    if (mp_get(rec, "event", &event)) {
        copy_member(r.action, sizeof r.action, &event, "action");
        copy_member(r.event_id, sizeof r.event_id, &event, "id");
    }
    pthread_mutex_lock(&rx_mu);
    if (n_rx < MAXRX)
        rxs[n_rx++] = r;
    else
        n_rx_dropped++;
    pthread_mutex_unlock(&rx_mu);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Acknowledges a message: {"ack": <its option's chunk, as sent>}. */
static void send_ack(int fd, const struct mp *chunk)
{
    static const char head[] = "\x81\xa3" "ack"; /* a map of one pair; the key, a 3-byte string */
    size_t n = (size_t)(chunk->next - chunk->start);
    char *buf = malloc(sizeof head - 1 + n);
    if (!buf) {
        proto_error("writing an ack: out of memory");
        return;
    }
    memcpy(buf, head, sizeof head - 1);
    memcpy(buf + sizeof head - 1, chunk->start, n);
    if (send_all(fd, buf, sizeof head - 1 + n) == 0) {
        pthread_mutex_lock(&rx_mu);
        n_acks++;
        pthread_mutex_unlock(&rx_mu);
    } else {
        proto_error("writing an ack: %s", strerror(errno));
    }
    free(buf);
}

/* The entries [time, record] of a Forward mode array or a PackedForward
 * payload: n of them from p, or (n < 0) as many as there are up to end. */
static void take_entries(const char *tag, const unsigned char *p, const unsigned char *end, long n, int mode)
{
    struct mp e, t, rec;
    long i;
    for (i = 0; n < 0 ? p < end : i < n; i++, p = e.next) {
        if (mp_read(p, end, &e) != 1) {
            proto_error("%s mode entries do not unpack", mode == 2 ? "Forward" : "PackedForward");
            return;
        }
        if (e.type != MP_ARRAY || e.n != 2 || mp_read(e.body, e.next, &t) != 1 || mp_read(t.next, e.next, &rec) != 1) {
            proto_error("%s mode entry is not [time, record]", mode == 2 ? "Forward" : "PackedForward");
            continue;
        }
        take_entry(tag, &t, &rec, mode);
    }
}

/* One forward-protocol message: Message, Forward or PackedForward mode. */
static void take_message(int fd, const struct mp *o)
{
    struct mp a[4], opt, chunk;
    const unsigned char *q;
    int have_opt = 0;
    char tag[160];
    uint32_t n, i;

    pthread_mutex_lock(&rx_mu);
    n_msgs++;
    pthread_mutex_unlock(&rx_mu);
    if (o->type != MP_ARRAY || o->n < 2 || o->n > 4) {
        proto_error("message is not an array of 2 to 4 (type %d)", o->type);
        return;
    }
    n = o->n;
    for (q = o->body, i = 0; i < n; q = a[i].next, i++)
        if (mp_read(q, o->next, &a[i]) != 1)
            return; /* cannot happen: o was read whole */
    if (a[0].type != MP_STR) {
        proto_error("message tag is not a string");
        return;
    }
    copy_str(tag, sizeof tag, &a[0]);

    if (a[1].type == MP_ARRAY) { /* Forward: [tag, [[time, record], ...], option?] */
        if (n > 3) {
            proto_error("Forward mode message of %u elements", n);
            return;
        }
        take_entries(tag, a[1].body, a[1].next, a[1].n, 2);
        if (n == 3)
            opt = a[2], have_opt = 1;
    } else if (a[1].type == MP_STR || a[1].type == MP_BIN) {
        /* PackedForward: [tag, <concatenated [time, record]>, option?] */
        if (n > 3) {
            proto_error("PackedForward mode message of %u elements", n);
            return;
        }
        if (n == 3)
            opt = a[2], have_opt = 1;
        if (have_opt && mp_get(&opt, "compressed", &chunk))
            proto_error("CompressedPackedForward is not supported by the harness");
        else
            take_entries(tag, a[1].body, a[1].body + a[1].n, -1, 3);
    } else { /* Message: [tag, time, record, option?] */
        if (n < 3) {
            proto_error("Message mode message of %u elements", n);
            return;
        }
        take_entry(tag, &a[1], &a[2], 1);
        if (n == 4)
            opt = a[3], have_opt = 1;
    }

    if (have_opt) {
        if (opt.type != MP_MAP) {
            proto_error("option is not a map");
            return;
        }
        if (mp_get(&opt, "chunk", &chunk)) {
            pthread_mutex_lock(&rx_mu);
            n_msgs_chunk++;
            pthread_mutex_unlock(&rx_mu);
            send_ack(fd, &chunk);
        }
    }
}

static void *conn_loop(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 64 * 1024, len = 0, off;
    unsigned char *buf = malloc(cap), *grown;
    if (!buf) {
        proto_error("out of memory for a connection's buffer");
        close(fd);
        return NULL;
    }
    while (!stopping) {
        struct pollfd p = {fd, POLLIN, 0};
        struct mp msg;
        ssize_t n;
        int pr = poll(&p, 1, 100), r = 0;
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (cap - len < 16 * 1024) { /* a message longer than the buffer: grow it */
            if (cap >= 64 * 1024 * 1024 || !(grown = realloc(buf, 2 * cap))) {
                proto_error("a message of more than %zu bytes", len);
                break;
            }
            buf = grown;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the plugin closed the connection */
        len += (size_t)n;
        for (off = 0; off < len && (r = mp_read(buf + off, buf + len, &msg)) == 1; off = (size_t)(msg.next - buf))
            take_message(fd, &msg);
        if (r < 0) {
            proto_error("the stream does not unpack (byte %zu of what was buffered)", off);
            break;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
    }
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    while (!stopping) {
        struct pollfd p = {listen_fd, POLLIN, 0};
        int fd, pr = poll(&p, 1, 100);
        if (pr <= 0)
            continue;
        fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&rx_mu);
        n_conns++;
        if (n_conn_threads < MAXCONN &&
            pthread_create(&conn_threads[n_conn_threads], NULL, conn_loop, (void *)(intptr_t)fd) == 0) {
            n_conn_threads++;
            pthread_mutex_unlock(&rx_mu);
        } else {
            pthread_mutex_unlock(&rx_mu);
            proto_error("cannot serve connection %ld", n_conns);
            close(fd);
        }
    }
    return NULL;
}

static int listener_start(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0)
        return -1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(listen_fd, 16) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    fwd_port = ntohs(sa.sin_port);
    if (pthread_create(&accept_thread, NULL, accept_loop, NULL) != 0)
        return -1;
    return 0;
}

static void listener_stop(void)
{
    int i, n;
    stopping = 1;
    pthread_join(accept_thread, NULL);
    pthread_mutex_lock(&rx_mu);
    n = n_conn_threads;
    pthread_mutex_unlock(&rx_mu);
    for (i = 0; i < n; i++)
        pthread_join(conn_threads[i], NULL);
    close(listen_fd);
}

/* ---- listener self-test: Forward and PackedForward mode (the plugin's
 * client only uses Message mode), then a Message without option ---- */

static int read_ack(int fd, const char *want)
{
    unsigned char buf[256];
    size_t have = 0;
    struct mp ack;
    char got[64];
    while (have < sizeof buf) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (mp_read(buf, buf + have, &ack) != 0) {
            copy_member(got, sizeof got, &ack, "ack");
            return strcmp(got, want) == 0;
        }
    }
    return 0;
}

static void listener_selftest(void)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    int fd, ack1 = 0, ack2 = 0, i, modes[4] = {0, 0, 0, 0};
    double t0;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)fwd_port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        check(0, "listener self-test: connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* Forward: [tag, [[EventTime, rec], [int, rec]], {"chunk": "self-c1"}] */
    ack1 = send_all(fd, (const char *)hc_selftest_forward, sizeof hc_selftest_forward) == 0 &&
           read_ack(fd, "self-c1");
    /* PackedForward: [tag, bin(<[t, rec]><[t, rec]>), {"size": 2, "chunk": "self-c2"}] */
    ack2 = send_all(fd, (const char *)hc_selftest_packed, sizeof hc_selftest_packed) == 0 &&
           read_ack(fd, "self-c2");
    /* Message without option: no ack */
    send_all(fd, (const char *)hc_selftest_message, sizeof hc_selftest_message);

    t0 = now_s();
    for (;;) {
        pthread_mutex_lock(&rx_mu);
        i = n_rx;
        pthread_mutex_unlock(&rx_mu);
        if (i >= 5 || now_s() - t0 > 5.0)
            break;
        sleep_ms(10);
    }
    close(fd);
    pthread_mutex_lock(&rx_mu);
    for (i = 0; i < n_rx; i++)
        if (strcmp(rxs[i].tag, "harness.selftest") == 0)
            modes[rxs[i].mode & 3]++;
    check(ack1 && ack2 && modes[1] == 1 && modes[2] == 2 && modes[3] == 2 && n_rx == 5 && n_proto_err == 0 &&
              n_bad_time == 0 && n_acks == 2,
          "listener self-test: Forward (2 entries, acked %s), PackedForward (2 entries, acked %s), Message "
          "without option (%d/%d/%d records; %ld protocol errors)", ack1 ? "yes" : "no", ack2 ? "yes" : "no",
          modes[2], modes[3], modes[1], n_proto_err);
    /* start counting from the plugin's first message */
    n_rx = 0;
    n_msgs = n_msgs_chunk = n_acks = n_bad_time = n_proto_err = n_conns = 0;
    proto_err[0] = 0;
    pthread_mutex_unlock(&rx_mu);
}

/* ---- checking alerts ---- */

static int rx_count(const char *event_id, const char *rule_id)
{
    int i, n = 0;
    pthread_mutex_lock(&rx_mu);
    for (i = 0; i < n_rx; i++)
        if (strcmp(rxs[i].event_id, event_id) == 0 && strcmp(rxs[i].rule_id, rule_id) == 0)
            n++;
    pthread_mutex_unlock(&rx_mu);
    return n;
}

/* Waits until every expected alert of phases <= phase has arrived. */
static int wait_expected(int phase, double timeout, double *took)
{
    double t0 = now_s();
    int i, missing;
    for (;;) {
        missing = 0;
        for (i = 0; i < n_exps; i++)
            if (exps[i].phase <= phase && rx_count(exps[i].event_id, exps[i].rule_id) == 0)
                missing++;
        if (missing == 0 || now_s() - t0 > timeout)
            break;
        sleep_ms(20);
    }
    if (took)
        *took = now_s() - t0;
    return missing;
}

static const char *want_tag(int inst, const char *rule_id, char *buf, size_t n)
{
    if (inst == 2)
        snprintf(buf, n, "alert.trailwatch");
    else
        snprintf(buf, n, "alert.trailwatch.%s", rule_id);
    return buf;
}

static const char *rule_short(const char *rule_id)
{
    return strcmp(rule_id, RULE_QUERY) == 0 ? "query" : strcmp(rule_id, RULE_NEWTERMS) == 0 ? "new_terms" : rule_id;
}

/* Exactly the expected alerts of instance inst, each once, under its tag. */
static void check_instance_alerts(int inst, const char *label)
{
    int i, j, want = 0, got = 0, exact = 1;
    char tagbuf[160];
    pthread_mutex_lock(&rx_mu);
    for (i = 0; i < n_exps; i++) {
        struct expect *e = &exps[i];
        int n = 0, tag_ok = 1, action_ok = 1;
        if (e->inst != inst)
            continue;
        want++;
        want_tag(inst, e->rule_id, tagbuf, sizeof tagbuf);
        for (j = 0; j < n_rx; j++) {
            if (strcmp(rxs[j].event_id, e->event_id) || strcmp(rxs[j].rule_id, e->rule_id))
                continue;
            n++;
            if (strcmp(rxs[j].tag, tagbuf) != 0)
                tag_ok = 0;
            if (strcmp(rxs[j].action, e->action) != 0)
                action_ok = 0;
        }
        if (n == 1 && tag_ok && action_ok) {
            got++;
            continue;
        }
        exact = 0;
        pthread_mutex_unlock(&rx_mu);
        check(0, "%s: alert %s for event %s: received %d time(s)%s%s (want once, tag %s, event.action %s)",
              label, rule_short(e->rule_id), e->event_id, n, tag_ok ? "" : ", wrong tag",
              action_ok ? "" : ", wrong event.action", tagbuf, e->action);
        pthread_mutex_lock(&rx_mu);
    }
    pthread_mutex_unlock(&rx_mu);
    check(exact && got == want, "%s: exactly the %d expected alerts arrived, each once, tags %s, right event.action",
          label, want, inst == 2 ? "alert.trailwatch" : "alert.trailwatch.<rule_id>");
}

/* Every received alert was expected (no alert for non-matching, malformed,
 * group-marker or panicked events, nor from the wrong instance), uuids are
 * set and distinct. */
static void check_no_unexpected(const char *when)
{
    int i, j, unexpected = 0, dup_uuid = 0, no_uuid = 0;
    pthread_mutex_lock(&rx_mu);
    for (j = 0; j < n_rx; j++) {
        int known = 0;
        for (i = 0; i < n_exps; i++)
            if (strcmp(rxs[j].event_id, exps[i].event_id) == 0 && strcmp(rxs[j].rule_id, exps[i].rule_id) == 0)
                known = 1;
        if (!known) {
            unexpected++;
            printf("# unexpected alert: tag %s rule %s event.id %s event.action %s uuid %s\n", rxs[j].tag,
                   rxs[j].rule_id, rxs[j].event_id, rxs[j].action, rxs[j].uuid);
        }
        if (!rxs[j].uuid[0])
            no_uuid++;
        for (i = 0; i < j; i++)
            if (rxs[j].uuid[0] && strcmp(rxs[i].uuid, rxs[j].uuid) == 0)
                dup_uuid++;
    }
    fflush(stdout);
    pthread_mutex_unlock(&rx_mu);
    check(unexpected == 0, "%s: no alert for non-matching, failed, malformed, group-marker or panicked events "
          "(%d unexpected)", when, unexpected);
    check(no_uuid == 0 && dup_uuid == 0, "%s: every alert has a distinct kibana.alert.uuid (%d missing, %d duplicated)",
          when, no_uuid, dup_uuid);
}

/* Each instance alerted only on its own chunks: instance 2's events (i2-*)
 * only under alert.trailwatch, instance 1's and the reloaded instance's only
 * under alert.trailwatch.<rule_id>. */
static void check_cross(void)
{
    int j, wrong = 0;
    pthread_mutex_lock(&rx_mu);
    for (j = 0; j < n_rx; j++) {
        int is2 = strncmp(rxs[j].event_id, "i2-", 3) == 0;
        int plain = strcmp(rxs[j].tag, "alert.trailwatch") == 0;
        if (is2 != plain)
            wrong++;
    }
    pthread_mutex_unlock(&rx_mu);
    check(wrong == 0, "each instance alerted only on its own chunks (%d alerts under the other instance's tag)", wrong);
}

static int rx_has_event(const char *event_id)
{
    int j, n = 0;
    pthread_mutex_lock(&rx_mu);
    for (j = 0; j < n_rx; j++)
        if (strcmp(rxs[j].event_id, event_id) == 0)
            n++;
    pthread_mutex_unlock(&rx_mu);
    return n;
}

/* The "stopped: N records, M alerts, K malformed records" line. */
static void check_stopped_line(struct inst *in, size_t since)
{
    char line[1024], who[192];
    long rec = -1, al = -1, mal = -1;
    const char *p;
    if (!in->name[0]) {
        check(0, "%s: found its start line in the plugin log (to learn its instance name)", in->label);
        return;
    }
    snprintf(who, sizeof who, "[output:trailwatch:%s]", in->name);
    if (!log_find(since, who, "stopped:", line, sizeof line)) {
        check(0, "%s: logged a \"stopped:\" line at exit", in->label);
        return;
    }
    p = strstr(line, "stopped:");
    if (sscanf(p, "stopped: %ld records, %ld alerts, %ld malformed records", &rec, &al, &mal) != 3) {
        check(0, "%s: unreadable stopped line: %s", in->label, line);
        return;
    }
    check(mal == in->exp_malformed, "%s: plugin counted %ld malformed records (want %ld)", in->label, mal,
          in->exp_malformed);
    check(rec == in->exp_records, "%s: plugin counted %ld records (want %ld: group markers are not records)",
          in->label, rec, in->exp_records);
    check(al == in->exp_alerts, "%s: plugin counted %ld alerts (want %ld)", in->label, al, in->exp_alerts);
}

/* ---- flushing ---- */

static int flush_chunk(struct inst *in, const struct harness_chunk *c, const char *tag)
{
    char *t = strdup(tag); /* Fluent Bit hands a NUL-ended copy */
    int ret = P.flush_ctx(in->ctx.remote_context, c->data, c->size, t);
    free(t);
    if (ret == FLB_OK) {
        in->exp_records += c->good + c->malformed;
        in->exp_malformed += c->malformed;
    }
    return ret;
}

struct flush_job {
    struct inst *in;
    const struct harness_chunk *const *chunks;
    const char **tags;
    int n;
    int rets[8];
};

static void *flush_worker(void *arg)
{
    struct flush_job *j = arg;
    int i;
    for (i = 0; i < j->n; i++)
        j->rets[i] = flush_chunk(j->in, j->chunks[i], j->tags[i]);
    return NULL;
}

/* ---- panic probes: a child process with TRAILWATCH_INDUCE_PANIC set in
 * its environment before the plugin loads ---- */

extern char **environ;

/* Child side. Exit status 0: the callback returned FLB_ERROR; 10 + r: it
 * returned r; 20: setup failed. */
static int probe_main(const char *where, const char *so)
{
    struct inst in;
    char db[PATH_MAX];
    int r;

    alarm(20);
    P.h = dlopen(so, RTLD_LAZY);
    if (!P.h)
        return 20;
    SYM(P.reg, "FLBPluginRegister");
    SYM(P.init, "FLBPluginInit");
    SYM(P.flush, "FLBPluginFlush");
    SYM(P.flush_ctx, "FLBPluginFlushCtx");
    SYM(P.exit_all, "FLBPluginExit");
    SYM(P.exit_ctx, "FLBPluginExitCtx");
    if (!P.reg || !P.init || !P.flush_ctx || !P.exit_ctx || P.reg(&P.def) != 0)
        return 20;
    snprintf(db, sizeof db, "%s/probe-%s.db", tmpdir, where);
    inst_setup(&in, "probe", db, "alert.trailwatch");
    r = inst_init(&in, NULL);
    if (strcmp(where, "init") == 0)
        return r == FLB_ERROR ? 0 : 10 + r;
    if (r != FLB_OK)
        return 20;
    if (strcmp(where, "flush") == 0) {
        r = flush_chunk(&in, &hc_probe, "aws.cloudtrail");
        return r == FLB_ERROR ? 0 : 10 + r;
    }
    r = P.exit_ctx(in.ctx.remote_context);
    return r == FLB_ERROR ? 0 : 10 + r;
}

static void run_probe(const char *where, const char *callback)
{
    char *args[8], portbuf[16], envvar[64], **env;
    size_t n = 0, i;
    pid_t pid;
    int status = 0, done = 0;
    size_t mark = log_mark();
    double t0 = now_s();

    for (i = 0; environ[i]; i++)
        n++;
    env = calloc(n + 2, sizeof *env);
    n = 0;
    for (i = 0; environ[i]; i++)
        if (strncmp(environ[i], "TRAILWATCH_INDUCE_PANIC=", 24) != 0)
            env[n++] = environ[i];
    snprintf(envvar, sizeof envvar, "TRAILWATCH_INDUCE_PANIC=%s", where);
    env[n++] = envvar;
    env[n] = NULL;
    snprintf(portbuf, sizeof portbuf, "%d", fwd_port);
    args[0] = (char *)"harness";
    args[1] = (char *)"--panic-probe";
    args[2] = (char *)where;
    args[3] = (char *)P_so;
    args[4] = (char *)rules_dir;
    args[5] = tmpdir;
    args[6] = portbuf;
    args[7] = NULL;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, env) != 0) {
        free(env);
        check(0, "start a child process for the %s panic probe: %s", where, strerror(errno));
        return;
    }
    free(env);
    while (now_s() - t0 < 25.0) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = 1;
            break;
        }
        sleep_ms(20);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        check(0, "TRAILWATCH_INDUCE_PANIC=%s at load (child process): %s did not return within 25 s", where, callback);
        return;
    }
    if (WIFSIGNALED(status)) {
        check(0, "TRAILWATCH_INDUCE_PANIC=%s at load (child process): the process died of signal %d in %s", where,
              WTERMSIG(status), callback);
        return;
    }
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && log_find(mark, "panic in", callback, NULL, 0),
          "TRAILWATCH_INDUCE_PANIC=%s at load (child process): %s returned %s (want 0), panic %slogged, process "
          "survived", where, callback,
          WEXITSTATUS(status) == 0 ? "0" : WEXITSTATUS(status) == 20 ? "(setup failed)"
                                          : WEXITSTATUS(status) == 11 ? "1" : WEXITSTATUS(status) == 12 ? "2" : "?",
          log_find(mark, "panic in", callback, NULL, 0) ? "" : "not ");
}

/* ---- crash test: a child process flushes chunks through the plugin and is
 * killed with SIGKILL at a random moment, many times over one state file and
 * one alert file; after each kill the state file and the alert file must
 * agree ----
 *
 * The invariant: every term recorded in the state file has its alert either
 * delivered to alert_file or still waiting in the outbox, and no alert is for
 * an unrecorded term. The outbox is not exported, so after each kill the
 * parent starts an instance on the same state file in-process (its sinks
 * drain the outbox into alert_file; FLBPluginExitCtx waits up to
 * exit_timeout for them) and stops it; then `trailwatch db stats` must show
 * an empty outbox, and `trailwatch db export`'s terms must be exactly the
 * ARNs of the alerts in alert_file. An alert may be there more than once
 * (delivered, then the kill came before the outbox was told): counted, not a
 * failure; the same ARN under two kibana.alert.uuid values is a failure (a
 * term made new twice). The rule is the bundled new_terms rule with its
 * max_signals raised (see crash_rule_copy). */

#define CRASH_ROUNDS 25
#define CRASH_BUDGET 25.0 /* seconds: no round starts after this */
#define CRASH_MAXN (1 << 20)
#define CRASH_ARN HC_CRASH_ARN_PREFIX /* then the ARN's number, zero-padded */

struct crash_progress {
    uint32_t flushes, records;
};

static uint64_t crash_rand(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* The crash instance's properties: rules, db=<dir>/state.db,
 * alert_file=<dir>/alerts.ndjson, exit_timeout=1s. */
static void crash_setup(struct inst *in, const char *label, const char *rules, const char *dir)
{
    char path[PATH_MAX];
    memset(in, 0, sizeof *in);
    in->label = label;
    snprintf(in->db, sizeof in->db, "%s/state.db", dir);
    in->ins.log_level = 3; /* info */
    set_prop(&in->ins, "rules", rules);
    set_prop(&in->ins, "db", in->db);
    snprintf(path, sizeof path, "%s/alerts.ndjson", dir);
    set_prop(&in->ins, "alert_file", path);
    set_prop(&in->ins, "exit_timeout", "1s");
}

/* Writes v in decimal, zero-padded, into the width bytes at p. Returns 0
 * when it does not fit. */
static int put_digits(unsigned char *p, int width, unsigned long v)
{
    int i;
    for (i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (unsigned char)('0' + v % 10);
    return v == 0;
}

/* Writes at e a crash test event (hc_crash_event: a CloudTrail record that
 * the bundled new_terms rule fires on when its ARN is new) with ARN number
 * num and eventID crash-r<round>-p<pid>-c<chunk>-e<entry>. Returns 0 when a
 * number does not fit its field. */
static int crash_event(unsigned char *e, int round, unsigned chunk, int entry, unsigned long num)
{
    memcpy(e, hc_crash_event, sizeof hc_crash_event);
    return put_digits(e + HC_CRASH_ARN_AT, HC_CRASH_ARN_DIGITS, num) &&
           put_digits(e + HC_CRASH_ROUND_AT, HC_CRASH_ROUND_DIGITS, (unsigned long)round) &&
           put_digits(e + HC_CRASH_PID_AT, HC_CRASH_PID_DIGITS, (unsigned long)getpid()) &&
           put_digits(e + HC_CRASH_CHUNK_AT, HC_CRASH_CHUNK_DIGITS, chunk) &&
           put_digits(e + HC_CRASH_ENTRY_AT, HC_CRASH_ENTRY_DIGITS, (unsigned long)entry);
}

/* Child side: loads the plugin, inits one instance and flushes chunks of 1 to
 * 200 v2 events (hc_crash_event) until it is killed, writing a struct
 * crash_progress to fd 3 after each flush. ARN numbers are drawn from a space
 * that starts at space0 (1 + the highest ARN number the parent knows) and
 * grows by two a record: a quarter uniformly over the whole space (mostly
 * known: not new), the rest near its growing top (mostly new: an alert
 * each). Exit status 20: setup failed; 30 + r: a FlushCtx returned r (not
 * 1). */
static int crash_child_main(const char *so, const char *rules, const char *dir, unsigned long space0,
                            unsigned long seed, int round)
{
    static struct inst in;
    struct crash_progress pr = {0, 0};
    unsigned long space = space0 + 16;
    uint64_t rs = seed ? seed : 88172645463325252ULL;
    static unsigned char buf[200 * sizeof hc_crash_event];
    int r, i, n;

    alarm(60); /* the parent kills it long before; PR_SET_PDEATHSIG covers the parent dying */
    P.h = dlopen(so, RTLD_LAZY);
    if (!P.h) {
        fprintf(stderr, "[harness crash child] dlopen %s: %s\n", so, dlerror());
        return 20;
    }
    SYM(P.reg, "FLBPluginRegister");
    SYM(P.init, "FLBPluginInit");
    SYM(P.flush, "FLBPluginFlush");
    SYM(P.flush_ctx, "FLBPluginFlushCtx");
    SYM(P.exit_all, "FLBPluginExit");
    SYM(P.exit_ctx, "FLBPluginExitCtx");
    if (!P.reg || !P.init || !P.flush_ctx || !P.exit_ctx || P.reg(&P.def) != 0) {
        fprintf(stderr, "[harness crash child] the plugin did not register\n");
        return 20;
    }
    crash_setup(&in, "crash child", rules, dir);
    r = inst_init(&in, NULL);
    if (r != FLB_OK) {
        fprintf(stderr, "[harness crash child] FLBPluginInit returned %d\n", r);
        return 20;
    }
    for (;;) {
        struct harness_chunk c = {"a crash test chunk", buf, 0, 0, 0, 0, NULL, 0};
        n = 1 + (int)(crash_rand(&rs) % 200);
        for (i = 0; i < n; i++) {
            unsigned long num, w = space < 64 ? space : 64;
            if (crash_rand(&rs) % 4 == 0)
                num = (unsigned long)(crash_rand(&rs) % space);
            else
                num = space - 1 - (unsigned long)(crash_rand(&rs) % w);
            if (!crash_event(buf + (size_t)i * sizeof hc_crash_event, round, pr.flushes, i, num)) {
                fprintf(stderr, "[harness crash child] round %d, pid %ld, chunk %u or ARN number %lu does not fit "
                        "the event's digits\n", round, (long)getpid(), pr.flushes, num);
                return 20;
            }
            if (space + 2 <= CRASH_MAXN)
                space += 2;
        }
        c.size = (size_t)n * sizeof hc_crash_event;
        c.good = n;
        r = flush_chunk(&in, &c, "aws.cloudtrail");
        if (r != FLB_OK) {
            fprintf(stderr, "[harness crash child] FLBPluginFlushCtx returned %d (want 1) on chunk %u\n", r,
                    pr.flushes + 1);
            return 30 + (r >= 0 && r < 10 ? r : 9);
        }
        pr.flushes++;
        pr.records += (uint32_t)n;
        (void)!write(3, &pr, sizeof pr);
    }
}

/* Parent side. */

static const char *crash_cli;        /* bin/trailwatch */
static char crash_rules[PATH_MAX];   /* the crash test's copy of the new_terms rule */
static unsigned char *crash_recorded; /* [ARN number]: in the last export */
static int *crash_alerted;            /* [ARN number]: alert lines read so far */
static uint64_t *crash_uuid;          /* [ARN number]: hash of its first alert's kibana.alert.uuid */
static unsigned long crash_top;       /* 1 + the highest ARN number seen */
static long crash_alert_off;          /* alert_file read up to here (a line start) */
static long crash_alert_lines, crash_dup_lines, crash_joined, crash_unreadable, crash_foreign_alerts, crash_twice;
/* lines a kill cut short (a write stopped at a page boundary by SIGKILL),
 * ended by the next start's file sink; the alert is delivered again whole */
static long crash_cut;
static long crash_twice_example = -1;
static int crash_shrunk; /* alert_file got shorter than what was read */
static char crash_foreign_example[160];

static pid_t crash_spawn(const char *dir, const char *rules, unsigned long space0, unsigned long seed, int round,
                         int *rfd)
{
    int p[2];
    char a_space[32], a_seed[32], a_round[16], *args[9];
    pid_t pid, parent = getpid();

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    snprintf(a_space, sizeof a_space, "%lu", space0);
    snprintf(a_seed, sizeof a_seed, "%lu", seed);
    snprintf(a_round, sizeof a_round, "%d", round);
    args[0] = (char *)"harness";
    args[1] = (char *)"--crash-child";
    args[2] = (char *)P_so;
    args[3] = (char *)rules;
    args[4] = (char *)dir;
    args[5] = a_space;
    args[6] = a_seed;
    args[7] = a_round;
    args[8] = NULL;
    pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls until execve */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (p[1] == 3) {
            if (fcntl(3, F_SETFD, 0) != 0)
                _exit(127);
        } else if (dup2(p[1], 3) < 0) {
            _exit(127);
        }
        execve("/proc/self/exe", args, environ);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *rfd = p[0];
    return pid;
}

/* Reads what is in the progress pipe; keeps the last whole record. */
static ssize_t crash_read_progress(int fd, struct crash_progress *pr, unsigned char *carry, size_t *ncarry)
{
    unsigned char buf[4096 + sizeof *pr];
    ssize_t n;
    size_t have, off;
    memcpy(buf, carry, *ncarry);
    n = read(fd, buf + *ncarry, 4096);
    if (n <= 0)
        return n;
    have = *ncarry + (size_t)n;
    for (off = 0; off + sizeof *pr <= have; off += sizeof *pr)
        memcpy(pr, buf + off, sizeof *pr);
    *ncarry = have - off;
    memcpy(carry, buf + off, *ncarry);
    return n;
}

/* Runs the CLI with stdout to out_path and stderr to out_path.err. Returns its
 * exit status, or -1. */
static int crash_run_cli(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    char err_path[PATH_MAX];
    pid_t pid;
    int status = 0, r;
    snprintf(err_path, sizeof err_path, "%s.err", out_path);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    r = posix_spawn(&pid, crash_cli, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* The number after `"key":["` + CRASH_ARN in s, ended by `"]`; -1 if none. */
static long crash_arn_num(const char *s, const char *key)
{
    char want[128];
    const char *p;
    char *end;
    unsigned long n;
    snprintf(want, sizeof want, "\"%s\":[\"" CRASH_ARN, key);
    p = strstr(s, want);
    if (!p)
        return -1;
    p += strlen(want);
    if (*p < '0' || *p > '9')
        return -1;
    n = strtoul(p, &end, 10);
    if (end[0] != '"' || end[1] != ']' || n >= CRASH_MAXN)
        return -1;
    return (long)n;
}

/* Starts an instance on the state file in-process and stops it, until its
 * sinks have drained the outbox (at most 4 starts). waiting: the outbox
 * length its first start logged. Returns 1, or 0 with why. */
static int crash_drain(const char *dir, long *waiting, char *why, size_t whylen)
{
    static struct inst in;
    char line[1024];
    const char *p;
    size_t mark;
    double secs;
    int ret, attempt;

    *waiting = -1;
    for (attempt = 0; attempt < 4; attempt++) {
        crash_setup(&in, "crash check", crash_rules, dir);
        /* The checking instance may take longer to drain on a loaded
         * machine; the killed children keep 1s. */
        set_prop(&in.ins, "exit_timeout", "10s");
        mark = log_mark();
        ret = inst_init(&in, &secs);
        if (ret != FLB_OK) {
            snprintf(why, whylen, "FLBPluginInit on the killed child's state file returned %d (want 1) after %.2f s",
                     ret, secs);
            if (in.up)
                P.exit_ctx(in.ctx.remote_context);
            inst_free(&in);
            return 0;
        }
        if (attempt == 0 && log_find(mark, in.db, "alerts waiting in the outbox", line, sizeof line) &&
            (p = strstr(line, " alerts waiting in the outbox")) != NULL) {
            while (p > line && p[-1] >= '0' && p[-1] <= '9')
                p--;
            *waiting = atol(p);
        }
        ret = P.exit_ctx(in.ctx.remote_context);
        inst_free(&in);
        if (ret != FLB_OK) {
            snprintf(why, whylen, "FLBPluginExitCtx of the checking instance returned %d (want 1)", ret);
            return 0;
        }
        if (!log_find(mark, "not yet taken by the sinks", in.db, NULL, 0))
            return 1;
    }
    snprintf(why, whylen, "the outbox was not drained after 4 starts with exit_timeout 10s");
    return 0;
}

/* Reads alert_file from crash_alert_off up to its last newline. A line cut by
 * a kill mid-write has the next writer's line appended to it: the alert that
 * line ends with is read (the cut one is never acknowledged, so it is
 * written again later), and the line is counted as joined. */
static void crash_read_alerts(const char *path)
{
    static const char start[] = "{\"@timestamp\":";
    FILE *f = fopen(path, "rb");
    char *buf, *p, *nl, *last, *q;
    long size, n;
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size < crash_alert_off)
        crash_shrunk = 1;
    if (size <= crash_alert_off) {
        fclose(f);
        return;
    }
    buf = malloc((size_t)(size - crash_alert_off) + 1);
    if (!buf) {
        fclose(f);
        return;
    }
    fseek(f, crash_alert_off, SEEK_SET);
    n = (long)fread(buf, 1, (size_t)(size - crash_alert_off), f);
    fclose(f);
    buf[n] = 0;
    for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        long num;
        *nl = 0;
        last = NULL;
        for (q = p; (q = strstr(q, start)) != NULL; q++)
            last = q;
        if (!last) {
            crash_unreadable++;
            continue;
        }
        if (last != p) {
            crash_joined++;
            note("%s, byte %ld: a line holds %ld bytes of a cut alert (a kill mid-write) and then a whole one; "
                 "the whole one is counted, but an NDJSON reader would reject the line", path,
                 crash_alert_off + (long)(p - buf), (long)(last - p));
        }
        if (nl[-1] != '}') {
            crash_cut++;
            continue;
        }
        crash_alert_lines++;
        num = crash_arn_num(last, "kibana.alert.new_terms");
        if (num < 0 || !strstr(last, "\"kibana.alert.rule.rule_id\":\"" RULE_NEWTERMS "\"")) {
            if (crash_foreign_alerts++ == 0)
                snprintf(crash_foreign_example, sizeof crash_foreign_example, "%.150s", last);
            continue;
        }
        {
            /* FNV-1a of the uuid: an ARN's second line is the same alert
             * delivered again; another uuid would be a second alert, i.e. the
             * term made new twice */
            const char *u = strstr(last, "\"kibana.alert.uuid\":\"");
            uint64_t h = 1469598103934665603ULL;
            if (u)
                for (u += strlen("\"kibana.alert.uuid\":\""); *u && *u != '"'; u++)
                    h = (h ^ (unsigned char)*u) * 1099511628211ULL;
            if (crash_alerted[num]++ == 0) {
                crash_uuid[num] = h;
            } else if (crash_uuid[num] == h) {
                crash_dup_lines++;
            } else if (crash_twice++ == 0) {
                crash_twice_example = num;
            }
        }
        if ((unsigned long)num + 1 > crash_top)
            crash_top = (unsigned long)num + 1;
    }
    crash_alert_off += (long)(p - buf);
    free(buf);
}

/* One round's check. Returns the number of terms exported (-1 on failure). */
static long crash_check(int round, const char *dir, const char *what)
{
    char db[PATH_MAX], out[PATH_MAX], alerts[PATH_MAX], why[512], *buf, *p, *nl;
    char *stats_argv[] = {(char *)"trailwatch", (char *)"db", (char *)"stats", (char *)"--db", db, NULL};
    char *export_argv[] = {(char *)"trailwatch", (char *)"db", (char *)"export", (char *)"--db", db,
                           (char *)"--out", out, NULL};
    long waiting = -1, outbox = -1, dropped = -1, terms = 0, foreign = 0, missing = 0, unrecorded = 0;
    long ex_missing = -1, ex_unrec = -1;
    unsigned long i;
    int r;

    snprintf(db, sizeof db, "%s/state.db", dir);
    snprintf(alerts, sizeof alerts, "%s/alerts.ndjson", dir);
    if (!crash_drain(dir, &waiting, why, sizeof why)) {
        check(0, "crash round %d: %s (%s)", round, why, what);
        return -1;
    }

    snprintf(out, sizeof out, "%s/stats.txt", dir);
    r = crash_run_cli(stats_argv, out);
    buf = read_file(out, NULL);
    if (r == 0 && buf && (p = strstr(buf, " in the outbox")) != NULL) {
        char *c = p;
        while (c > buf && !(c[-1] == ' ' && c - 1 > buf && c[-2] == ','))
            c--;
        outbox = atol(c);
        if ((p = strstr(p, " dropped on a full outbox")) != NULL) {
            while (p > buf && p[-1] >= '0' && p[-1] <= '9')
                p--;
            dropped = atol(p);
        }
    }
    free(buf);
    if (outbox < 0) {
        check(0, "crash round %d: `%s db stats --db %s` exited %d with no outbox count (see %s)", round, crash_cli,
              db, r, out);
        return -1;
    }

    snprintf(out, sizeof out, "%s/export.ndjson", dir);
    r = crash_run_cli(export_argv, out);
    buf = r == 0 ? read_file(out, NULL) : NULL;
    if (!buf) {
        check(0, "crash round %d: `%s db export --db %s --out %s` exited %d", round, crash_cli, db, out, r);
        return -1;
    }
    memset(crash_recorded, 0, CRASH_MAXN);
    for (p = buf; *p; p = nl + 1) {
        long num;
        nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (*p) {
            terms++;
            num = crash_arn_num(p, "values");
            if (num < 0 || !strstr(p, "\"rule_id\":\"" RULE_NEWTERMS "\"")) {
                if (foreign++ == 0)
                    note("crash round %d: a term that is not one of the crash test's ARNs: %.200s", round, p);
            } else {
                crash_recorded[num] = 1;
                if ((unsigned long)num + 1 > crash_top)
                    crash_top = (unsigned long)num + 1;
            }
        }
        if (!nl)
            break;
    }
    free(buf);

    crash_read_alerts(alerts);
    for (i = 0; i < crash_top; i++) {
        if (crash_recorded[i] && !crash_alerted[i]) {
            if (missing++ == 0)
                ex_missing = (long)i;
        } else if (!crash_recorded[i] && crash_alerted[i]) {
            if (unrecorded++ == 0)
                ex_unrec = (long)i;
        }
    }
    if (crash_shrunk) {
        check(0, "crash round %d: %s got shorter than the %ld bytes already read (%s)", round, alerts, crash_alert_off,
              what);
        return -1;
    }
    if (missing == 0 && unrecorded == 0 && foreign == 0 && crash_foreign_alerts == 0 && outbox == 0 && dropped <= 0 &&
        crash_twice == 0) {
        check(1, "crash round %d: %ld terms, all with their alerts (%s; %ld alerts were waiting in the outbox at "
              "restart; %ld duplicate alert lines so far)", round, terms, what, waiting, crash_dup_lines);
    } else {
        check(0, "crash round %d: %ld terms, %ld without an alert (e.g. u%ld), %ld alerted ARNs not recorded "
              "(e.g. u%ld), %ld foreign terms, %ld foreign alert lines, outbox %ld after the drain, %ld alerts "
              "dropped on a full outbox, %ld ARNs alerted twice with different uuids (e.g. u%ld) (%s)", round, terms,
              missing, ex_missing, unrecorded, ex_unrec, foreign, crash_foreign_alerts, outbox, dropped, crash_twice,
              crash_twice_example, what);
        if (crash_foreign_alerts)
            note("a foreign alert line: %s", crash_foreign_example);
        return -1;
    }
    return terms;
}

/* Writes <dir>/rules/<file>: the bundled rule RULE_NEWTERMS from rules_dir
 * with its max_signals raised out of the way. The running plugin caps a
 * rule's alerts at max_signals an interval (100 a 5 minutes for this one,
 * as Kibana does); the terms past the cap are recorded without an alert by
 * design, which would hide a lost alert among them. Returns 1 when done. */
static int crash_rule_copy(const char *dir, char *why, size_t whylen)
{
    char path[PATH_MAX], out[PATH_MAX + 32], rdir[sizeof tmpdir + 32], *buf = NULL, *line, *nl;
    struct dirent *de;
    DIR *d = opendir(rules_dir);
    FILE *f;
    int raised = 0;

    if (!d) {
        snprintf(why, whylen, "open the rules folder %s: %s", rules_dir, strerror(errno));
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".toml") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", rules_dir, de->d_name);
        buf = read_file(path, NULL);
        if (buf && strstr(buf, "rule_id = \"" RULE_NEWTERMS "\""))
            break;
        free(buf);
        buf = NULL;
    }
    closedir(d);
    if (!buf) {
        snprintf(why, whylen, "no rule file in %s has rule_id %s", rules_dir, RULE_NEWTERMS);
        return 0;
    }
    snprintf(rdir, sizeof rdir, "%s/rules", dir);
    snprintf(out, sizeof out, "%s/%s", rdir, strrchr(path, '/') + 1);
    if ((mkdir(rdir, 0700) != 0 && errno != EEXIST) || !(f = fopen(out, "w"))) {
        snprintf(why, whylen, "write %s: %s", out, strerror(errno));
        free(buf);
        return 0;
    }
    for (line = buf; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line);
        if (strncmp(line, "max_signals", 11) == 0 && (line[11] == ' ' || line[11] == '=')) {
            fputs("max_signals = 100000000 # raised by the harness's crash test\n", f);
            raised = 1;
        } else {
            fprintf(f, "%.*s\n", (int)(nl - line), line);
        }
        if (!*nl)
            break;
    }
    free(buf);
    if (fclose(f) != 0 || !raised) {
        snprintf(why, whylen, "%s: %s", out, raised ? strerror(errno) : "no max_signals line to raise");
        return 0;
    }
    snprintf(crash_rules, sizeof crash_rules, "%s", rdir);
    note("crash test: rules=%s, a copy of %s with max_signals raised (past it the plugin records terms without "
         "alerting)", rdir, path);
    return 1;
}

static void crash_find_cli(const char *given, char *buf, size_t len)
{
    char self[PATH_MAX - 16];
    ssize_t n;
    char *slash;
    if (given) {
        snprintf(buf, len, "%s", given);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(buf, len, "trailwatch");
        return;
    }
    self[n] = 0;
    slash = strrchr(self, '/');
    if (slash)
        slash[1] = 0;
    snprintf(buf, len, "%strailwatch", slash ? self : "");
}

static void crash_test(const char *cli_arg)
{
    static char cli[PATH_MAX];
    char dir[sizeof tmpdir + 16], what[256];
    const char *env;
    unsigned long seed;
    uint64_t rs;
    long terms = 0, last_terms = 0;
    int round, rounds = CRASH_ROUNDS, mid_flush = 0, in_start = 0, done = 0;
    double t0 = now_s();

    crash_find_cli(cli_arg, cli, sizeof cli);
    crash_cli = cli;
    if (!check(access(cli, X_OK) == 0, "crash test: the trailwatch CLI %s is there (to export the state file)", cli))
        return;
    snprintf(dir, sizeof dir, "%s/crash", tmpdir);
    crash_recorded = calloc(CRASH_MAXN, 1);
    crash_alerted = calloc(CRASH_MAXN, sizeof *crash_alerted);
    crash_uuid = calloc(CRASH_MAXN, sizeof *crash_uuid);
    if (mkdir(dir, 0700) != 0 || !crash_recorded || !crash_alerted || !crash_uuid) {
        check(0, "crash test: set up %s: %s", dir, strerror(errno));
        return;
    }
    {
        char why[2 * PATH_MAX + 256];
        if (!crash_rule_copy(dir, why, sizeof why)) {
            check(0, "crash test: set up its rule: %s", why);
            return;
        }
    }
    if (!P.h || !P.init || !P.exit_ctx || !P.flush_ctx) {
        unload_plugin();
        if (!load_plugin(P_so, 1, "crash test"))
            return;
    }
    env = getenv("HARNESS_CRASH_SEED");
    seed = env && *env ? strtoul(env, NULL, 10) : (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
    env = getenv("HARNESS_CRASH_ROUNDS");
    if (env && atoi(env) > 0)
        rounds = atoi(env);
    rs = seed ? seed : 1;
    note("crash test: %d rounds of SIGKILL after 50-400 ms, in %s (HARNESS_CRASH_SEED=%lu repeats the random choices)", rounds, dir,
         seed);

    /* the watchdog: this part's own budget */
    alarm(0);
    watchdog_what = "the crash test";
    watchdog_secs = (int)CRASH_BUDGET + 60;
    alarm((unsigned)watchdog_secs);

    for (round = 1; round <= rounds; round++) {
        struct crash_progress pr = {0, 0};
        unsigned char carry[sizeof pr];
        size_t ncarry = 0;
        int rfd = -1, status = 0, exited = 0, kill_ms = 50 + (int)(crash_rand(&rs) % 351);
        double ts, t_kill;
        pid_t pid;

        if (now_s() - t0 > CRASH_BUDGET) {
            note("crash test: stopping after %d rounds (%.0f s budget spent)", round - 1, CRASH_BUDGET);
            break;
        }
        ts = now_s();
        pid = crash_spawn(dir, crash_rules, crash_top, (unsigned long)crash_rand(&rs), round, &rfd);
        if (pid < 0) {
            check(0, "crash round %d: start the child: %s", round, strerror(errno));
            break;
        }
        crash_child_pid = pid;
        t_kill = ts + kill_ms / 1000.0;
        for (;;) {
            struct pollfd pf = {rfd, POLLIN, 0};
            double left = t_kill - now_s();
            int ms;
            if (left <= 0)
                break;
            ms = (int)(left * 1000.0) + 1;
            if (ms > 20)
                ms = 20;
            if (poll(&pf, 1, ms) > 0)
                crash_read_progress(rfd, &pr, carry, &ncarry);
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = 1;
                break;
            }
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0); /* dead: its file lock is gone */
        }
        crash_child_pid = 0;
        while (crash_read_progress(rfd, &pr, carry, &ncarry) > 0) /* the rest, up to EOF */
            ;
        close(rfd);
        if (exited || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            check(0, "crash round %d: the child ended on its own before the kill: %s %d%s", round,
                  WIFSIGNALED(status) ? "signal" : "exit status", WIFSIGNALED(status) ? WTERMSIG(status) : code,
                  code == 20 ? " (setup or FLBPluginInit failed)"
                  : code >= 30 && code < 40 ? " (a FLBPluginFlushCtx did not return 1)" : "");
        }
        if (pr.flushes > 0)
            mid_flush++;
        else
            in_start++;
        snprintf(what, sizeof what, "killed after %d ms, %u chunks / %u records flushed", kill_ms, pr.flushes,
                 pr.records);
        terms = crash_check(round, dir, what);
        done++;
        if (terms < 0) {
            note("crash test: stopping at the first failed round (state kept in %s)", dir);
            break;
        }
        if (terms < last_terms)
            check(0, "crash round %d: the state file lost terms (%ld, was %ld)", round, terms, last_terms);
        last_terms = terms;
    }
    check(done > 0 && mid_flush > 0 && last_terms > 0,
          "crash test: %d rounds in %.1f s, %d kills after chunks were flushed, %d before the first FlushCtx "
          "returned; %ld terms, %ld alert lines "
          "(%ld duplicates, %ld lines joined to a line a kill cut, %ld lines a kill cut, %ld unreadable)", done,
          now_s() - t0, mid_flush, in_start, last_terms, crash_alert_lines, crash_dup_lines, crash_joined, crash_cut,
          crash_unreadable);
    free(crash_recorded);
    free(crash_alerted);
    free(crash_uuid);
    crash_recorded = NULL;
    crash_alerted = NULL;
    crash_uuid = NULL;
}

/* ---- main ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static long count_expected(int inst)
{
    long n = 0;
    int i;
    for (i = 0; i < n_exps; i++)
        if (exps[i].inst == inst)
            n++;
    return n;
}

int main(int argc, char **argv)
{
    static struct inst i1, i2, i3, i4, scratch, scratch2, dup;
    /* instance 1's chunks and instance 2's (the cases are in plugin/harness/chunks) */
    const struct harness_chunk *a[5] = {&hc_a1, &hc_a2, &hc_a3, &hc_a4, &hc_a5};
    const struct harness_chunk *b[2] = {&hc_b1, &hc_b2};
    const char *a_tags[5] = {"aws.cloudtrail", "aws.cloudtrail.v2", "aws.cloudtrail.mixed", "aws.cloudtrail.otlp",
                             "aws.cloudtrail"};
    const char *b_tags[2] = {"cloudtrail.eu", "cloudtrail.eu"};
    struct flush_job job2;
    pthread_t worker;
    char path[PATH_MAX], line[1024];
    double secs, took;
    size_t mark, mark_i1, mark_i2;
    int ret, i, fd, missing;
    const char *so, *cli_arg;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 7 && strcmp(argv[1], "--panic-probe") == 0) {
        P_so = argv[3];
        rules_dir = argv[4];
        snprintf(tmpdir, sizeof tmpdir, "%s", argv[5]);
        fwd_port = atoi(argv[6]);
        return probe_main(argv[2], argv[3]);
    }
    if (argc == 8 && strcmp(argv[1], "--crash-child") == 0) {
        P_so = argv[2];
        rules_dir = argv[3];
        return crash_child_main(argv[2], argv[3], argv[4], strtoul(argv[5], NULL, 10), strtoul(argv[6], NULL, 10),
                                atoi(argv[7]));
    }
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s out_trailwatch.so rules-folder [trailwatch-cli]\n"
                "  (the CLI exports the crash test's state file; default: trailwatch beside the harness)\n",
                argv[0]);
        return 2;
    }
    so = P_so = argv[1];
    rules_dir = argv[2];
    cli_arg = argc == 4 ? argv[3] : NULL;
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(60);

    snprintf(tmpdir, sizeof tmpdir, "%s/trailwatch-harness.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(logpath, sizeof logpath, "%s/plugin.log", tmpdir);
    fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || dup2(fd, 2) < 0) {
        perror("plugin log");
        return 2;
    }
    close(fd);
    note("temporary directory %s (plugin log in plugin.log)", tmpdir);

    ret = listener_start();
    if (!check(ret == 0, "forward listener on 127.0.0.1:%d", fwd_port)) {
        printf("%d passed, %d failed\n", n_pass, n_fail);
        return 1;
    }

    listener_selftest();

    /* 1-2. load and register */
    if (!load_plugin(so, 0, "load")) {
        printf("# the remaining checks need a loaded plugin: stopping\n");
        dump_log();
        printf("%d passed, %d failed\n", n_pass, n_fail + 1);
        return 1;
    }

    /* 3. two instances */
    snprintf(path, sizeof path, "%s/state1.db", tmpdir);
    inst_setup(&i1, "instance 1", path, "alert.trailwatch.{rule_id}");
    snprintf(path, sizeof path, "%s/state2.db", tmpdir);
    inst_setup(&i2, "instance 2", path, "alert.trailwatch");
    mark = log_mark();
    ret = inst_init(&i1, &secs);
    check(ret == FLB_OK, "instance 1: FLBPluginInit returned %d (want 1) in %.2f s", ret, secs);
    ret = inst_init(&i2, &secs);
    check(ret == FLB_OK, "instance 2: FLBPluginInit returned %d (want 1) in %.2f s", ret, secs);
    check(i1.ctx.remote_context && i2.ctx.remote_context && i1.ctx.remote_context != i2.ctx.remote_context,
          "each instance set its own remote_context (%p, %p)", i1.ctx.remote_context, i2.ctx.remote_context);
    inst_learn_name(&i1, mark);
    inst_learn_name(&i2, mark);
    check(i1.name[0] && i2.name[0] && strcmp(i1.name, i2.name) != 0,
          "both instances logged their start with distinct names (\"%s\", \"%s\")", i1.name, i2.name);
    mark_i1 = mark_i2 = mark;
    if (!i1.up || !i2.up) {
        printf("# the remaining checks need both instances: stopping\n");
        dump_log();
        printf("%d passed, %d failed\n", n_pass, n_fail + 1);
        return 1;
    }

    /* 5. chunks for instance 1: A1 legacy [ts, map] with EventTime; A2 v2
     * [[ts, meta], map] with integer time and group markers (one with a
     * CloudTrail body, never a record); A3 malformed records among good ones;
     * A4 v2 with group markers as Fluent Bit's encoder writes them. For
     * instance 2: B1 v2 with EventTime, B2 legacy with integer time. */
    for (i = 0; i < 4; i++)
        expect_chunk(a[i]);
    for (i = 0; i < 2; i++)
        expect_chunk(b[i]);

    /* Instance 2's chunks from another thread while instance 1's are flushed
     * (Fluent Bit flushes from its engine and worker threads). */
    memset(&job2, 0, sizeof job2);
    job2.in = &i2;
    job2.chunks = b;
    job2.tags = b_tags;
    job2.n = 2;
    if (pthread_create(&worker, NULL, flush_worker, &job2) != 0) {
        check(0, "start a flush thread for instance 2");
        flush_worker(&job2);
    } else {
        for (i = 0; i < 4; i++) {
            ret = flush_chunk(&i1, a[i], a_tags[i]);
            check(ret == FLB_OK, "instance 1: flush %s returned %d (want 1)", a[i]->what, ret);
        }
        pthread_join(worker, NULL);
    }
    for (i = 0; i < 2; i++)
        check(job2.rets[i] == FLB_OK, "instance 2: flush %s returned %d (want 1, flushed from another thread)",
              b[i]->what, job2.rets[i]);

    /* 6. the alerts */
    missing = wait_expected(1, 10.0, &took);
    check(missing == 0, "the %ld + %ld expected alerts of instances 1 and 2 arrived at the forward listener "
          "(%d missing after %.2f s)", count_expected(1), count_expected(2), missing, took);
    check(rx_count("i1-rp-alice", RULE_NEWTERMS) == 1 && rx_has_event("i1-rp-alice-again") == 0 &&
          rx_has_event("i1-rp-alice-later") == 0,
          "new_terms: one alert for alice's first PutResourcePolicy, none for her later ones (same chunk, next chunk)");
    check(rx_count("i1-delrp-bob", RULE_NEWTERMS) == 1 && rx_has_event("i1-rp-bob-failed") == 0,
          "new_terms: bob's failed call neither alerted nor made him known; his first success alerted");
    check(rx_count("i2-rp-alice", RULE_NEWTERMS) == 1,
          "new_terms: instance 2 keeps its own history (alice is new there)");
    check(rx_has_event("i1-group-int-start") == 0 && rx_has_event("i1-group-int-end") == 0,
          "group markers [[-1, meta], body] / [[-2, meta], body] with integer timestamps are skipped");
    check(rx_count("i1-ent-dave", RULE_QUERY) == 1 && rx_has_event("i1-group-ext-start") == 0 &&
              rx_has_event("i1-group-ext-end") == 0,
          "group markers as Fluent Bit 5 encodes them (EventTime seconds 0xFFFFFFFF / 0xFFFFFFFE) are skipped");
    check(rx_count("i1-agree-carol", RULE_QUERY) == 1 && rx_count("i1-rp-carol", RULE_NEWTERMS) == 1 &&
          rx_has_event("i1-malformed-ts") == 0 && rx_has_event("i1-malformed-arr3") == 0,
          "malformed chunk: the good records alerted, the malformed ones did not");

    /* 7. induced panics, the hook set with setenv() while the plugin is
     * loaded (read at call time, as the plugin documents it) */
    /* hc_panic: i1-panic, an event the query rule would fire on, must not be
     * evaluated */
    mark = log_mark();
    setenv("TRAILWATCH_INDUCE_PANIC", "flush", 1);
    ret = flush_chunk(&i1, &hc_panic, "aws.cloudtrail");
    unsetenv("TRAILWATCH_INDUCE_PANIC");
    check(ret == FLB_ERROR && log_find(mark, "panic in FLBPluginFlushCtx", NULL, NULL, 0),
          "setenv(TRAILWATCH_INDUCE_PANIC=flush): FLBPluginFlushCtx returned %d (want 0), panic %slogged, "
          "process survived", ret, log_find(mark, "panic in FLBPluginFlushCtx", NULL, NULL, 0) ? "" : "not ");
    if (ret == FLB_OK) {
        note("the plugin did not see TRAILWATCH_INDUCE_PANIC set after load: the chunk was evaluated normally, so "
             "its alert is expected from here on");
        expect("i1-panic", RULE_QUERY, "PutFoundationModelEntitlement", 1);
    }
    ret = flush_chunk(&i1, &hc_after_panic, "aws.cloudtrail");
    check(ret == FLB_OK, "instance 1 still flushes after the flush panic (returned %d)", ret);

    snprintf(path, sizeof path, "%s/state3.db", tmpdir);
    inst_setup(&i3, "panic init", path, "alert.trailwatch");
    mark = log_mark();
    setenv("TRAILWATCH_INDUCE_PANIC", "init", 1);
    ret = inst_init(&i3, &secs);
    unsetenv("TRAILWATCH_INDUCE_PANIC");
    check(ret == FLB_ERROR && i3.ctx.remote_context == NULL &&
              log_find(mark, "panic in FLBPluginInit", NULL, NULL, 0),
          "setenv(TRAILWATCH_INDUCE_PANIC=init): FLBPluginInit returned %d (want 0), remote_context %s, panic %slogged, "
          "process survived", ret, i3.ctx.remote_context ? "set" : "unset",
          log_find(mark, "panic in FLBPluginInit", NULL, NULL, 0) ? "" : "not ");
    if (i3.up)
        P.exit_ctx(i3.ctx.remote_context);

    snprintf(path, sizeof path, "%s/scratch.db", tmpdir);
    inst_setup(&scratch, "scratch instance", path, "alert.trailwatch");
    ret = inst_init(&scratch, &secs);
    check(ret == FLB_OK, "scratch instance: FLBPluginInit returned %d (want 1)", ret);
    mark = log_mark();
    setenv("TRAILWATCH_INDUCE_PANIC", "exit", 1);
    ret = P.exit_ctx(scratch.ctx.remote_context);
    unsetenv("TRAILWATCH_INDUCE_PANIC");
    check(ret == FLB_ERROR && log_find(mark, "panic in FLBPluginExitCtx", NULL, NULL, 0),
          "setenv(TRAILWATCH_INDUCE_PANIC=exit): FLBPluginExitCtx returned %d (want 0), panic %slogged, process survived",
          ret, log_find(mark, "panic in FLBPluginExitCtx", NULL, NULL, 0) ? "" : "not ");
    ret = P.exit_ctx(scratch.ctx.remote_context);
    check(ret == FLB_OK, "scratch instance: FLBPluginExitCtx after that returned %d (want 1)", ret);

    /* the exited instance's context, which Fluent Bit keeps, reaches no
     * instance started after it (it reached the one that took its id, and
     * an exit on it closed that one) */
    snprintf(path, sizeof path, "%s/scratch2.db", tmpdir);
    inst_setup(&scratch2, "second scratch instance", path, "alert.trailwatch");
    ret = inst_init(&scratch2, &secs);
    check(ret == FLB_OK, "second scratch instance: FLBPluginInit returned %d (want 1)", ret);
    ret = P.flush_ctx(scratch.ctx.remote_context, NULL, 0, "t");
    check(ret == FLB_ERROR, "a flush on the exited scratch instance's context returned %d (want 0: no instance is its)", ret);
    P.exit_ctx(scratch.ctx.remote_context);
    ret = P.flush_ctx(scratch2.ctx.remote_context, NULL, 0, "t");
    check(ret == FLB_OK,
          "the second scratch instance flushes after an exit on the stale context: returned %d (want 1: not closed)", ret);
    if (scratch2.up)
        P.exit_ctx(scratch2.ctx.remote_context);

    /* the same panics with the variable in the environment before the plugin
     * loads, each in a child process (the hook cannot be turned off again) */
    run_probe("init", "FLBPluginInit");
    run_probe("flush", "FLBPluginFlushCtx");
    run_probe("exit", "FLBPluginExitCtx");

    /* 8. a second instance on instance 1's state file */
    inst_setup(&dup, "same db", i1.db, "alert.trailwatch");
    line[0] = 0;
    mark = log_mark();
    ret = inst_init(&dup, &secs);
    check(ret == FLB_ERROR && secs < 2.0,
          "an instance on instance 1's db file is refused: FLBPluginInit returned %d (want 0) in %.2f s (want < 2 s)",
          ret, secs);
    check(log_find(mark, i1.db, "cannot start", line, sizeof line), "the refusal was logged naming %s", i1.db);
    if (line[0] && strstr(line, i1.db))
        note("%s", line);
    if (dup.up)
        P.exit_ctx(dup.ctx.remote_context);
    inst_free(&dup);

    snprintf(path, sizeof path, "%s/./state1.db", tmpdir);
    inst_setup(&dup, "same db, other spelling", path, "alert.trailwatch");
    ret = inst_init(&dup, &secs);
    check(ret == FLB_ERROR && secs < 2.0, "the same db spelled %s is refused: returned %d in %.2f s", path, ret, secs);
    if (dup.up)
        P.exit_ctx(dup.ctx.remote_context);
    inst_free(&dup);

    snprintf(path, sizeof path, "%s/link-to-state1.db", tmpdir);
    if (symlink(i1.db, path) == 0) {
        inst_setup(&dup, "same db via a symlink", path, "alert.trailwatch");
        mark = log_mark();
        ret = inst_init(&dup, &secs);
        check(ret == FLB_ERROR && secs < 4.0,
              "the same db through a symlink is refused: returned %d in %.2f s (want < 4 s: the file lock wait)", ret,
              secs);
        check(log_find(mark, path, "cannot start", NULL, 0), "that refusal was logged naming %s", path);
        if (dup.up)
            P.exit_ctx(dup.ctx.remote_context);
        inst_free(&dup);
    } else {
        check(0, "create a symlink %s: %s", path, strerror(errno));
    }

    /* instance 1 is unharmed by the refused inits */
    cur_phase = 2;
    expect_chunk(a[4]);
    ret = flush_chunk(&i1, a[4], a_tags[4]);
    check(ret == FLB_OK, "instance 1: flush %s returned %d (want 1)", a[4]->what, ret);
    missing = wait_expected(2, 10.0, &took);
    check(missing == 0, "instance 1 still alerts after the refused inits (%d missing after %.2f s)", missing, took);

    ret = P.exit_ctx(NULL);
    check(ret == FLB_ERROR, "FLBPluginExitCtx(NULL) (an instance whose init failed) returned %d without crashing", ret);

    /* 9. exit */
    ret = P.exit_ctx(i1.ctx.remote_context);
    check(ret == FLB_OK, "instance 1: FLBPluginExitCtx returned %d (want 1)", ret);
    ret = P.exit_ctx(i2.ctx.remote_context);
    check(ret == FLB_OK, "instance 2: FLBPluginExitCtx returned %d (want 1)", ret);
    i1.exp_alerts = count_expected(1);
    i2.exp_alerts = count_expected(2);
    check_instance_alerts(1, "instance 1");
    check_instance_alerts(2, "instance 2");
    check_no_unexpected("instances 1 and 2");
    check_cross();
    check_stopped_line(&i1, mark_i1);
    check_stopped_line(&i2, mark_i2);
    ret = P.exit_all();
    check(ret == FLB_OK, "FLBPluginExit returned %d (want 1)", ret);

    /* hot reload: Fluent Bit destroys the proxy (dlclose) and loads it again */
    unload_plugin();
    if (load_plugin(so, 1, "reload")) {
        inst_setup(&i4, "reloaded instance", i1.db, "alert.trailwatch.{rule_id}");
        mark = log_mark();
        ret = inst_init(&i4, &secs);
        check(ret == FLB_OK && secs < 2.0,
              "reload: FLBPluginInit on instance 1's db returned %d (want 1) in %.2f s (the file was released)", ret,
              secs);
        inst_learn_name(&i4, mark);
        /* hc_reload: alice again (the history survived the reload: no
         * alert), frank's first PutResourcePolicy and his entitlement */
        cur_phase = 3;
        expect_chunk(&hc_reload);
        ret = i4.up ? flush_chunk(&i4, &hc_reload, "aws.cloudtrail") : -1;
        check(ret == FLB_OK, "reload: flush returned %d (want 1)", ret);
        missing = wait_expected(3, 10.0, &took);
        check(missing == 0, "reload: the %ld expected alerts arrived (%d missing after %.2f s)", count_expected(4),
              missing, took);
        check(rx_has_event("r-rp-alice") == 0, "reload: the new_terms history survived (alice is not new again)");
        ret = i4.up ? P.exit_ctx(i4.ctx.remote_context) : -1;
        check(ret == FLB_OK, "reload: FLBPluginExitCtx returned %d (want 1)", ret);
        i4.exp_alerts = count_expected(4);
        check_instance_alerts(4, "reloaded instance");
        check_stopped_line(&i4, mark);
        ret = P.exit_all();
        check(ret == FLB_OK, "reload: FLBPluginExit returned %d (want 1)", ret);
    }
    check_no_unexpected("all instances");

    /* the wire */
    listener_stop();
    check(n_proto_err == 0, "forward protocol: every message decoded (%ld errors%s%s)", n_proto_err,
          n_proto_err ? ": " : "", proto_err);
    check(n_msgs > 0 && n_msgs_chunk == n_msgs && n_acks == n_msgs,
          "forward protocol: all %ld messages asked for an ack (\"chunk\") and got one (%ld acks)", n_msgs, n_acks);
    check(n_bad_time == 0, "forward protocol: every entry's time was an EventTime or an integer (%ld not)",
          n_bad_time);
    check(n_rx_dropped == 0, "harness kept every received record (%d dropped)", n_rx_dropped);
    note("%ld connections, %ld messages, %d records received", n_conns, n_msgs, n_rx);
    {
        int modes[4] = {0, 0, 0, 0};
        for (i = 0; i < n_rx; i++)
            modes[rxs[i].mode & 3]++;
        note("records by mode: Message %d, Forward %d, PackedForward %d", modes[1], modes[2], modes[3]);
    }
    note("plugin log: %d \"skipped a malformed record\" lines", log_count(0, "skipped a malformed record"));

    /* SIGKILL in the middle of the plugin's work, many times over */
    crash_test(cli_arg);

    inst_free(&i1);
    inst_free(&i2);
    inst_free(&i3);
    inst_free(&i4);
    inst_free(&scratch);
    inst_free(&scratch2);
    unload_plugin();

    if (n_fail > 0) {
        dump_log();
        note("kept %s", tmpdir);
    } else if (!getenv("HARNESS_KEEP")) {
        nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
