"""What one runtime does in one pair iteration, and the list and throughput
sections. Every timed value is the wall time of one runtime command (spawn to
wait4), in ns; memory in KiB."""
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from harness import Failed, check, kill_strays, leaks, rss_kb, read_pid, start_time, wait_exit


class Ctx:
    def __init__(self, bench_dir, bundle_true, bundle_sleep):
        self.bench_dir = bench_dir
        self.bundle_true = bundle_true
        self.bundle_sleep = bundle_sleep
        self.pid_dir = os.path.join(bench_dir, "pids")
        os.makedirs(self.pid_dir, exist_ok=True)

    def pidfile(self, cid):
        return os.path.join(self.pid_dir, cid + ".pid")


def cleanup(rt, cid, pid=None):
    """Best effort: whatever a failed step left of container `cid`."""
    rt.call("delete", "--force", cid, capture=True)
    if pid:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        wait_exit(pid, 10)


def _state(rt, cid, want, what):
    r = check(rt.call("state", cid), what)
    try:
        got = json.loads(r["out"]).get("status")
    except ValueError:
        raise Failed(what, {"err": "state printed no JSON", "rc": r["rc"]}) from None
    if got != want:
        raise Failed(what, {"err": f"status {got!r}, expected {want!r}", "rc": 0})
    return r


# --------------------------------------------------------------------------- latency

def run_true(rt, ctx, tag, skip):
    """`run` of /bin/true in the foreground (create + start + wait + delete)."""
    cid = f"ocb-{rt.name}-run-{tag}"
    r = rt.call("run", "--bundle", ctx.bundle_true, cid)
    if r["rc"] != 0:
        cleanup(rt, cid)
        raise Failed("run", r)
    return {"run": r["ns"], "run_cpu": r["cpu_ns"]}, {}


def lifecycle_true(rt, ctx, tag, skip):
    """create, state (created), start, wait for /bin/true to exit, delete."""
    cid = f"ocb-{rt.name}-lc-{tag}"
    pidf = ctx.pidfile(cid)
    m, fails = {}, {}
    pid = None
    try:
        r = rt.call("create", "--bundle", ctx.bundle_true, "--pid-file", pidf, cid)
        if r["rc"] != 0:
            raise Failed("create", r)
        m["create"] = r["ns"]
        m["create_cpu"] = r["cpu_ns"]
        pid = read_pid(pidf)
        m["init_rss"], m["init_pss"] = rss_kb(pid)
        if "state" not in skip:
            try:
                r = _state(rt, cid, "created", "state")
                m["state"], m["state_cpu"] = r["ns"], r["cpu_ns"]
            except Failed as e:
                fails["state"] = str(e)
        r = check(rt.call("start", cid), "start")
        t0 = time.perf_counter_ns()
        m["start"] = r["ns"]
        m["start_cpu"] = r["cpu_ns"]
        if not wait_exit(pid, 30):
            raise Failed("start", {"err": "/bin/true did not exit within 30 s", "rc": 0})
        m["wait"] = time.perf_counter_ns() - t0
        pid = None
        r = check(rt.call("delete", cid), "delete")
        m["delete"] = r["ns"]
        m["delete_cpu"] = r["cpu_ns"]
        m["cycle"] = m["create"] + m["start"] + m["wait"] + m["delete"]
        m["cycle_cpu"] = m["create_cpu"] + m["start_cpu"] + m["delete_cpu"]
    except Failed as e:
        cleanup(rt, cid, pid)
        fails[e.what] = str(e)
        for k in ("create", "start", "delete", "cycle", "state", "init_rss", "init_pss"):
            if k not in m:
                fails.setdefault(k, str(e))
    finally:
        try:
            os.unlink(pidf)
        except FileNotFoundError:
            pass
    return m, fails


def lifecycle_sleep(rt, ctx, tag, skip):
    """A running container (sleep 3600): state (running), exec /bin/true, kill KILL."""
    cid = f"ocb-{rt.name}-sl-{tag}"
    pidf = ctx.pidfile(cid)
    m, fails = {}, {}
    pid = None
    try:
        r = rt.call_maxrss(pidf + ".rss", "create", "--bundle", ctx.bundle_sleep,
                           "--pid-file", pidf, cid)
        if r["rc"] != 0:
            raise Failed("create", r)
        m["create_maxrss"] = r["maxrss_kb"]
        pid = read_pid(pidf)
        check(rt.call("start", cid), "start")
        if "state_running" not in skip:
            try:
                m["state_running"] = _state(rt, cid, "running", "state_running")["ns"]
            except Failed as e:
                fails["state_running"] = str(e)
        if "exec" not in skip:
            r = rt.call("exec", cid, "/bin/true")
            if r["rc"] == 0:
                m["exec"] = r["ns"]
            else:
                fails["exec"] = str(Failed("exec", r))
        r = check(rt.call("kill", cid, "KILL"), "kill")
        m["kill"] = r["ns"]
        m["kill_cpu"] = r["cpu_ns"]
        if not wait_exit(pid, 30):
            raise Failed("kill", {"err": "init still alive 30 s after kill KILL", "rc": 0})
        pid = None
        check(rt.call("delete", cid), "delete")
    except Failed as e:
        cleanup(rt, cid, pid)
        for k in ("state_running", "exec", "kill", "create_maxrss"):
            if k not in m:
                fails.setdefault(k, str(e))
    finally:
        try:
            os.unlink(pidf)
        except FileNotFoundError:
            pass
    return m, fails


