/* The `ocirt` command's front: a small C program that answers the hot, simple
 * cases of four verbs without starting Python, and hands everything else to the
 * Python runtime (exec of OCIRT_PY, the `-I -S` launcher script).
 *
 * Served here, only when every input is plain and the container is in the state
 * the verb expects:
 *   state ID           created, running or paused (not stopped: its output carries
 *                      the final usage, which the Python side reads)
 *   kill ID [SIGNAL]   without --all
 *   start ID           no poststart hooks
 *   delete [-f] ID     a stopped container without poststop hooks or host mounts,
 *                      and -f of a container that is gone (containerd's shim, after
 *                      every exit)
 *
 * What to print and what to remove is not decided here: the Python runtime writes
 * <root>/<id>/fast beside state.json (ocirt/state.py, fast_record) with the state
 * JSON pre-rendered around its status, the init's pid and start time, the freezer
 * file, and the cgroup dirs to remove. This file only repeats Python's status rule
 * (state.py, Container.status) and does the syscalls. Anything unexpected -- a flag
 * it does not know, a missing or older fast file, an error of any kind -- before
 * any side effect, and it execs Python with the same argv, which gives the
 * answer, the error message and the log line. OCIRT_FRONT=0 always defers;
 * OCIRT_FRONT=trace says on stderr which path was taken.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef OCIRT_PY
#error "build with -DOCIRT_PY=\"/path/to/the/python/launcher\""
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static char **g_argv;
static int g_trace;

static void say(const char *a, const char *b)
{
    if (!g_trace)
        return;
    char buf[512];
    size_t n = 0, la = strlen(a), lb = b ? strlen(b) : 0;
    const char *pre = "ocirt-front: ";
    memcpy(buf, pre, 13);
    n = 13;
    if (la > 200) la = 200;
    if (lb > 200) lb = 200;
    memcpy(buf + n, a, la);
    n += la;
    if (b) {
        buf[n++] = ' ';
        memcpy(buf + n, b, lb);
        n += lb;
    }
    buf[n++] = '\n';
    (void)!write(2, buf, n);
}

/* Hand the whole command to the Python runtime. Only called before this process
 * has changed anything that Python would not redo the same way. */
static void defer(const char *why)
{
    say("python:", why);
    g_argv[0] = (char *)OCIRT_PY;
    execv(OCIRT_PY, g_argv);
    static const char msg[] = "ocirt: cannot run the Python runtime " OCIRT_PY "\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the fast record: "key\0value\0" pairs, written by ocirt/state.py ---- */

#define MAX_RM 64

struct record {
    long pid;
    unsigned long long start;
    const char *freezer, *frozen;      /* file to read, and its content when frozen */
    const char *head, *tail;           /* state JSON around the status string */
    int can_start, can_delete, can_kill;
    int n_rm;
    const char *rm[MAX_RM];            /* cgroup dirs to remove, in order */
    int rm_leaf[MAX_RM];               /* 1: must go (else defer); 0: only if empty */
    char buf[];
};

static struct record *read_record(int dirfd)
{
    int fd = openat(dirfd, "fast", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (1 << 20)) {
        close(fd);
        return NULL;
    }
    struct record *r = calloc(1, sizeof *r + (size_t)st.st_size + 1);
    if (!r) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, r->buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        got += (size_t)n;
    }
    close(fd);
    char *p = r->buf, *end = r->buf + got;
    int version = 0;
    r->pid = -1;
    while (p < end) {
        char *key = p;
        char *z = memchr(p, 0, (size_t)(end - p));
        if (!z || z + 1 >= end)
            return NULL;
        char *val = z + 1;
        z = memchr(val, 0, (size_t)(end - val));
        if (!z)
            return NULL;
        p = z + 1;
        if (!strcmp(key, "v"))
            version = atoi(val);
        else if (!strcmp(key, "pid"))
            r->pid = strtol(val, NULL, 10);
        else if (!strcmp(key, "start"))
            r->start = strtoull(val, NULL, 10);
        else if (!strcmp(key, "freezer"))
            r->freezer = val;
        else if (!strcmp(key, "frozen"))
            r->frozen = val;
        else if (!strcmp(key, "head"))
            r->head = val;
        else if (!strcmp(key, "tail"))
            r->tail = val;
        else if (!strcmp(key, "start_ok"))
            r->can_start = !strcmp(val, "1");
        else if (!strcmp(key, "kill_ok"))
            r->can_kill = !strcmp(val, "1");
        else if (!strcmp(key, "delete_ok"))
            r->can_delete = !strcmp(val, "1");
        else if (!strcmp(key, "rm_leaf") || !strcmp(key, "rm_parent")) {
            if (r->n_rm == MAX_RM)
                return NULL;
            r->rm_leaf[r->n_rm] = key[3] == 'l';
            r->rm[r->n_rm++] = val;
        }
    }
    if (version != 1 || r->pid < 0 || !r->head || !r->tail)
        return NULL;
    return r;
}

