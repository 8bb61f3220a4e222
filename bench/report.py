"""docs/performance.md tables and docs/performance.png from a results dict."""
import json
import os

from harness import paired_ratios, summary

# (label, section, key, unit, target ratio ocirt/runc or None, note)
ROWS = [
    ("run /bin/true", "latency", "run", "ms", 0.8, ""),
    ("create", "latency", "create", "ms", None, "part of the cycle"),
    ("start", "latency", "start", "ms", None, "part of the cycle"),
    ("state (created)", "latency", "state", "ms", 1.0, ""),
    ("state (running)", "latency", "state_running", "ms", 1.0, ""),
    ("kill KILL (running)", "latency", "kill", "ms", 1.0, ""),
    ("delete (stopped)", "latency", "delete", "ms", None, "part of the cycle"),
    ("create+start+wait+delete cycle", "latency", "cycle", "ms", 0.8, ""),
    ("exec /bin/true", "latency", "exec", "ms", 1.0, ""),
    ("list", "list", "list", "ms", 1.0, "< 100 ms absolute"),
    ("docker run --rm", "docker", "docker", "ms", 1.0, ""),
    ("peak RSS of create", "latency", "create_maxrss", "MiB", None, "GNU time %M: the create process and the helpers it reaped"),
    ("RSS of the init in `created`", "latency", "init_rss", "MiB", 1.0, "VmRSS"),
    ("PSS of the init in `created`", "latency", "init_pss", "MiB", None, "Pss (smaps_rollup)"),
]
RUNTIMES = ("ocirt", "runc", "crun")


def _scale(unit):
    return 1e-6 if unit == "ms" else 1 / 1024.0


def _fmt(s, unit):
    if s is None:
        return "—"
    k = _scale(unit)
    d = 1 if unit == "ms" else 1
    return f"{s['median'] * k:.{d}f} ({s['p25'] * k:.{d}f}–{s['p75'] * k:.{d}f})"


def _series(res, section, key):
    """{runtime: [values aligned by pair index]} and {runtime: failure message}."""
    if section == "latency":
        sec = res.get("latency") or {}
        return (sec.get("metrics") or {}).get(key, {}), (sec.get("failures") or {}).get(key, {})
    sec = res.get(section) or {}
    return sec.get("values") or {}, sec.get("failures") or {}


def figures(res):
    """One dict per table row with summaries and the paired ratio."""
    out = []
    for label, section, key, unit, target, note in ROWS:
        vals, fails = _series(res, section, key)
        if section == "list" and res.get("list"):
            label = f"list ({res['list']['total']} containers)"
        row = {"label": label, "key": key, "unit": unit, "target": target, "note": note,
               "section": section, "rt": {}, "fail": {}}
        for rt in RUNTIMES:
            row["rt"][rt] = summary(vals.get(rt, []))
            if fails.get(rt):
                row["fail"][rt] = fails[rt]
        rs = paired_ratios(vals.get("ocirt", []), vals.get("runc", []))
        row["ratio"] = summary(rs)
        rc = paired_ratios(vals.get("crun", []), vals.get("runc", []))
        row["crun_ratio"] = summary(rc)
        out.append(row)
    return out


def _met(row):
    r = row["ratio"]
    if row["fail"].get("ocirt") and not (row["rt"].get("ocirt")):
        return "**no** (fails)"
    if row["target"] is None or r is None:
        if row["key"] == "list" and row["rt"].get("ocirt"):
            return "yes" if row["rt"]["ocirt"]["median"] < 100e6 else "**no** (≥ 100 ms)"
        return "—"
    ok = r["median"] <= row["target"]
    if row["key"] == "list" and row["rt"].get("ocirt"):
        ok = ok and row["rt"]["ocirt"]["median"] < 100e6
    return "yes" if ok else "**no**"


def _cell(row, rt):
    s = row["rt"].get(rt)
    f = row["fail"].get(rt)
    if s is None and f:
        return "fails: " + _md(f)
    txt = _fmt(s, row["unit"])
    if f:
        txt += f" (some runs failed: {_md(f)})"
    return txt


def _md(s):
    return str(s).replace("|", "\\|").replace("\n", " ")[:160]


