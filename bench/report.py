#!/usr/bin/env python3
"""Reads the JSON lines of one bench/run.sh run and prints the figures side by side
(Node.js baseline, ours, the factor by which ours is better, the echo ceiling, the target),
then records the table in bench/README.md under the results marker (newest first).
The edge host under wrangler dev (SERVERS=edge) gets a small table of its own: a figure
for reference, with no target and no ratio."""
import argparse, datetime, json, os, sys

p = argparse.ArgumentParser()
p.add_argument("dir"); p.add_argument("--machine", default=""); p.add_argument("--command", default="")
p.add_argument("--readme")
a = p.parse_args()

def load(name):
    path = os.path.join(a.dir, name + ".json")
    try:
        with open(path) as f:
            line = f.read().strip().splitlines()
            return json.loads(line[-1]) if line else None
    except (OSError, ValueError):
        return None

def get(doc, *path):
    for key in path:
        if not isinstance(doc, dict) or doc.get(key) is None:
            return None
        doc = doc[key]
    return doc

def fmt(x, unit=""):
    if x is None: return "–"
    if isinstance(x, float) and x < 100: return f"{x:.2f}{unit}"
    return f"{int(round(x)):,}{unit}"

rows = []  # (figure, node, ours, factor, echo, target, verdict)
def row(figure, path, scenario, better, target=None, unit="", ours_scenario=None, node_path=None, echo_scenario=None, of=None):
    """`of`, when given, computes the figure from the document `path` leads to."""
    pick = of or (lambda x: x)
    node = pick(get(load("node-" + scenario), *(node_path or path)))
    ours = pick(get(load("native-" + (ours_scenario or scenario)), *path))
    echo = pick(get(load("echo-" + (echo_scenario or ours_scenario or scenario)), *path))
    factor = None
    if node and ours:
        factor = ours / node if better == "higher" else node / ours
    verdict = ""
    if target is not None:
        verdict = "–" if factor is None else ("met" if factor >= target else "NOT met")
    rows.append((figure, fmt(node, unit), fmt(ours, unit), "–" if factor is None else f"{factor:.2f}×",
                 fmt(echo, unit), f"≥ {target}×" if target else "", verdict))

idle_n = get(load("native-idle"), "conns") or get(load("node-idle"), "conns")
row(f"idle: server bytes per connection at {idle_n} conns", ["bytes_per_conn"], "idle", "lower", 3)
row("connect storm: handshakes/s", ["handshakes_per_s"], "storm", "higher", 3)
row("fan-out find-max: delivered message:new/s", ["best", "delivered_per_s"], "fanout", "higher", 5)
row("fan-out find-max: sends/s held", ["max_rate"], "fanout", "higher")
row("fan-out p99 delivery at the baseline's max rate (ms)", ["latency_ms", "p99"], "fanout", "lower", 5,
    ours_scenario="fanout-at-node", node_path=["best", "latency_ms", "p99"])
row("fan-out p99 delivery at the baseline's max rate, on arrival (ms)", ["arrival_ms", "p99"], "fanout", "lower",
    ours_scenario="fanout-at-node", node_path=["best", "arrival_ms", "p99"])
row("fan-out p99 ack at the baseline's max rate (ms)", ["ack_ms", "p99"], "fanout", "lower",
    ours_scenario="fanout-at-node", node_path=["best", "ack_ms", "p99"])
row("DMs find-max: acked sends/s", ["best", "acked_per_s"], "dms", "higher", 3)
row("DMs p99 delivery at the baseline's max rate (ms)", ["latency_ms", "p99"], "dms", "lower", 5,
    ours_scenario="dms-at-node", node_path=["best", "latency_ms", "p99"])
row("DMs p99 ack at the baseline's max rate (ms)", ["ack_ms", "p99"], "dms", "lower",
    ours_scenario="dms-at-node", node_path=["best", "ack_ms", "p99"])
