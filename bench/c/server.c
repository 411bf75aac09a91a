/* The bench's WebSocket server: one client, minimal work, so it costs every client the
 * same. It times each test_request round trip with CLOCK_MONOTONIC on its side.
 *
 *   server --port P [--cert C --key K] --mode idle|throughput|flood
 *          [--count N] [--warmup W] [--every K] [--payload FILE] [--out FILE]
 *
 * idle:       W + N sequential round trips: send a test_request, wait for the answer.
 * throughput: N notifications (the payload file, ~1 KB) as fast as the socket takes
 *             them, then {"method":"bench_end"}; the rate is N over the time until the
 *             client's "done" arrives (so the client's processing is included).
 * flood:      the throughput stream with a test_request after every K notifications;
 *             each round trip is timed from the moment its bytes were handed to the
 *             kernel to the moment the answer was read.
 * Prints one JSON line with the figures; --out writes the round trips (ns), one a line.
 */
#include "wsbench.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

static const char TEST_REQUEST[] = "{\"params\":{\"type\":\"test_request\"},\"method\":\"heartbeat\",\"jsonrpc\":\"2.0\"}";
static const char BENCH_END[] = "{\"jsonrpc\":\"2.0\",\"method\":\"bench_end\",\"params\":{}}";

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(int64_t *v, size_t n, double q) {
    if (!n) return 0;
    size_t i = (size_t)(q * (double)n);
    if (i >= n) i = n - 1;
    return (double)v[i] / 1000.0;
}

static void report(const char *mode, int64_t *rtts, size_t n, double rate, long sent, const char *out) {
    qsort(rtts, n, sizeof *rtts, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)rtts[i];
    printf("{\"mode\":\"%s\",\"n\":%zu,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,"
           "\"mean_us\":%.3f,\"rate\":%.1f,\"sent\":%ld}\n",
           mode, n, pct(rtts, n, .5), pct(rtts, n, .9), pct(rtts, n, .99), n ? rtts[n - 1] / 1000.0 : 0,
           n ? sum / (double)n / 1000.0 : 0, rate, sent);
    fflush(stdout);
    if (out && n) {
        FILE *f = fopen(out, "w");
        if (!f) die("open --out");
        for (size_t i = 0; i < n; i++) fprintf(f, "%lld\n", (long long)rtts[i]);
        fclose(f);
    }
}

