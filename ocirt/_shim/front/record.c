/* ---- the container's record: state.json read into a struct record (with the
 * JSON reader of json.c), its status, and load, which opens, locks and reads it
 * for a verb ---- */

#include "front.h"

#define MAX_STATE (1 << 22)

/* "front": {"start": b, "kill": b, "delete": b, "remove": [[kind, dir]...],
 * "status": b}, exactly RULE_FRONT_KEYS, in any order (state.front_policy). */
static int read_front(struct rd *r, struct record *rec, int depth)
{
    enum { NKEYS = sizeof RULE_FRONT_KEYS / sizeof RULE_FRONT_KEYS[0] };
    int seen[NKEYS] = {0};
    int first = 1, got;
    const char *k;
    size_t kn;
    while ((got = next_key(r, depth + 1, &first, &k, &kn)) == 1) {
        int which = -1;
        for (int i = 0; i < NKEYS; i++)
            if (is_key(k, kn, RULE_FRONT_KEYS[i]))
                which = i;
        if (which < 0 || seen[which]++)
            return 0;  /* a key the front does not know, or twice */
        int ok;
        if (is_key(k, kn, "start"))
            ok = boolean(r, &rec->can_start);
        else if (is_key(k, kn, "kill"))
            ok = boolean(r, &rec->can_kill);
        else if (is_key(k, kn, "delete"))
            ok = boolean(r, &rec->can_delete);
        else if (is_key(k, kn, "status"))
            ok = boolean(r, &rec->can_status);
        else if (is_key(k, kn, "remove")) {
            if (!tok(r, "["))
                return 0;
            if (tok(r, "]"))
                continue;
            do {
                if (rec->n_rm == RULE_FRONT_MAX_REMOVE || !tok(r, "["))
                    return 0;
                if (tok(r, "\"leaf\""))
                    rec->rm_leaf[rec->n_rm] = 1;
                else if (tok(r, "\"parent\""))
                    rec->rm_leaf[rec->n_rm] = 0;
                else
                    return 0;
                if (!tok(r, ","))
                    return 0;
                ws(r);
                if (!(rec->rm[rec->n_rm] = str_value(r)) || !tok(r, "]"))
                    return 0;
                rec->n_rm++;
            } while (tok(r, ","));
            ok = tok(r, "]");
        } else
            ok = 0;
        if (!ok)
            return 0;
    }
    for (int i = 0; i < NKEYS; i++)
        if (!seen[i])
            return 0;
    return got == 0;
}

/* RULE_OWN_MEMBER's object: version, init_start, freezer and front; the rest is
 * Python's and only stepped over. */
static int read_own(struct rd *r, struct record *rec, int depth)
{
    int version = 0, seen_start = 0, seen_freezer = 0, seen_front = 0;
    int first = 1, got;
    const char *k;
    size_t kn;
    while ((got = next_key(r, depth + 1, &first, &k, &kn)) == 1) {
        if (is_key(k, kn, "version")) {
            long long v;
            if (version++ || !integer(r, &v) || v != RULE_STATE_VERSION)
                return 0;
        } else if (is_key(k, kn, "init_start")) {
            long long v;
            if (seen_start++)
                return 0;
            if (!lit(r, "null")) {
                if (!integer(r, &v) || v < 0)
                    return 0;
                rec->has_start = 1;
                rec->start = (unsigned long long)v;
            }
        } else if (is_key(k, kn, "freezer")) {
            if (seen_freezer++)
                return 0;
            if (!lit(r, "null")) {
                /* [file, its content when frozen] */
                if (!tok(r, "["))
                    return 0;
                ws(r);
                if (!(rec->freezer = str_value(r)) || !tok(r, ","))
                    return 0;
                ws(r);
                if (!(rec->frozen = str_value(r)) || !tok(r, "]"))
                    return 0;
            }
        } else if (is_key(k, kn, "front")) {
            if (seen_front++ || !read_front(r, rec, depth + 1))
                return 0;
        } else if (!value(r, depth + 1)) {
            return 0;
        }
    }
    return got == 0 && version && seen_start && seen_freezer && seen_front;
}

