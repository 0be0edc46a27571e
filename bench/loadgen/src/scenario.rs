//! The scenarios: setup (connect, create chats, join rooms), paced sending, draining and
//! the JSON results; `--find-max` steps the rate of fanout and dms.

use crate::client::{connect, Conn, Target};
use crate::stats::{percentiles, Counts, Stats, MARK};
use crate::{Cli, Common, Scenario};
use futures_util::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub async fn run(cli: Cli) -> Result<(Value, bool), String> {
    let c = cli.common;
    let target = Target { addr: c.addr, nsp: c.nsp.clone(), secret: c.secret.clone().into_bytes() };
    let stats = Rc::new(Stats::new());
    // Unique user ids per run, so runs against one server never collide.
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) % 0xffff_ffff);
    let (mut out, passed) = match cli.scenario {
        Scenario::Idle { conns, hold } => idle(&c, &target, &stats, &run_id, conns, hold).await?,
        Scenario::ConnectStorm { conns } => storm(&c, &target, &stats, &run_id, conns).await?,
        Scenario::Fanout { members, senders, rate } => {
            let setup = setup_fanout(&c, &target, &stats, &run_id, members, senders).await?;
            let mut out = measure_or_find_max(&c, &stats, &setup, rate).await;
            out["members"] = json!(members);
            out["senders"] = json!(senders.min(members));
            let passed = out["passed"] == json!(true);
            (out, passed)
        }
        Scenario::Dms { pairs, rate } => {
            let setup = setup_dms(&c, &target, &stats, &run_id, pairs).await?;
            let mut out = measure_or_find_max(&c, &stats, &setup, rate).await;
            out["pairs"] = json!(pairs);
            let passed = out["passed"] == json!(true);
            (out, passed)
        }
    };
    if !c.label.is_empty() {
        out["label"] = json!(c.label);
    }
    out["client_rss_kb"] = json!(rss_kb(std::process::id()));
    Ok((out, passed))
}

/// VmRSS of a process in KiB, from /proc.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of the server's processes, summed (None when none could be read).
fn servers_rss_kb(pids: &[u32]) -> Option<u64> {
    let found: Vec<u64> = pids.iter().filter_map(|&pid| rss_kb(pid)).collect();
    if found.is_empty() { None } else { Some(found.iter().sum()) }
}

/// The source address of connection `i` of `total`: the kernel's choice up to
/// `per_source` connections, else 127.0.0.2, 127.0.0.3, … (loopback only), so more
/// connections fit than one source address has ephemeral ports.
fn source_for(c: &Common, i: usize, total: usize) -> Option<IpAddr> {
    if c.per_source == 0 || total <= c.per_source || !c.addr.ip().is_loopback() {
        return None;
    }
    let n = (i / c.per_source) as u32 + 2;
    Some(IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n)))
}

/// Opens `n` connections for users `<prefix><i>`, `concurrency` at a time. Returns them
/// in order (None where it failed) and the connect latency histogram.
async fn connect_many(c: &Common, target: &Target, stats: &Rc<Stats>, prefix: &str, n: usize, auto_join: bool) -> (Vec<Option<Conn>>, Histogram<u64>) {
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0;
    let mut last_report = Instant::now();
    while next < n || !in_flight.is_empty() {
        while next < n && in_flight.len() < c.concurrency.max(1) {
            let i = next;
            next += 1;
            let user = format!("{prefix}{i}");
            let source = source_for(c, i, n);
            let stats = stats.clone();
            let target = target.clone();
            in_flight.push(async move {
                let started = Instant::now();
                let result = connect(&target, &user, source, auto_join, stats).await;
                (i, started.elapsed(), result)
            });
        }
        if let Some((i, took, result)) = in_flight.next().await {
            match result {
                Ok(conn) => {
                    let _ = latency.record((took.as_micros() as u64).max(1));
                    conns[i] = Some(conn);
                }
                Err(e) => {
                    let kind = e.split(':').next().unwrap_or("connect").to_string();
                    stats.error(&format!("connect: {kind}"));
                    if stats.snapshot().errors.values().sum::<u64>() <= 3 {
                        eprintln!("chat-load: {prefix}{i}: {e}");
                    }
                }
            }
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("chat-load: connected {} of {n}", latency.len());
        }
    }
    (conns, latency)
}

