/*
 * harness.c: drives out_trailwatch.so the way Fluent Bit's Go proxy does,
 * without Fluent Bit.
 *
 *   gcc -O2 -Wall -Wextra -o bin/harness plugin/harness/harness.c \
 *       -ldl -lmsgpackc -lpthread
 *   bin/harness bin/out_trailwatch.so conf/rules
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
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <msgpack.h>
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

static void on_alarm(int sig)
{
    char buf[512];
    int n;
    (void)sig;
    n = snprintf(buf, sizeof buf,
                 "not ok - watchdog: the harness did not finish within 60 s (plugin log: %s)\n"
                 "%d passed, %d failed\n", logpath, n_pass, n_fail + 1);
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

enum { LEGACY, V2 };   /* [ts, body] or [[ts, metadata], body] */
enum { T_EXT, T_INT }; /* EventTime ext 0, or an integer */

struct chunk {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    long good, malformed, groups;
};

static void chunk_init(struct chunk *c)
{
    memset(c, 0, sizeof *c);
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
}

static void chunk_free(struct chunk *c)
{
    msgpack_sbuffer_destroy(&c->sb);
}

static void p_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void p_kv(msgpack_packer *pk, const char *k, const char *v)
{
    p_str(pk, k);
    p_str(pk, v);
}

static void p_eventtime(msgpack_packer *pk, uint32_t sec, uint32_t nsec)
{
    unsigned char b[8];
    b[0] = (unsigned char)(sec >> 24);
    b[1] = (unsigned char)(sec >> 16);
    b[2] = (unsigned char)(sec >> 8);
    b[3] = (unsigned char)sec;
    b[4] = (unsigned char)(nsec >> 24);
    b[5] = (unsigned char)(nsec >> 16);
    b[6] = (unsigned char)(nsec >> 8);
    b[7] = (unsigned char)nsec;
    msgpack_pack_ext(pk, 8, 0);
    msgpack_pack_ext_body(pk, b, 8);
}

static uint32_t base_sec;
static uint32_t seq_nsec;

static void p_ts(msgpack_packer *pk, int tenc)
{
    if (tenc == T_EXT)
        p_eventtime(pk, base_sec, (seq_nsec += 1000) % 1000000000u);
    else
        msgpack_pack_uint32(pk, base_sec);
}

/* v2 metadata: alternately empty and not, to exercise skipping it. */
static void p_meta(msgpack_packer *pk)
{
    static int k;
    if (k++ % 2 == 0) {
        msgpack_pack_map(pk, 0);
    } else {
        msgpack_pack_map(pk, 2);
        p_kv(pk, "source", "harness");
        p_str(pk, "seq");
        msgpack_pack_int(pk, k);
    }
}

static void p_header(msgpack_packer *pk, int fmt, int tenc)
{
    if (fmt == V2) {
        msgpack_pack_array(pk, 2);
        p_ts(pk, tenc);
        p_meta(pk);
    } else {
        p_ts(pk, tenc);
    }
}

/* A CloudTrail event. */
struct ct {
    const char *id;
    const char *source;
    const char *name;
    const char *user;
    int failed; /* errorCode/errorMessage set */
};

