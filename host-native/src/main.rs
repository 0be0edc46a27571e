//! Native host (`chat-server`): placeholder until the native host's issue lands.

fn main() {
    eprintln!("chat-server: the native host is not built yet (see the native host issue)");
    std::process::exit(2);
}
