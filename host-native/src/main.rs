//! `chat-server`: the native chat host.

use chat_core::auth::sign_token;
use chat_core::ids::UserId;
use chat_native::config::{ServeArgs, StorageArgs};
use chat_native::{driver, secret, server};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

const AFTER_HELP: &str = "Every option can also be set by the environment variable shown with it.\n\
Logging: RUST_LOG (default `info`), e.g. RUST_LOG=chat_native=debug,info.\n\
Docs: README.md (configuration, /metrics), docs/client.md (writing a client).";

#[derive(Parser)]
#[command(name = "chat-server", version, about = "Realtime chat server speaking the Socket.IO chat contract")]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, `chat-server` serves with these settings.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat (the default).
    #[command(after_help = AFTER_HELP)]
    Serve(Box<ServeArgs>),
    /// Check the configuration and that storage answers, one line per finding; exits
    /// non-zero on any problem.
    #[command(after_help = AFTER_HELP)]
    Check(Box<ServeArgs>),
    /// Create or update the database schema, then exit.
    Migrate(StorageArgs),
    /// Print a token for a user, signed with the server's secret.
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The user id (`sub` claim).
    user: String,
    /// Mark the user as an operator (`role: "admin"`).
    #[arg(long)]
    admin: bool,
    /// Lifetime: seconds, or with a unit (`90s`, `30m`, `1h`, `7d`).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// HS256 secret [default: unset, the one kept in `<data dir>/jwt-secret`, created if missing]
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_name = "SECRET")]
    jwt_secret: Option<String>,
    /// Directory of the generated JWT secret.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data", value_name = "DIR")]
    data_dir: std::path::PathBuf,
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))).init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => fail(format!("cannot start the async runtime: {error}")),
    };
    // The command runs as a task on a worker, not on the main thread inside `block_on`: the
    // accept loop then starts each connection on the worker that runs it, instead of
    // waking that worker from another thread per handshake (the main thread was ~6 % of a
    // one-core connect storm's samples; the storm's rate did not measurably change).
    let result = runtime.block_on(async {
        tokio::spawn(run(command)).await.unwrap_or_else(|error| Err(format!("the server task failed: {error}")))
    });
    if let Err(error) = result {
        fail(error);
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => server::serve(*args).await,
        Command::Migrate(args) => server::open_store(&args).await.map(|store| {
            tracing::info!(storage = store.backend(), "database is migrated");
        }),
        Command::Check(args) => chat_native::check::run(*args).await,
        Command::Token(args) => token(args),
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let ttl = parse_ttl(&args.ttl).ok_or_else(|| format!("--ttl {:?} is not a duration like 3600, 90s, 30m, 1h or 7d", args.ttl))?;
    let secret = secret::load_or_create(args.jwt_secret.as_deref(), &args.data_dir)
        .map_err(|error| format!("cannot read or create the JWT secret: {error}"))?;
    let user = UserId::new(args.user.as_str());
    let expires = driver::now().plus(ttl * 1000);
    println!("{}", sign_token(&secret, &user, args.admin, expires));
    Ok(())
}

fn parse_ttl(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(scale)
}

fn fail(message: String) -> ! {
    eprintln!("chat-server: {message}");
    std::process::exit(1);
}