static void p_cloudtrail(msgpack_packer *pk, const struct ct *e)
{
    char arn[128], pid[64], req[96];
    int i;
    snprintf(arn, sizeof arn, "arn:aws:iam::111122223333:user/%s", e->user);
    snprintf(pid, sizeof pid, "AIDAX%s", e->user);
    for (i = 5; pid[i]; i++)
        if (pid[i] >= 'a' && pid[i] <= 'z')
            pid[i] = (char)(pid[i] - 'a' + 'A');
    snprintf(req, sizeof req, "req-%s", e->id);

    msgpack_pack_map(pk, 16 + (e->failed ? 2 : 0));
    p_kv(pk, "eventVersion", "1.09");
    p_str(pk, "userIdentity");
    msgpack_pack_map(pk, 5);
    p_kv(pk, "type", "IAMUser");
    p_kv(pk, "principalId", pid);
    p_kv(pk, "arn", arn);
    p_kv(pk, "accountId", "111122223333");
    p_kv(pk, "userName", e->user);
    p_kv(pk, "eventTime", "2026-11-20T10:00:00Z");
    p_kv(pk, "eventSource", e->source);
    p_kv(pk, "eventName", e->name);
    p_kv(pk, "awsRegion", "us-east-1");
    p_kv(pk, "sourceIPAddress", "198.51.100.7");
    p_kv(pk, "userAgent", "aws-cli/2.17.0 Python/3.11");
    p_str(pk, "requestParameters");
    msgpack_pack_map(pk, 1);
    if (strstr(e->name, "ResourcePolicy"))
        p_kv(pk, "resourceArn", "arn:aws:bedrock:us-east-1:111122223333:agent/AGENT0001");
    else
        p_kv(pk, "modelId", "anthropic.claude-3-5-sonnet-20240620-v1:0");
    p_str(pk, "responseElements");
    msgpack_pack_nil(pk);
    p_kv(pk, "requestID", req);
    p_kv(pk, "eventID", e->id);
    p_str(pk, "readOnly");
    msgpack_pack_false(pk);
    p_kv(pk, "eventType", "AwsApiCall");
    p_str(pk, "managementEvent");
    msgpack_pack_true(pk);
    p_kv(pk, "recipientAccountId", "111122223333");
    if (e->failed) {
        p_kv(pk, "errorCode", "AccessDenied");
        p_kv(pk, "errorMessage", "User is not authorized to perform this action");
    }
}

/* ---- expected alerts ---- */

#define RULE_QUERY "aed4b9d5-f853-40cf-8489-4fdcff03e272"
#define RULE_NEWTERMS "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b"

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

/* A well-formed CloudTrail event; rule is the rule it must fire (or NULL). */
static void ev(struct chunk *c, int fmt, int tenc, const struct ct *e, const char *rule, int inst)
{
    msgpack_pack_array(&c->pk, 2);
    p_header(&c->pk, fmt, tenc);
    p_cloudtrail(&c->pk, e);
    c->good++;
    if (rule)
        expect(e->id, rule, e->name, inst);
}

/* A group marker: [[-1|-2, meta], body] with the timestamp as a plain
 * integer, or (ext) as Fluent Bit's encoder writes it, an EventTime whose
 * seconds are (uint32)-1 / (uint32)-2. body: a CloudTrail event that must not
 * be evaluated, or NULL for {}. */
