/*
 * send_floor: what one small write to a loopback TCP socket costs the
 * writer on this machine, with nothing else in the way. The fan-out
 * scenario's "server CPU per delivery" is compared against it: the service
 * makes one sendmsg() per delivery, so this is the floor it cannot go below
 * without putting several events in one write.
 *
 *   send_floor [--sockets N] [--rounds R] [--bytes B] [--interval-ms MS]
 *              [--congestion NAME]
 *
 * A child process connects N sockets to the parent and reads them all with
 * epoll (the stand-in for the SSE clients). The parent then sends R rounds,
 * one B-byte sendmsg() to every socket per round, a round every MS
 * milliseconds (the fan-out's shape: 10 events/s to 5,000 streams), with
 * TCP_NODELAY as the service sets it. It prints its own CPU over the rounds:
 *   floor sends=S user_us=U sys_us=K per_send_us=P
 * On loopback the writer's system time also carries the receiving side's
 * TCP processing, which the kernel runs in the writer's softirq.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct settings {
    long sockets;
    long rounds;
    long bytes;
    long interval_ms;
    const char *congestion;
};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long number(const char *flag, const char *value)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || n <= 0) {
        fprintf(stderr, "send_floor: %s needs a positive number\n", flag);
        exit(2);
    }
    return n;
}

static struct settings parse(int argc, char **argv)
{
    struct settings s = {5000, 50, 150, 100, NULL};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(argv[i], "--sockets") == 0)
            s.sockets = number(argv[i], value);
        else if (strcmp(argv[i], "--rounds") == 0)
            s.rounds = number(argv[i], value);
        else if (strcmp(argv[i], "--bytes") == 0)
            s.bytes = number(argv[i], value);
        else if (strcmp(argv[i], "--interval-ms") == 0)
            s.interval_ms = number(argv[i], value);
        else if (strcmp(argv[i], "--congestion") == 0)
            s.congestion = value;
        else {
            fprintf(stderr, "send_floor: unknown option %s\n", argv[i]);
            exit(2);
        }
        i++;
    }
    return s;
}

/* The child: connect every socket, then read until all of them end. */
static void read_all(const struct sockaddr_in *addr, long sockets, int ready_pipe)
{
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (long i = 0; i < sockets; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
            die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
    }
    if (write(ready_pipe, "r", 1) != 1)
        die("write");
    long open = sockets;
    char buf[65536];
    struct epoll_event events[256];
    while (open > 0) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            ssize_t r = read(events[i].data.fd, buf, sizeof(buf));
            if (r <= 0) {
                close(events[i].data.fd);
                open--;
            }
        }
    }
    _exit(0);
}

static double cpu_us(long sec, long usec)
{
    return (double)sec * 1e6 + (double)usec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    struct settings s = parse(argc, argv);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(listener, 4096) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
        die("listen");

    int ready[2];
    if (pipe(ready) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(listener);
        read_all(&addr, s.sockets, ready[1]);
    }

    int *fds = calloc((size_t)s.sockets, sizeof(*fds));
    if (fds == NULL)
        die("calloc");
    for (long i = 0; i < s.sockets; i++) {
        fds[i] = accept(listener, NULL, NULL);
        if (fds[i] < 0)
            die("accept");
        int on = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        if (s.congestion != NULL && setsockopt(fds[i], IPPROTO_TCP, TCP_CONGESTION, s.congestion,
                                               (socklen_t)strlen(s.congestion)) != 0)
            die("TCP_CONGESTION");
    }
    char done;
    if (read(ready[0], &done, 1) != 1)
        die("read");

    char *message = malloc((size_t)s.bytes);
    if (message == NULL)
        die("malloc");
    memset(message, 'x', (size_t)s.bytes);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    long sends = 0;
    for (long round = 0; round < s.rounds; round++) {
        for (long i = 0; i < s.sockets; i++) {
            struct iovec iov = {message, (size_t)s.bytes};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
            if (sendmsg(fds[i], &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == s.bytes)
                sends++;
        }
        sleep_ms(s.interval_ms);
    }
    getrusage(RUSAGE_SELF, &after);

    for (long i = 0; i < s.sockets; i++)
        close(fds[i]);
    waitpid(child, NULL, 0);
    double user = cpu_us(after.ru_utime.tv_sec, after.ru_utime.tv_usec) -
                  cpu_us(before.ru_utime.tv_sec, before.ru_utime.tv_usec);
    double sys = cpu_us(after.ru_stime.tv_sec, after.ru_stime.tv_usec) -
                 cpu_us(before.ru_stime.tv_sec, before.ru_stime.tv_usec);
    printf("floor sends=%ld user_us=%.0f sys_us=%.0f per_send_us=%.2f\n", sends, user, sys,
           sends > 0 ? (user + sys) / (double)sends : 0.0);
    free(message);
    free(fds);
    close(listener);
    return 0;
}
