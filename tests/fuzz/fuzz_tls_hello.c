/* libFuzzer harness: the ClientHello peek parser on arbitrary bytes. Besides memory safety: a prefix
 * of an input that parses is never refused (it is "incomplete"), and never answers differently; an
 * incomplete one asks for more bytes than it has. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool h2 = false;
    size_t want = 0;
    enum tls_hello_result whole = tls_hello_offers_h2(data, size, &h2, &want);
    assert(whole == TLS_HELLO_INCOMPLETE || whole == TLS_HELLO_PARSED || whole == TLS_HELLO_UNPARSABLE);
    /* waiting must be for more than is there, and never for more than a hello can take */
    if (whole == TLS_HELLO_INCOMPLETE)
        assert(want > size && want <= 2 * (TLS_HELLO_MAX_BYTES + 4) * (5 + 1) + 5 + TLS_HELLO_MAX_RECORD_BYTES);
    if (whole == TLS_HELLO_PARSED && size > 0) {
        bool prefix_h2 = false;
        enum tls_hello_result prefix = tls_hello_offers_h2(data, size / 2, &prefix_h2, &want);
        assert(prefix != TLS_HELLO_UNPARSABLE);
        assert(prefix == TLS_HELLO_INCOMPLETE || prefix_h2 == h2);
    }
    return 0;
}
