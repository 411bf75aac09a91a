/* The bench's WebSocket server: one client, minimal work, so it costs every client the
 * same. It times each test_request round trip with CLOCK_MONOTONIC on its side.
 *
 *   server --port P [--cert C --key K] --mode idle|throughput|flood|slow
 *          [--count N] [--warmup W] [--every K] [--payload FILE] [--out FILE]
 *          [--mix FILE --rate R --seconds S --tr-ms T]
 *
 * idle:       W + N sequential round trips: send a test_request, wait for the answer.
 * throughput: N notifications (the payload file, ~1 KB) as fast as the socket takes
 *             them, then {"method":"bench_end"}; the rate is N over the time until the
 *             client's "done" arrives (so the client's processing is included).
 * flood:      the throughput stream with a test_request after every K notifications;
 *             each round trip is timed from the moment its bytes were handed to the
 *             kernel to the moment the answer was read.
 * slow:       a paced feed for a consumer slower than it: --rate R messages/s for
 *             --seconds S, cycling through the lines of --mix FILE (one message a line),
 *             and a test_request every --tr-ms T milliseconds, each timed from the
 *             moment it is queued for the socket (so time spent behind a client that
 *             reads slowly counts) to the moment its answer is read. After the feed, up
 *             to 2 s more for answers, then the connection is closed. The figures add
 *             test_requests sent, unanswered, and answered after more than 1 s.
 * serve:      no feed and no test_requests: answer the client's requests (orders) for
 *             up to --seconds S, until the client sends "done" (with --mix and --rate R,
 *             the slow mode's paced feed and --tr-ms test_requests run beside it: orders
 *             under a market-data flood).
 * Prints one JSON line with the figures; --out writes the round trips (ns), one a line.
 *
 * The end marker: {"method":"bench_end"}, answered with the text "done". A client that
 * subscribed to the channel "bench.end" (drbfast.connect, whose public API hands out
 * subscription notifications only and cannot send the text "done") gets it as a
 * notification on that channel instead, and answers by closing the connection (a
 * request would wait for client-side rate-limit credits that the flood's test_request
 * answers used up); every other client gets the same bytes as before.
 *
 * A book resync: during throughput and flood, a subscribe naming the payload's channel
 * (a client that dropped book changes and resubscribes, as drbfast.connect does when
 * its queue for a slow consumer overflows) is answered, then followed by a snapshot of
 * that channel (the payload with "type":"snapshot"), as Deribit does; so the client
 * recovers and goes on delivering. Clients that never resubscribe see no difference.
 *
 * Every mode first serves the client's session set-up: each JSON-RPC request (hello,
 * auth, set_heartbeat, cancel-on-disconnect, subscribe, orders, ...) is answered at once
 * with a production-shaped result, until the client sends the text "ready" or calls
 * public/get_time; then the mode starts, so a client's set-up is never measured. Requests
 * during the mode are answered the same way; a public/test is a test_request's answer
 * (and, as the bench always did, gets no reply of its own).
 */
#include "wsbench.h"

#include <arpa/inet.h>
#include <ctype.h>
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
static const char BENCH_END_NOTE[] = "{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":\"bench.end\",\"data\":{}}}";
/* Set once the client subscribed to "bench.end" (see the header comment). */
static int g_end_channel = 0;
static int g_end_sent = 0; /* ... and the end marker was sent: its close is the "done" */
/* The payload's channel, quoted, and its snapshot frame (throughput/flood only). */
static char g_book_channel[160];
static unsigned char *g_snap = NULL;
static size_t g_snap_len = 0;

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

