/* ocirt's syscall shim: thin wrappers that return -errno instead of -1. */
#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/capability.h>
#include <sys/resource.h>

#define RET(x) do { long _r = (long)(x); return _r < 0 ? -errno : _r; } while (0)

int ocirt_unshare(int flags) { RET(unshare(flags)); }
int ocirt_setns(int fd, int nstype) { RET(setns(fd, nstype)); }
int ocirt_pivot_root(const char *new_root, const char *put_old)
{ RET(syscall(SYS_pivot_root, new_root, put_old)); }
int ocirt_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data)
{ RET(mount(source, target, fstype, flags, data)); }
int ocirt_umount2(const char *target, int flags) { RET(umount2(target, flags)); }
int ocirt_sethostname(const char *name, size_t len) { RET(sethostname(name, len)); }
int ocirt_setdomainname(const char *name, size_t len) { RET(setdomainname(name, len)); }
int ocirt_close_range(unsigned int first, unsigned int last, unsigned int flags)
{ RET(syscall(SYS_close_range, first, last, flags)); }
int ocirt_openat2(int dirfd, const char *path, unsigned long long flags,
                  unsigned long long mode, unsigned long long resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags; how.mode = mode; how.resolve = resolve;
    RET(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}
long ocirt_personality(unsigned long persona)
{
    int r = personality(persona);
    return r == -1 ? -errno : r;
}
long ocirt_join_session_keyring(const char *name)
{ RET(syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name)); }
int ocirt_setgroups(size_t n, const unsigned int *gids)
{ RET(setgroups(n, (const gid_t *)gids)); }
int ocirt_if_up(const char *ifname)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) { int e = errno; close(fd); return -e; }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) { int e = errno; close(fd); return -e; }
    close(fd);
    return 0;
}
int ocirt_prctl(int option, unsigned long a2, unsigned long a3,
                unsigned long a4, unsigned long a5)
{ RET(prctl(option, a2, a3, a4, a5)); }

/* Capabilities (capget/capset v3, 64-bit masks) and the bounding set, so create,
 * init and exec need neither python-prctl (libcap) nor the `resource` module. */
int ocirt_capget(unsigned long long *out)  /* out[3]: effective, permitted, inheritable */
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) < 0) return -errno;
    out[0] = d[0].effective | ((unsigned long long)d[1].effective << 32);
    out[1] = d[0].permitted | ((unsigned long long)d[1].permitted << 32);
    out[2] = d[0].inheritable | ((unsigned long long)d[1].inheritable << 32);
    return 0;
}
int ocirt_capset(unsigned long long e, unsigned long long p, unsigned long long i)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    d[0].effective = (unsigned int)e; d[1].effective = (unsigned int)(e >> 32);
    d[0].permitted = (unsigned int)p; d[1].permitted = (unsigned int)(p >> 32);
    d[0].inheritable = (unsigned int)i; d[1].inheritable = (unsigned int)(i >> 32);
    RET(syscall(SYS_capset, &h, d));
}
/* PR_CAPBSET_DROP of every capability 0..last not in `keep`; stops at the first error. */
int ocirt_capbset_drop(unsigned long long keep, int last)
{
    for (int n = 0; n <= last && n < 64; n++)
        if (!((keep >> n) & 1) && prctl(PR_CAPBSET_DROP, n, 0, 0, 0) < 0)
            return -errno;
    return 0;
}
int ocirt_setrlimit(int resource, unsigned long long soft, unsigned long long hard)
{
    struct rlimit rl = { (rlim_t)soft, (rlim_t)hard };
    RET(setrlimit(resource, &rl));
}

/* The waiting init's resident code. MADV_DONTNEED every private, executable,
 * non-writable file mapping (the interpreter's and the libraries' text, ~4 MiB):
 * its pages are clean page-cache pages (x86-64 shared objects and PIE have no text
 * relocations, so nothing in them was copied on write) and come back as minor
 * faults when init runs again. Read-only data is left alone: RELRO pages were
 * written before they became read-only. Then, with `fd` >= 0, block in accept4 on
 * it (the exec listener) so nothing runs between the madvise and the wait. Returns
 * the accepted fd (or 0 with fd < 0), or -errno (-EINTR: retry from Python, where
 * signal handlers run). /proc/self/maps is read into a stack buffer of 16 KiB;
 * a longer file is read in pieces. */
