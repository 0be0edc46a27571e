//! The record of a run: a hash of everything the world fed the engine and everything the
//! engine did (rendered with `Debug`), and the last lines of it for a failure report.
//! Rendering costs time, so plain runs keep it off; a failing seed is re-run with it on.

use std::collections::VecDeque;
use std::fmt::Debug;

pub struct Trace {
    enabled: bool,
    hash: u64,
    lines: u64,
    tail: VecDeque<String>,
    keep: usize,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Trace {
    pub fn off() -> Self {
        Self { enabled: false, hash: FNV_OFFSET, lines: 0, tail: VecDeque::new(), keep: 0 }
    }

    /// Records every line, keeping the last `keep` of them as text.
    pub fn on(keep: usize) -> Self {
        Self { enabled: true, keep, ..Self::off() }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records a line made lazily (nothing is rendered when tracing is off).
    pub fn line(&mut self, make: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let line = make();
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        self.lines += 1;
        if self.keep > 0 {
            if self.tail.len() == self.keep {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    pub fn debug(&mut self, prefix: &str, value: &impl Debug) {
        self.line(|| format!("{prefix}{value:?}"));
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn len(&self) -> u64 {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}