/* --out: the round trips (ns), one a line. */
static void write_rtts(const char *out, const int64_t *rtts, size_t n) {
    if (!out || !n) return;
    FILE *f = fopen(out, "w");
    if (!f) die("open --out");
    for (size_t i = 0; i < n; i++) fprintf(f, "%lld\n", (long long)rtts[i]);
    fclose(f);
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
    write_rtts(out, rtts, n);
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

/* ------------------------------------------------------------ requests from the client
 * The bench's clients send compact JSON or json.dumps' default (", " and ": "), so a key
 * is found by its quoted name and the value after optional spaces and a colon. */

static const unsigned char *json_value(const unsigned char *p, size_t n, const char *key) {
    size_t kl = strlen(key);
    const unsigned char *end = p + n, *q = p;
    while (q < end) {
        const unsigned char *k = memmem(q, (size_t)(end - q), key, kl);
        if (!k) return NULL;
        const unsigned char *v = k + kl;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        if (v < end && *v == ':') {
            v++;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            return v < end ? v : NULL;
        }
        q = k + 1;
    }
    return NULL;
}

/* A string value (without quotes) into out; 0 if the key is absent or not a string. */
static size_t json_str(const unsigned char *p, size_t n, const char *key, char *out, size_t cap) {
    const unsigned char *v = json_value(p, n, key), *end = p + n;
    if (!v || *v != '"') return 0;
    v++;
    size_t i = 0;
    while (v < end && *v != '"' && i + 1 < cap) out[i++] = (char)*v++;
    out[i] = 0;
    return i;
}

/* A number's text into out ("0" if absent). */
static void json_num(const unsigned char *p, size_t n, const char *key, char *out, size_t cap) {
    const unsigned char *v = json_value(p, n, key), *end = p + n;
    size_t i = 0;
    while (v && v < end && i + 1 < cap && (isdigit(*v) || *v == '.' || *v == '-' || *v == 'e' || *v == 'E' || *v == '+'))
        out[i++] = (char)*v++;
    if (!i) out[i++] = '0';
    out[i] = 0;
}

enum { C_ANSWER, C_READY, C_DONE, C_RPC, C_OTHER };

static int client_kind(const unsigned char *p, size_t n) {
    if (n == 5 && !memcmp(p, "ready", 5)) return C_READY;
    if (n >= 4 && !memcmp(p, "done", 4)) return C_DONE;
    char method[64];
    if (!json_str(p, n, "\"method\"", method, sizeof method)) return C_ANSWER; /* not a request: a peer's answer */
    if (!strcmp(method, "public/test")) return C_ANSWER;
    if (!strcmp(method, "public/get_time")) return C_READY;
    return C_RPC;
}

static long long g_order_seq = 3000000000LL;
static long g_rpc_answered = 0;

/* The reply to one request, framed into out (at least 4 KB); returns its length.
 * Results are shaped as production's (tests/samples): a subscribe echoes its channels,
 * an order is acked with the order as the matching engine would report it resting. */
static size_t rpc_reply(const unsigned char *p, size_t n, unsigned char *out) {
    char method[64], idtxt[32], body[3072];
    json_str(p, n, "\"method\"", method, sizeof method);
    json_num(p, n, "\"id\"", idtxt, sizeof idtxt);
    long long us = (long long)(now_ns() / 1000);
    int b = 0;
    const char *slash = strchr(method, '/');
    const char *verb = slash ? slash + 1 : method;
    if (!strcmp(verb, "hello")) {
        b = snprintf(body, sizeof body, "{\"version\":\"1.2.26\"}");
    } else if (!strcmp(verb, "auth")) {
        b = snprintf(body, sizeof body, "{\"token_type\":\"bearer\",\"scope\":\"connection mainaccount trade:read_write\","
                     "\"refresh_token\":\"bench.refresh\",\"expires_in\":31536000,\"access_token\":\"bench.access\"}");
    } else if (!strcmp(verb, "set_heartbeat") || !strcmp(verb, "enable_cancel_on_disconnect") ||
               !strcmp(verb, "disable_cancel_on_disconnect") || !strcmp(verb, "disable_heartbeat")) {
        b = snprintf(body, sizeof body, "\"ok\"");
    } else if (!strcmp(verb, "subscribe") || !strcmp(verb, "unsubscribe")) {
        const unsigned char *v = json_value(p, n, "\"channels\""), *end = p + n, *e = v;
        if (v && *v == '[') {
            while (e < end && *e != ']') e++;
            if (e < end && (size_t)(e - v + 1) < sizeof body) {
                b = (int)(e - v + 1);
                memcpy(body, v, (size_t)b);
            }
        }
        if (!b) b = snprintf(body, sizeof body, "[]");
        else if (!strcmp(verb, "subscribe") && memmem(body, (size_t)b, "\"bench.end\"", 11)) g_end_channel = 1;
    } else if (!strcmp(verb, "buy") || !strcmp(verb, "sell") || !strcmp(verb, "edit")) {
        char inst[64] = "BTC-PERPETUAL", label[72] = "", price[32], amount[32];
        json_str(p, n, "\"instrument_name\"", inst, sizeof inst);
        json_str(p, n, "\"label\"", label, sizeof label);
        json_num(p, n, "\"price\"", price, sizeof price);
        json_num(p, n, "\"amount\"", amount, sizeof amount);
        long long oid = ++g_order_seq;
        long long ms = us / 1000;
        b = snprintf(body, sizeof body,
                     "{\"trades\":[],\"order\":{\"web\":false,\"time_in_force\":\"good_til_cancelled\",\"replaced\":false,"
                     "\"reduce_only\":false,\"price\":%s,\"post_only\":false,\"order_type\":\"limit\",\"order_state\":\"open\","
                     "\"order_id\":\"%lld\",\"max_show\":%s,\"last_update_timestamp\":%lld,\"label\":\"%s\",\"is_rebalance\":false,"
                     "\"is_liquidation\":false,\"instrument_name\":\"%s\",\"filled_amount\":0.0,\"direction\":\"%s\","
                     "\"creation_timestamp\":%lld,\"average_price\":0.0,\"api\":true,\"amount\":%s}}",
                     price, oid, amount, ms, label, inst, !strcmp(verb, "sell") ? "sell" : "buy", ms, amount);
    } else if (!strcmp(verb, "get_time")) {
        b = snprintf(body, sizeof body, "%lld", us / 1000);
    } else {
        char text[4096];
        int t = snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"message\":\"Method not found\",\"code\":-32601},"
                         "\"usIn\":%lld,\"usOut\":%lld,\"usDiff\":1,\"testnet\":false}", idtxt, us, us + 1);
        g_rpc_answered++;
        return frame_build(out, 1, text, (size_t)t, 0);
    }
    char text[4096];
    int t = snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%.*s,\"usIn\":%lld,\"usOut\":%lld,\"usDiff\":1,"
                     "\"testnet\":false}", idtxt, b, body, us, us + 1);
    if (t < 0 || (size_t)t >= sizeof text) t = 0;
    g_rpc_answered++;
    return frame_build(out, 1, text, (size_t)t, 0);
}