fn all_connected(conns: Vec<Option<Conn>>) -> Result<Vec<Conn>, String> {
    let n = conns.len();
    let ok: Vec<Conn> = conns.into_iter().flatten().collect();
    if ok.len() != n {
        return Err(format!("only {} of {n} connections succeeded", ok.len()));
    }
    Ok(ok)
}

fn errors_json(counts: &Counts) -> Value {
    json!(counts.errors)
}

// --- idle and connect storm -----------------------------------------------------------

async fn idle(c: &Common, target: &Target, stats: &Rc<Stats>, run_id: &str, n: usize, hold: f64) -> Result<(Value, bool), String> {
    let before = servers_rss_kb(&c.server_pid);
    let started = Instant::now();
    let (conns, latency) = connect_many(c, target, stats, &format!("i{run_id}-"), n, false).await;
    let connect_s = started.elapsed().as_secs_f64();
    let connected = conns.iter().filter(|c| c.is_some()).count();
    eprintln!("chat-load: idle: {connected} of {n} connected in {connect_s:.1} s; holding {hold} s");
    // Let the server settle (allocators, buffers) before reading its memory, then hold.
    tokio::time::sleep(Duration::from_secs_f64(hold.max(1.0))).await;
    let after = servers_rss_kb(&c.server_pid);
    let held = conns.iter().flatten().filter(|c| c.is_open()).count();
    let counts = stats.snapshot();
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if connected > 0 => json!(((a.saturating_sub(b)) * 1024) / connected as u64),
        _ => Value::Null,
    };
    let passed = connected == n && held == n && counts.disconnects == 0;
    let out = json!({
        "scenario": "idle", "conns": n, "connected": connected, "held": held, "hold_s": hold,
        "connect_s": round(connect_s), "connect_ms": percentiles(&latency),
        "server_rss_before_kb": before, "server_rss_after_kb": after, "bytes_per_conn": per_conn,
        "disconnects": counts.disconnects, "errors": errors_json(&counts), "passed": passed,
    });
    drop(conns);
    Ok((out, passed))
}

async fn storm(c: &Common, target: &Target, stats: &Rc<Stats>, run_id: &str, n: usize) -> Result<(Value, bool), String> {
    let started = Instant::now();
    let (conns, latency) = connect_many(c, target, stats, &format!("s{run_id}-"), n, false).await;
    let secs = started.elapsed().as_secs_f64();
    let connected = conns.iter().filter(|c| c.is_some()).count();
    let counts = stats.snapshot();
    let passed = connected == n;
    let out = json!({
        "scenario": "connect-storm", "conns": n, "connected": connected, "concurrency": c.concurrency,
        "seconds": round(secs), "handshakes_per_s": round(connected as f64 / secs),
        "connect_ms": percentiles(&latency), "errors": errors_json(&counts), "passed": passed,
    });
    drop(conns);
    Ok((out, passed))
}

// --- fanout and dms ---------------------------------------------------------------------

/// Connections, and who sends to which chat (round robin), and how many `message:new`
/// and `inbox:update` each acked message must cause.
struct Setup {
    scenario: &'static str,
    conns: Vec<Conn>,
    /// (sender connection, chat id) pairs, cycled through by the pacer.
    plan: Vec<(usize, String)>,
    recipients: u64,
}

async fn join_all(c: &Common, conns: &[Conn], chats: &[(usize, String)]) -> Result<(), String> {
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0;
    while next < chats.len() || !in_flight.is_empty() {
        while next < chats.len() && in_flight.len() < c.concurrency.max(1) {
            let (who, chat) = &chats[next];
            next += 1;
            in_flight.push(conns[*who].request(&c.nsp, "room:join", json!({ "chatId": chat })));
        }
        if let Some(result) = in_flight.next().await {
            result?;
        }
    }
    Ok(())
}