static void group_marker(struct chunk *c, int which, int ext, const struct ct *body)
{
    msgpack_pack_array(&c->pk, 2);
    msgpack_pack_array(&c->pk, 2);
    if (ext)
        p_eventtime(&c->pk, (uint32_t)(int32_t)which, 0);
    else
        msgpack_pack_int(&c->pk, which);
    if (which == -1) {
        msgpack_pack_map(&c->pk, 1);
        p_kv(&c->pk, "schema", "otlp");
    } else {
        msgpack_pack_map(&c->pk, 0);
    }
    if (body)
        p_cloudtrail(&c->pk, body);
    else
        msgpack_pack_map(&c->pk, 0);
    c->groups++;
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

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    uint32_t i;
    size_t n = strlen(key);
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static void copy_str(char *dst, size_t dstlen, const msgpack_object *o)
{
    size_t n;
    dst[0] = 0;
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return;
    n = o->via.str.size < dstlen - 1 ? o->via.str.size : dstlen - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = 0;
}

static int valid_time(const msgpack_object *t)
{
    if (t->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return 1;
    if (t->type == MSGPACK_OBJECT_EXT && t->via.ext.type == 0 && t->via.ext.size == 8)
        return 1;
    return 0;
}

static void take_entry(const char *tag, const msgpack_object *t, const msgpack_object *rec, int mode)
{
    struct rx r;
    const msgpack_object *event;
    if (!valid_time(t)) {
        pthread_mutex_lock(&rx_mu);
        n_bad_time++;
        pthread_mutex_unlock(&rx_mu);
    }
    if (rec->type != MSGPACK_OBJECT_MAP) {
        proto_error("record of tag %s is not a map (type %d)", tag, (int)rec->type);
        return;
    }
    memset(&r, 0, sizeof r);
    snprintf(r.tag, sizeof r.tag, "%s", tag);
    r.mode = mode;
    copy_str(r.rule_id, sizeof r.rule_id, map_get(rec, "kibana.alert.rule.rule_id"));
    copy_str(r.uuid, sizeof r.uuid, map_get(rec, "kibana.alert.uuid"));
    event = map_get(rec, "event");
    copy_str(r.action, sizeof r.action, map_get(event, "action"));
    copy_str(r.event_id, sizeof r.event_id, map_get(event, "id"));
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

static void send_ack(int fd, const msgpack_object *chunk)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    p_str(&pk, "ack");
    msgpack_pack_object(&pk, *chunk);
    if (send_all(fd, sb.data, sb.size) == 0) {
        pthread_mutex_lock(&rx_mu);
        n_acks++;
        pthread_mutex_unlock(&rx_mu);
    } else {
        proto_error("writing an ack: %s", strerror(errno));
    }
    msgpack_sbuffer_destroy(&sb);
}

/* One forward-protocol message: Message, Forward or PackedForward mode. */
static void take_message(int fd, const msgpack_object *o)
{
    const msgpack_object *a, *opt = NULL, *chunk = NULL;
    char tag[160];
    uint32_t n, i;

    pthread_mutex_lock(&rx_mu);
    n_msgs++;
    pthread_mutex_unlock(&rx_mu);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 || o->via.array.size > 4) {
        proto_error("message is not an array of 2 to 4 (type %d)", (int)o->type);
        return;
    }
    a = o->via.array.ptr;
    n = o->via.array.size;
    if (a[0].type != MSGPACK_OBJECT_STR) {
        proto_error("message tag is not a string");
        return;
    }
    copy_str(tag, sizeof tag, &a[0]);

    if (a[1].type == MSGPACK_OBJECT_ARRAY) { /* Forward: [tag, [[time, record], ...], option?] */
        if (n > 3) {
            proto_error("Forward mode message of %u elements", n);
            return;
        }
        for (i = 0; i < a[1].via.array.size; i++) {
            const msgpack_object *e = &a[1].via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2) {
                proto_error("Forward mode entry is not [time, record]");
                continue;
            }
            take_entry(tag, &e->via.array.ptr[0], &e->via.array.ptr[1], 2);
        }
        if (n == 3)
            opt = &a[2];
    } else if (a[1].type == MSGPACK_OBJECT_STR || a[1].type == MSGPACK_OBJECT_BIN) {
        /* PackedForward: [tag, <concatenated [time, record]>, option?] */
        const char *buf = a[1].type == MSGPACK_OBJECT_STR ? a[1].via.str.ptr : a[1].via.bin.ptr;
        size_t len = a[1].type == MSGPACK_OBJECT_STR ? a[1].via.str.size : a[1].via.bin.size;
        size_t off = 0;
        msgpack_unpacked u;
        if (n > 3) {
            proto_error("PackedForward mode message of %u elements", n);
            return;
        }
        if (n == 3)
            opt = &a[2];
        if (opt && map_get(opt, "compressed")) {
            proto_error("CompressedPackedForward is not supported by the harness");
        } else {
            msgpack_unpacked_init(&u);
            while (off < len) {
                if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
                    proto_error("PackedForward entries do not unpack");
                    break;
                }
                if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 2) {
                    proto_error("PackedForward entry is not [time, record]");
                    continue;
                }
                take_entry(tag, &u.data.via.array.ptr[0], &u.data.via.array.ptr[1], 3);
            }
            msgpack_unpacked_destroy(&u);
        }
    } else { /* Message: [tag, time, record, option?] */
        if (n < 3) {
            proto_error("Message mode message of %u elements", n);
            return;
        }
        take_entry(tag, &a[1], &a[2], 1);
        if (n == 4)
            opt = &a[3];
    }

    if (opt) {
        if (opt->type != MSGPACK_OBJECT_MAP) {
            proto_error("option is not a map");
            return;
        }
        chunk = map_get(opt, "chunk");
        if (chunk) {
            pthread_mutex_lock(&rx_mu);
            n_msgs_chunk++;
            pthread_mutex_unlock(&rx_mu);
            send_ack(fd, chunk);
        }
    }
}

