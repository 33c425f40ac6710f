/* mockupstream: an HTTP upstream that answers every request after an exact delay.
 *
 * main() validates the configuration, prepares everything the workers share (stats segment, h2o
 * configuration, TLS context, listening sockets), prints the banner and hands over to the master. */
#include <ev.h>
#include <h2o.h>
#include <h2o/version.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "distribution.h"
#include "duration.h"
#include "h2o_frontend.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "stats.h"

#define EXIT_USAGE 2
#define EXIT_STARTUP 1
#define TIMER_METHOD "timerfd (runs per delay + 4-ary heap)"

/* jemalloc exports mallctl when it replaced malloc; a weak reference is NULL otherwise (ASan builds,
 * or a binary someone linked without it). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

static void describe_allocator(char *buf, size_t size)
{
    const char *version = NULL;
    size_t len = sizeof(version);
    if (mallctl != NULL && mallctl("version", &version, &len, NULL, 0) == 0 && version != NULL)
        /* "5.3.0-0-g54eaed1d..." -> "5.3.0": the git suffix only makes labels and banners long */
        snprintf(buf, size, "jemalloc %.*s", (int)strcspn(version, "-"), version);
    else
        snprintf(buf, size, "system malloc");
}

static void print_version(void)
{
    char allocator[96];
    describe_allocator(allocator, sizeof(allocator));
    printf("mockupstream %s\nh2o %s\nlibev %d.%d\nallocator %s\n", MOCKUPSTREAM_VERSION, H2O_VERSION, ev_version_major(),
           ev_version_minor(), allocator);
}

/* Tens of thousands of connections need as many descriptors as the hard limit allows. */
static uint64_t raise_open_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    return (uint64_t)limit.rlim_cur;
}

static void fill_process_info(struct stats_process_info *info, const struct config *cfg, uint64_t open_file_limit)
{
    snprintf(info->version, sizeof(info->version), "%s", MOCKUPSTREAM_VERSION);
    snprintf(info->h2o_version, sizeof(info->h2o_version), "%s", H2O_VERSION);
    snprintf(info->libev_version, sizeof(info->libev_version), "%d.%d", ev_version_major(), ev_version_minor());
    snprintf(info->libev_backend, sizeof(info->libev_backend), "epoll");
    describe_allocator(info->allocator, sizeof(info->allocator));
    snprintf(info->timer_method, sizeof(info->timer_method), "%s", "timerfd");
    info->start_unix_ns = clock_realtime_ns();
    info->start_monotonic_ns = clock_monotonic_ns();
    info->delay_ns = cfg->delay_ns;
    info->open_file_limit = open_file_limit;
    info->master_pid = getpid();
    info->workers = cfg->workers;
    distribution_describe(&cfg->delay, info->delay_spec, sizeof(info->delay_spec));
    distribution_describe(&cfg->status, info->status_spec, sizeof(info->status_spec));
    distribution_describe(&cfg->body_size, info->body_size_spec, sizeof(info->body_size_spec));
    snprintf(info->seed, sizeof(info->seed), "%llu", (unsigned long long)cfg->seed);
}

static const char *listener_scheme(enum listener_kind kind)
{
    switch (kind) {
    case LISTENER_HTTP: return "http";
    case LISTENER_TLS: return "https";
    default: return "stats";
    }
}

static void print_banner(const struct config *cfg, const struct stats_process_info *info)
{
    char line[4096];
    size_t n = (size_t)snprintf(line, sizeof(line), "mockupstream %s: listening on", MOCKUPSTREAM_VERSION);
    for (size_t i = 0; i < cfg->listener_count && n < sizeof(line); i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s://%s", i ? "," : "", listener_scheme(cfg->listeners[i].kind),
                              cfg->listeners[i].text);
    if (n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "; workers %u (%s); delay %s", cfg->workers, cfg->workers_source,
                              info->delay_spec);
    /* status and body size only when they are not the plain 200 with the configured body */
    if (n < sizeof(line) && !(cfg->status_is_fixed && cfg->status_code == 200))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "; status %s", info->status_spec);
    if (n < sizeof(line) && !cfg->body_size_is_fixed)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "; body size %s", info->body_size_spec);
    if (n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, "; seed %s (%s); timers %s; allocator %s; open files %llu", info->seed,
                 cfg->seed_source, TIMER_METHOD, info->allocator, (unsigned long long)info->open_file_limit);
    log_msg("%s", line);
}

int main(int argc, char **argv)
{
    extern char **environ;
    struct config cfg;
    char err[512];

    log_set_role("master");
    switch (config_load(&cfg, argc, argv, environ, err, sizeof(err))) {
    case CONFIG_OK:
        break;
    case CONFIG_SHOW_HELP:
        config_print_help(stdout);
        return 0;
    case CONFIG_SHOW_VERSION:
        print_version();
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "mockupstream: %s\n", err);
        return EXIT_USAGE;
    }

    /* From here on every exit goes through `done`, so nothing created is left behind (ASan checks). */
    int status = EXIT_STARTUP;
    struct h2o_frontend_shared h2o_shared;
    bool h2o_shared_ready = false;
    int *listener_fds = NULL;
    size_t listener_fd_count = (size_t)cfg.workers * cfg.listener_count;

    if (h2o_frontend_shared_init(&h2o_shared, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mockupstream: %s\n", err);
        status = EXIT_USAGE;
        goto done;
    }
    h2o_shared_ready = true;

    signal(SIGPIPE, SIG_IGN);
    uint64_t open_file_limit = raise_open_file_limit();
    struct stats_segment *stats = stats_segment_create();
    if (stats == NULL) {
        fprintf(stderr, "mockupstream: cannot map the shared stats segment\n");
        goto done;
    }
    fill_process_info(&stats->info, &cfg, open_file_limit);

    /* Master signals are blocked before any child exists, so none is lost between fork and wait. */
    master_block_signals();
    listener_fds = malloc(listener_fd_count * sizeof(int));
    if (listener_fds == NULL) {
        fprintf(stderr, "mockupstream: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < listener_fd_count; i++)
        listener_fds[i] = -1;
    for (size_t l = 0; l < cfg.listener_count; l++) {
        if (listener_check_free(&cfg.listeners[l], err, sizeof(err)) != 0) {
            fprintf(stderr, "mockupstream: %s\n", err);
            goto done;
        }
        for (unsigned w = 0; w < cfg.workers; w++) {
            int fd = listener_open(&cfg.listeners[l], cfg.backlog, err, sizeof(err));
            if (fd < 0) {
                fprintf(stderr, "mockupstream: %s\n", err);
                goto done;
            }
            listener_fds[w * cfg.listener_count + l] = fd;
        }
    }

    print_banner(&cfg, &stats->info);
    int somaxconn = listener_somaxconn();
    if (somaxconn >= 0 && somaxconn < cfg.backlog)
        log_msg("warning: net.core.somaxconn is %d, so the kernel caps --backlog %d to it (raise it: tools/tune-host)",
                somaxconn, cfg.backlog);

    struct master_setup setup = {.config = &cfg, .stats = stats, .h2o_shared = &h2o_shared, .listener_fds = listener_fds};
    status = master_run(&setup);

done:
    if (listener_fds != NULL) {
        for (size_t i = 0; i < listener_fd_count; i++)
            if (listener_fds[i] >= 0)
                close(listener_fds[i]);
        free(listener_fds);
    }
    if (h2o_shared_ready)
        h2o_frontend_shared_dispose(&h2o_shared);
    config_free(&cfg);
    return status;
}