#include <fcntl.h>
#include <sys/mman.h>
long ocirt_park(int fd)
{
    unsigned long start[256], len[256];
    int nr = 0;
    int m = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (m >= 0) {
        char buf[16384];
        size_t have = 0;
        for (;;) {
            ssize_t n = read(m, buf + have, sizeof buf - 1 - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            buf[have] = 0;
            char *line = buf, *nl;
            while ((nl = strchr(line, '\n')) != NULL) {
                *nl = 0;
                unsigned long a, b, off, ino; char perms[5]; unsigned int maj, min;
                if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &a, &b, perms, &off, &maj,
                           &min, &ino) == 7 && ino != 0 && perms[1] != 'w' &&
                    perms[2] == 'x' && perms[3] == 'p' && nr < 256) {
                    start[nr] = a; len[nr] = b - a; nr++;
                }
                line = nl + 1;
            }
            have = (size_t)(buf + have - line);
            memmove(buf, line, have);
            if (have >= sizeof buf - 1) break;  /* a line longer than the buffer */
        }
        close(m);
    }
    /* last, so the parsing above does not fault libc's pages back in */
    for (int i = 0; i < nr; i++)
        madvise((void *)start[i], len[i], MADV_DONTNEED);  /* EINVAL if locked: kept */
    if (fd < 0) return 0;
    RET(accept4(fd, NULL, NULL, SOCK_CLOEXEC));
}

/* --- security surface (seccomp, io priority, scheduler) --- */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/uio.h>

/* seccomp(2) as is: probes flags (op SET_MODE_FILTER with a NULL program gives
 * EFAULT when the flags are known) and actions (op GET_ACTION_AVAIL). */
long ocirt_seccomp(unsigned int op, unsigned int flags, void *args)
{ RET(syscall(SYS_seccomp, op, flags, args)); }

/* Load a BPF program built by libseccomp. With SECCOMP_FILTER_FLAG_NEW_LISTENER the
 * notify fd is sent over `sockfd` (SCM_RIGHTS, data `msg`) and closed here, in C, so
 * nothing runs between the load and the send that a notify rule could stop. */
long ocirt_seccomp_load(unsigned int flags, const void *prog, size_t len, int sockfd,
                        const char *msg, size_t msglen)
{
    struct sock_fprog fprog;
    fprog.len = (unsigned short)(len / sizeof(struct sock_filter));
    fprog.filter = (struct sock_filter *)prog;
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    if (fd < 0) return -errno;
    if (!(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) || sockfd < 0) return fd;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { (void *)msg, msglen };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_iov = &iov; mh.msg_iovlen = 1;
    mh.msg_control = cbuf; mh.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    int ifd = (int)fd;
    memcpy(CMSG_DATA(c), &ifd, sizeof ifd);
    long r = sendmsg(sockfd, &mh, MSG_NOSIGNAL);
    int e = errno;
    close(ifd);
    return r < 0 ? -e : 0;
}

int ocirt_ioprio_set(int which, int who, int ioprio)
{ RET(syscall(SYS_ioprio_set, which, who, ioprio)); }

struct ocirt_sched_attr {
    unsigned int size, sched_policy;
    unsigned long long sched_flags;
    int sched_nice;
    unsigned int sched_priority;
    unsigned long long sched_runtime, sched_deadline, sched_period;
};
int ocirt_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice,
                        unsigned int priority, unsigned long long runtime,
                        unsigned long long deadline, unsigned long long period)
{
    struct ocirt_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a; a.sched_policy = policy; a.sched_flags = flags; a.sched_nice = nice;
    a.sched_priority = priority; a.sched_runtime = runtime; a.sched_deadline = deadline;
    a.sched_period = period;
    RET(syscall(SYS_sched_setattr, pid, &a, 0));
}

/* bpf(2) as is, for the cgroup v2 device filter (ocirt/cgroups/bpf.py). */
long ocirt_bpf(int cmd, void *attr, unsigned int size)
{ RET(syscall(SYS_bpf, cmd, attr, size)); }

/* linux.maskedPaths (readonly = 0) or linux.readonlyPaths (readonly = 1) in one call,
 * after pivot_root: `paths` holds `n` NUL-terminated container paths back to back.
 * Each is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the cwd
 * ("/"); a path that does not exist is skipped (and, masked, a magic link: ELOOP).
 * The mount goes onto /proc/self/fd/N of that fd (the path itself without a /proc).
 * Masked: a read-only tmpfs on a directory, else a bind of the container's
 * /dev/null (checked to be the null device). Read-only: a recursive bind onto
 * itself, then a read-only remount keeping the flags the kernel locked (EPERM in a
 * user namespace: statvfs's flags are added, as mounts.remount_bind does).
 * Returns 0, or -errno with *failed the index of the path and *stage what failed:
 * 1 open, 2 mask, 3 /dev/null is not the null device, 4 read-only. */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
static int ocirt_open_in_cwd_root(const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}
static const char *ocirt_fd_target(int fd, const char *path, char *buf, size_t size)
{
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(buf, size, "/proc/self/fd/%d", fd);
        return buf;
    }
    return path;
}
static int ocirt_protect_paths1(const char *paths, int n, int readonly, int *failed,
                                int *stage, int *shared);
/* Masked directories share one read-only tmpfs (the first is mounted, the rest are
 * bind mounts of it), as runc does. */
