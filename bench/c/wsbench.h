/* Shared pieces of the bench's C WebSocket server and client: a connection that is a
 * plain socket or an OpenSSL session, a buffered frame reader, and the clock.
 * Only what the benchmark needs: one connection, RFC 6455 framing, no extensions. */
#ifndef DRBFAST_WSBENCH_H
#define DRBFAST_WSBENCH_H

#define _GNU_SOURCE /* memmem, strcasestr */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct {
    int fd;
    SSL *ssl;               /* NULL for plain TCP */
    unsigned char *rbuf;    /* bytes read but not yet parsed */
    size_t rlen, rcap;
} conn_t;

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "wsbench: %s: %s\n", what, errno ? strerror(errno) : "failed");
    ERR_print_errors_fp(stderr);
    exit(2);
}

/* Read what is available (blocking sockets block until something is). Returns bytes
 * read, 0 on a non-blocking "nothing now", -1 on EOF or error. */
static ssize_t conn_read(conn_t *c, void *buf, size_t n) {
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        return -1;
    }
    ssize_t r = read(c->fd, buf, n);
    if (r > 0) return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return -1;
}

/* Write some of buf. Returns bytes written, 0 if the socket would block, -1 on error.
 * With TLS, a retried write must pass the same remaining bytes (SSL_MODE_* set). */
static ssize_t conn_write_some(conn_t *c, const void *buf, size_t n) {
    if (c->ssl) {
        int r = SSL_write(c->ssl, buf, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        return -1;
    }
    ssize_t r = write(c->fd, buf, n);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -1;
}

static void conn_write_all(conn_t *c, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = conn_write_some(c, p, n);
        if (w < 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Fill the read buffer with at least `need` bytes (blocking). */
static int conn_fill(conn_t *c, size_t need) {
    while (c->rlen < need) {
        if (c->rcap < need) {
            c->rcap = need * 2;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) die("realloc");
        }
        ssize_t r = conn_read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r < 0) return -1;
        c->rlen += (size_t)r;
    }
    return 0;
}

/* Non-blocking sockets: read everything available now. 0 when it would block, -1 on EOF. */
static int conn_poll_read(conn_t *c) {
    for (;;) {
        if (c->rcap - c->rlen < 65536) {
            c->rcap = c->rcap * 2 + 65536;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) die("realloc");
        }
        ssize_t r = conn_read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r < 0) return -1;
        if (r == 0) return 0;
        c->rlen += (size_t)r;
    }
}

/* Parse one complete frame from the buffer if there is one. Returns 1 and sets
 * opcode/payload/len (payload unmasked in place, valid until the next consume),
 * 0 if incomplete. RFC 6455 5.2: byte 0 FIN|opcode, byte 1 MASK|len7, then the
 * 16- or 64-bit extended length, then the 4-byte mask key. */
static int frame_peek(conn_t *c, int *opcode, unsigned char **payload, size_t *len, size_t *total) {
    if (c->rlen < 2) return 0;
    unsigned char *b = c->rbuf;
    size_t hdr = 2, n = b[1] & 0x7F;
    int masked = b[1] & 0x80;
    if (n == 126) {
        if (c->rlen < 4) return 0;
        n = ((size_t)b[2] << 8) | b[3];
        hdr = 4;
    } else if (n == 127) {
        if (c->rlen < 10) return 0;
        n = 0;
        for (int i = 0; i < 8; i++) n = (n << 8) | b[2 + i];
        hdr = 10;
    }
    if (masked) hdr += 4;
    if (c->rlen < hdr + n) return 0;
    if (masked) {
        unsigned char *key = b + hdr - 4;
        for (size_t i = 0; i < n; i++) b[hdr + i] ^= key[i & 3];
    }
    *opcode = b[0] & 0x0F;
    *payload = b + hdr;
    *len = n;
    *total = hdr + n;
    return 1;
}

static void frame_consume(conn_t *c, size_t total) {
    memmove(c->rbuf, c->rbuf + total, c->rlen - total);
    c->rlen -= total;
}

/* Blocking: the next frame (0 on EOF). */
static int frame_next(conn_t *c, int *opcode, unsigned char **payload, size_t *len, size_t *total) {
    for (;;) {
        if (frame_peek(c, opcode, payload, len, total)) return 1;
        if (conn_fill(c, c->rlen + 1) < 0) return 0;
    }
}

/* An unmasked (server) or masked (client, fixed key) frame header + payload. */
static size_t frame_build(unsigned char *out, int opcode, const void *payload, size_t n, int mask) {
    size_t h = 0;
    out[h++] = 0x80 | (unsigned char)opcode;
    unsigned char m = mask ? 0x80 : 0;
    if (n < 126) {
        out[h++] = m | (unsigned char)n;
    } else if (n < 65536) {
        out[h++] = m | 126;
        out[h++] = (unsigned char)(n >> 8);
        out[h++] = (unsigned char)n;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (unsigned char)(n >> (8 * i));
    }
    if (mask) {
        static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
        memcpy(out + h, key, 4);
        h += 4;
        for (size_t i = 0; i < n; i++) out[h + i] = ((const unsigned char *)payload)[i] ^ key[i & 3];
    } else {
        memcpy(out + h, payload, n);
    }
    return h + n;
}

#endif
