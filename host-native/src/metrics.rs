//! Prometheus text metrics, kept by the driver and rendered for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the commit latency buckets, in seconds.
const COMMIT_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
pub struct Metrics {
    connections: AtomicU64,
    messages_sent: AtomicU64,
    packets_skipped: AtomicU64,
    acks: Mutex<BTreeMap<String, u64>>,
    commits: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; COMMIT_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn set_connections(&self, connections: usize) {
        self.connections.store(connections as u64, Ordering::Relaxed);
    }

    pub fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Packets not queued for sockets whose send buffers were full (`send_buffer`).
    pub fn packets_skipped(&self, count: usize) {
        self.packets_skipped.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// One acknowledgement answered with `code` (`ok` for success).
    pub fn ack(&self, code: &str) {
        if let Ok(mut acks) = self.acks.lock() {
            *acks.entry(code.to_string()).or_default() += 1;
        }
    }

    pub fn commit(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Ok(mut histogram) = self.commits.lock() {
            for (bucket, bound) in histogram.buckets.iter_mut().zip(COMMIT_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP chat_connections Sockets connected now.");
        let _ = writeln!(out, "# TYPE chat_connections gauge");
        let _ = writeln!(out, "chat_connections {}", self.connections.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP chat_messages_sent_total Messages stored and delivered.");
        let _ = writeln!(out, "# TYPE chat_messages_sent_total counter");
        let _ = writeln!(out, "chat_messages_sent_total {}", self.messages_sent.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP chat_packets_skipped_total Packets not queued because the client's send buffer was full.");
        let _ = writeln!(out, "# TYPE chat_packets_skipped_total counter");
        let _ = writeln!(out, "chat_packets_skipped_total {}", self.packets_skipped.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP chat_acks_total Acknowledgements sent, by result code.");
        let _ = writeln!(out, "# TYPE chat_acks_total counter");
        if let Ok(acks) = self.acks.lock() {
            for (code, count) in acks.iter() {
                let _ = writeln!(out, "chat_acks_total{{code=\"{code}\"}} {count}");
            }
        }
        let _ = writeln!(out, "# HELP chat_commit_seconds Time from a storage commit's start to its durable end.");
        let _ = writeln!(out, "# TYPE chat_commit_seconds histogram");
        if let Ok(histogram) = self.commits.lock() {
            for (count, bound) in histogram.buckets.iter().zip(COMMIT_BUCKETS) {
                let _ = writeln!(out, "chat_commit_seconds_bucket{{le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "chat_commit_seconds_bucket{{le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "chat_commit_seconds_sum {}", histogram.sum);
            let _ = writeln!(out, "chat_commit_seconds_count {}", histogram.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_in_prometheus_text() {
        let metrics = Metrics::default();
        metrics.set_connections(3);
        metrics.message_sent();
        metrics.packets_skipped(2);
        metrics.ack("ok");
        metrics.ack("RATE_LIMITED");
        metrics.commit(Duration::from_millis(3));
        let text = metrics.render();
        assert!(text.contains("chat_connections 3"), "{text}");
        assert!(text.contains("chat_messages_sent_total 1"), "{text}");
        assert!(text.contains("chat_packets_skipped_total 2"), "{text}");
        assert!(text.contains("chat_acks_total{code=\"RATE_LIMITED\"} 1"), "{text}");
        assert!(text.contains("chat_commit_seconds_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("chat_commit_seconds_bucket{le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("chat_commit_seconds_count 1"), "{text}");
    }
}
