//! `chat-load`: a one-core load generator for any server of PROTOCOL.md.
//! Each scenario prints one JSON line on stdout (progress goes to stderr) and exits with
//! status 2 when anything was lost or errored, so a smoke run can assert on it.

mod arrival;
mod client;
mod cpu;
mod scenario;
mod stats;
mod token;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Parser)]
#[command(name = "chat-load", about = "Load generator for PROTOCOL.md servers (Engine.IO v4 / Socket.IO v5 over WebSocket)")]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Args, Clone)]
pub struct Common {
    /// Server address (host:port).
    #[arg(long, env = "CHAT_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub addr: SocketAddr,
    /// Socket.IO namespace of the chat.
    #[arg(long, env = "CHAT_NAMESPACE", default_value = "/", global = true)]
    pub nsp: String,
    /// HS256 secret the server checks tokens with.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, default_value = "", global = true)]
    pub secret: String,
    /// The server's process ids (repeat or comma-separate them when the server is several
    /// processes, e.g. wrangler dev's workerd): their memory (VmRSS, summed) and CPU time
    /// come from /proc.
    #[arg(long, global = true, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 256, global = true)]
    pub concurrency: usize,
    /// Connections per source address (127.0.0.2, 127.0.0.3, …) once a run needs more than
    /// this many; below it the kernel picks the source. 0: never bind.
    #[arg(long, default_value_t = 20_000, global = true)]
    pub per_source: usize,
    /// Seconds of sending per measurement (per step with --find-max).
    #[arg(long, default_value_t = 10.0, global = true)]
    pub duration: f64,
    /// Longest wait for outstanding acks and deliveries after sending stops, in ms.
    #[arg(long, default_value_t = 5_000, global = true)]
    pub drain_ms: u64,
    /// Message body length in bytes (the time marker included).
    #[arg(long, default_value_t = 64, global = true)]
    pub body_bytes: usize,
    /// Seconds of sending at the starting rate, once the sockets are set up, before anything
    /// is measured (fanout, dms); its figures are reported apart (`warmup`) and judge
    /// nothing. A fresh server's first seconds are not its steady state: Node's JIT compiles
    /// its hot paths under them (a p99 of 128 ms at 100 sends/s, then 5 ms at 75/s, seen in
    /// one find-max), our caches fill. 0: none.
    #[arg(long, default_value_t = 3.0, global = true)]
    pub warmup: f64,
    /// Raise the rate step by step until p99 delivery > --max-p99-ms or anything is lost or
    /// errored; report the highest rate that held.
    #[arg(long, global = true)]
    pub find_max: bool,
    /// Rate multiplier between --find-max steps before the first failure.
    #[arg(long, default_value_t = 1.5, global = true)]
    pub step_factor: f64,
    /// Bisection steps between the last rate that held and the first that did not.
    #[arg(long, default_value_t = 2, global = true)]
    pub refine: u32,
    /// Most --find-max steps.
    #[arg(long, default_value_t = 16, global = true)]
    pub max_steps: u32,
    /// The p99 delivery latency a --find-max step must stay under.
    #[arg(long, default_value_t = 100.0, global = true)]
    pub max_p99_ms: f64,
    /// A label copied into the JSON (e.g. which server).
    #[arg(long, default_value = "", global = true)]
    pub label: String,
}

#[derive(Subcommand)]
pub enum Scenario {
    /// N authenticated sockets held; the server's RSS before and after.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Seconds to hold them (longer than the ping interval checks heartbeats).
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
    },
    /// One group of M members, all joined; S of them send R messages/s in total.
    Fanout {
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
    },
    /// P direct chats, both sides joined; R messages/s in total.
    Dms {
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
    },
    /// Handshakes per second until connected and authenticated.
    ConnectStorm {
        #[arg(long, default_value_t = 5_000)]
        conns: usize,
    },
}

/// Lets this process hold as many sockets as the hard limit allows.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if cli.common.secret.is_empty() {
        eprintln!("chat-load: set JWT_SECRET (or --secret) to the server's secret");
        std::process::exit(64);
    }
    raise_fd_limit();
    // One thread: the generator is pinned to one core, and everything is Rc/RefCell.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-load: runtime: {e}");
            std::process::exit(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&runtime, scenario::run(cli));
    match outcome {
        Ok((line, passed)) => {
            println!("{line}");
            std::process::exit(if passed { 0 } else { 2 });
        }
        Err(e) => {
            eprintln!("chat-load: {e}");
            println!("{}", serde_json::json!({ "error": e }));
            std::process::exit(1);
        }
    }
}
