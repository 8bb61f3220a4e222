/* ocirt's syscall shim: thin wrappers that return -errno instead of -1. */
#include <errno.h>
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
