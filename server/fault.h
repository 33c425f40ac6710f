/* fault: which fault, if any, a benchmark response carries instead of its normal answer.
 *
 * A fault spec is a weighted list of fault kinds, read from `fault=` (query), `X-Mock-Fault` (header)
 * or `--fault` (flag, every request), with distribution.h's weight rules:
 *
 *   spec   := item (',' item)*            each kind at most once
 *   item   := kind [':' weight]
 *   kind   := reset | close | hang | partial | garbage   (any case)
 *   weight := percent of all requests, 0..100, up to 4 decimals ("1", "0.5", "0.0001")
 *
 * A lone kind without a weight has all of it ("fault=reset": every request); in a list of two or more
 * every item has a weight. Weights add up to at most 100; the rest is no fault ("reset:1,hang:0.5":
 * 1 % resets, 0.5 % hangs, 98.5 % normal answers). Spaces and tabs are allowed around ',' and around
 * the whole value, nowhere else.
 *
 * What each kind does is carried out by the protocol paths (http1_server.c, h2o_frontend.c) after the
 * response's delay: see the README section "Faults and connection behaviours". This file only
 * parses, draws and names. No I/O, no allocation, no global state. */
#ifndef MOCKUPSTREAM_FAULT_H
#define MOCKUPSTREAM_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "prng.h"

enum fault_kind {
    FAULT_NONE = 0,
    FAULT_RESET,   /* TCP RST (HTTP/2: RST_STREAM on that stream) */
    FAULT_CLOSE,   /* close without a response (HTTP/2: GOAWAY, the connection closes) */
    FAULT_HANG,    /* never answer: until the client leaves or --request-timeout */
    FAULT_PARTIAL, /* the head and half the body, then close (HTTP/2: RST_STREAM mid-body) */
    FAULT_GARBAGE, /* bytes that are not HTTP, then close (HTTP/2: a malformed response on the stream) */
    FAULT_KIND_COUNT,
};

/* Kinds other than FAULT_NONE: the size of a per-kind counter array (stats.h mirrors it). */
#define FAULT_KINDS (FAULT_KIND_COUNT - 1)

/* 100 % of draws, in parts per million (distribution.h's DISTRIBUTION_WEIGHT_FULL_PPM). */
#define FAULT_WEIGHT_FULL_PPM 1000000u

/* Room for any error fault_spec_parse writes, with the NUL. */
#define FAULT_ERROR_BYTES 160

/* Room for the canonical text of any spec, with the NUL. */
#define FAULT_DESCRIBE_BYTES 128

struct fault_item {
    uint8_t kind;        /* enum fault_kind, never FAULT_NONE */
    uint32_t weight_ppm; /* share of all draws */
};

/* A parsed spec: plain data, lives on the stack or in the config. count 0: never a fault. */
struct fault_spec {
    uint8_t count;
    struct fault_item items[FAULT_KINDS];
};

/* Parses `len` bytes at `s` (need not be NUL-terminated). Returns 0, or -1 with a one-line reason in
 * err (no parameter name: the caller prefixes it) and spec->count set to 0. */
int fault_spec_parse(struct fault_spec *spec, const char *s, size_t len, char *err, size_t err_size);

/* Draws one request's fault: FAULT_NONE in the rest weight. A lone kind with all the weight draws
 * nothing from the prng; so does an empty spec. */
enum fault_kind fault_spec_draw(const struct fault_spec *spec, struct prng *rng);

/* "reset", "close", "hang", "partial", "garbage" ("none" for FAULT_NONE). */
const char *fault_kind_name(enum fault_kind kind);

/* Writes the canonical text ("reset:1,hang:0.5"; a lone kind's ":100" left out) into buf, cut to
 * buf_size, NUL-terminated. Returns the whole text's length. Empty for count 0. */
size_t fault_spec_describe(const struct fault_spec *spec, char *buf, size_t buf_size);

#endif
