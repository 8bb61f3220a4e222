/* ---- the verbs: state, kill, start and delete, served from the record (record.c)
 * or deferred to Python ---- */

#include "front.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* The record of a container that is not stopped, and its status; Python's otherwise
 * (`why`). */
static struct record *load_live(const char *root, const char *id, int *dirfd,
                                const char **status, const char *why)
{
    char path[4096];
    struct record *r = load(root, id, 0, dirfd, path);
    *status = status_of(*dirfd, r);
    if (!strcmp(*status, RULE_STATUS_STOPPED))
        defer(why);
    return r;
}

int do_state(const char *root, const char *id)
{
    int dirfd;
    const char *status;
    struct record *r = load_live(root, id, &dirfd, &status,
                                 "stopped: the usage comes from Python");
    /* State.oci(status): the OCI members as they are in state.json, "status" after
     * "id", then the object closed where RULE_OWN_MEMBER began */
    char mid[64];
    int ml = snprintf(mid, sizeof mid, "\n%*s\"status\": \"%s\",", RULE_STATE_INDENT, "",
                      status);
    size_t hl = (size_t)(r->ins - r->text), tl = (size_t)(r->oci_end - r->ins);
    char *out = malloc(hl + (size_t)ml + tl + 3);
    if (!out || ml <= 0 || (size_t)ml >= sizeof mid)
        defer("malloc");
    memcpy(out, r->text, hl);
    memcpy(out + hl, mid, (size_t)ml);
    memcpy(out + hl + (size_t)ml, r->ins, tl);
    memcpy(out + hl + (size_t)ml + tl, "\n}\n", 3);
    if (write_all(1, out, hl + (size_t)ml + tl + 3) < 0)
        return 1;
    say("served state", status);
    return 0;
}

int do_kill(const char *root, const char *id, int sig)
{
    int dirfd;
    const char *status;
    struct record *r = load_live(root, id, &dirfd, &status, "not running");
    if (sig == 0)
        defer("signal 0: Python checks init is there");
    if (sig == SIGKILL && !strcmp(status, RULE_STATUS_PAUSED))
        defer("SIGKILL to a paused container: Python thaws it after");
    if (sig == SIGKILL && !r->can_kill)
        defer("SIGKILL without a pid namespace of its own: the whole cgroup");
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)r->pid, 0);
    if (pidfd < 0)
        defer("pidfd_open");
    /* the pidfd pins the process: check it is still the init we recorded */
    if (!init_alive(r->pid, r->has_start, r->start))
        defer("init gone");
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        defer("pidfd_send_signal");
    say("served kill", NULL);
    return 0;
}

/* The locked record of start (`for_start`) or delete, when the front may serve the
 * verb: the record says nothing of it needs Python (else `why`), and the status is
 * `want`. */
static struct record *load_for(const char *root, const char *id, int *dirfd, char *path,
                               int for_start, const char *why, const char *want)
{
    struct record *r = load(root, id, 1, dirfd, path);
    if (!(for_start ? r->can_start : r->can_delete))
        defer(why);
    if (strcmp(status_of(*dirfd, r), want))
        defer("another status");
    return r;
}

int do_start(const char *root, const char *id)
{
    char path[4096];
    int dirfd;
    struct record *r = load_for(root, id, &dirfd, path, 1, "poststart hooks",
                                RULE_STATUS_CREATED);
    if (init_stopped(r->pid))
        defer("init stopped");
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        defer("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/" RULE_EXEC_SOCK, dirfd);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
        defer("connect");
    /* From here the init is released: no more deferring without telling Python. */
    unlinkat(dirfd, RULE_EXEC_SOCK, 0);
    char err[4096];
    ssize_t n;
    /* bounded: an init stopped after its release is not waited for (start.py) */
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    for (int stopped_ticks = 0;;) {
        int k = poll(&pfd, 1, RULE_START_POLL_MS);
        if (k > 0)
            break;
        if (k < 0 && errno != EINTR)
            break;
        stopped_ticks = init_stopped(r->pid) ? stopped_ticks + 1 : 0;
        if (stopped_ticks * RULE_START_POLL_MS > RULE_START_STOPPED_GRACE_MS) {
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

int do_delete(const char *root, const char *id, int force)
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
    struct record *r = load_for(root, id, &dirfd, path, 0, "hooks or host mounts",
                                RULE_STATUS_STOPPED);
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