/* ---- status: the same rule as Container.status() ---- */

/* The start of a small kernel file, NUL-terminated; its length, or <= 0. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

/* 1 if `pid` lives, is not a zombie and started at `start` (field 22 of stat). */
static int init_alive(long pid, unsigned long long start)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n <= 0)
        return 0;
    char *p = memrchr(buf, ')', (size_t)n);
    if (!p || p + 2 >= buf + n)
        return 0;
    p += 2;
    char letter = *p;
    if (letter == 'Z' || letter == 'X')
        return 0;
    for (int field = 0; field < 19; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 0;
        while (*p == ' ')
            p++;
    }
    return strtoull(p, NULL, 10) == start;
}

/* 1 if `pid` is stopped (SIGSTOP) or traced: it will not run until continued. */
static int init_stopped(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    char *p = n > 0 ? memrchr(buf, ')', (size_t)n) : NULL;
    return p && p + 2 < buf + n && (p[2] == 'T' || p[2] == 't');
}

static int is_frozen(const struct record *r)
{
    if (!r->freezer || !r->frozen)
        return 0;
    char buf[64];
    ssize_t n = read_small(r->freezer, buf, sizeof buf);
    if (n <= 0)
        return 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = 0;
    return !strcmp(buf, r->frozen);
}

static const char *status_of(int dirfd, const struct record *r)
{
    if (!init_alive(r->pid, r->start))
        return "stopped";
    if (is_frozen(r))
        return "paused";
    if (faccessat(dirfd, "exec.sock", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return "created";
    return "running";
}

/* ---- the arguments ---- */

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024 || !strcmp(id, ".") || !strcmp(id, ".."))
        return 0;
    for (const char *c = id; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '.' || *c == '_' || *c == '+' || *c == '-'))
            return 0;
    }
    return 1;
}

static const struct { const char *name; int num; } SIGNALS[] = {
    {"ABRT", 6}, {"ALRM", 14}, {"BUS", 7}, {"CHLD", 17}, {"CLD", 17}, {"CONT", 18},
    {"FPE", 8}, {"HUP", 1}, {"ILL", 4}, {"INT", 2}, {"IO", 29}, {"IOT", 6}, {"KILL", 9},
    {"PIPE", 13}, {"POLL", 29}, {"PROF", 27}, {"PWR", 30}, {"QUIT", 3}, {"RTMAX", 64},
    {"RTMIN", 34}, {"SEGV", 11}, {"STKFLT", 16}, {"STOP", 19}, {"SYS", 31}, {"TERM", 15},
    {"TRAP", 5}, {"TSTP", 20}, {"TTIN", 21}, {"TTOU", 22}, {"URG", 23}, {"USR1", 10},
    {"USR2", 12}, {"VTALRM", 26}, {"WINCH", 28}, {"XCPU", 24}, {"XFSZ", 25},
};

/* A signal as a number, NAME or SIGNAME; 0 when Python must judge it. */
static int parse_signal(const char *s)
{
    char up[16];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof up)
        return 0;
    int digits = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c < '0' || c > '9')
            digits = 0;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
        up[i] = c;
    }
    up[n] = 0;
    if (digits) {
        int v = atoi(s);
        return v >= 1 && v <= 64 ? v : 0;
    }
    const char *name = strncmp(up, "SIG", 3) ? up : up + 3;
    for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
        if (!strcmp(name, SIGNALS[i].name))
            return SIGNALS[i].num;
    return 0;
}

