/* A minimal Lambda Runtime API client in C: one keep-alive connection, Content-Length bodies,
 * and a streamed response (chunked, with error trailers). Built by the tests; what it does
 * depends on words in the event:
 *   "fail"   -> POST /error (Custom.Failure)
 *   "exit"   -> exit(5) in the middle of the invocation
 *   "nap"    -> sleep for a minute (past any test's timeout)
 *   "hog"    -> allocate and touch memory until something stops it
 *   "stream" -> a streamed response in three chunks; with "gated", it waits for a byte on
 *               the FIFO named by $STREAM_GATE after the first chunk; with "stream_error",
 *               it ends the stream with error trailers
 *   anything else -> {"echo": EVENT, "request_id": ID, "runtime": "c"}
 * With _HANDLER=hello it answers {"message":"Hello"} to everything (the benchmarks' hello).
 * With FAIL_INIT set in its environment, it posts /init/error and exits. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int api = -1;
static char host[64];
static int port;

static void die(const char *what) { fprintf(stderr, "runtime.c: %s\n", what); exit(70); }

static void api_connect(void) {
    struct sockaddr_in addr = {0};
    if (api >= 0) return;
    api = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(api, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    int one = 1; /* a head and a body are two writes: no Nagle delay between them (as curl) */
    setsockopt(api, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void send_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(api, buf, len, MSG_NOSIGNAL);
        if (n <= 0) die("send");
        buf += n;
        len -= n;
    }
}

static void send_str(const char *s) { send_all(s, strlen(s)); }

/* A response: status, the request id header, the body (malloc'ed, NUL-terminated). */
struct response { int status; char request_id[128]; char *body; size_t len; int close; };

static void read_response(struct response *r) {
    static char head[65536];
    size_t got = 0;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (!end) {
        ssize_t n = recv(api, head + got, sizeof head - 1 - got, 0);
        if (n <= 0) die("recv head");
        got += n;
        head[got] = 0;
        end = strstr(head, "\r\n\r\n");
        if (!end && got >= sizeof head - 1) die("head too large");
    }
    *end = 0;
    size_t extra = got - (end + 4 - head);
    r->status = atoi(head + 9);
    size_t length = 0;
    for (char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (!strncasecmp(line, "Content-Length:", 15)) length = strtoul(line + 15, NULL, 10);
        if (!strncasecmp(line, "Connection: close", 17)) r->close = 1;
        if (!strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30)) {
            char *v = line + 30;
            while (*v == ' ') v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= sizeof r->request_id) k = sizeof r->request_id - 1;
            memcpy(r->request_id, v, k);
        }
    }
    r->body = malloc(length + 1);
    if (extra > length) die("pipelined data");
    memcpy(r->body, end + 4, extra);
    r->len = extra;
    while (r->len < length) {
        ssize_t n = recv(api, r->body + r->len, length - r->len, 0);
        if (n <= 0) die("recv body");
        r->len += n;
    }
    r->body[r->len] = 0;
}

static int post(const char *path, const char *extra_headers, const char *body) {
    char head[1024];
    struct response r;
    api_connect();
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Length: %zu\r\n\r\n",
             path, host, port, extra_headers, strlen(body));
    send_str(head);
    send_str(body);
    read_response(&r);
    free(r.body);
    if (r.close) { close(api); api = -1; }
    return r.status;
}

static void chunk(const char *data) {
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", strlen(data));
    send_str(size);
    send_str(data);
    send_str("\r\n");
}

static void base64(const char *in, char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out[o++] = a[v >> 18]; out[o++] = a[v >> 12 & 63]; out[o++] = a[v >> 6 & 63]; out[o++] = a[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18]; out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

static void stream(const char *id, int gated, int fail) {
    char head[1024], path[256];
    struct response r;
    api_connect();
    snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", id);
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
             "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
             "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
             "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
             "\r\n", path, host, port);
    send_str(head);
    chunk("part 1\n");
    if (gated) {
        char byte;
        int fd = open(getenv("STREAM_GATE"), O_RDONLY);
        if (fd < 0 || read(fd, &byte, 1) != 1) die("gate");
        close(fd);
    }
    chunk("part 2\n");
    if (fail) {
        char b64[512];
        base64("{\"errorMessage\":\"failed mid-stream\",\"errorType\":\"Custom.StreamFailed\"}", b64);
        send_str("0\r\nLambda-Runtime-Function-Error-Type: Custom.StreamFailed\r\n"
                 "Lambda-Runtime-Function-Error-Body: ");
        send_str(b64);
        send_str("\r\n\r\n");
    } else {
        chunk("part 3\n");
        send_str("0\r\n\r\n");
    }
    read_response(&r);
    if (r.status != 202) die("stream not accepted");
    free(r.body);
    if (r.close) { close(api); api = -1; }
}

int main(void) {
    const char *address = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!address || sscanf(address, "%63[^:]:%d", host, &port) != 2) die("AWS_LAMBDA_RUNTIME_API");
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getenv("FAIL_INIT")) {
        fprintf(stderr, "runtime.c: init failed on purpose\n");
        post("/2018-06-01/runtime/init/error",
             "Lambda-Runtime-Function-Error-Type: Custom.InitFailed\r\n",
             "{\"errorMessage\":\"init failed on purpose\",\"errorType\":\"Custom.InitFailed\"}");
        return 1;
    }
    const char *handler = getenv("_HANDLER");
    int hello = handler && !strcmp(handler, "hello");
    for (;;) {
        struct response next;
        char head[512], path[256];
        api_connect();
        snprintf(head, sizeof head,
                 "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
                 host, port);
        send_str(head);
        read_response(&next);
        if (next.close) { close(api); api = -1; }
        if (next.status != 200) die("next");
        printf("handling %s\n", next.request_id);
        if (strstr(next.body, "\"exit\"")) exit(5);
        if (strstr(next.body, "\"nap\"")) sleep(60);
        if (strstr(next.body, "\"hog\"")) {
            for (int mb = 0; mb < 4096; mb++) {
                char *block = malloc(1 << 20);
                if (!block) die("out of memory");
                memset(block, mb, 1 << 20);
            }
        }
        if (strstr(next.body, "\"stream")) {
            stream(next.request_id, strstr(next.body, "\"gated\"") != NULL,
                   strstr(next.body, "\"stream_error\"") != NULL);
        } else if (strstr(next.body, "\"fail\"")) {
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/error", next.request_id);
            post(path, "Lambda-Runtime-Function-Error-Type: Custom.Failure\r\n",
                 "{\"errorMessage\":\"asked to fail\",\"errorType\":\"Custom.Failure\"}");
        } else if (hello) {
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response",
                     next.request_id);
            if (post(path, "", "{\"message\":\"Hello\"}") != 202) die("response not accepted");
        } else {
            size_t size = next.len + 256;
            char *out = malloc(size);
            snprintf(out, size, "{\"echo\":%s,\"request_id\":\"%s\",\"runtime\":\"c\"}",
                     next.len ? next.body : "null", next.request_id);
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response",
                     next.request_id);
            if (post(path, "", out) != 202) die("response not accepted");
            free(out);
        }
        free(next.body);
    }
}