/* Before the mode: answer the set-up until "ready" (or public/get_time). Blocking. */
static void serve_setup(conn_t *c) {
    int op; unsigned char *pl; size_t len, total;
    unsigned char out[4200];
    for (;;) {
        if (!frame_next(c, &op, &pl, &len, &total)) die("client closed during set-up");
        if (op == 8) die("client closed during set-up");
        if (op == 1) {
            int k = client_kind(pl, len);
            if (k == C_RPC || (k == C_READY && len > 5)) conn_write_all(c, out, rpc_reply(pl, len, out));
            if (k == C_READY) { frame_consume(c, total); return; }
        }
        frame_consume(c, total);
    }
}

static void set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Bytes queued for the socket (slow mode): appended at the end, written from off. */
typedef struct { unsigned char *p; size_t len, cap, off; } outbuf_t;

static void ob_add(outbuf_t *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        if (b->off) {
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            b->cap = (b->len + n) * 2;
            b->p = realloc(b->p, b->cap);
            if (!b->p) die("realloc");
        }
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static int ob_flush(conn_t *c, outbuf_t *b) {
    while (b->off < b->len) {
        ssize_t w = conn_write_some(c, b->p + b->off, b->len - b->off);
        if (w < 0) return -1;
        if (w == 0) break;
        b->off += (size_t)w;
    }
    if (b->off == b->len) b->off = b->len = 0;
    return 0;
}

/* Read and time every answer that has arrived, queue a reply to every request on
 * `replies`; returns -1 if the client went away. */
static int drain_answers(conn_t *c, outbuf_t *replies, int64_t *pending, size_t *p_head, size_t p_tail, int64_t *rtts,
                         size_t *n_rtt, int *done) {
    /* EOF after the end marker: a bench.end client closed (its "done"), maybe with its
     * close frame and last answers still in the buffer: read those first. */
    int eof = conn_poll_read(c) < 0;
    if (eof && !g_end_sent) return -1;
    int op; unsigned char *pl; size_t len, total;
    unsigned char out[4200];
    int64_t t = now_ns();
    while (frame_peek(c, &op, &pl, &len, &total)) {
        if (op == 1) {
            int k = client_kind(pl, len);
            if (k == C_DONE) *done = 1;
            else if (k == C_RPC || (k == C_READY && len > 5)) {
                ob_add(replies, out, rpc_reply(pl, len, out));
                char method[64];
                if (g_snap && json_str(pl, len, "\"method\"", method, sizeof method) && strstr(method, "/subscribe") &&
                    memmem(pl, len, g_book_channel, strlen(g_book_channel)))
                    ob_add(replies, g_snap, g_snap_len); /* the resubscribed book's snapshot */
            }
            else if (k == C_ANSWER && *p_head < p_tail) rtts[(*n_rtt)++] = t - pending[(*p_head)++];
        } else if (op == 8) {
            frame_consume(c, total);
            if (g_end_sent) { *done = 2; return 0; } /* a bench.end client's "done" (see the header) */
            return -1;
        }
        frame_consume(c, total);
    }
    if (eof) *done = 2;
    return 0;
}

static void run_slow(conn_t *c, const char *mode, const char *mix_path, double rate, double seconds, long tr_ms, const char *out) {
    /* The mix: one message a line, each framed once (serve mode: none, unless given). */
    FILE *f = mix_path ? fopen(mix_path, "rb") : NULL;
    if (mix_path && !f) die("open --mix");
    unsigned char *frames[256];
    size_t flen[256];
    int nmix = 0;
    char line[1 << 16];
    while (f && nmix < 256 && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!n) continue;
        frames[nmix] = malloc(n + 14);
        flen[nmix] = frame_build(frames[nmix], 1, line, n, 0);
        nmix++;
    }
    if (f) fclose(f);
    if (!nmix) rate = 0;
    unsigned char tr[256];
    size_t tr_len = frame_build(tr, 1, TEST_REQUEST, strlen(TEST_REQUEST), 0);
    long max_tr = tr_ms > 0 ? (long)(seconds * 1000.0 / (double)tr_ms) + 16 : 16;
    int64_t *pending = calloc((size_t)max_tr, sizeof *pending);
    int64_t *rtts = calloc((size_t)max_tr, sizeof *rtts);
    size_t p_head = 0, p_tail = 0, n_rtt = 0;
    outbuf_t ob = {0};
    set_nonblocking(c->fd, 1);
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9), tr_ns = (int64_t)tr_ms * 1000000;
    int64_t next_tr = tr_ms > 0 ? t0 + tr_ns : INT64_MAX;
    long sent = 0;
    int done = 0, gone = 0;
    for (;;) {
        int64_t now = now_ns();
        if (now < end) {
            long due = rate > 0 ? (long)((double)(now - t0) * rate / 1e9) : 0;
            while (sent < due) {
                ob_add(&ob, frames[sent % nmix], flen[sent % nmix]);
                sent++;
            }
            if (now >= next_tr && (long)p_tail < max_tr) {
                ob_add(&ob, tr, tr_len);
                pending[p_tail++] = now;
                next_tr += tr_ns;
            }
        } else if (now > end + 2000000000LL || p_head == p_tail) {
            break;
        }
        if (done && p_head == p_tail && ob.len == ob.off) break; /* the client finished first */
        if (ob_flush(c, &ob) < 0) { gone = 1; break; }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (ob.len) pfd.events |= POLLOUT;
        poll(&pfd, 1, 1);
        if (drain_answers(c, &ob, pending, &p_head, p_tail, rtts, &n_rtt, &done) < 0) { gone = 1; break; }
    }
    int64_t t_end = now_ns();
    size_t over_1s = 0;
    for (size_t i = 0; i < n_rtt; i++) if (rtts[i] > 1000000000LL) over_1s++;
    for (size_t i = p_head; i < p_tail; i++) if (t_end - pending[i] > 1000000000LL) over_1s++;
    qsort(rtts, n_rtt, sizeof *rtts, cmp_i64);
    double elapsed = (double)(t_end - t0) / 1e9;
    printf("{\"mode\":\"%s\",\"n\":%zu,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,"
           "\"rate\":%.1f,\"sent\":%ld,\"test_requests\":%zu,\"unanswered\":%zu,\"over_1s\":%zu,"
           "\"unsent_bytes\":%zu,\"client_gone\":%d,\"rpc_answered\":%ld}\n",
           mode, n_rtt, pct(rtts, n_rtt, .5), pct(rtts, n_rtt, .9), pct(rtts, n_rtt, .99), n_rtt ? rtts[n_rtt - 1] / 1000.0 : 0,
           (double)sent / (elapsed < seconds ? elapsed : seconds), sent, p_tail, p_tail - p_head, over_1s, ob.len - ob.off, gone,
           g_rpc_answered);
    fflush(stdout);
    write_rtts(out, rtts, n_rtt);
    if (!gone && ob.len == ob.off) {
        unsigned char closef[16];
        size_t cl = frame_build(closef, 8, "\x03\xe8", 2, 0);
        set_nonblocking(c->fd, 0);
        conn_write_all(c, closef, cl);
    }
    /* else: a frame may be half written; the client sees the connection drop */
    close(c->fd);
    exit(0);
}

