/* The floor: a minimal blocking C client. It answers each test_request with a prebuilt,
 * pre-masked public/test frame, counts notifications, and answers the server's
 * bench_end with "done".
 *
 *   client --port P [--tls CAFILE]
 */
#include "wsbench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static const char PUBLIC_TEST[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"public/test\",\"params\":{}}";

int main(int argc, char **argv) {
    int port = 0;
    const char *ca = NULL;
    for (int i = 1; i < argc - 1; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tls")) ca = argv[i + 1];
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
