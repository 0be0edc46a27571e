//! What one measurement counts: latencies in HDR histograms (microseconds) and the
//! counters that tell a loss from an error. Single-threaded (the generator runs on one
//! core), so plain `RefCell`s.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

/// Marker put in every message body: `~T<micros since the process epoch>~`.
pub const MARK: &str = "~T";

pub struct Stats {
    pub epoch: Instant,
    /// The epoch on the wall clock, in µs since the Unix epoch: the kernel's arrival
    /// stamps are on that clock (`crate::arrival`).
    epoch_unix_us: u64,
    inner: RefCell<Counts>,
}

#[derive(Clone)]
pub struct Counts {
    pub sent: u64,
    pub acked: u64,
    pub ack_errors: u64,
    pub delivered: u64,
    pub inbox: u64,
    pub disconnects: u64,
    pub errors: BTreeMap<String, u64>,
    pub delivery_us: Histogram<u64>,
    pub ack_us: Histogram<u64>,
    pub inbox_us: Histogram<u64>,
    /// The same latencies up to when the frame reached this machine rather than when
    /// the generator read it (`crate::arrival`); empty where the kernel gave no stamps.
    pub delivery_arrival_us: Histogram<u64>,
    pub ack_arrival_us: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant figures; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Counts {
    fn new() -> Counts {
        Counts {
            sent: 0,
            acked: 0,
            ack_errors: 0,
            delivered: 0,
            inbox: 0,
            disconnects: 0,
            errors: BTreeMap::new(),
            delivery_us: histogram(),
            ack_us: histogram(),
            inbox_us: histogram(),
            delivery_arrival_us: histogram(),
            ack_arrival_us: histogram(),
        }
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats { epoch: Instant::now(), epoch_unix_us: crate::arrival::unix_now_us(), inner: RefCell::new(Counts::new()) }
    }

    /// Microseconds since the epoch, the time written into message bodies.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// A kernel arrival stamp (µs since the Unix epoch) as µs since the epoch.
    fn since_epoch(&self, unix_us: u64) -> u64 {
        unix_us.saturating_sub(self.epoch_unix_us)
    }

    pub fn reset(&self) {
        *self.inner.borrow_mut() = Counts::new();
    }

    pub fn snapshot(&self) -> Counts {
        self.inner.borrow().clone()
    }

    pub fn sent(&self) {
        self.inner.borrow_mut().sent += 1;
    }

    /// The answer to a send made at `sent_us` (µs since the epoch), read now, that
    /// arrived at `arrival` (µs since the Unix epoch) if the kernel stamped it.
    pub fn ack(&self, result: Result<(), String>, sent_us: u64, arrival: Option<u64>) {
        let now = self.now_us();
        let arrived = arrival.map(|unix| self.since_epoch(unix));
        let mut c = self.inner.borrow_mut();
        match result {
            Ok(()) => {
                c.acked += 1;
                let _ = c.ack_us.record(now.saturating_sub(sent_us).max(1));
                if let Some(at) = arrived {
                    let _ = c.ack_arrival_us.record(at.saturating_sub(sent_us).max(1));
                }
            }
            Err(code) => {
                c.ack_errors += 1;
                *c.errors.entry(code).or_default() += 1;
            }
        }
    }

    /// A `message:new` (`inbox == false`) or `inbox:update` frame carrying a body marker,
    /// read now, that arrived at `arrival` (µs since the Unix epoch) if the kernel stamped it.
    pub fn received(&self, frame: &str, inbox: bool, arrival: Option<u64>) {
        let now = self.now_us();
        let sent = body_time(frame);
        let latency = sent.map(|sent| now.saturating_sub(sent).max(1));
        let arrival_latency = sent.zip(arrival).map(|(sent, unix)| self.since_epoch(unix).saturating_sub(sent).max(1));
        let mut c = self.inner.borrow_mut();
        if let (false, Some(l)) = (inbox, arrival_latency) {
            let _ = c.delivery_arrival_us.record(l);
        }
        if inbox {
            c.inbox += 1;
            if let Some(l) = latency {
                let _ = c.inbox_us.record(l);
            }
        } else {
            c.delivered += 1;
            if let Some(l) = latency {
                let _ = c.delivery_us.record(l);
            }
        }
    }

    pub fn disconnected(&self) {
        self.inner.borrow_mut().disconnects += 1;
    }

    pub fn error(&self, what: &str) {
        *self.inner.borrow_mut().errors.entry(what.to_string()).or_default() += 1;
    }
}

/// The send time embedded in a frame's message body, if any.
pub fn body_time(frame: &str) -> Option<u64> {
    let at = frame.find(MARK)? + MARK.len();
    let digits = frame[at..].bytes().take_while(u8::is_ascii_digit).count();
    frame[at..at + digits].parse().ok()
}

/// p50/p95/p99/max of a histogram in milliseconds (null when empty).
pub fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
        "n": h.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_time_reads_the_marker_anywhere_in_the_frame() {
        assert_eq!(body_time(r#"42["message:new",{"body":"x ~T12345~ pad","seq":1}]"#), Some(12345));
        assert_eq!(body_time(r#"42["presence:update",{}]"#), None);
    }

    #[test]
    fn deliveries_and_inbox_updates_are_counted_apart() {
        let stats = Stats::new();
        stats.received("~T0~", false, None);
        stats.received("~T0~", true, None);
        stats.received("~T0~", true, None);
        let c = stats.snapshot();
        assert_eq!((c.delivered, c.inbox), (1, 2));
        assert_eq!(c.delivery_us.len(), 1);
    }

    #[test]
    fn error_acks_are_counted_by_code() {
        let stats = Stats::new();
        stats.ack(Ok(()), 0, None);
        stats.ack(Err("RATE_LIMITED".into()), 0, None);
        let c = stats.snapshot();
        assert_eq!((c.acked, c.ack_errors), (1, 1));
        assert_eq!(c.errors["RATE_LIMITED"], 1);
    }

    #[test]
    fn an_arrival_stamp_measures_up_to_the_arrival_not_the_read() {
        let stats = Stats::new();
        std::thread::sleep(std::time::Duration::from_millis(30));
        // Sent at 1 ms, arrived at 3 ms after the epoch, read now (30+ ms).
        stats.received("~T1000~", false, Some(stats.epoch_unix_us + 3_000));
        stats.ack(Ok(()), 1_000, Some(stats.epoch_unix_us + 3_000));
        let c = stats.snapshot();
        assert_eq!(c.delivery_arrival_us.max(), 2_000);
        assert_eq!(c.ack_arrival_us.max(), 2_000);
        assert!(c.delivery_us.min() >= 29_000 && c.ack_us.min() >= 29_000);
    }
}