static void *conn_loop(void *arg)
{
    int fd = (int)(intptr_t)arg;
    msgpack_unpacker up;
    msgpack_unpacked res;
    if (!msgpack_unpacker_init(&up, 64 * 1024)) {
        proto_error("msgpack_unpacker_init failed");
        close(fd);
        return NULL;
    }
    msgpack_unpacked_init(&res);
    while (!stopping) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        msgpack_unpack_return r;
        int pr = poll(&p, 1, 100);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (!msgpack_unpacker_reserve_buffer(&up, 64 * 1024)) {
            proto_error("out of memory in the unpacker");
            break;
        }
        n = recv(fd, msgpack_unpacker_buffer(&up), msgpack_unpacker_buffer_capacity(&up), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the plugin closed the connection */
        msgpack_unpacker_buffer_consumed(&up, (size_t)n);
        while ((r = msgpack_unpacker_next(&up, &res)) == MSGPACK_UNPACK_SUCCESS)
            take_message(fd, &res.data);
        if (r == MSGPACK_UNPACK_PARSE_ERROR || r == MSGPACK_UNPACK_NOMEM_ERROR) {
            proto_error("the stream does not unpack (%d)", (int)r);
            break;
        }
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
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
    char buf[256];
    size_t have = 0, off;
    msgpack_unpacked u;
    int ok = 0;
    msgpack_unpacked_init(&u);
    while (have < sizeof buf) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        off = 0;
        if (msgpack_unpack_next(&u, buf, have, &off) == MSGPACK_UNPACK_SUCCESS) {
            char got[64];
            copy_str(got, sizeof got, map_get(&u.data, "ack"));
            ok = strcmp(got, want) == 0;
            break;
        }
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

static void listener_selftest(void)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    msgpack_sbuffer sb, entries;
    msgpack_packer pk, pe;
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
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* Forward: [tag, [[EventTime, rec], [int, rec]], {"chunk": "self-c1"}] */
    msgpack_pack_array(&pk, 3);
    p_str(&pk, "harness.selftest");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    p_eventtime(&pk, base_sec, 5);
    msgpack_pack_map(&pk, 1);
    p_kv(&pk, "kibana.alert.uuid", "self-1");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, base_sec);
    msgpack_pack_map(&pk, 1);
    p_kv(&pk, "kibana.alert.uuid", "self-2");
    msgpack_pack_map(&pk, 1);
    p_kv(&pk, "chunk", "self-c1");
    ack1 = send_all(fd, sb.data, sb.size) == 0 && read_ack(fd, "self-c1");
    msgpack_sbuffer_clear(&sb);

    /* PackedForward: [tag, bin(<[t, rec]><[t, rec]>), {"size": 2, "chunk": "self-c2"}] */
    msgpack_sbuffer_init(&entries);
    msgpack_packer_init(&pe, &entries, msgpack_sbuffer_write);
    for (i = 0; i < 2; i++) {
        msgpack_pack_array(&pe, 2);
        p_eventtime(&pe, base_sec, (uint32_t)i);
        msgpack_pack_map(&pe, 1);
        p_kv(&pe, "kibana.alert.uuid", i ? "self-4" : "self-3");
    }
    msgpack_pack_array(&pk, 3);
    p_str(&pk, "harness.selftest");
    msgpack_pack_bin(&pk, entries.size);
    msgpack_pack_bin_body(&pk, entries.data, entries.size);
    msgpack_pack_map(&pk, 2);
    p_str(&pk, "size");
    msgpack_pack_int(&pk, 2);
    p_kv(&pk, "chunk", "self-c2");
    ack2 = send_all(fd, sb.data, sb.size) == 0 && read_ack(fd, "self-c2");
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_destroy(&entries);

    /* Message without option: no ack */
    msgpack_pack_array(&pk, 3);
    p_str(&pk, "harness.selftest");
    p_eventtime(&pk, base_sec, 9);
    msgpack_pack_map(&pk, 1);
    p_kv(&pk, "kibana.alert.uuid", "self-5");
    send_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

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

static int flush_chunk(struct inst *in, struct chunk *c, const char *tag)
{
    char *t = strdup(tag); /* Fluent Bit hands a NUL-ended copy */
    int ret = P.flush_ctx(in->ctx.remote_context, c->sb.data, c->sb.size, t);
    free(t);
    if (ret == FLB_OK) {
        in->exp_records += c->good + c->malformed;
        in->exp_malformed += c->malformed;
    }
    return ret;
}

struct flush_job {
    struct inst *in;
    struct chunk *chunks;
    const char **tags;
    const char **what;
    int n;
    int rets[8];
};

static void *flush_worker(void *arg)
{
    struct flush_job *j = arg;
    int i;
    for (i = 0; i < j->n; i++)
        j->rets[i] = flush_chunk(j->in, &j->chunks[i], j->tags[i]);
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
    struct chunk c;
    char db[PATH_MAX];
    int r;
    static const struct ct e = {"probe-ent", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0};

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
        chunk_init(&c);
        ev(&c, LEGACY, T_EXT, &e, NULL, 0);
        r = flush_chunk(&in, &c, "aws.cloudtrail");
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
    static struct inst i1, i2, i3, i4, scratch, dup;
    struct chunk a[5], b[2], c1, ap, a6;
    const char *a_tags[5] = {"aws.cloudtrail", "aws.cloudtrail.v2", "aws.cloudtrail.mixed", "aws.cloudtrail.otlp",
                             "aws.cloudtrail"};
    const char *a_what[5] = {"A1 legacy [ts, map], EventTime", "A2 v2 [[ts, meta], map], integer time, group markers",
                             "A3 malformed records among good ones", "A4 v2 with Fluent Bit-encoded group markers",
                             "A5 after the refused inits"};
    const char *b_tags[2] = {"cloudtrail.eu", "cloudtrail.eu"};
    const char *b_what[2] = {"B1 v2, EventTime", "B2 legacy, integer time"};
    struct flush_job job2;
    pthread_t worker;
    char path[PATH_MAX], line[1024];
    double secs, took;
    size_t mark, mark_i1, mark_i2;
    int ret, i, fd, missing;
    const char *so;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 7 && strcmp(argv[1], "--panic-probe") == 0) {
        P_so = argv[3];
        rules_dir = argv[4];
        snprintf(tmpdir, sizeof tmpdir, "%s", argv[5]);
        fwd_port = atoi(argv[6]);
        return probe_main(argv[2], argv[3]);
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s out_trailwatch.so rules-folder\n", argv[0]);
        return 2;
    }
    so = P_so = argv[1];
    rules_dir = argv[2];
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
    base_sec = (uint32_t)time(NULL);

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

    /* 5. chunks for instance 1 */
    for (i = 0; i < 5; i++)
        chunk_init(&a[i]);
    {
        static const struct ct
            ent_alice = {"i1-ent-alice", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "alice", 0},
            rp_alice = {"i1-rp-alice", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
            rp_alice_dup = {"i1-rp-alice-again", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
            ent_fail = {"i1-ent-failed", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "alice", 1},
            s3 = {"i1-s3-policy", "s3.amazonaws.com", "PutBucketPolicy", "alice", 0},
            invoke = {"i1-invoke", "bedrock.amazonaws.com", "InvokeModel", "alice", 0},
            rp_bob_fail = {"i1-rp-bob-failed", "bedrock.amazonaws.com", "PutResourcePolicy", "bob", 1},
            /* A2 */
            usecase_bob = {"i1-usecase-bob", "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "bob", 0},
            rp_alice_2 = {"i1-rp-alice-later", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
            delrp_bob = {"i1-delrp-bob", "bedrock.amazonaws.com", "DeleteResourcePolicy", "bob", 0},
            lookup = {"i1-lookup", "cloudtrail.amazonaws.com", "LookupEvents", "bob", 0},
            grp_int_start = {"i1-group-int-start", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0},
            grp_int_end = {"i1-group-int-end", "bedrock.amazonaws.com", "PutResourcePolicy", "mallory", 0},
            /* A3 */
            agree_carol = {"i1-agree-carol", "bedrock.amazonaws.com", "CreateFoundationModelAgreement", "carol", 0},
            rp_carol = {"i1-rp-carol", "bedrock.amazonaws.com", "PutResourcePolicy", "carol", 0},
            bad_ts = {"i1-malformed-ts", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0},
            arr3 = {"i1-malformed-arr3", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0},
            /* A4 */
            grp_ext_start = {"i1-group-ext-start", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0},
            ent_dave = {"i1-ent-dave", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "dave", 0},
            grp_ext_end = {"i1-group-ext-end", "bedrock.amazonaws.com", "PutResourcePolicy", "mallory", 0};
        struct chunk *c;

        /* A1: legacy [ts, map], EventTime */
        c = &a[0];
        ev(c, LEGACY, T_EXT, &ent_alice, RULE_QUERY, 1);
        ev(c, LEGACY, T_EXT, &rp_alice, RULE_NEWTERMS, 1);
        ev(c, LEGACY, T_EXT, &rp_alice_dup, NULL, 1); /* same ARN, same chunk: not new */
        ev(c, LEGACY, T_EXT, &ent_fail, NULL, 1);
        ev(c, LEGACY, T_EXT, &s3, NULL, 1);
        ev(c, LEGACY, T_EXT, &invoke, NULL, 1);
        ev(c, LEGACY, T_EXT, &rp_bob_fail, NULL, 1); /* failed: bob stays new */

        /* A2: v2 [[ts, meta], map], integer time, integer group markers */
        c = &a[1];
        group_marker(c, -1, 0, NULL);
        ev(c, V2, T_INT, &usecase_bob, RULE_QUERY, 1);
        ev(c, V2, T_INT, &rp_alice_2, NULL, 1); /* alice known since A1 */
        ev(c, V2, T_INT, &delrp_bob, RULE_NEWTERMS, 1);
        group_marker(c, -2, 0, NULL);
        group_marker(c, -1, 0, &grp_int_start); /* a marker's body is never a record */
        ev(c, V2, T_INT, &lookup, NULL, 1);
        group_marker(c, -2, 0, &grp_int_end);

        /* A3: malformed records among good ones */
        c = &a[2];
        msgpack_pack_array(&c->pk, 1); /* [ts] */
        p_ts(&c->pk, T_EXT);
        c->malformed++;
        msgpack_pack_array(&c->pk, 2); /* [ts, "string"] */
        p_ts(&c->pk, T_INT);
        p_str(&c->pk, "{\"eventSource\":\"bedrock.amazonaws.com\"}");
        c->malformed++;
        msgpack_pack_array(&c->pk, 2); /* [ts, [1, 2, 3]] */
        p_ts(&c->pk, T_EXT);
        msgpack_pack_array(&c->pk, 3);
        msgpack_pack_int(&c->pk, 1);
        msgpack_pack_int(&c->pk, 2);
        msgpack_pack_int(&c->pk, 3);
        c->malformed++;
        ev(c, LEGACY, T_EXT, &agree_carol, RULE_QUERY, 1);
        msgpack_pack_int(&c->pk, 42); /* an event that is not an array */
        c->malformed++;
        msgpack_pack_array(&c->pk, 2); /* [[ts, meta], "string"] */
        p_header(&c->pk, V2, T_INT);
        p_str(&c->pk, "not a map");
        c->malformed++;
        msgpack_pack_array(&c->pk, 2); /* ["not a time", {CloudTrail}] */
        p_str(&c->pk, "2026-11-20T10:00:00Z");
        p_cloudtrail(&c->pk, &bad_ts);
        c->malformed++;
        ev(c, V2, T_INT, &rp_carol, RULE_NEWTERMS, 1);
        msgpack_pack_array(&c->pk, 2); /* not CloudTrail: read, not alerted */
        p_ts(&c->pk, T_INT);
        msgpack_pack_map(&c->pk, 1);
        p_kv(&c->pk, "log", "hello from another input");
        c->good++;
        msgpack_pack_array(&c->pk, 3); /* [ts, {CloudTrail}, extra] */
        p_ts(&c->pk, T_EXT);
        p_cloudtrail(&c->pk, &arr3);
        p_str(&c->pk, "extra");
        c->malformed++;
        msgpack_sbuffer_write(&c->sb, "\x92\xd7\x00\x01", 4); /* truncated tail */
        c->malformed++;

        /* A4: v2 with group markers as Fluent Bit's encoder writes them */
        c = &a[3];
        group_marker(c, -1, 1, &grp_ext_start);
        ev(c, V2, T_EXT, &ent_dave, RULE_QUERY, 1);
        group_marker(c, -2, 1, &grp_ext_end);
    }

    /* chunks for instance 2 */
    for (i = 0; i < 2; i++)
        chunk_init(&b[i]);
    {
        static const struct ct
            ent_dave = {"i2-ent-dave", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "dave", 0},
            rp_alice = {"i2-rp-alice", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
            rp_erin_fail = {"i2-rp-erin-failed", "bedrock.amazonaws.com", "PutResourcePolicy", "erin", 1},
            iam = {"i2-iam-policy", "iam.amazonaws.com", "PutRolePolicy", "erin", 0},
            rp_alice_2 = {"i2-rp-alice-again", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
            agree_dave = {"i2-agree-dave", "bedrock.amazonaws.com", "CreateFoundationModelAgreement", "dave", 0},
            usecase_fail = {"i2-usecase-failed", "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "dave", 1};
        ev(&b[0], V2, T_EXT, &ent_dave, RULE_QUERY, 2);
        ev(&b[0], V2, T_EXT, &rp_alice, RULE_NEWTERMS, 2); /* new in instance 2's own state */
        ev(&b[0], V2, T_EXT, &rp_erin_fail, NULL, 2);
        ev(&b[0], V2, T_EXT, &iam, NULL, 2);
        ev(&b[1], LEGACY, T_INT, &rp_alice_2, NULL, 2);
        ev(&b[1], LEGACY, T_INT, &agree_dave, RULE_QUERY, 2);
        ev(&b[1], LEGACY, T_INT, &usecase_fail, NULL, 2);
    }

    /* Instance 2's chunks from another thread while instance 1's are flushed
     * (Fluent Bit flushes from its engine and worker threads). */
    memset(&job2, 0, sizeof job2);
    job2.in = &i2;
    job2.chunks = b;
    job2.tags = b_tags;
    job2.what = b_what;
    job2.n = 2;
    if (pthread_create(&worker, NULL, flush_worker, &job2) != 0) {
        check(0, "start a flush thread for instance 2");
        flush_worker(&job2);
    } else {
        for (i = 0; i < 4; i++) {
            ret = flush_chunk(&i1, &a[i], a_tags[i]);
            check(ret == FLB_OK, "instance 1: flush %s returned %d (want 1)", a_what[i], ret);
        }
        pthread_join(worker, NULL);
    }
    for (i = 0; i < 2; i++)
        check(job2.rets[i] == FLB_OK, "instance 2: flush %s returned %d (want 1, flushed from another thread)",
              b_what[i], job2.rets[i]);

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
    chunk_init(&ap);
    {
        static const struct ct panic_ev = {"i1-panic", "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "mallory", 0};
        ev(&ap, LEGACY, T_EXT, &panic_ev, NULL, 1); /* must not be evaluated */
    }
    mark = log_mark();
    setenv("TRAILWATCH_INDUCE_PANIC", "flush", 1);
    ret = flush_chunk(&i1, &ap, "aws.cloudtrail");
    unsetenv("TRAILWATCH_INDUCE_PANIC");
    check(ret == FLB_ERROR && log_find(mark, "panic in FLBPluginFlushCtx", NULL, NULL, 0),
          "setenv(TRAILWATCH_INDUCE_PANIC=flush): FLBPluginFlushCtx returned %d (want 0), panic %slogged, "
          "process survived", ret, log_find(mark, "panic in FLBPluginFlushCtx", NULL, NULL, 0) ? "" : "not ");
    if (ret == FLB_OK) {
        note("the plugin did not see TRAILWATCH_INDUCE_PANIC set after load: the chunk was evaluated normally, so "
             "its alert is expected from here on");
        expect("i1-panic", RULE_QUERY, "PutFoundationModelEntitlement", 1);
    }
    chunk_init(&a6);
    {
        static const struct ct after = {"i1-after-panic", "cloudtrail.amazonaws.com", "LookupEvents", "alice", 0};
        ev(&a6, LEGACY, T_INT, &after, NULL, 1);
    }
    ret = flush_chunk(&i1, &a6, "aws.cloudtrail");
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
    chunk_init(&a[4]);
    cur_phase = 2;
    {
        static const struct ct rp_grace = {"i1-rp-grace", "bedrock.amazonaws.com", "PutResourcePolicy", "grace", 0};
        ev(&a[4], LEGACY, T_INT, &rp_grace, RULE_NEWTERMS, 1);
    }
    ret = flush_chunk(&i1, &a[4], a_tags[4]);
    check(ret == FLB_OK, "instance 1: flush %s returned %d (want 1)", a_what[4], ret);
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
        chunk_init(&c1);
        cur_phase = 3;
        {
            static const struct ct rp_alice = {"r-rp-alice", "bedrock.amazonaws.com", "PutResourcePolicy", "alice", 0},
                                   rp_frank = {"r-rp-frank", "bedrock.amazonaws.com", "PutResourcePolicy", "frank", 0},
                                   ent_frank = {"r-ent-frank", "bedrock.amazonaws.com",
                                                "PutFoundationModelEntitlement", "frank", 0};
            ev(&c1, LEGACY, T_EXT, &rp_alice, NULL, 4); /* history survived the reload */
            ev(&c1, LEGACY, T_EXT, &rp_frank, RULE_NEWTERMS, 4);
            ev(&c1, V2, T_INT, &ent_frank, RULE_QUERY, 4);
        }
        ret = i4.up ? flush_chunk(&i4, &c1, "aws.cloudtrail") : -1;
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
        chunk_free(&c1);
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

    for (i = 0; i < 5; i++)
        chunk_free(&a[i]);
    for (i = 0; i < 2; i++)
        chunk_free(&b[i]);
    chunk_free(&ap);
    chunk_free(&a6);
    inst_free(&i1);
    inst_free(&i2);
    inst_free(&i3);
    inst_free(&i4);
    inst_free(&scratch);
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
