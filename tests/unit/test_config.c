/* Unit tests for server/config.c: defaults, flags, environment, precedence and every refusal. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static char err[512];

/* argv and envp are NULL-terminated lists; "mockupstream" is prepended to argv. */
static enum config_result load(struct config *cfg, const char *const *args, const char *const *env)
{
    char *argv[32] = {"mockupstream"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    static char *no_env[] = {NULL};
    return config_load(cfg, argc, argv, env ? (char *const *)env : no_env, err, sizeof(err));
}

static void test_defaults(void)
{
    struct config cfg;
    CHECK(load(&cfg, NULL, NULL) == CONFIG_OK);
    CHECK(cfg.listener_count == 1 && strcmp(cfg.listeners[0].text, "0.0.0.0:8080") == 0);
    CHECK(cfg.listeners[0].kind == LISTENER_HTTP);
    CHECK(cfg.delay_ns == 10000000ull && cfg.max_delay_ns == 60000000000ull);
    CHECK(cfg.idle_timeout_ns == 120000000000ull && cfg.request_timeout_ns == 10000000000ull);
    CHECK(cfg.drain_timeout_ns == 5000000000ull);
    CHECK(cfg.body_bytes == 13 && memcmp(cfg.body, "Hello world!\n", 13) == 0);
    CHECK(cfg.max_body_bytes == 1024 * 1024 && cfg.backlog == 65535);
    CHECK(cfg.workers == (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(cfg.tls_cert_path == NULL);
    CHECK(cfg.delay_is_fixed && cfg.status_is_fixed && cfg.status_code == 200 && cfg.body_size_is_fixed);
    CHECK(cfg.max_response_bytes == 16u * 1024 * 1024 && cfg.request_control && !cfg.server_timing && !cfg.delay_from_head);
    CHECK(strcmp(cfg.seed_source, "random") == 0);
    config_free(&cfg);
}

static void test_behaviour_flags(void)
{
    struct config cfg;
    const char *args[] = {"--delay", "lognormal:p50=5ms,p99=20ms", "--status", "503:5", "--body-size", "1k:50,2k:50", "--seed", "7",
                          "--server-timing", "--delay-from", "head", "--no-request-control", NULL};
    CHECK(load(&cfg, args, NULL) == CONFIG_OK);
    CHECK(!cfg.delay_is_fixed && cfg.delay_ns == 10000000ull); /* a list's rest gets the default */
    CHECK(!cfg.status_is_fixed && cfg.status_code == 200 && cfg.status.count == 1);
    CHECK(!cfg.body_size_is_fixed && cfg.body_bytes == 13);
    CHECK(cfg.seed == 7 && strcmp(cfg.seed_source, "--seed") == 0);
    CHECK(cfg.server_timing && cfg.delay_from_head && !cfg.request_control);
    config_free(&cfg);
    const char *env[] = {"MOCKUPSTREAM_SERVER_TIMING=yes", "MOCKUPSTREAM_NO_REQUEST_CONTROL=0", "MOCKUPSTREAM_STATUS=204", NULL};
    CHECK(load(&cfg, NULL, env) == CONFIG_OK);
    CHECK(cfg.server_timing && cfg.request_control && cfg.status_is_fixed && cfg.status_code == 204);
    config_free(&cfg);
}

static void test_flags_both_forms(void)
{
    struct config cfg;
    const char *args[] = {"--delay", "250us", "--max-delay=2s", "--workers", "3", "--body-size", "1k", "--listen", "127.0.0.1:9000",
                          "--listen", "[::1]:9001", "--stats-listen", "127.0.0.1:9100", "--backlog", "128", "--idle-timeout", "5s", NULL};
    CHECK(load(&cfg, args, NULL) == CONFIG_OK);
    CHECK(cfg.delay_ns == 250000 && cfg.max_delay_ns == 2000000000ull && cfg.workers == 3 && cfg.backlog == 128);
    CHECK(cfg.body_bytes == 1024 && memcmp(cfg.body, "Hello world!\nHello", 18) == 0);
    CHECK(cfg.listener_count == 3);
    CHECK(cfg.listeners[1].addr.ss_family == AF_INET6 && cfg.listeners[1].kind == LISTENER_HTTP);
    CHECK(cfg.listeners[2].kind == LISTENER_STATS);
    CHECK(cfg.idle_timeout_ns == 5000000000ull);
    config_free(&cfg);
}

static void test_environment_and_precedence(void)
{
    struct config cfg;
    const char *env[] = {"MOCKUPSTREAM_DELAY=25ms", "MOCKUPSTREAM_LISTEN=127.0.0.1:1,127.0.0.1:2", "MOCKUPSTREAM_WORKERS=2",
                         "OTHER=1", NULL};
    CHECK(load(&cfg, NULL, env) == CONFIG_OK);
    CHECK(cfg.delay_ns == 25000000 && cfg.workers == 2 && cfg.listener_count == 2);
    config_free(&cfg);
    const char *args[] = {"--delay", "0", "--listen", "127.0.0.1:3", NULL};
    CHECK(load(&cfg, args, env) == CONFIG_OK);
    CHECK(cfg.delay_ns == 0); /* a flag wins */
    CHECK(cfg.listener_count == 1 && strcmp(cfg.listeners[0].text, "127.0.0.1:3") == 0);
    config_free(&cfg);
}

static void test_refusals_name_the_value(void)
{
    static const struct {
        const char *args[6];
        const char *env;
        const char *needle;
    } cases[] = {
        {{"--bogus"}, NULL, "--bogus"},
        {{"--delay", "10xs"}, NULL, "10xs"},
        {{"--delay", "-5ms"}, NULL, "-5ms"},
        {{"--delay", ""}, NULL, "''"},
        {{"--delay"}, NULL, "--delay needs a value"},
        {{"--listen", "127.0.0.1:0"}, NULL, "127.0.0.1:0"},
        {{"--listen", "127.0.0.1:70000"}, NULL, "70000"},
        {{"--listen", "nonsense"}, NULL, "nonsense"},
        {{"--listen", "[::1:80"}, NULL, "[::1:80"},
        {{"--workers", "0"}, NULL, "'0'"},
        {{"--workers", "2x"}, NULL, "2x"},
        {{"--tls-listen", "127.0.0.1:8443"}, NULL, "--tls-cert"},
        {{"--tls-cert", "/etc/hostname"}, NULL, "--tls-listen"},
        {{"--body-file", "/nonexistent"}, NULL, "/nonexistent"},
        {{"--body-file", "/etc/hostname", "--body-size", "5"}, NULL, "both"},
        {{"--delay", "2s", "--max-delay", "1s"}, NULL, "--max-delay"},
        {{"--listen", "127.0.0.1:5", "--listen", "127.0.0.1:5"}, NULL, "twice"},
        {{"stray"}, NULL, "stray"},
        {{NULL}, "MOCKUPSTREAM_DELAY=10xs", "MOCKUPSTREAM_DELAY"},
        {{NULL}, "MOCKUPSTREAM_LISTEN=,", "MOCKUPSTREAM_LISTEN"},
        {{"--status", "150"}, NULL, "a 1xx is interim"},
        {{"--status", "abc"}, NULL, "--status: 'abc'"},
        {{"--status", "200:60,503:60"}, NULL, "--status"},
        {{"--delay", "lognormal:p50=1ms"}, NULL, "--delay: 'lognormal:p50=1ms'"},
        {{"--body-size", "17m"}, NULL, "--max-response-size"},
        {{"--body-size", "32m", "--max-response-size", "64m"}, NULL, NULL},
        {{"--seed", "x"}, NULL, "--seed: 'x'"},
        {{"--seed", "18446744073709551616"}, NULL, "--seed: '18446744073709551616'"}, /* 2^64: once wrapped to 0 */
        {{"--delay-from", "tail"}, NULL, "allowed: request, head"},
        {{"--server-timing=1"}, NULL, "takes no value"},
        {{NULL}, "MOCKUPSTREAM_SERVER_TIMING=maybe", "MOCKUPSTREAM_SERVER_TIMING: 'maybe'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        const char *env[] = {cases[i].env, NULL};
        if (cases[i].needle == NULL) { /* a case that must load */
            CHECK(load(&cfg, cases[i].args, cases[i].env ? env : NULL) == CONFIG_OK);
            config_free(&cfg);
            continue;
        }
        CHECK(load(&cfg, cases[i].args, cases[i].env ? env : NULL) == CONFIG_ERROR);
        CHECK(strstr(err, cases[i].needle) != NULL);
        CHECK(strchr(err, '\n') == NULL);
        if (strstr(err, cases[i].needle) == NULL)
            printf("  case %zu: %s\n", i, err);
    }
}

static void test_help_and_version(void)
{
    struct config cfg;
    const char *help[] = {"--help", NULL}, *version[] = {"--delay", "5ms", "--version", NULL};
    CHECK(load(&cfg, help, NULL) == CONFIG_SHOW_HELP);
    CHECK(load(&cfg, version, NULL) == CONFIG_SHOW_VERSION);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_flags_both_forms);
    RUN(test_behaviour_flags);
    RUN(test_environment_and_precedence);
    RUN(test_refusals_name_the_value);
    RUN(test_help_and_version);
    return unit_finish();
}