fn chat_id(data: &Value) -> Result<String, String> {
    data.pointer("/chat/id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("chat:create answered {data}"))
}

async fn setup_fanout(c: &Common, target: &Target, stats: &Rc<Stats>, run_id: &str, members: usize, senders: usize) -> Result<Setup, String> {
    let members = members.max(2);
    let (conns, _) = connect_many(c, target, stats, &format!("f{run_id}-"), members, false).await;
    let conns = all_connected(conns)?;
    let others: Vec<&str> = conns[1..].iter().map(|c| c.user.as_str()).collect();
    let data = conns[0].request(&c.nsp, "chat:create", json!({ "kind": "group", "memberIds": others, "title": "bench" })).await?;
    let chat = chat_id(&data)?;
    let joins: Vec<(usize, String)> = (0..conns.len()).map(|i| (i, chat.clone())).collect();
    join_all(c, &conns, &joins).await?;
    let plan = (0..senders.clamp(1, members)).map(|i| (i, chat.clone())).collect();
    eprintln!("chat-load: fanout: {members} members joined");
    Ok(Setup { scenario: "fanout", conns, plan, recipients: members as u64 })
}

async fn setup_dms(c: &Common, target: &Target, stats: &Rc<Stats>, run_id: &str, pairs: usize) -> Result<Setup, String> {
    let pairs = pairs.max(1);
    let (conns, _) = connect_many(c, target, stats, &format!("d{run_id}-"), pairs * 2, false).await;
    let conns = all_connected(conns)?;
    let mut chats = Vec::with_capacity(pairs);
    {
        let mut in_flight = FuturesUnordered::new();
        let mut next = 0;
        while next < pairs || !in_flight.is_empty() {
            while next < pairs && in_flight.len() < c.concurrency.max(1) {
                let i = next;
                next += 1;
                let (a, b) = (&conns[2 * i], &conns[2 * i + 1]);
                let fut = a.request(&c.nsp, "chat:create", json!({ "kind": "dm", "memberIds": [b.user] }));
                in_flight.push(async move { (i, fut.await) });
            }
            if let Some((i, result)) = in_flight.next().await {
                chats.push((i, chat_id(&result?)?));
            }
        }
    }
    chats.sort();
    let joins: Vec<(usize, String)> = chats.iter().flat_map(|(i, chat)| [(2 * i, chat.clone()), (2 * i + 1, chat.clone())]).collect();
    join_all(c, &conns, &joins).await?;
    // Each pair takes turns: side A sends in even rounds, side B in odd ones.
    let mut plan: Vec<(usize, String)> = chats.iter().map(|(i, chat)| (2 * i, chat.clone())).collect();
    plan.extend(chats.iter().map(|(i, chat)| (2 * i + 1, chat.clone())));
    eprintln!("chat-load: dms: {pairs} pairs joined");
    Ok(Setup { scenario: "dms", conns, plan, recipients: 2 })
}

fn body(stats: &Stats, len: usize) -> String {
    let mut body = format!("bench {MARK}{}~ ", stats.now_us());
    while body.len() < len {
        body.push('x');
    }
    body
}

/// A UUID-shaped client id, unique per process (run id in the high bits).
fn client_id(seed: u64, n: u64) -> String {
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", seed as u32, (seed >> 32) as u16, (n >> 48) & 0xfff, (n >> 36) & 0xfff, n & 0xffff_ffff_ffff)
}

/// One measurement at a fixed rate: send for `duration`, drain, count.
async fn measure(c: &Common, stats: &Stats, setup: &Setup, rate: f64, seed: u64, counter: &mut u64) -> Value {
    stats.reset();
    let duration = Duration::from_secs_f64(c.duration);
    let cpu_before = crate::cpu::Snapshot::take(&c.server_pid);
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent: u64 = 0;
    let mut turn = 0usize;
    loop {
        ticker.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while sent < due {
            let (who, chat) = &setup.plan[turn % setup.plan.len()];
            turn += 1;
            sent += 1;
            *counter += 1;
            let conn = &setup.conns[*who];
            if conn.is_open() {
                stats.sent();
                conn.send_message(&c.nsp, chat, &body(stats, c.body_bytes), &client_id(seed, *counter));
            } else {
                stats.error("SEND_ON_CLOSED");
            }
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    // Drain: every acked message must reach every recipient.
    let drain_until = Instant::now() + Duration::from_millis(c.drain_ms);
    loop {
        let counts = stats.snapshot();
        let unacked: usize = setup.conns.iter().map(Conn::unacked).sum();
        let want = counts.acked * setup.recipients;
        if unacked == 0 && counts.delivered >= want && counts.inbox >= want {
            break;
        }
        if Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = crate::cpu::Snapshot::take(&c.server_pid);
    let (client_cpu_s, server_cpu_s) = cpu_after.since(&cpu_before);
    // Per process only when the server is several (the sum says it all for one).
    let by_pid = cpu_after.by_process_since(&cpu_before);
    let server_cpu_by_pid: Option<serde_json::Map<String, Value>> =
        (by_pid.len() > 1).then(|| by_pid.iter().map(|(pid, s)| (pid.to_string(), json!(round(*s)))).collect());
    let wall_s = start.elapsed().as_secs_f64();
    let counts = stats.snapshot();
    let unacked: u64 = setup.conns.iter().map(|c| c.unacked() as u64).sum();
    let expected = counts.acked * setup.recipients;
    let lost = expected.saturating_sub(counts.delivered);
    let inbox_lost = expected.saturating_sub(counts.inbox);
    let p99_ms = if counts.delivery_us.is_empty() { f64::INFINITY } else { counts.delivery_us.value_at_quantile(0.99) as f64 / 1000.0 };
    let clean = lost == 0 && inbox_lost == 0 && unacked == 0 && counts.ack_errors == 0 && counts.disconnects == 0 && counts.errors.is_empty() && counts.acked == counts.sent;
    json!({
        "scenario": setup.scenario, "rate": round(rate), "duration_s": round(send_secs),
        "sent": counts.sent, "acked": counts.acked, "ack_errors": counts.ack_errors, "unacked": unacked,
        "delivered": counts.delivered, "expected": expected, "lost": lost,
        "inbox": counts.inbox, "inbox_lost": inbox_lost,
        "sent_per_s": round(counts.sent as f64 / send_secs),
        "acked_per_s": round(counts.acked as f64 / send_secs),
        "delivered_per_s": round(counts.delivered as f64 / send_secs),
        "latency_ms": percentiles(&counts.delivery_us), "ack_ms": percentiles(&counts.ack_us),
        "inbox_ms": percentiles(&counts.inbox_us),
        "arrival_ms": percentiles(&counts.delivery_arrival_us), "ack_arrival_ms": percentiles(&counts.ack_arrival_us),
        "disconnects": counts.disconnects, "errors": errors_json(&counts),
        // CPU over sending and draining (wall_s): who was busy, the server or the generator.
        "wall_s": round(wall_s), "client_cpu_s": client_cpu_s.map(round), "server_cpu_s": server_cpu_s.map(round),
        "server_cpu_by_pid": server_cpu_by_pid,
        "clean": clean, "p99_ok": p99_ms <= c.max_p99_ms,
    })
}

fn held(step: &Value) -> bool {
    step["clean"] == json!(true) && step["p99_ok"] == json!(true)
}

async fn measure_or_find_max(c: &Common, stats: &Stats, setup: &Setup, rate: f64) -> Value {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut counter = 0u64;
    let warmup = warm_up(c, stats, setup, rate, seed, &mut counter).await;
    if !c.find_max {
        let mut out = measure(c, stats, setup, rate, seed, &mut counter).await;
        // A fixed-rate run passes when nothing is lost or errored (latency is reported, not judged).
        out["passed"] = out["clean"].clone();
        out["warmup"] = warmup;
        return out;
    }
    let mut steps = Vec::new();
    let mut best: Option<Value> = None;
    let mut failed_at: Option<f64> = None;
    let mut next = rate;
    let mut refinements = 0;
    for _ in 0..c.max_steps {
        eprintln!("chat-load: {} find-max: trying {next:.0}/s", setup.scenario);
        let step = measure(c, stats, setup, next, seed, &mut counter).await;
        let ok = held(&step);
        eprintln!(
            "chat-load:   {} delivered/s {}, p99 {} ms, lost {}, errors {}",
            if ok { "held" } else { "failed" },
            step["delivered_per_s"], step["latency_ms"]["p99"], step["lost"], step["errors"]
        );
        steps.push(json!({ "rate": step["rate"], "held": ok, "delivered_per_s": step["delivered_per_s"], "acked_per_s": step["acked_per_s"],
                           "p50_ms": step["latency_ms"]["p50"], "p99_ms": step["latency_ms"]["p99"], "delivered": step["delivered"],
                           "lost": step["lost"], "ack_errors": step["ack_errors"],
                           "client_cpu_s": step["client_cpu_s"], "server_cpu_s": step["server_cpu_s"],
                           "server_cpu_by_pid": step["server_cpu_by_pid"], "wall_s": step["wall_s"] }));
        if ok {
            best = Some(step);
        } else {
            failed_at = Some(failed_at.map_or(next, |f: f64| f.min(next)));
            if step["clean"] != json!(true) {
                // Let a server that lost or refused messages recover before the next step.
                tokio::time::sleep(Duration::from_millis(c.drain_ms)).await;
            }
        }
        let good = best.as_ref().and_then(|b| b["rate"].as_f64());
        next = match (good, failed_at) {
            (_, None) => next * c.step_factor,
            (Some(g), Some(f)) if refinements < c.refine => {
                refinements += 1;
                (g + f) / 2.0
            }
            (None, Some(f)) if refinements < c.refine => {
                refinements += 1;
                f / 2.0
            }
            _ => break,
        };
        // A dead connection makes every later step fail: stop early.
        if setup.conns.iter().any(|c| !c.is_open()) {
            break;
        }
    }
    let max_rate = best.as_ref().map(|b| b["rate"].clone()).unwrap_or(Value::Null);
    let mut out = json!({ "scenario": setup.scenario, "find_max": true, "max_p99_ms": c.max_p99_ms, "max_rate": max_rate, "steps": steps });
    out["passed"] = json!(best.is_some());
    out["best"] = best.unwrap_or(Value::Null);
    out["warmup"] = warmup;
    out
}

/// `--warmup` seconds at `rate`, measured like a step but judging nothing: a summary, or
/// null when there is no warm-up.
async fn warm_up(c: &Common, stats: &Stats, setup: &Setup, rate: f64, seed: u64, counter: &mut u64) -> Value {
    if c.warmup <= 0.0 {
        return Value::Null;
    }
    eprintln!("chat-load: {} warm-up: {:.1} s at {rate:.0}/s", setup.scenario, c.warmup);
    let warm = Common { duration: c.warmup, ..c.clone() };
    let step = measure(&warm, stats, setup, rate, seed, counter).await;
    if step["clean"] != json!(true) {
        // As after a failed step: let the server recover before the measurement.
        tokio::time::sleep(Duration::from_millis(c.drain_ms)).await;
    }
    json!({ "seconds": c.warmup, "rate": step["rate"], "p50_ms": step["latency_ms"]["p50"], "p99_ms": step["latency_ms"]["p99"],
            "lost": step["lost"], "ack_errors": step["ack_errors"], "clean": step["clean"] })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_uuid_shaped_and_distinct() {
        let a = client_id(0x1234_5678_9abc_def0, 1);
        let b = client_id(0x1234_5678_9abc_def0, 2);
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
    }

    #[test]
    fn bodies_carry_the_time_marker_and_the_asked_length() {
        let stats = Stats::new();
        let b = body(&stats, 64);
        assert_eq!(b.len(), 64);
        assert!(crate::stats::body_time(&b).is_some());
    }
}