int main(int argc, char **argv) {
    int port = 0;
    const char *mode = "idle", *cert = NULL, *key = NULL, *payload_path = NULL, *out = NULL, *mix = NULL;
    long count = 10000, warmup = 1000, every = 100, sndbuf = 0, tr_ms = 100;
    double rate = 10000, seconds = 30;
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
        else if (!strcmp(argv[i], "--mix")) mix = argv[i + 1];
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--tr-ms")) tr_ms = atol(argv[i + 1]);
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
    serve_setup(&c);

    if (!strcmp(mode, "slow")) {
        if (!mix || rate <= 0 || seconds <= 0 || tr_ms <= 0) die("slow mode needs --mix, --rate, --seconds, --tr-ms");
        run_slow(&c, mode, mix, rate, seconds, tr_ms, out);
    }
    if (!strcmp(mode, "serve")) {
        if (seconds <= 0) die("serve mode needs --seconds");
        run_slow(&c, mode, mix, mix ? rate : 0, seconds, mix ? tr_ms : 0, out);
    }

    /* Frames built once: the test_request, the end marker, the notification. */
    unsigned char tr[256], endm[256];
    size_t tr_len = frame_build(tr, 1, TEST_REQUEST, strlen(TEST_REQUEST), 0);
    const char *end_text = g_end_channel ? BENCH_END_NOTE : BENCH_END;
    size_t end_len = frame_build(endm, 1, end_text, strlen(end_text), 0);
    char *note = NULL;
    size_t note_n = 0;
    if (payload_path) {
        FILE *f = fopen(payload_path, "rb");
        if (!f) die("open --payload");
        note = malloc(1 << 20);
        note_n = fread(note, 1, 1 << 20, f);
        fclose(f);
        while (note_n && (note[note_n - 1] == '\n' || note[note_n - 1] == '\r')) note_n--;
        /* Its snapshot (for a client that resubscribes, see the header comment). */
        char channel[128];
        const char *type = memmem(note, note_n, "\"type\":\"change\"", 15);
        if (type && json_str((const unsigned char *)note, note_n, "\"channel\"", channel, sizeof channel)) {
            snprintf(g_book_channel, sizeof g_book_channel, "\"%s\"", channel);
            size_t head = (size_t)(type - note);
            char *snap = malloc(note_n + 8);
            memcpy(snap, note, head);
            memcpy(snap + head, "\"type\":\"snapshot\"", 17);
            memcpy(snap + head + 17, type + 15, note_n - head - 15);
            g_snap = malloc(note_n + 32);
            g_snap_len = frame_build(g_snap, 1, snap, note_n + 2, 0);
            free(snap);
        }
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
                int k = op == 1 ? client_kind(pl, len) : C_OTHER;
                if (k == C_RPC) {
                    unsigned char reply[4200];
                    size_t rl = rpc_reply(pl, len, reply);
                    frame_consume(&c, total);
                    conn_write_all(&c, reply, rl);
                    continue;
                }
                frame_consume(&c, total);
                if (k == C_ANSWER) break;
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
        /* TLS: a write that would block must be retried with the same bytes (OpenSSL's
         * "bad length" otherwise), so no reply goes out until the blocked chunk has. */
        int chunk_blocked = 0;
        size_t end_off = 0;
        outbuf_t replies = {0}; /* answers to requests, written between chunks */
        while (!done) {
            struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
            if (!sent_end) pfd.events |= POLLOUT;
            if (!(c.ssl && SSL_pending(c.ssl))) poll(&pfd, 1, 1000);
            if (drain_answers(&c, &replies, pending, &p_head, p_tail, rtts, &n_rtt, &done) < 0) die("client closed");
            if (off == 0 && !chunk_blocked && replies.len) {
                if (ob_flush(&c, &replies) < 0) die("write");
                if (replies.len) continue;
            }
            while (!sent_end) {
                if (sent_chunks < chunks) {
                    ssize_t w = conn_write_some(&c, chunk + off, chunk_len - off);
                    if (w < 0) die("write");
                    chunk_blocked = w == 0;
                    if (w == 0) break;
                    off += (size_t)w;
                    if (off == chunk_len) {
                        off = 0;
                        sent_chunks++;
                        if (with_tr) pending[p_tail++] = now_ns();
                        /* read answers between chunks, so they are timed when they land */
                        if (drain_answers(&c, &replies, pending, &p_head, p_tail, rtts, &n_rtt, &done) < 0) die("client closed");
                        if (replies.len) break; /* flushed at the top, between chunks */
                    }
                } else {
                    ssize_t w = conn_write_some(&c, endm + end_off, end_len - end_off);
                    if (w < 0) die("write");
                    if (w == 0) break;
                    end_off += (size_t)w;
                    if (end_off == end_len) {
                        sent_end = 1;
                        g_end_sent = g_end_channel;
                    }
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
    if (g_end_sent) conn_write_some(&c, closef, cl); /* the client closed first: it may be gone */
    else conn_write_all(&c, closef, cl);
    if (c.ssl) SSL_shutdown(c.ssl);
    close(c.fd);
    return 0;
}
