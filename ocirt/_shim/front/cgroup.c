/* ---- our own cgroup.procs, which the cgroup primer writes (main.c, start_primer):
 * looked up from /proc/self/cgroup and /proc/self/mountinfo as
 * ocirt/process/speed.py's pick() does (tests/unit/test_rules.py compiles this
 * file alone, with a main of its own, and compares the two) ---- */

#include "front.h"

/* The whole of a /proc file, NUL-terminated (malloc'd), or NULL. */
char *read_proc(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t size = 8192, got = 0;
    char *buf = malloc(size);
    for (;;) {
        if (!buf)
            break;
        if (got + 1 >= size) {
            char *nb = size < (1 << 22) ? realloc(buf, size *= 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0) {
            buf[got] = 0;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return buf;
}

/* The n-th (0-based) whitespace-separated field of [p, e) as [*f, *fe); 0 if none. */
static int field(const char *p, const char *e, int n, const char **f, const char **fe)
{
    for (int i = 0;; i++) {
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= e)
            return 0;
        const char *q = p;
        while (q < e && *q != ' ' && *q != '\t')
            q++;
        if (i == n) {
            *f = p;
            *fe = q;
            return 1;
        }
        p = q;
    }
}

/* 1 if every ","-part of [k, ke) is one of the ","-separated options [o, oe). */
static int opts_hold(const char *k, const char *ke, const char *o, const char *oe)
{
    for (const char *p = k; ; ) {
        const char *c = memchr(p, ',', (size_t)(ke - p));
        const char *pe = c ? c : ke;
        int found = 0;
        for (const char *q = o; !found; ) {
            const char *d = memchr(q, ',', (size_t)(oe - q));
            const char *qe = d ? d : oe;
            found = qe - q == pe - p && !memcmp(q, p, (size_t)(pe - p));
            if (!d)
                break;
            q = d + 1;
        }
        if (!found)
            return 0;
        if (!c)
            return 1;
        p = c + 1;
    }
}

#define MAX_OWN 64

/* cgroup.procs of our own cgroup from the texts of /proc/self/cgroup and
 * /proc/self/mountinfo: ocirt/process/speed.py's pick(), step for step (the
 * unified hierarchy if one is mounted, else the first v1 mount in mountinfo's order
 * whose options hold one of our controller sets, and our path within its root).
 * Writes it to out; 0 if there is none. */
int pick_procs(char *cgroup, const char *mountinfo, char *out, size_t size)
{
    const char *key[MAX_OWN], *path[MAX_OWN];
    size_t nown = 0;
    for (char *line = cgroup; *line; ) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        else
            next = line + strlen(line);
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            return 0;  /* Python: ValueError, nothing */
        *c2 = 0;
        size_t i = 0;
        while (i < nown && strcmp(key[i], c1 + 1))
            i++;
        if (i == nown) {
            if (nown == MAX_OWN)
                return 0;
            key[nown++] = c1 + 1;
        }
        path[i] = c2 + 1;  /* a dict: the first place, the last value */
        line = next;
    }
    int have_v1 = 0;
    for (const char *line = mountinfo; *line; ) {
        const char *e = strchr(line, '\n');
        if (!e)
            e = line + strlen(line);
        const char *next = *e ? e + 1 : e;
        const char *dash = NULL;
        for (const char *p = line; p + 3 <= e; p++)
            if (!memcmp(p, " - ", 3)) {
                dash = p;
                break;
            }
        const char *right = dash ? dash + 3 : e, *left_e = dash ? dash : e;
        const char *fs, *fse, *o, *oe, *x, *xe, *root, *roote, *point, *pointe;
        if (!field(right, e, 0, &fs, &fse) || !field(right, e, 1, &x, &xe)
            || !field(right, e, 2, &o, &oe)) {
            line = next;
            continue;
        }
        int v2 = fse - fs == 7 && !memcmp(fs, "cgroup2", 7);
        if ((!v2 && !(fse - fs == 6 && !memcmp(fs, "cgroup", 6)))
            || !field(line, left_e, 3, &root, &roote) || !field(line, left_e, 4, &point, &pointe)) {
            line = next;
            continue;
        }
        const char *own = NULL;
        if (v2) {
            for (size_t i = 0; i < nown && !own; i++)
                if (!*key[i])
                    own = path[i];
        } else {
            for (size_t i = 0; i < nown && !own; i++)
                if (*key[i] && opts_hold(key[i], key[i] + strlen(key[i]), o, oe))
                    own = path[i];
        }
        while (roote > root && roote[-1] == '/')
            roote--;  /* root.rstrip("/") */
        size_t rl = (size_t)(roote - root), pl = own ? strlen(own) : 0;
        /* (path + "/").startswith(root + "/") */
        if (!own || !(pl >= rl && !memcmp(own, root, rl) && (pl == rl || own[rl] == '/'))) {
            line = next;
            continue;
        }
        if (have_v1 && !v2) {
            line = next;
            continue;
        }
        size_t n = 0;
        for (const char *p = point; p < pointe; ) {
            if (pointe - p >= 4 && !memcmp(p, "\\040", 4)) {
                if (n + 1 >= size)
                    return 0;
                out[n++] = ' ';
                p += 4;
            } else {
                if (n + 1 >= size)
                    return 0;
                out[n++] = *p++;
            }
        }
        const char *rel = own + rl, *rele = own + pl;
        while (rele > rel && rele[-1] == '/')
            rele--;
        int len = snprintf(out + n, size - n, "%.*s/cgroup.procs", (int)(rele - rel), rel);
        if (len < 0 || (size_t)len >= size - n)
            return 0;
        if (v2)
            return 1;
        /* the first v1 candidate stays in out unless a unified mount follows */
        have_v1 = 1;
        line = next;
    }
    return have_v1;
}

/* Open our own cgroup.procs (pick_procs), or -1; *path (when traced) says which. */
int own_procs_file(char *path, size_t size)
{
    char *cg = read_proc("/proc/self/cgroup");
    char *mi = cg ? read_proc("/proc/self/mountinfo") : NULL;
    int fd = -1;
    if (mi && pick_procs(cg, mi, path, size))
        fd = open(path, O_WRONLY | O_CLOEXEC);
    free(cg);
    free(mi);
    return fd;
}