def cpu_us_per(count):
    """Server CPU (sending and draining) per `count` (acked or delivered), in µs."""
    def of(doc):
        cpu, n = get(doc, "server_cpu_s"), get(doc, count)
        return 1e6 * cpu / n if cpu is not None and n else None
    return of
# What each server spends per unit of work at the same rate: says whether a find-max ratio
# comes from doing the work more cheaply or from a shorter tail.
row("fan-out server CPU per delivered message:new at the baseline's max rate (µs)", [], "fanout", "lower",
    ours_scenario="fanout-at-node", node_path=["best"], of=cpu_us_per("delivered"))
row("DMs server CPU per acked send at the baseline's max rate (µs)", [], "dms", "lower",
    ours_scenario="dms-at-node", node_path=["best"], of=cpu_us_per("acked"))
big = load("native-idle-big")
extra = []
if big:
    extra.append(f"- 100k idle (ours): {big.get('held')} of {big.get('conns')} held for {big.get('hold_s')} s, "
                 f"{fmt(big.get('bytes_per_conn'))} bytes per connection, server RSS {fmt(big.get('server_rss_after_kb'))} KiB "
                 f"({'met' if big.get('held') == big.get('conns') and big.get('conns', 0) >= 100000 else 'NOT met'}).")
for kind in ("node", "native", "echo"):
    for scen in ("fanout", "dms"):
        doc = load(f"{kind}-{scen}")
        if doc and doc.get("steps"):
            steps = ", ".join(f"{fmt(s['rate'])}{'✓' if s['held'] else '✗'}" for s in doc["steps"])
            extra.append(f"- {kind} {scen} steps (sends/s): {steps}")
names = os.listdir(a.dir)
measured = [k for k in ("node", "native", "echo") if any(n.startswith(k + "-") and n.endswith(".json") for n in names)]
missing = [k for k in ("node", "native", "echo") if k not in measured]
if missing and measured:
    extra.append("- not measured: " + ", ".join(missing))

head = ("| figure | Node.js baseline | ours | ours better by | echo ceiling | target | |\n"
        "|---|---:|---:|---:|---:|---:|---|")
table = head + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows) if measured else ""

def cpu_share(doc):
    """CPU seconds per wall second of the server's processes and of the generator."""
    wall = get(doc, "wall_s")
    if not wall:
        return "–"
    server, client = get(doc, "server_cpu_s"), get(doc, "client_cpu_s")
    pct = lambda x: "–" if x is None else f"{100 * x / wall:.0f} %"
    return f"server {pct(server)} / generator {pct(client)}"

def cpu_per_delivery(doc):
    """Server CPU (all its processes) per message:new delivered, in ms: less sensitive to a
    noisy machine than a rate (a starved server is slow, not more expensive)."""
    cpu, n = get(doc, "server_cpu_s"), get(doc, "delivered")
    return f"{1000 * cpu / n:.2f} ms" if cpu is not None and n else "–"

