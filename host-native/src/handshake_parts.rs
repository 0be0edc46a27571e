//! Socket.IO handshake requests are copied off hyper's read buffer before socketioxide
//! keeps them.
//!
//! engineioxide keeps the HTTP request that opened a session (its URI and headers, what
//! `socket.req_parts()` shows) for the whole life of the socket. hyper parses a request
//! without copying: the URI and every header value are slices of the connection's read
//! buffer (8 to 16 KiB), so keeping them keeps that whole buffer alive too, long after the
//! connection became a WebSocket and hyper let go of it. At 10k idle sockets that was half
//! the server's memory. A copy of the few hundred bytes the request really is lets the
//! buffer go as soon as the WebSocket reads past it.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};

/// Where socketioxide serves (its default `req_path`).
pub const SOCKET_IO_PATH: &str = "/socket.io";

/// The request, its URI and headers in allocations of their own when it is for Socket.IO;
/// any other request unchanged (hyper's buffer lives only as long as the HTTP call then).
pub fn detach(request: Request<Body>) -> Request<Body> {
    if !is_socket_io(request.uri()) {
        return request;
    }
    let (mut parts, body) = request.into_parts();
    parts.uri = copy_uri(&parts.uri);
    parts.headers = copy_headers(&parts.headers);
    Request::from_parts(parts, body)
}

fn is_socket_io(uri: &Uri) -> bool {
    uri.path().strip_prefix(SOCKET_IO_PATH).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The same URI, parsed again from a copy of its text. Parsing what `Uri` printed cannot
/// fail; if it did, the original is kept (it then keeps the buffer, nothing worse).
fn copy_uri(uri: &Uri) -> Uri {
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

/// The same headers, in order, each value copied (names are copied by hyper already, or
/// are static).
fn copy_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        copy.append(HeaderName::clone(name), copy_value(value));
    }
    copy
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

    fn request(uri: &str, headers: &[(&str, &[u8])]) -> Request<Body> {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn socket_io_requests_keep_their_uri_and_headers() {
        let uri = "/socket.io/?EIO=4&transport=websocket&token=a.b.c";
        let original = request(
            uri,
            &[("authorization", b"Bearer x"), ("x-many", b"one"), ("x-many", b"two"), ("x-latin", b"caf\xe9"), ("upgrade", b"websocket")],
        );
        let expected_headers = original.headers().clone();
        let copy = detach(original);
        assert_eq!(copy.uri(), uri);
        assert_eq!(copy.uri().query(), Some("EIO=4&transport=websocket&token=a.b.c"));
        assert_eq!(copy.headers(), &expected_headers);
        let many: Vec<_> = copy.headers().get_all("x-many").iter().collect();
        assert_eq!(many, ["one", "two"]);
    }

    #[test]
    fn only_the_socket_io_path_is_matched() {
        assert!(is_socket_io(&"/socket.io/".parse().unwrap()));
        assert!(is_socket_io(&"/socket.io".parse().unwrap()));
        assert!(is_socket_io(&"/socket.io/?EIO=4".parse().unwrap()));
        assert!(!is_socket_io(&"/socket.iox/".parse().unwrap()));
        assert!(!is_socket_io(&"/api/v1/chats".parse().unwrap()));
    }

    #[test]
    fn absolute_uris_survive_the_copy() {
        let uri: Uri = "http://example.com:8080/socket.io/?EIO=4".parse().unwrap();
        assert_eq!(copy_uri(&uri), uri);
    }
}