/* Open (and, for verbs that change the container, lock) its directory, and read
 * its fast record; defer to Python when either is missing. */
static struct record *load(const char *root, const char *id, int lock, int *dirfd,
                           char path[4096])
{
    if ((size_t)snprintf(path, 4096, "%s/%s", root, id) >= 4096)
        defer("path too long");
    *dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        defer("no container directory");
    if (lock && flock(*dirfd, LOCK_EX) < 0)
        defer("flock");
    struct record *r = read_record(*dirfd);
    if (!r)
        defer("no fast record");
    return r;
}

/* ---- the cgroup primer, for create, run and exec ---- */

/* Moving a process into a cgroup (any write to a cgroup.procs) takes the kernel's
 * global cgroup_threadgroup_rwsem for writing; after a quiet spell the first such
 * write waits for an RCU grace period (~8-11 ms here) and holds cgroup_mutex all
 * that time, and the rwsem falls back to its reader-only mode one grace period
 * after the last write. So the verbs that place a process fork a primer first:
 * it writes "0" (itself, which it is already in: nothing moves) into its own
 * cgroup.procs, then again every 3 ms, and the grace period passes while Python
 * starts. It stops when the write end of its pipe is closed -- Python closes it
 * once its own cgroup writes are done (ocirt/process/cgprime.py, which gets the
 * fd in OCIRT_PRIMER_FD) -- or after 300 ms. Timing only: any failure, nothing. */
static int own_procs_file(void)
{
    char buf[4096];
    ssize_t n = read_small("/proc/self/cgroup", buf, sizeof buf);
    if (n <= 0)
        return -1;
    for (char *line = buf; line && *line; ) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *ctrls = strchr(line, ':');
        char *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
        if (path) {
            *path++ = 0;
            ctrls++;
            char file[4096];
            const char *name = strncmp(ctrls, "name=", 5) ? ctrls : ctrls + 5;
            const char *dirs[2];
            int nd = 0;
            if (!*ctrls) {
                dirs[nd++] = "/sys/fs/cgroup/unified";
                dirs[nd++] = "/sys/fs/cgroup";
            } else {
                dirs[nd++] = NULL;
            }
            for (int k = 0; k < nd; k++) {
                int len = dirs[k] ? snprintf(file, sizeof file, "%s%s/cgroup.procs",
                                             dirs[k], strcmp(path, "/") ? path : "")
                                  : snprintf(file, sizeof file, "/sys/fs/cgroup/%s%s/cgroup.procs",
                                             name, strcmp(path, "/") ? path : "");
                if (len <= 0 || (size_t)len >= sizeof file)
                    continue;
                int fd = open(file, O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                    return fd;
            }
        }
        line = next;
    }
    return -1;
}

static void start_primer(void)
{
    if (geteuid() != 0)
        return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return;
    /* the write end goes to Python, out of the way of preserved and listen fds */
    int w = fcntl(p[1], F_DUPFD, 64);
    close(p[1]);
    if (w < 0) {
        close(p[0]);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(w);
        return;
    }
    if (pid == 0) {
        close(w);
        int procs = own_procs_file();
        if (procs < 0)
            _exit(0);
        /* keep nothing of the caller's open: a caller reading our stdout to its end
         * must not wait for the primer */
        unsigned lo = (unsigned)(p[0] < procs ? p[0] : procs);
        unsigned hi = (unsigned)(p[0] < procs ? procs : p[0]);
        if (lo > 0)
            syscall(SYS_close_range, 0U, lo - 1, 0U);
        if (hi > lo + 1)
            syscall(SYS_close_range, lo + 1, hi - 1, 0U);
        syscall(SYS_close_range, hi + 1, ~0U, 0U);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        for (int round = 0; round < 100; round++) {
            if (write(procs, "0", 1) < 0)
                _exit(0);
            if (poll(&pfd, 1, 3) != 0)
                _exit(0);  /* closed (or an error): done */
        }
        _exit(0);
    }
    close(p[0]);
    char num[16];
    snprintf(num, sizeof num, "%d", w);
    setenv("OCIRT_PRIMER_FD", num, 1);
    if (g_trace) {
        char what[48];
        snprintf(what, sizeof what, "pid=%d fd=%d", (int)pid, w);
        say("primer", what);
    }
}