def edge_fanout_rows(erow, doc, name):
    shape = f"M={doc.get('members')}, S={doc.get('senders')}"
    best = get(doc, "best")
    if best:
        erow(f"{name} ({shape}) find-max (p99 ≤ {fmt(doc.get('max_p99_ms', 100))} ms): delivered message:new/s", fmt(get(best, "delivered_per_s")),
             f"at {fmt(get(doc, 'max_rate'))} sends/s; acked {fmt(get(best, 'acked'))} of {fmt(get(best, 'sent'))}, lost {fmt(get(best, 'lost'))}")
        erow(f"{name} ({shape}) at that rate: delivery p50 / p99 (ms)", f"{fmt(get(best, 'latency_ms', 'p50'))} / {fmt(get(best, 'latency_ms', 'p99'))}",
             f"ack p50 / p99 {fmt(get(best, 'ack_ms', 'p50'))} / {fmt(get(best, 'ack_ms', 'p99'))} ms")
        erow(f"{name} ({shape}) at that rate: CPU", cpu_per_delivery(best) + " server CPU per delivery", cpu_share(best))
        return
    # Nothing held (p99 over the bound at every rate tried): the figures of the lowest rate
    # that delivered anything (a step shorter than one send interval sends nothing).
    steps = [st for st in doc.get("steps") or [] if st.get("rate") is not None and st.get("delivered")]
    if not steps:
        erow(f"{name} ({shape})", "–", "no figures")
        return
    low = min(steps, key=lambda st: st["rate"])
    erow(f"{name} ({shape}) find-max: delivered message:new/s", "none held",
         f"p99 ≤ {fmt(doc.get('max_p99_ms', 100))} ms at no rate tried")
    erow(f"{name} ({shape}) at the lowest rate that delivered, {fmt(low['rate'])} sends/s: delivery p50 / p99 (ms)",
         f"{fmt(low.get('p50_ms'))} / {fmt(low.get('p99_ms'))}", f"lost {fmt(low.get('lost'))}")
    erow(f"{name} ({shape}) at that rate: CPU", cpu_per_delivery(low) + " server CPU per delivery", cpu_share(low))

def edge_table():
    """The edge host's own figures (wrangler dev, one machine): no baseline, no target."""
    fan, small, dms, storm = load("edge-fanout"), load("edge-fanout-small"), load("edge-dms"), load("edge-storm")
    if not (fan or small or dms or storm):
        return ""
    erows = []
    def erow(figure, value, note=""):
        erows.append(f"| {figure} | {value} | {note} |")
    if fan:
        edge_fanout_rows(erow, fan, "fan-out")
    if small:
        edge_fanout_rows(erow, small, "fan-out")
    at_node = load("edge-fanout-at-node")
    if at_node:
        erow("fan-out p99 delivery at the baseline's max rate (ms)", fmt(get(at_node, "latency_ms", "p99")))
    if dms:
        best = get(dms, "best") or {}
        erow(f"DMs find-max (P={dms.get('pairs')}): acked sends/s", fmt(get(best, "acked_per_s")) if best else "none held",
             f"p99 delivery {fmt(get(best, 'latency_ms', 'p99'))} ms, {cpu_per_delivery(best)} server CPU per delivery" if best else "")
    if storm:
        erow("connect storm: handshakes/s", fmt(get(storm, "handshakes_per_s")),
             f"{fmt(storm.get('connected'))} of {fmt(storm.get('conns'))}, p99 {fmt(get(storm, 'connect_ms', 'p99'))} ms")
    lines = ["Edge host under `wrangler dev` (workerd on this machine; for reference, no target):", "",
             "| figure | edge | |", "|---|---:|---|"] + erows
    trails = []
    for scen in ("fanout", "fanout-small", "dms"):
        doc = load(f"edge-{scen}")
        if doc and doc.get("steps"):
            steps = ", ".join(f"{fmt(s['rate'])}{'✓' if s['held'] else '✗'}" for s in doc["steps"])
            trails.append(f"- edge {scen} steps (sends/s): {steps}")
    return "\n".join(lines + ([""] + trails if trails else [])) + "\n"

edge = edge_table()
table = "\n\n".join(t for t in (table, edge) if t)
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
block = (f"### {when}\n\nMachine: {a.machine}. Command: `{a.command}`. Raw JSON: `bench/results/{os.path.basename(a.dir.rstrip('/'))}/`.\n\n"
         + table + "\n\n" + "\n".join(extra) + "\n")
print(block)
if a.readme:
    marker = "<!-- results: newest first -->"
    with open(a.readme) as f:
        text = f.read()
    if marker not in text:
        text += "\n## Results\n\n" + marker + "\n"
    text = text.replace(marker, marker + "\n\n" + block, 1)
    with open(a.readme, "w") as f:
        f.write(text)
    print(f"recorded in {a.readme}", file=sys.stderr)
