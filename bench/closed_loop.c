/* A plain closed-loop HTTP/1.1 client to check wrk's percentiles: one thread and one keep-alive
 * connection per concurrent client, each sending `GET <path>` and reading the whole response
 * (Content-Length) before the next, with CLOCK_MONOTONIC around each request. Prints one
 * line: the requests, the seconds, the non-2xx answers and the percentiles of the latencies
 * it measured, so that Little's law (mean latency x requests / seconds = connections)
 * can be checked.
 *
 *     closed_loop <host> <port> <path> <connections> <seconds>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 22)

static const char *host, *path;
static int port;
static double seconds;
static double *samples[64];
static long counts[64], failed[64];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *client(void *arg) {
    long id = (long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
        perror("connect");
        exit(1);
    }
    char request[512], buf[65536];
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path,
                       host, port);
    samples[id] = malloc(sizeof(double) * MAX_SAMPLES);
    double end = now() + seconds;
    while (counts[id] < MAX_SAMPLES) {
        double started = now();
        if (started >= end) break;
        if (write(fd, request, len) != len) {
            perror("write");
            exit(1);
        }
        size_t have = 0, want = 0;
        for (;;) {
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n <= 0) {
                perror("read");
                exit(1);
            }
            have += n;
            buf[have < sizeof buf ? have : sizeof buf - 1] = 0;
            char *head_end = strstr(buf, "\r\n\r\n");
            if (head_end && !want) {
                if (strncmp(buf + 8, " 2", 2) != 0) failed[id]++; /* "HTTP/1.1 2xx" */
                char *cl = strcasestr(buf, "content-length:");
                want = (head_end - buf) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            }
            if (want && have >= want) break;
        }
        samples[id][counts[id]++] = (now() - started) * 1000;
    }
    close(fd);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s host port path connections seconds\n", argv[0]);
        return 2;
    }
    host = argv[1], port = atoi(argv[2]), path = argv[3], seconds = atof(argv[5]);
    int connections = atoi(argv[4]);
    if (connections < 1 || connections > 64) return 2;
    pthread_t threads[64];
    double started = now();
    for (long i = 0; i < connections; i++) pthread_create(&threads[i], NULL, client, (void *)i);
    for (int i = 0; i < connections; i++) pthread_join(threads[i], NULL);
    double took = now() - started;
    long total = 0, non_2xx = 0;
    for (int i = 0; i < connections; i++) total += counts[i], non_2xx += failed[i];
    if (!total) {
        fprintf(stderr, "no request completed\n");
        return 1;
    }
    double *all = malloc(sizeof(double) * (total ? total : 1)), sum = 0;
    long k = 0;
    for (int i = 0; i < connections; i++)
        for (long j = 0; j < counts[i]; j++) sum += all[k++] = samples[i][j];
    qsort(all, total, sizeof(double), by_value);
#define AT(p) all[(long)(total * (p) / 100) < total ? (long)(total * (p) / 100) : total - 1]
    printf("p50=%.2fms p90=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms mean=%.3fms n=%ld "
           "seconds=%.3f little=%.2f non2xx=%ld\n",
           AT(50), AT(90), AT(99), AT(99.9), all[total - 1], sum / total, total, took,
           sum / 1000 / took, non_2xx);
    return 0;
}
