//! The HTTP request that opens a Socket.IO session is cut down to what its handshake
//! reads, in allocations of its own, before socketioxide keeps it.
//!
//! engineioxide keeps the request that opened a session (its URI, headers and extensions:
//! what `socket.req_parts()` shows) for the whole life of the socket. Two costs came with
//! it at every idle socket:
//! - hyper parses a request without copying: the URI and every header value are slices of
//!   the connection's read buffer (8 to 16 KiB), so keeping them kept that whole buffer,
//!   long after the connection became a WebSocket and hyper let go of it (at 10k idle
//!   sockets, a third of the server's memory);
//! - every header a client sends (a browser's cookies, user agent, languages) stayed with
//!   the socket, though only the handshake reads any.
//!
//! So a request that opens a session keeps a copy of its URI (the handshake's query, the
//! `token` among it) and only the headers in [`KEPT_HEADERS`], copied. Nothing on the wire
//! changes: Engine.IO reads only `Sec-WebSocket-Key` (to answer the upgrade) and the chat
//! only `Authorization` (PROTOCOL.md §1), both before the socket is let in. Other requests
//! (the rest of a polling session, the HTTP API) pass unchanged: nobody keeps them.
//!
//! The extensions stay as they are: they hold what hyper put there (a WebSocket's upgrade,
//! which engineioxide takes) and nothing else, because the Socket.IO layer wraps the
//! router (see `server::serve`) and a handshake never meets what the router adds.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

/// Where socketioxide serves (its default `req_path`).
pub const SOCKET_IO_PATH: &str = "/socket.io";

/// The headers a session keeps: the chat's token, and the key engineioxide derives its
/// answer to a WebSocket upgrade from. Nothing reads the other `Sec-WebSocket-*` headers
/// (engineioxide answers with no subprotocol nor extension and checks no version), so
/// they are not kept.
pub const KEPT_HEADERS: [HeaderName; 2] = [header::AUTHORIZATION, header::SEC_WEBSOCKET_KEY];

/// The request cut down as the module says when it opens a Socket.IO session; any other
/// request unchanged.
pub fn detach(request: Request<Body>) -> Request<Body> {
    if !opens_session(&request) {
        return request;
    }
    let (mut parts, body) = request.into_parts();
    parts.uri = copy_uri(&parts.uri);
    parts.headers = kept_headers(&parts.headers);
    Request::from_parts(parts, body)
}

/// A GET on the Socket.IO path without a session id: a polling or WebSocket handshake
/// (a WebSocket upgrading a polling session names it, and its session has its request).
fn opens_session(request: &Request<Body>) -> bool {
    let uri = request.uri();
    request.method() == Method::GET
        && uri.path().strip_prefix(SOCKET_IO_PATH).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        && !uri.query().unwrap_or("").split('&').any(|pair| pair.starts_with("sid="))
}

/// The same URI, parsed again from a copy of its text. Parsing what `Uri` printed cannot
/// fail; if it did, the original is kept (it then keeps the buffer, nothing worse).
fn copy_uri(uri: &Uri) -> Uri {
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

/// The kept headers, every value of each in order, copied.
fn kept_headers(headers: &HeaderMap) -> HeaderMap {
    let count = KEPT_HEADERS.iter().map(|name| headers.get_all(name).iter().count()).sum();
    let mut kept = HeaderMap::with_capacity(count);
    for name in &KEPT_HEADERS {
        for value in headers.get_all(name) {
            kept.append(name.clone(), copy_value(value));
        }
    }
    kept
}

fn copy_value(value: &HeaderValue) -> HeaderValue {
    match HeaderValue::from_bytes(value.as_bytes()) {
        Ok(mut copy) => {
            copy.set_sensitive(value.is_sensitive());
            copy
        }
        // A value hyper let in but `HeaderValue` would refuse: kept as it is.
        Err(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, headers: &[(&str, &[u8])]) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_handshake_keeps_its_uri_and_the_headers_it_reads() {
        let uri = "/socket.io/?EIO=4&transport=websocket&token=a.b.c";
        let original = request(
            Method::GET,
            uri,
            &[
                ("host", b"chat.example"),
                ("authorization", b"Bearer caf\xe9"),
                ("cookie", b"session=1"),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
                ("sec-websocket-version", b"13"),
                ("sec-websocket-protocol", b"one"),
                ("sec-websocket-protocol", b"two"),
                ("upgrade", b"websocket"),
            ],
        );
        let kept = detach(original);
        assert_eq!(kept.uri(), uri);
        assert_eq!(kept.uri().query(), Some("EIO=4&transport=websocket&token=a.b.c"));
        let headers: Vec<(&str, &[u8])> = kept.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
        assert_eq!(headers, [("authorization", &b"Bearer caf\xe9"[..]), ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")]);
    }

    #[test]
    fn only_requests_that_open_a_session_are_cut_down() {
        let opens = |method: Method, uri: &str| opens_session(&request(method, uri, &[]));
        assert!(opens(Method::GET, "/socket.io/?EIO=4&transport=websocket"));
        assert!(opens(Method::GET, "/socket.io/?EIO=4&transport=polling&t=x"));
        assert!(opens(Method::GET, "/socket.io?EIO=4&transport=websocket"));
        assert!(!opens(Method::GET, "/socket.io/?EIO=4&transport=websocket&sid=abc"), "an upgrade keeps its session's request");
        assert!(!opens(Method::GET, "/socket.io/?sid=abc&EIO=4&transport=polling"));
        assert!(!opens(Method::POST, "/socket.io/?EIO=4&transport=polling&sid=abc"));
        assert!(!opens(Method::GET, "/socket.iox/?EIO=4"));
        assert!(!opens(Method::GET, "/api/v1/chats"));
    }

    #[test]
    fn other_requests_pass_unchanged() {
        let original = request(Method::GET, "/api/v1/chats", &[("cookie", b"a=b"), ("authorization", b"Bearer x")]);
        let headers = original.headers().clone();
        assert_eq!(detach(original).headers(), &headers);
    }

    #[test]
    fn absolute_uris_survive_the_copy() {
        let uri: Uri = "http://example.com:8080/socket.io/?EIO=4".parse().unwrap();
        assert_eq!(copy_uri(&uri), uri);
    }
}
