/* libFuzzer harness: the command line and environment. The input is split at NUL bytes; the first
 * byte decides how many pieces are argv and the rest become "NAME=value" environment entries. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_PIECES 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t argc_wanted = data[0] % 12;
    char *copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    char *pieces[MAX_PIECES];
    size_t count = 0;
    for (char *p = copy; p < copy + size - 1 && count < MAX_PIECES; p += strlen(p) + 1)
        pieces[count++] = p;

    char *argv[MAX_PIECES + 2] = {"mockupstream"};
    char *envp[MAX_PIECES + 1];
    size_t argc = 1, envc = 0;
    for (size_t i = 0; i < count; i++) {
        if (i < argc_wanted)
            argv[argc++] = pieces[i];
        else
            envp[envc++] = pieces[i];
    }
    argv[argc] = NULL;
    envp[envc] = NULL;

    struct config cfg;
    char err[512];
    enum config_result r = config_load(&cfg, (int)argc, argv, envp, err, sizeof(err));
    if (r == CONFIG_OK) {
        assert(cfg.listener_count >= 1 && cfg.workers >= 1 && cfg.delay_ns <= cfg.max_delay_ns);
        assert(cfg.body != NULL || cfg.body_bytes == 0);
        config_free(&cfg);
    } else if (r == CONFIG_ERROR) {
        assert(err[0] != '\0' && strchr(err, '\n') == NULL); /* one line naming the problem */
    }
    free(copy);
    return 0;
}