def results_markdown(res, png_name):
    meta = res["meta"]
    L = []
    w = L.append
    w(f"Measured {meta['date']} on {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}), "
      f"commit `{meta['git']}`, mode **{meta['mode']}**, {meta['elapsed_s']:.0f} s in all; "
      f"load average {meta['load_before']} before, {meta['load_after']} after.")
    w("")
    w("| runtime | version | how it is run |")
    w("| --- | --- | --- |")
    for rt in RUNTIMES:
        info = res["runtimes"].get(rt)
        if info:
            w(f"| {rt} | {_md(info['version'])} | {_md(info['note'])} |")
    w("")
    if res.get("config_notes"):
        w("Notes: " + " ".join(res["config_notes"]))
        w("")
    lat = res.get("latency") or {}
    w(f"### Latency and memory ({lat.get('pairs', 0)} pair iterations after "
      f"{lat.get('warmup', 0)} discarded)")
    w("")
    w("Median (p25–p75) per runtime; **ocirt/runc** is the median (p25–p75) of the "
      "ratios computed pair by pair; a ratio below 1 means ocirt is faster (or smaller).")
    w("")
    w("| path | ocirt | runc | crun | ocirt/runc | target | met | crun/runc |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in figures(res):
        if row["section"] not in ("latency", "list", "docker"):
            continue
        if not any(row["rt"].values()) and not row["fail"]:
            if row["section"] == "docker" and (res.get("docker") or {}).get("skipped"):
                w(f"| {row['label']} | skipped: {_md(res['docker']['skipped'])} | | | | ≤ 1.0 | — | |")
            continue
        unit = f" ({row['unit']})"
        ratio = row["ratio"]
        rtxt = f"{ratio['median']:.2f} ({ratio['p25']:.2f}–{ratio['p75']:.2f})" if ratio else "—"
        cr = row["crun_ratio"]
        ctxt = f"{cr['median']:.2f}" if cr else "—"
        tgt = f"≤ {row['target']:.1f}" if row["target"] is not None else "—"
        if row["note"]:
            tgt += f" ({row['note']})"
        w(f"| {row['label']}{unit} | {_cell(row, 'ocirt')} | {_cell(row, 'runc')} | "
          f"{_cell(row, 'crun')} | {rtxt} | {tgt} | {_met(row)} | {ctxt} |")
    w("")
    cpu_rows = [("run /bin/true", "run_cpu"), ("create", "create_cpu"), ("start", "start_cpu"),
                ("state (created)", "state_cpu"), ("kill", "kill_cpu"),
                ("delete", "delete_cpu"), ("create+start+delete", "cycle_cpu")]
    mets = lat.get("metrics") or {}
    if any(k in mets for _, k in cpu_rows):
        w("CPU time (user+sys of the command and the helpers it reaped, ms; less sensitive "
          "than wall time to other load on the machine):")
        w("")
        w("| path | ocirt | runc | crun | ocirt/runc |")
        w("| --- | --- | --- | --- | --- |")
        for label, k in cpu_rows:
            vals = mets.get(k) or {}
            if not vals:
                continue
            cells = [_fmt(summary(vals.get(rt, [])), "ms") for rt in RUNTIMES]
            rs = summary(paired_ratios(vals.get("ocirt", []), vals.get("runc", [])))
            rt_ = f"{rs['median']:.2f} ({rs['p25']:.2f}–{rs['p75']:.2f})" if rs else "—"
            w(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {rt_} |")
        w("")
    left = lat.get("leftovers")
    if left is not None:
        w("Processes left behind by the latency runs (killed by the bench): "
          + ("none." if not left else f"**{len(left)}**, e.g. `{_md(left[0])}`."))
        w("")
    base = res.get("baselines") or {}
    if base:
        w("Reference points, timed in the same iterations (median, p25–p75, ms):")
        w("")
        w("| what | median |")
        w("| --- | --- |")
        for name, vals in base.items():
            s = summary(vals)
            w(f"| {_md(name)} | {_fmt(s, 'ms')} |")
        w("")
    tp = res.get("throughput") or {}
    if tp.get("by_n"):
        w(f"### Throughput: create+start+wait+delete lifecycles, N at a time "
          f"({tp['rounds']} rounds, runtimes alternating)")
        w("")
        w("Lifecycles per second (median over rounds); **time ratio** = ocirt wall time / runc "
          "wall time per round, median (≤ 1.0 means throughput at or above runc's); "
          "failures and leftovers summed over rounds.")
        w("")
        w("| N | lifecycles | ocirt /s | runc /s | crun /s | time ratio ocirt/runc | met | "
          "ocirt ok | ocirt leftovers | runc ok | crun ok |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, by_rt in sorted(tp["by_n"].items(), key=lambda kv: int(kv[0])):
            cells = {}
            for rt in RUNTIMES:
                bs = by_rt.get(rt) or []
                if not bs:
                    cells[rt] = ("—", "—", [])
                    continue
                rate = summary([b["total"] / (b["ns"] / 1e9) for b in bs])
                ok = sum(b["ok"] for b in bs)
                tot = sum(b["total"] for b in bs)
                lk = [p for b in bs for p in b["leaks"]]
                errs = [e for b in bs for e in b["errors"]]
                okt = f"{ok}/{tot}" + (f" ({_md(errs[0])})" if errs else "")
                cells[rt] = (f"{rate['median']:.1f}", okt, lk)
            o = by_rt.get("ocirt") or []
            r = by_rt.get("runc") or []
            rs = summary(paired_ratios([b["ns"] for b in o], [b["ns"] for b in r]))
            rtxt = f"{rs['median']:.2f}" if rs else "—"
            all_ok = o and all(b["ok"] == b["total"] and not b["leaks"] for b in o)
            met = "—" if rs is None else ("yes" if rs["median"] <= 1.0 and all_ok else "**no**")
            lk = cells["ocirt"][2]
            lktxt = "none" if not lk else _md("; ".join(sorted(set(lk)))[:160])
            per = (o or r or [{"total": "?"}])[0]["total"]
            w(f"| {n} | {per} | {cells['ocirt'][0]} | {cells['runc'][0]} | {cells['crun'][0]} | {rtxt} | "
              f"{met} | {cells['ocirt'][1]} | {lktxt} | {cells['runc'][1]} | {cells['crun'][1]} |")
        w("")
    hf = res.get("hyperfine")
    if hf:
        w("### Cross-check: hyperfine (`-N`, mean ± σ, ms)")
        w("")
        w("| command | mean ± σ | min |")
        w("| --- | --- | --- |")
        for r in hf:
            w(f"| {_md(r['name'])} | {r['mean'] * 1e3:.1f} ± {r['stddev'] * 1e3:.1f} | "
              f"{r['min'] * 1e3:.1f} |")
        w("")
    jd = res.get("judge")
    if jd:
        w(jd["md"] if "md" in jd else
          f"### The judge's path: not measured ({_md(jd.get('skipped', '?'))})")
        w("")
    w(f"![latency and paired ratios]({png_name})")
    return "\n".join(L)


def chart(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in figures(res) if r["unit"] == "ms" and any(r["rt"].values())]
    tp = (res.get("throughput") or {}).get("by_n") or {}
    if not rows:
        return  # no latency section measured: nothing to draw
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.5 * max(len(rows), 6) + 2.2),
                             gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    colors = {"ocirt": "#1f77b4", "runc": "#ff7f0e", "crun": "#2ca02c"}
    h = 0.26
    labels = [r["label"] for r in rows]
    for j, rt in enumerate(RUNTIMES):
        ys, xs, lo, hi = [], [], [], []
        for i, r in enumerate(rows):
            s = r["rt"].get(rt)
            if s:
                ys.append(i + (j - 1) * h)
                xs.append(s["median"] / 1e6)
                lo.append((s["median"] - s["p25"]) / 1e6)
                hi.append((s["p75"] - s["median"]) / 1e6)
        ax.barh(ys, xs, height=h, color=colors[rt], label=rt, xerr=[lo, hi], capsize=2)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median wall time, ms (log; whiskers p25–p75)")
    ax.legend(loc="upper right")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_title("Latency per path")

    ax = axes[1]
    items = []
    for r in figures(res):
        met = _met(r)
        verdict = None if met == "—" else met == "yes"
        if r["ratio"]:
            items.append((r["label"], r["ratio"], r["target"], verdict))
        elif r["fail"].get("ocirt") and not r["rt"].get("ocirt"):
            items.append((r["label"] + " (ocirt fails)", None, r["target"], False))
    for n, by_rt in sorted(tp.items(), key=lambda kv: int(kv[0])):
        o = [b["ns"] for b in by_rt.get("ocirt") or []]
        rr = [b["ns"] for b in by_rt.get("runc") or []]
        s = summary(paired_ratios(o, rr))
        if s:
            ok = all(b["ok"] == b["total"] and not b["leaks"] for b in by_rt.get("ocirt") or [])
            items.append((f"throughput N={n} (time)", s, 1.0, s["median"] <= 1.0 and ok))
    for i, (label, s, target, verdict) in enumerate(items):
        if s is None:
            ax.plot([1.0], [i], marker="x", color="#d62728", markersize=10)
        else:
            color = ("#7f7f7f" if verdict is None else "#2ca02c" if verdict else "#d62728")
            ax.errorbar([s["median"]], [i],
                        xerr=[[s["median"] - s["p25"]], [s["p75"] - s["median"]]],
                        fmt="o", color=color, capsize=3)
        if target is not None:
            ax.plot([target], [i], marker="|", color="black", markersize=14)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([it[0] for it in items])
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", lw=1, ls="--")
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
    lo = min([it[1]["p25"] for it in items if it[1]] + [0.5])
    hi = max([it[1]["p75"] for it in items if it[1]] + [2.0])
    ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if lo / 2 <= t <= hi * 2]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ocirt/runc, median of paired ratios (log)\n"
                  "| target; green met, red not met, grey no target")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_title("ocirt vs runc")
    meta = res["meta"]
    fig.suptitle(f"ocirt benchmark ({meta['mode']}, {meta['date']}, {meta['git']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- history

HISTORY_KEYS = ("run", "cycle", "create", "start", "state", "kill", "delete", "list", "docker",
                "init_rss")


def history_entry(res):
    e = {"date": res["meta"]["date"], "git": res["meta"]["git"],
         "subject": res["meta"].get("subject", ""), "mode": res["meta"]["mode"]}
    for row in figures(res):
        if row["key"] in HISTORY_KEYS:
            o = row["rt"].get("ocirt")
            k = 1e-6 if row["unit"] == "ms" else 1 / 1024.0
            e[row["key"]] = {"ocirt": o["median"] * k if o else None,
                             "ratio": row["ratio"]["median"] if row["ratio"] else None}
    return e


def history_markdown(entries):
    L = ["| date | commit | run ms (ratio) | cycle ms (ratio) | create | start | state | kill | "
         "delete | list | docker | init RSS MiB |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def c(e, k, unit="ms"):
        v = e.get(k) or {}
        if v.get("ocirt") is None:
            return "—"
        r = f" ({v['ratio']:.2f})" if v.get("ratio") is not None else ""
        return f"{v['ocirt']:.1f}{r}"
    for e in entries:
        subj = _md(e.get("subject", ""))[:60]
        L.append(f"| {e['date'][:16]} | `{e['git']}` {subj} | {c(e, 'run')} | {c(e, 'cycle')} | "
                 f"{c(e, 'create')} | {c(e, 'start')} | {c(e, 'state')} | {c(e, 'kill')} | "
                 f"{c(e, 'delete')} | {c(e, 'list')} | {c(e, 'docker')} | {c(e, 'init_rss')} |")
    return "\n".join(L)


def load_history(path):
    out = []
    try:
        with open(path) as f:
            for ln in f:
                if ln.strip():
                    out.append(json.loads(ln))
    except FileNotFoundError:
        pass
    return out


def replace_block(text, name, body):
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    if begin in text and end in text:
        a = text.index(begin) + len(begin)
        b = text.index(end)
        return text[:a] + "\n" + body.rstrip() + "\n" + text[b:]
    return text.rstrip() + f"\n\n{begin}\n{body.rstrip()}\n{end}\n"


def write_doc(path, results_md, history_md, template):
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = template
    text = replace_block(text, "results", results_md)
    text = replace_block(text, "history", history_md)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
