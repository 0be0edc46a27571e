//! Which database a connection string names, in the form sqlx's `Any` driver accepts.

use super::{Backend, StoreError};
use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub backend: Backend,
    /// The URL handed to sqlx.
    pub url: String,
    /// SQLite: the database file to create with its directory when missing (None in
    /// memory or when the URL's `mode` forbids creating it).
    pub file: Option<PathBuf>,
    /// SQLite `:memory:`.
    pub in_memory: bool,
}

/// `postgres://…` / `postgresql://…`; `sqlite://path?…`, `sqlite:path?…`, `sqlite::memory:`;
/// anything else is a SQLite file path. SQLite files are created when missing
/// (`mode=rwc` unless the URL names a `mode`).
pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::Url("empty database url".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target { backend: Backend::Postgres, url: url.to_owned(), file: None, in_memory: false });
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        // The same split sqlx makes (sqlx_sqlite::SqliteConnectOptions::from_str).
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (database, params) = match rest.split_once('?') {
            Some((database, params)) => (database, Some(params)),
            None => (rest, None),
        };
        let mode = params.and_then(|params| params.split('&').find_map(|pair| pair.strip_prefix("mode=")));
        let in_memory = database.is_empty() || database == ":memory:" || mode == Some("memory");
        if in_memory {
            return Ok(Target { backend: Backend::Sqlite, url: url.to_owned(), file: None, in_memory: true });
        }
        let path = percent_decode(database)?;
        let url = match (params, mode) {
            (_, Some(_)) => url.to_owned(),
            (Some(_), None) => format!("{url}&mode=rwc"),
            (None, None) => format!("{url}?mode=rwc"),
        };
        let create = matches!(mode, None | Some("rwc"));
        return Ok(Target { backend: Backend::Sqlite, url, file: create.then(|| PathBuf::from(path)), in_memory: false });
    }
    if url.contains("://") {
        return Err(StoreError::Url(format!("unsupported database url scheme in {url:?} (use sqlite: or postgres:)")));
    }
    // A plain file path.
    let path = std::path::absolute(url).map_err(|source| StoreError::Io { path: PathBuf::from(url), source })?;
    let text = path.to_str().ok_or_else(|| StoreError::Url(format!("database path {path:?} is not UTF-8")))?;
    Ok(Target { backend: Backend::Sqlite, url: format!("sqlite://{}?mode=rwc", percent_encode(text)), file: Some(path), in_memory: false })
}

/// Escapes everything but unreserved characters and `/`, so the `url` crate keeps the
/// path intact and sqlx decodes it back.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn percent_decode(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(byte)) = text.get(i + 1..i + 3).map(|hex| u8::from_str_radix(hex, 16)) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| StoreError::Url(format!("database path {text:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_pass_through() {
        let target = parse("postgres://u@h:5432/db?options[search_path]=s").unwrap();
        assert_eq!(target.backend, Backend::Postgres);
        assert_eq!(target.url, "postgres://u@h:5432/db?options[search_path]=s");
        assert_eq!(parse("postgresql://h/db").unwrap().backend, Backend::Postgres);
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        let target = parse("sqlite://data/chat.db").unwrap();
        assert_eq!(target.url, "sqlite://data/chat.db?mode=rwc");
        assert_eq!(target.file, Some(PathBuf::from("data/chat.db")));
        let target = parse("sqlite:///var/x%20y.db?cache=private").unwrap();
        assert_eq!(target.url, "sqlite:///var/x%20y.db?cache=private&mode=rwc");
        assert_eq!(target.file, Some(PathBuf::from("/var/x y.db")));
        let target = parse("sqlite:rel.db?mode=rwc").unwrap();
        assert_eq!(target.url, "sqlite:rel.db?mode=rwc");
        assert_eq!(target.file, Some(PathBuf::from("rel.db")));
        let target = parse("sqlite://a.db?mode=ro").unwrap();
        assert_eq!(target.url, "sqlite://a.db?mode=ro");
        assert_eq!(target.file, None);
        assert!(parse("sqlite::memory:").unwrap().in_memory);
        assert!(parse("sqlite://?mode=memory").unwrap().in_memory);
    }

    #[test]
    fn plain_paths_become_absolute_sqlite_urls() {
        let target = parse("/tmp/a dir/chat#1.db").unwrap();
        assert_eq!(target.backend, Backend::Sqlite);
        assert_eq!(target.url, "sqlite:///tmp/a%20dir/chat%231.db?mode=rwc");
        assert_eq!(target.file, Some(PathBuf::from("/tmp/a dir/chat#1.db")));
        assert!(parse("mysql://x/y").is_err());
        assert!(parse("").is_err());
    }
}
