/* The floor: a minimal blocking C client. It answers each test_request with a prebuilt,
 * pre-masked public/test frame, counts notifications, and answers the server's
 * bench_end with "done".
 *
 *   client --port P [--tls CAFILE] [--orders N --warmup W]
 *
 * --orders: the order round trip (the server in serve mode): W + N private/buy requests
 * one at a time, each from one prebuilt, pre-masked frame with its id patched in, timed
 * from just before the write to the moment its ack (the reply with that id) is read;
 * then "done", and one JSON line on stdout with the percentiles of the last N.
 */
#include "wsbench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* The order request: the fields drbfast's template sends; the id is always 10 digits. */
static const char BUY[] = "{\"jsonrpc\":\"2.0\",\"id\":1000000000,\"method\":\"private/buy\",\"params\":{"
                          "\"instrument_name\":\"BTC-PERPETUAL\",\"amount\":10,\"type\":\"limit\",\"price\":86750.5,"
                          "\"label\":\"c-1\"}}";
#define BUY_ID_AT 22 /* offset of the id's first digit in BUY: {"jsonrpc":"2.0","id": is 22 bytes */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const int64_t *v, long n, double q) {
    long i = (long)(q * (double)n);
    if (i >= n) i = n - 1;
    return n ? (double)v[i] / 1000.0 : 0;
}

/* The reply's id, or -1 if the frame is not a reply (production: `{"jsonrpc":"2.0","id":`). */
static long long reply_id(const unsigned char *pl, size_t len) {
    const unsigned char *k = memmem(pl, len < 48 ? len : 48, "\"id\":", 5);
    if (!k) return -1;
    long long v = 0;
    for (k += 5; k < pl + len && *k >= '0' && *k <= '9'; k++) v = v * 10 + (*k - '0');
    return v;
}

static int run_orders(conn_t *c, long count, long warmup) {
    unsigned char frame[512];
    size_t flen = frame_build(frame, 1, BUY, strlen(BUY), 1);
    size_t hdr = flen - strlen(BUY);
    const unsigned char *key = frame + hdr - 4;
    if (memcmp(BUY + BUY_ID_AT, "1000000000", 10)) die("BUY_ID_AT");
    int64_t *rtts = calloc((size_t)count + 1, sizeof *rtts);
    int op; unsigned char *pl; size_t len, total;
    for (long i = 0; i < warmup + count; i++) {
        long long id = 1000000001LL + i;
        char digits[16];
        snprintf(digits, sizeof digits, "%010lld", id);
        for (int j = 0; j < 10; j++) {
            size_t at = BUY_ID_AT + (size_t)j;
            frame[hdr + at] = (unsigned char)digits[j] ^ key[at & 3]; /* masked in place (RFC 6455 5.3) */
        }
        int64_t t0 = now_ns();
        conn_write_all(c, frame, flen);
        for (;;) {
            if (!frame_next(c, &op, &pl, &len, &total)) die("server closed");
            long long got = op == 1 ? reply_id(pl, len) : -1;
            frame_consume(c, total);
            if (got == id) break;
        }
        if (i >= warmup) rtts[i - warmup] = now_ns() - t0;
    }
    unsigned char done[64];
    conn_write_all(c, done, frame_build(done, 1, "done", 4, 1));
    qsort(rtts, (size_t)count, sizeof *rtts, cmp_i64);
    printf("{\"client\":\"c\",\"order_n\":%ld,\"order_sent\":%ld,\"order_unacked\":0,\"order_late\":0,"
           "\"order_p50_us\":%.3f,\"order_p90_us\":%.3f,\"order_p99_us\":%.3f,\"order_max_us\":%.3f}\n",
           count, count, pct_us(rtts, count, .5), pct_us(rtts, count, .9), pct_us(rtts, count, .99),
           count ? rtts[count - 1] / 1000.0 : 0);
    fflush(stdout);
    return 0;
}

static const char PUBLIC_TEST[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"public/test\",\"params\":{}}";

int main(int argc, char **argv) {
    int port = 0;
    const char *ca = NULL;
    long orders = 0, warmup = 0;
    for (int i = 1; i < argc - 1; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tls")) ca = argv[i + 1];
        else if (!strcmp(argv[i], "--orders")) orders = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atol(argv[i + 1]);
    }
    alarm(300);
    conn_t c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd, (struct sockaddr *)&a, sizeof a)) die("connect");
    if (ca) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
        SSL_CTX_load_verify_locations(ctx, ca, NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_tlsext_host_name(c.ssl, "localhost");
        SSL_set1_host(c.ssl, "localhost");
        if (SSL_connect(c.ssl) != 1) die("SSL_connect");
    }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /ws/api/v2 HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", port);
    conn_write_all(&c, req, (size_t)n);
    while (!c.rlen || !memmem(c.rbuf, c.rlen, "\r\n\r\n", 4))
        if (conn_fill(&c, c.rlen + 1) < 0) die("handshake");
    size_t hl = (size_t)((unsigned char *)memmem(c.rbuf, c.rlen, "\r\n\r\n", 4) + 4 - c.rbuf);
    frame_consume(&c, hl);

    unsigned char ready[64];
    size_t ready_len = frame_build(ready, 1, "ready", 5, 1);
    conn_write_all(&c, ready, ready_len); /* the server's mode starts after it */
    if (orders > 0) return run_orders(&c, orders, warmup);

    unsigned char answer[256], done[64];
    size_t answer_len = frame_build(answer, 1, PUBLIC_TEST, strlen(PUBLIC_TEST), 1);
    size_t done_len = frame_build(done, 1, "done", 4, 1);
    long notes = 0;
    int op; unsigned char *pl; size_t len, total;
    while (frame_next(&c, &op, &pl, &len, &total)) {
        if (op == 8) break;
        if (op == 1) {
            /* The byte offsets of the production frame: `{"params":{"type":"t` */
            if (len > 20 && pl[19] == 't' && memmem(pl, len, "test_request", 12)) {
                conn_write_all(&c, answer, answer_len);
            } else if (memmem(pl, len < 64 ? len : 64, "bench_end", 9)) {
                conn_write_all(&c, done, done_len);
            } else {
                notes++;
            }
        }
        frame_consume(&c, total);
    }
    fprintf(stderr, "{\"client\":\"c\",\"notifications\":%ld}\n", notes);
    return 0;
}
