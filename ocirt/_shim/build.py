"""cffi build script for ocirt's C shim (`ocirt._shim.lib`), and the generator of
`rules.h`, the C front's copy of ocirt/rules.py.

The shim holds the syscalls CPython 3.11 lacks. Every function returns -errno on
failure (never sets Python errno), so callers turn the result into OSError.

rules.h: the C front (ocirt/_shim/front/: front.h's `#include "rules.h"`, found
in this directory through the build's -I) takes the id rule, the signal table, the
default root, the file names and the state.json layout from `ocirt.rules.header()`.
It is written whenever this file runs -- setup.py's cffi_modules executes it at the
start of every `pip install` (so before ocirt/_launcher.py compiles the front), or
`python ocirt/_shim/build.py --rules-h` -- and only rewritten when its text changes.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
RULES_PY = os.path.join(os.path.dirname(_HERE), "rules.py")
RULES_H = os.path.join(_HERE, "rules.h")


def rules_header():
    """ocirt.rules.header() of this tree (the build may run before the package is
    installed, or beside another copy of it)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))
    try:
        from ocirt import rules
    finally:
        del sys.path[0]
    if os.path.abspath(rules.__file__) != RULES_PY:
        raise RuntimeError(f"ocirt.rules is {rules.__file__}, not this tree's {RULES_PY}")
    return rules.header()


def write_rules_h(dest=RULES_H):
    """Write rules.h (atomically; untouched when already up to date). Returns dest."""
    text = rules_header()
    try:
        with open(dest) as f:
            if f.read() == text:
                return dest
    except OSError:
        pass
    tmp = f"{dest}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, dest)
    return dest


write_rules_h()

from cffi import FFI  # noqa: E402

ffibuilder = FFI()

ffibuilder.cdef("""
    int ocirt_unshare(int flags);
    int ocirt_setns(int fd, int nstype);
    int ocirt_pivot_root(const char *new_root, const char *put_old);
    int ocirt_mount(const char *source, const char *target, const char *fstype,
                    unsigned long flags, const char *data);
    int ocirt_umount2(const char *target, int flags);
    int ocirt_sethostname(const char *name, size_t len);
    int ocirt_setdomainname(const char *name, size_t len);
    int ocirt_close_range(unsigned int first, unsigned int last, unsigned int flags);
    int ocirt_openat2(int dirfd, const char *path, unsigned long long flags,
                      unsigned long long mode, unsigned long long resolve);
    long ocirt_personality(unsigned long persona);
    long ocirt_join_session_keyring(const char *name);
    int ocirt_setgroups(size_t n, const unsigned int *gids);
    int ocirt_if_up(const char *ifname);
    int ocirt_prctl(int option, unsigned long a2, unsigned long a3,
                    unsigned long a4, unsigned long a5);
    int ocirt_capget(unsigned long long *out);
    int ocirt_capset(unsigned long long e, unsigned long long p, unsigned long long i);
    int ocirt_capbset_drop(unsigned long long keep, int last);
    int ocirt_setrlimit(int resource, unsigned long long soft, unsigned long long hard);
    long ocirt_park(int fd);
    long ocirt_seccomp(unsigned int op, unsigned int flags, void *args);
    long ocirt_seccomp_load(unsigned int flags, const void *prog, size_t len, int sockfd,
                            const char *msg, size_t msglen);
    int ocirt_ioprio_set(int which, int who, int ioprio);
    int ocirt_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice,
                            unsigned int priority, unsigned long long runtime,
                            unsigned long long deadline, unsigned long long period);
    long ocirt_bpf(int cmd, void *attr, unsigned int size);
    int ocirt_protect_paths(const char *paths, int n, int readonly, int *failed, int *stage);
    int ocirt_open_tree(int dfd, const char *path, unsigned int flags);
    int ocirt_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                         unsigned int flags);
    int ocirt_mount_setattr(int dfd, const char *path, unsigned int flags,
                            unsigned long long attr_set, unsigned long long attr_clr,
                            unsigned long long propagation, int userns_fd);
    int ocirt_userns_fd(const char *uid_map, const char *gid_map, int *stage);
    int ocirt_set_mempolicy(int mode, const unsigned long *mask, unsigned long words);
""")

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.c")) as f:
    _source = f.read()

ffibuilder.set_source("ocirt._shim._lib", _source)

if __name__ == "__main__":
    if sys.argv[1:] != ["--rules-h"]:
        ffibuilder.compile(verbose=True)