/* ---- the verbs ---- */

static int do_state(const char *root, const char *id)
{
    char path[4096];
    int dirfd;
    struct record *r = load(root, id, 0, &dirfd, path);
    const char *status = status_of(dirfd, r);
    if (!strcmp(status, "stopped"))
        defer("stopped: the usage comes from Python");
    size_t hl = strlen(r->head), sl = strlen(status), tl = strlen(r->tail);
    char *out = malloc(hl + sl + tl + 2);
    if (!out)
        defer("malloc");
    memcpy(out, r->head, hl);
    out[hl] = '"';
    memcpy(out + hl + 1, status, sl);
    out[hl + 1 + sl] = '"';
    memcpy(out + hl + 2 + sl, r->tail, tl);
    if (write_all(1, out, hl + sl + tl + 2) < 0)
        return 1;
    say("served state", status);
    return 0;
}

static int do_kill(const char *root, const char *id, int sig)
{
    char path[4096];
    int dirfd;
    struct record *r = load(root, id, 0, &dirfd, path);
    const char *status = status_of(dirfd, r);
    if (!strcmp(status, "stopped"))
        defer("stopped");
    if (sig == 9 && !strcmp(status, "paused"))
        defer("SIGKILL to a paused container: Python thaws it after");
    if (sig == 9 && !r->can_kill)
        defer("SIGKILL without a pid namespace of its own: the whole cgroup");
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)r->pid, 0);
    if (pidfd < 0)
        defer("pidfd_open");
    /* the pidfd pins the process: check it is still the init we recorded */
    if (!init_alive(r->pid, r->start))
        defer("init gone");
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        defer("pidfd_send_signal");
    say("served kill", NULL);
    return 0;
}

static int do_start(const char *root, const char *id)
{
    char path[4096];
    int dirfd;
    struct record *r = load(root, id, 1, &dirfd, path);
    if (!r->can_start)
        defer("poststart hooks");
    if (strcmp(status_of(dirfd, r), "created"))
        defer("not created");
    if (init_stopped(r->pid))
        defer("init stopped");
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        defer("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/exec.sock", dirfd);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
        defer("connect");
    /* From here the init is released: no more deferring without telling Python. */
    unlinkat(dirfd, "exec.sock", 0);
    char err[4096];
    ssize_t n;
    /* bounded: an init stopped after its release is not waited for (start.py) */
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    for (int stopped_ticks = 0;;) {
        int k = poll(&pfd, 1, 100);
        if (k > 0)
            break;
        if (k < 0 && errno != EINTR)
            break;
        stopped_ticks = init_stopped(r->pid) ? stopped_ticks + 1 : 0;
        if (stopped_ticks > 20) {
            setenv("OCIRT_START_STOPPED", "1", 1);
            defer("init stopped after its release");
        }
    }
    do
        n = recv(s, err, sizeof err - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        say("served start", NULL);
        return 0;
    }
    /* init could not exec: Python destroys the container and reports it */
    if (n < 0)
        n = snprintf(err, sizeof err, "start: %s", strerror(errno));
    err[n] = 0;
    setenv("OCIRT_START_ERROR", err, 1);
    defer("init reported an error");
    return 1;
}