static int parse_record(struct record *rec, const char *text, size_t len)
{
    struct rd r = {text, text + len, 1};
    rec->text = text;
    if (!lit(&r, "{"))
        return 0;
    for (size_t i = 0; i < sizeof RULE_OCI_MEMBERS / sizeof RULE_OCI_MEMBERS[0]; i++) {
        const char *name = RULE_OCI_MEMBERS[i];
        int annotations = !strcmp(name, "annotations");
        if (annotations) {
            /* only when there are some: Python leaves an empty one out */
            struct rd peek = r;
            if (!member(&peek, 1, name, NULL, NULL))
                continue;
        }
        if (!member(&r, 1, name, NULL, NULL))
            return 0;
        int ok;
        if (!strcmp(name, "pid"))
            ok = integer(&r, &rec->pid);
        else if (!strcmp(name, "owner"))
            ok = r.p < r.e && *r.p == '"' && value(&r, 1);  /* Python prints "" for null */
        else if (annotations)  /* a non-empty object: Python leaves an empty one out */
            ok = r.e - r.p > 1 && r.p[0] == '{' && r.p[1] != '}' && value(&r, 1);
        else
            ok = value(&r, 1);
        if (!ok)
            return 0;
        if (!lit(&r, ","))
            return 0;  /* RULE_OWN_MEMBER comes last */
        if (!strcmp(name, "id"))
            rec->ins = r.p;
    }
    rec->oci_end = r.p - 1;
    if (!rec->ins || !member(&r, 1, RULE_OWN_MEMBER, NULL, NULL))
        return 0;
    r.oci = 0;
    if (!read_own(&r, rec, 1))
        return 0;
    r.oci = 1;
    return nl(&r, 0) && lit(&r, "}\n") && r.p == r.e;
}

/* Its state.json, or NULL (the caller defers) when it is not there or not exactly
 * what Python would write. */
static struct record *read_record(int dirfd, const char **why)
{
    *why = "no " RULE_STATE_FILE;
    int fd = openat(dirfd, RULE_STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    *why = RULE_STATE_FILE " of another version or layout";
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > MAX_STATE) {
        close(fd);
        return NULL;
    }
    struct record *r = calloc(1, sizeof *r);
    char *buf = malloc((size_t)st.st_size + 1);
    *why = "malloc";
    if (!r || !buf) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *why = RULE_STATE_FILE " of another version or layout";
    if (got != (size_t)st.st_size || !parse_record(r, buf, got))
        return NULL;
    *why = "a freezer the front cannot read";
    if (!r->can_status)
        return NULL;
    return r;
}

/* ---- status: ocirt/status.py's ORDER, as state.derive_status asks it ---- */

/* A small kernel file, NUL-terminated; its length, or -1 (unreadable, or larger
 * than the buffer). */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == size - 1) {
            char c;
            n = read(fd, &c, 1);
            close(fd);
            buf[got] = 0;
            return n == 0 ? (ssize_t)got : -1;
        }
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

/* 1 if `pid` lives, is not a zombie and (when one is recorded) started at `start`
 * (field 22 of stat): state.process_alive. */
int init_alive(long long pid, int has_start, unsigned long long start)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
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
    return !has_start || strtoull(p, NULL, 10) == start;
}

/* 1 if `pid` is stopped (SIGSTOP) or traced: it will not run until continued. */
int init_stopped(long long pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    char *p = n > 0 ? memrchr(buf, ')', (size_t)n) : NULL;
    return p && p + 2 < buf + n && (p[2] == 'T' || p[2] == 't');
}

static int py_space(char c)  /* bytes.strip()'s whitespace */
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The freezer file, stripped, holds the frozen content; unreadable: not frozen. */
static int is_frozen(const struct record *r)
{
    if (!r->freezer)
        return 0;
    char buf[4096];
    ssize_t n = read_small(r->freezer, buf, sizeof buf);
    if (n < 0)
        return 0;
    char *p = buf;
    while (n > 0 && py_space(*p))
        p++, n--;
    while (n > 0 && py_space(p[n - 1]))
        n--;
    return (size_t)n == strlen(r->frozen) && !memcmp(p, r->frozen, (size_t)n);
}

const char *status_of(int dirfd, const struct record *r)
{
    const char *s;
    struct stat st;
    if (!init_alive(r->pid, r->has_start, r->start))
        s = RULE_STATUS_STOPPED;
    else if (is_frozen(r))
        s = RULE_STATUS_PAUSED;
    else if (fstatat(dirfd, RULE_EXEC_SOCK, &st, 0) == 0)  /* os.path.exists */
        s = RULE_STATUS_CREATED;
    else
        s = RULE_STATUS_RUNNING;
    say("status", s);
    return s;
}

/* Open (and, for verbs that change the container, lock) its directory, and read
 * its state.json; defer to Python when either is missing or unexpected. */
struct record *load(const char *root, const char *id, int lock, int *dirfd,
                    char path[4096])
{
    if ((size_t)snprintf(path, 4096, "%s/%s", root, id) >= 4096)
        defer("path too long");
    *dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        defer("no container directory");
    if (lock && flock(*dirfd, LOCK_EX) < 0)
        defer("flock");
    const char *why;
    struct record *r = read_record(*dirfd, &why);
    if (!r)
        defer(why);
    return r;
}
