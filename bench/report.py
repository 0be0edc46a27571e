#!/usr/bin/env python3
"""Reads the JSON lines of one bench/run.sh run and prints the figures side by side
(Node.js baseline, ours, the factor by which ours is better, the echo ceiling, the target),
then records the table in bench/README.md under the results marker (newest first)."""
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
def row(figure, path, scenario, better, target=None, unit="", ours_scenario=None, node_path=None, echo_scenario=None):
    node = get(load("node-" + scenario), *(node_path or path))
    ours = get(load("native-" + (ours_scenario or scenario)), *path)
    echo = get(load("echo-" + (echo_scenario or ours_scenario or scenario)), *path)
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
row("fan-out p99 ack at the baseline's max rate (ms)", ["ack_ms", "p99"], "fanout", "lower",
    ours_scenario="fanout-at-node", node_path=["best", "ack_ms", "p99"])
row("DMs find-max: acked sends/s", ["best", "acked_per_s"], "dms", "higher", 3)
row("DMs p99 delivery at the baseline's max rate (ms)", ["latency_ms", "p99"], "dms", "lower", 5,
    ours_scenario="dms-at-node", node_path=["best", "latency_ms", "p99"])
row("DMs p99 ack at the baseline's max rate (ms)", ["ack_ms", "p99"], "dms", "lower",
    ours_scenario="dms-at-node", node_path=["best", "ack_ms", "p99"])
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
missing = [k for k in ("node", "native", "echo") if not any(n.startswith(k + "-") for n in os.listdir(a.dir))]
if missing:
    extra.append("- not measured: " + ", ".join(missing))

head = ("| figure | Node.js baseline | ours | ours better by | echo ceiling | target | |\n"
        "|---|---:|---:|---:|---:|---:|---|")
table = head + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows)
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
