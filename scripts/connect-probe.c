// connect-probe: the cost of a short-lived KCM client, as MIT's kvno pays it per cached lookup
// (one connection per cache handle). Connects to a KCM socket, sends REQUESTS GET_DEFAULT_CACHE
// requests one after the other (each answered before the next), closes; ROUNDS times. Prints the
// p50, p90 and p99 of one whole connection in microseconds.
//
//   connect-probe SOCKET ROUNDS REQUESTS
//
// Built and run by scripts/connect-probe.sh; plain C so that the client adds as little as possible.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double microseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e6 + now.tv_nsec / 1e3;
}

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int read_exactly(int fd, unsigned char *buffer, size_t count) {
    size_t got = 0;
    while (got < count) {
        ssize_t n = read(fd, buffer + got, count - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: connect-probe SOCKET ROUNDS REQUESTS\n");
        return 2;
    }
    const char *path = argv[1];
    int rounds = atoi(argv[2]), requests = atoi(argv[3]);
    if (rounds < 1 || requests < 1 || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "connect-probe: bad arguments\n");
        return 2;
    }
    // KCM frame: length 4, then version 2.0 and opcode 20 (GET_DEFAULT_CACHE).
    const unsigned char request[8] = {0, 0, 0, 4, 2, 0, 0, 20};
    double *samples = malloc(sizeof(double) * (size_t)rounds);
    if (!samples) return 1;
    for (int round = 0; round < rounds; round++) {
        double start = microseconds();
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        strcpy(address.sun_path, path);
        if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            perror("connect-probe: connect");
            return 1;
        }
        for (int i = 0; i < requests; i++) {
            unsigned char header[8], body[4096];
            if (write(fd, request, sizeof request) != (ssize_t)sizeof request || read_exactly(fd, header, 8) != 0) {
                fprintf(stderr, "connect-probe: the server closed the connection\n");
                return 1;
            }
            // The reply: length L, transport word, then L bytes (status and payload).
            uint32_t length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | header[2] << 8 | header[3];
            if (length > sizeof body || read_exactly(fd, body, length) != 0) {
                fprintf(stderr, "connect-probe: a bad reply\n");
                return 1;
            }
        }
        close(fd);
        samples[round] = microseconds() - start;
    }
    qsort(samples, (size_t)rounds, sizeof(double), ascending);
    printf("p50 %.1f  p90 %.1f  p99 %.1f µs\n", samples[rounds / 2], samples[rounds * 9 / 10],
           samples[rounds * 99 / 100]);
    return 0;
}