SCENARIOS = (run_true, lifecycle_true, lifecycle_sleep)


# --------------------------------------------------------------------------- list

def _clone_dir(src, dst, old_id, new_id):
    os.mkdir(dst, 0o711)
    ob, nb = old_id.encode(), new_id.encode()
    for e in os.scandir(src):
        if e.is_file(follow_symlinks=False):
            with open(e.path, "rb") as f:
                data = f.read()
            with open(os.path.join(dst, e.name), "wb") as f:
                f.write(data.replace(ob, nb))
            os.chmod(os.path.join(dst, e.name), e.stat().st_mode & 0o7777)


def build_list_root(rt, ctx, total, live):
    """`total` containers in rt's root: `live` really created (inits parked), one
    really run to completion and left stopped, and copies of that stopped one's
    state dir (id rewritten) for the rest. Returns (base id, live [(id, pid)], clone ids)."""
    base = f"ocb-list-{rt.name}-base"
    pidf = ctx.pidfile(base)
    check(rt.call("create", "--bundle", ctx.bundle_true, "--pid-file", pidf, base), "list setup: create")
    pid = read_pid(pidf)
    check(rt.call("start", base), "list setup: start")
    wait_exit(pid, 30)
    os.unlink(pidf)
    lives = []
    for k in range(live):
        cid = f"ocb-list-{rt.name}-live{k}"
        pidf = ctx.pidfile(cid)
        check(rt.call("create", "--bundle", ctx.bundle_true, "--pid-file", pidf, cid),
              "list setup: create")
        lives.append((cid, read_pid(pidf)))
        os.unlink(pidf)
    clones = []
    src = os.path.join(rt.root, base)
    for k in range(total - 1 - live):
        cid = f"ocb-list-{rt.name}-{k:04d}"
        _clone_dir(src, os.path.join(rt.root, cid), base, cid)
        clones.append(cid)
    return base, lives, clones


def teardown_list_root(rt, base, lives, clones):
    for cid in clones:
        shutil.rmtree(os.path.join(rt.root, cid), ignore_errors=True)
    for cid, pid in lives:
        cleanup(rt, cid, pid)
    cleanup(rt, base)


def list_once(rt, expect):
    r = check(rt.call("list"), "list")
    rows = [ln for ln in r["out"].splitlines() if ln.strip()]
    if len(rows) != expect + 1:
        raise Failed("list", {"err": f"listed {len(rows) - 1} containers, expected {expect}",
                              "rc": 0})
    return r["ns"]


# --------------------------------------------------------------------------- throughput

def one_lifecycle(rt, ctx, cid, inits):
    """create + start + wait + delete, untimed; returns None or an error string."""
    pidf = ctx.pidfile(cid)
    pid = None
    try:
        r = rt.call("create", "--bundle", ctx.bundle_true, "--pid-file", pidf, cid)
        if r["rc"] != 0:
            raise Failed("create", r)
        pid = read_pid(pidf)
        inits.append((pid, start_time(pid)))
        check(rt.call("start", cid, capture=True), "start")
        if not wait_exit(pid, 60):
            raise Failed("wait", {"err": "did not exit within 60 s", "rc": 0})
        pid = None
        check(rt.call("delete", cid), "delete")
        return None
    except Failed as e:
        cleanup(rt, cid, pid)
        return str(e)
    finally:
        try:
            os.unlink(pidf)
        except FileNotFoundError:
            pass


def batch(rt, ctx, total, conc, tag, helpers):
    """`total` lifecycles, `conc` at a time. Returns dict(wall ns, ok, errors, leaks)."""
    ids = [f"ocb-{rt.name}-tp{tag}-{k}" for k in range(total)]
    inits = []
    t0 = time.perf_counter_ns()
    with ThreadPoolExecutor(conc) as ex:
        errs = list(ex.map(lambda cid: one_lifecycle(rt, ctx, cid, inits), ids))
    wall = time.perf_counter_ns() - t0
    errors = [e for e in errs if e]
    lk = leaks(rt, ids, inits, ctx.bench_dir)
    strays = kill_strays(helpers)
    if strays:
        lk.append(f"{len(strays)} orphaned processes reparented to the bench (killed), "
                  f"e.g. {strays[0]}")
    return {"ns": wall, "ok": total - len(errors), "total": total, "errors": errors[:3],
            "leaks": lk}