int ocirt_protect_paths(const char *paths, int n, int readonly, int *failed, int *stage)
{
    int shared = -1;
    int rc = ocirt_protect_paths1(paths, n, readonly, failed, stage, &shared);
    if (shared >= 0)
        close(shared);
    return rc;
}
static int ocirt_protect_paths1(const char *paths, int n, int readonly, int *failed,
                                int *stage, int *shared)
{
    char buf[64], nbuf[64];
    const char *path = paths;
    for (int i = 0; i < n; i++, path += strlen(path) + 1) {
        *failed = i;
        int fd = ocirt_open_in_cwd_root(path);
        if (fd < 0) {
            int e = errno;
            if (e == ENOENT || e == ENOTDIR || (!readonly && e == ELOOP)) continue;
            *stage = 1; return -e;
        }
        const char *target = ocirt_fd_target(fd, path, buf, sizeof buf);
        int e = 0;
        if (!readonly) {
            struct stat st;
            if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
                *stage = 2;
                if (*shared >= 0) {
                    snprintf(nbuf, sizeof nbuf, "/proc/self/fd/%d", *shared);
                    if (mount(nbuf, target, NULL, MS_BIND, NULL) < 0) e = errno;
                } else if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0) {
                    e = errno;
                } else {
                    *shared = ocirt_open_in_cwd_root(path);  /* the new tmpfs's root */
                }
            } else {
                int null = open("/dev/null", O_PATH | O_CLOEXEC | O_NOFOLLOW);
                *stage = 2;
                if (null < 0) e = errno;
                else {
                    if (fstat(null, &st) < 0) e = errno;
                    else if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
                        e = ENODEV; *stage = 3;
                    } else {
                        snprintf(nbuf, sizeof nbuf, "/proc/self/fd/%d", null);
                        if (mount(nbuf, target, NULL, MS_BIND, NULL) < 0) e = errno;
                    }
                    close(null);
                }
            }
        } else {
            *stage = 4;
            if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0) e = errno;
            else {
                close(fd);
                fd = ocirt_open_in_cwd_root(path);  /* the fd named the covered mount point */
                if (fd < 0) return -errno;
                target = ocirt_fd_target(fd, path, buf, sizeof buf);
                unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
                if (mount(NULL, target, NULL, flags, NULL) < 0) {
                    e = errno;
                    struct statvfs sv;
                    if (e == EPERM) {
                        if (statvfs(target, &sv) < 0) e = errno;
                        else {
                            static const unsigned long map[][2] = {
                                {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV},
                                {ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME},
                                {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
                                {ST_RDONLY, MS_RDONLY}};
                            for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
                                if (sv.f_flag & map[k][0]) flags |= map[k][1];
                            e = mount(NULL, target, NULL, flags, NULL) < 0 ? errno : 0;
                        }
                    }
                }
            }
        }
        close(fd);
        if (e) return -e;
    }
    *stage = 0;
    return 0;
}

/* Idmapped mounts: a detached copy of a mount tree (open_tree), idmapped through a
 * user namespace (mount_setattr), later attached where init wants it (move_mount). */
#include <sys/wait.h>
#include <signal.h>
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
struct ocirt_mount_attr { unsigned long long attr_set, attr_clr, propagation, userns_fd; };
int ocirt_open_tree(int dfd, const char *path, unsigned int flags)
{ RET(syscall(SYS_open_tree, dfd, path, flags)); }
int ocirt_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                     unsigned int flags)
{ RET(syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags)); }
int ocirt_mount_setattr(int dfd, const char *path, unsigned int flags,
                        unsigned long long attr_set, unsigned long long attr_clr,
                        unsigned long long propagation, int userns_fd)
{
    struct ocirt_mount_attr a = {attr_set, attr_clr, propagation, (unsigned long long)userns_fd};
    RET(syscall(SYS_mount_setattr, dfd, path, flags, &a, sizeof a));
}

static int ocirt_write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(data);
    ssize_t w = write(fd, data, n);
    int err = w < 0 ? -errno : (w == (ssize_t)n ? 0 : -EIO);
    close(fd);
    return err;
}

/* An fd of a new user namespace with these uid_map/gid_map contents (lines of
 * "inside outside count"); -errno, with *stage 1 (fork), 2 (uid_map), 3 (gid_map),
 * 4 (open). The holder process is a raw clone that only waits on a pipe. */
int ocirt_userns_fd(const char *uid_map, const char *gid_map, int *stage)
{
    int p[2];
    *stage = 1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        (void)!read(p[0], &c, 1);
        _exit(0);
    }
    int err = pid < 0 ? -errno : 0;
    close(p[0]);
    int fd = -1;
    if (!err) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
        *stage = 2;
        err = ocirt_write_file(path, uid_map);
        if (!err) {
            snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
            *stage = 3;
            err = ocirt_write_file(path, gid_map);
        }
        if (!err) {
            snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
            *stage = 4;
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                err = -errno;
        }
    }
    close(p[1]);
    if (pid > 0)
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return err ? err : fd;
}

/* set_mempolicy(2): `mask` of `words` unsigned longs; maxnode as the kernel counts it */
int ocirt_set_mempolicy(int mode, const unsigned long *mask, unsigned long words)
{ RET(syscall(SYS_set_mempolicy, mode, words ? mask : NULL, words ? words * 8 * sizeof(long) + 1 : 0)); }