/* RFC 6455 4.2.2: Sec-WebSocket-Accept = base64(SHA-1(key + GUID)). */
static void handshake(conn_t *c) {
    while (!c->rlen || !memmem(c->rbuf, c->rlen, "\r\n\r\n", 4))
        if (conn_fill(c, c->rlen + 1) < 0) die("handshake: closed");
    char *req = (char *)c->rbuf;
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    char *k = strcasestr(req, "sec-websocket-key:");
    if (!k || k > end) die("handshake: no key");
    k += 18;
    while (*k == ' ') k++;
    char *ke = strstr(k, "\r\n");
    char buf[256];
    int kl = (int)(ke - k);
    if (kl <= 0 || kl > 100) die("handshake: bad key");
    snprintf(buf, sizeof buf, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", kl, k);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)buf, strlen(buf), sha);
    unsigned char accept[64];
    EVP_EncodeBlock(accept, sha, SHA_DIGEST_LENGTH);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    size_t used = (size_t)(end + 4 - req);
    frame_consume(c, used);
    conn_write_all(c, resp, (size_t)n);
}

static void set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Read and time every answer that has arrived; returns -1 if the client went away. */
static int drain_answers(conn_t *c, int64_t *pending, size_t *p_head, size_t p_tail, int64_t *rtts, size_t *n_rtt, int *done) {
    if (conn_poll_read(c) < 0) return -1;
    int op; unsigned char *pl; size_t len, total;
    int64_t t = now_ns();
    while (frame_peek(c, &op, &pl, &len, &total)) {
        if (op == 1) {
            if (len >= 4 && !memcmp(pl, "done", 4)) *done = 1;
            else if (*p_head < p_tail) rtts[(*n_rtt)++] = t - pending[(*p_head)++];
        } else if (op == 8) {
            frame_consume(c, total);
            return -1;
        }
        frame_consume(c, total);
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = 0;
    const char *mode = "idle", *cert = NULL, *key = NULL, *payload_path = NULL, *out = NULL;
    long count = 10000, warmup = 1000, every = 100, sndbuf = 0;
    for (int i = 1; i < argc - 1; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!strcmp(argv[i], "--cert")) cert = argv[i + 1];
        else if (!strcmp(argv[i], "--key")) key = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--every")) every = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload")) payload_path = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--sndbuf")) sndbuf = atol(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(300); /* every run is bounded in time */

    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1)) die("bind/listen");
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("{\"listening\":%d}\n", ntohs(a.sin_port));
    fflush(stdout);

    SSL_CTX *ctx = NULL;
    if (cert) {
        ctx = SSL_CTX_new(TLS_server_method());
        /* Every client negotiates the same suite: TLS 1.3, AES-128-GCM. */
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            die("certificate");
    }
    conn_t c = {.fd = accept(ls, NULL, NULL)};
    if (c.fd < 0) die("accept");
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sndbuf > 0) {
        /* A small send buffer keeps the queue on the client's side, where a real
         * client's backlog is; the kernel may double the value. */
        int v = (int)sndbuf;
        setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
    if (ctx) {
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        if (SSL_accept(c.ssl) != 1) die("SSL_accept");
    }
    handshake(&c);

    /* Frames built once: the test_request, the end marker, the notification. */
    unsigned char tr[256], endm[256];
    size_t tr_len = frame_build(tr, 1, TEST_REQUEST, strlen(TEST_REQUEST), 0);
    size_t end_len = frame_build(endm, 1, BENCH_END, strlen(BENCH_END), 0);
    char *note = NULL;
    size_t note_n = 0;
    if (payload_path) {
        FILE *f = fopen(payload_path, "rb");
        if (!f) die("open --payload");
        note = malloc(1 << 20);
        note_n = fread(note, 1, 1 << 20, f);
        fclose(f);
        while (note_n && (note[note_n - 1] == '\n' || note[note_n - 1] == '\r')) note_n--;
    }
    int64_t *rtts = calloc((size_t)(count + warmup + 16), sizeof *rtts);
    size_t n_rtt = 0;

    if (!strcmp(mode, "idle")) {
        int op; unsigned char *pl; size_t len, total;
        for (long i = 0; i < warmup + count; i++) {
            int64_t t0 = now_ns();
            conn_write_all(&c, tr, tr_len);
            for (;;) {
                if (!frame_next(&c, &op, &pl, &len, &total)) die("client closed");
                frame_consume(&c, total);
                if (op == 1) break;
            }
            if (i >= warmup) rtts[n_rtt++] = now_ns() - t0;
        }
        report("idle", rtts, n_rtt, 0, count, out);
    } else {
        if (!note) die("--payload is needed for throughput and flood");
        /* A chunk: `every` notifications, then (flood) one test_request at its end, so
         * the test_request's send time is when its chunk is fully written. */
        long per = !strcmp(mode, "flood") ? every : 64;
        size_t one_len = note_n + 14;
        unsigned char *chunk = malloc((size_t)per * one_len + tr_len);
        size_t chunk_len = 0;
        for (long i = 0; i < per; i++) chunk_len += frame_build(chunk + chunk_len, 1, note, note_n, 0);
        int with_tr = !strcmp(mode, "flood");
        if (with_tr) {
            /* the last notification of the chunk is replaced by the test_request */
            chunk_len = 0;
            for (long i = 0; i < per - 1; i++) chunk_len += frame_build(chunk + chunk_len, 1, note, note_n, 0);
            memcpy(chunk + chunk_len, tr, tr_len);
            chunk_len += tr_len;
        }
        long chunks = (count + per - 1) / per;
        int64_t *pending = calloc((size_t)chunks + 1, sizeof *pending);
        size_t p_head = 0, p_tail = 0;
        set_nonblocking(c.fd, 1);
        int64_t t_start = now_ns();
        long sent_chunks = 0;
        size_t off = 0;
        int sent_end = 0, done = 0;
        size_t end_off = 0;
        while (!done) {
            struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
            if (!sent_end) pfd.events |= POLLOUT;
            if (!(c.ssl && SSL_pending(c.ssl))) poll(&pfd, 1, 1000);
            if (drain_answers(&c, pending, &p_head, p_tail, rtts, &n_rtt, &done) < 0) die("client closed");
            while (!sent_end) {
                if (sent_chunks < chunks) {
                    ssize_t w = conn_write_some(&c, chunk + off, chunk_len - off);
                    if (w < 0) die("write");
                    if (w == 0) break;
                    off += (size_t)w;
                    if (off == chunk_len) {
                        off = 0;
                        sent_chunks++;
                        if (with_tr) pending[p_tail++] = now_ns();
                        /* read answers between chunks, so they are timed when they land */
                        if (drain_answers(&c, pending, &p_head, p_tail, rtts, &n_rtt, &done) < 0) die("client closed");
                    }
                } else {
                    ssize_t w = conn_write_some(&c, endm + end_off, end_len - end_off);
                    if (w < 0) die("write");
                    if (w == 0) break;
                    end_off += (size_t)w;
                    if (end_off == end_len) sent_end = 1;
                }
            }
        }
        double secs = (double)(now_ns() - t_start) / 1e9;
        long sent = sent_chunks * per;
        report(mode, rtts, n_rtt, (double)sent / secs, sent, out);
        set_nonblocking(c.fd, 0);
    }
    unsigned char closef[16];
    size_t cl = frame_build(closef, 8, "\x03\xe8", 2, 0);
    conn_write_all(&c, closef, cl);
    if (c.ssl) SSL_shutdown(c.ssl);
    close(c.fd);
    return 0;
}