static int rmdir_wait(const char *path)
{
    /* a cgroup whose last task has just died can stay busy for a moment */
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < 20; i++) {
        if (rmdir(path) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY && errno != EAGAIN)
            return -1;
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int do_delete(const char *root, const char *id, int force)
{
    char path[4096];
    if (force && (size_t)snprintf(path, sizeof path, "%s/%s", root, id) < sizeof path
        && access(path, F_OK) < 0 && errno == ENOENT) {
        /* runc's rule, which containerd's shim relies on after every exit: --force
         * on a container that is gone succeeds */
        say("served delete --force of a missing container", NULL);
        return 0;
    }
    int dirfd;
    struct record *r = load(root, id, 1, &dirfd, path);
    if (!r->can_delete)
        defer("hooks or host mounts");
    if (strcmp(status_of(dirfd, r), "stopped"))
        defer("not stopped");
    /* the state directory holds plain files only; anything else is Python's */
    int d2 = dup(dirfd);
    DIR *dir = d2 < 0 ? NULL : fdopendir(d2);
    if (!dir)
        defer("opendir");
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (e->d_type != DT_REG && e->d_type != DT_SOCK)
            defer("not a plain file in the state directory");
    }
    /* Removing cgroup dirs can be redone by Python: an rmdir of a gone dir is fine. */
    for (int i = 0; i < r->n_rm; i++) {
        if (r->rm_leaf[i]) {
            if (rmdir_wait(r->rm[i]) < 0)
                defer("a cgroup is busy");
        } else {
            rmdir(r->rm[i]); /* a parent: only when no other container uses it */
        }
    }
    rewinddir(dir);
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT)
            defer("unlink");
    }
    if (rmdir(path) < 0 && errno != ENOENT)
        defer("rmdir");
    say("served delete", NULL);
    return 0;
}

/* ---- main: runc's global flags, then the verb ---- */

/* "--name=value", "-name value"...: 1 and *val when `a` is flag `name`. */
static int flag(char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    while (*a == '-')
        a++;
    size_t n = strlen(name);
    if (strncmp(a, name, n))
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n])
        return 0;
    if (!val)
        return 1;
    if (!argv[*i + 1])
        defer("flag without its value");
    *val = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    g_argv = argv;
    const char *mode = getenv("OCIRT_FRONT");
    if (mode && !strcmp(mode, "0"))
        defer("OCIRT_FRONT=0");
    g_trace = mode && !strcmp(mode, "trace");

    const char *root = NULL, *fmt = NULL, *log = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (flag(argv, &i, "root", &root) || flag(argv, &i, "log", &log)
            || flag(argv, &i, "log-format", &fmt))
            continue;
        /* a bare --systemd-cgroup changes nothing these verbs do */
        if (!strcmp(a, "--systemd-cgroup") || !strcmp(a, "-systemd-cgroup"))
            continue;
        defer("a global flag the front does not handle");
    }
    if (fmt && strcmp(fmt, "text") && strcmp(fmt, "json"))
        defer("bad --log-format");
    char rootbuf[64];
    if (!root) {
        if (geteuid() != 0 || getenv("XDG_RUNTIME_DIR"))
            defer("rootless default root");
        snprintf(rootbuf, sizeof rootbuf, "/run/user/0/ocirt");
        root = rootbuf;
    }
    if (root[0] != '/' || strstr(root, "/.") || strstr(root, "//"))
        defer("root path not absolute and clean");
    if (i >= argc)
        defer("no verb");
    const char *verb = argv[i++];
    int nargs = argc - i;
    char **args = argv + i;

    if (!strcmp(verb, "state")) {
        if (nargs != 1 || args[0][0] == '-' || !valid_id(args[0]))
            defer("state arguments");
        return do_state(root, args[0]);
    }
    if (!strcmp(verb, "kill")) {
        if (nargs < 1 || nargs > 2 || args[0][0] == '-' || !valid_id(args[0]))
            defer("kill arguments");
        int sig = nargs == 2 ? parse_signal(args[1]) : 15;
        if (!sig)
            defer("signal");
        return do_kill(root, args[0], sig);
    }
    if (!strcmp(verb, "start")) {
        if (nargs != 1 || args[0][0] == '-' || !valid_id(args[0]))
            defer("start arguments");
        return do_start(root, args[0]);
    }
    if (!strcmp(verb, "delete")) {
        const char *id = NULL;
        int force = 0;
        for (int k = 0; k < nargs; k++) {
            const char *a = args[k];
            if (!strcmp(a, "-f") || !strcmp(a, "--force") || !strcmp(a, "-force")) {
                force = 1;  /* on a stopped container it changes nothing */
                continue;
            }
            if (a[0] == '-' || id)
                defer("delete arguments");
            id = a;
        }
        if (!id || !valid_id(id))
            defer("delete arguments");
        return do_delete(root, id, force);
    }
    if (!strcmp(verb, "create") || !strcmp(verb, "run") || !strcmp(verb, "exec"))
        start_primer();
    defer("verb");
    return 1;
}
