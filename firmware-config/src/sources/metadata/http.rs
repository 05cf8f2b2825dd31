//! The HTTP/1.1 a metadata client needs (RFC 9112), sans I/O: requests as bytes, and
//! responses parsed from the bytes received so far.
//!
//! # Contract
//!
//! - [`HttpRequest::to_bytes`]: `METHOD path HTTP/1.1`, `Host: 169.254.169.254`,
//!   `Connection: close` (one request per connection: no pipelining, no keep-alive
//!   state), a `Content-Length: 0` on a PUT, then the request's own headers. Requests
//!   are built in this crate only, from fixed paths and values checked to be visible
//!   ASCII (a MAC from a listing, a token), so no CR or LF can reach the wire.
//! - [`parse_response`] takes everything received so far and answers `Ok(None)` (more
//!   bytes needed), `Ok(Some(response))` (the whole response; bytes after it are
//!   ignored, as the connection closes) or `Err(message)`. The head is parsed by
//!   `httparse`; interim 1xx responses are skipped (RFC 9110 section 15.2). The body
//!   is framed as RFC 9112 section 6.3 says: none for 204 and 304, else
//!   `Transfer-Encoding: chunked` (sizes by `httparse::parse_chunk_size`, trailers
//!   read and dropped), else `Content-Length` (several differing values, or one that
//!   is not digits, are refused: section 6.3 item 5), else the bytes up to the close
//!   (`closed`). Any other transfer coding is refused.
//!
//! # Bounds
//!
//! A head longer than [`MAX_HEAD`] (8 KiB, interim responses and trailers included)
//! or with more than [`MAX_HEADERS`] fields, and a body longer than [`MAX_RESPONSE`],
//! are refused as soon as the bytes show it, so the caller stops reading: a server
//! cannot make the box buffer more than `MAX_HEAD + MAX_RESPONSE` plus one read.
//!
//! # Crates weighed
//!
//! `httparse` (the parser under hyper) reads the head and the chunk-size lines; the
//! framing above is the few lines it leaves to its caller. A client crate (`ureq`,
//! `reqwest`, `attohttpc`) owns its socket and the kernel's stack, which the box's
//! boot-time fetch does not use (it carries TCP with smoltcp over its own dataplane),
//! so none fits a sans-IO client.

use super::METADATA_ADDR;
use crate::sources::MAX_USER_DATA;

/// Longest response head (status line and fields, interim responses and chunked
/// trailers included).
pub const MAX_HEAD: usize = 8 << 10;
/// Most header fields in a head.
pub const MAX_HEADERS: usize = 32;
/// Longest response body: the largest user-data and some room, so that a user-data
/// just over [`MAX_USER_DATA`] is refused by its size with the user-data's message.
pub const MAX_RESPONSE: usize = MAX_USER_DATA as usize + (64 << 10);

/// One request to the metadata server (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
}

impl HttpRequest {
    pub(super) fn get(path: String) -> HttpRequest {
        HttpRequest {
            method: "GET",
            path,
            headers: Vec::new(),
        }
    }

    pub(super) fn put(path: String) -> HttpRequest {
        HttpRequest {
            method: "PUT",
            ..HttpRequest::get(path)
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: &str) -> HttpRequest {
        self.headers.push((name, value.to_string()));
        self
    }

    /// `GET` or `PUT`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The path and query, e.g. `/latest/meta-data/instance-id`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of the request's own header `name` (not `Host` nor `Connection`).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as sent (see the module doc).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {METADATA_ADDR}\r\nUser-Agent: natbox\r\nAccept: */*\r\n\
             Connection: close\r\n",
            self.method, self.path
        );
        if self.method == "PUT" {
            head.push_str("Content-Length: 0\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

impl std::fmt::Display for HttpRequest {
    /// `GET /latest/user-data`, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Field names and values as received (values lossily UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the first field named `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the response in `bytes` (see the module doc); `closed`: the peer closed the
/// connection after them.
pub fn parse_response(bytes: &[u8], closed: bool) -> Result<Option<HttpResponse>, String> {
    let mut at = 0;
    let (status, headers, body_at) = loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut fields);
        let rest = bytes.get(at..).unwrap_or_default();
        let parsed = head
            .parse(rest)
            .map_err(|e| format!("not an HTTP/1.1 response: {e}"))?;
        let httparse::Status::Complete(len) = parsed else {
            if bytes.len() > MAX_HEAD {
                return Err(too_long_head());
            }
            return incomplete(closed, "the response head");
        };
        at += len;
        if at > MAX_HEAD {
            return Err(too_long_head());
        }
        let status = head.code.unwrap_or_default();
        // Interim responses (RFC 9110 section 15.2); 101 would switch protocols.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect();
        break (status, headers, at);
    };
    if !(200..600).contains(&status) {
        return Err(format!("status {status} is not a final response status"));
    }
    let rest = bytes.get(body_at..).unwrap_or_default();
    let body = match framing(status, &headers)? {
        Framing::Empty => Some(Vec::new()),
        Framing::Length(len) => length_body(rest, len, closed)?,
        Framing::Chunked => chunked_body(rest, closed, MAX_HEAD.saturating_sub(body_at))?,
        Framing::Close => close_body(rest, closed)?,
    };
    Ok(body.map(|body| HttpResponse {
        status,
        headers,
        body,
    }))
}

fn too_long_head() -> String {
    format!("the response head is longer than {} KiB", MAX_HEAD >> 10)
}

fn too_large() -> String {
    format!(
        "the response body is larger than {} KiB, the most natbox reads",
        MAX_RESPONSE >> 10
    )
}

/// `Ok(None)` while the connection is open, else why the response is cut short.
fn incomplete<T>(closed: bool, what: &str) -> Result<Option<T>, String> {
    if closed {
        Err(format!("the connection closed before the end of {what}"))
    } else {
        Ok(None)
    }
}

/// How the body of a response is delimited (RFC 9112 section 6.3).
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    Close,
}

fn framing(status: u16, headers: &[(String, String)]) -> Result<Framing, String> {
    if status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let codings: Vec<&str> = named("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        return match codings.as_slice() {
            [c] if c.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(format!(
                "transfer coding \"{}\" is not supported (only chunked)",
                codings.join(", ")
            )),
        };
    }
    let mut length = None;
    for value in named("content-length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        let parsed = value
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| format!("Content-Length \"{value}\" is not a number"))?;
        if length.is_some_and(|l| l != parsed) {
            return Err("differing Content-Length values".into());
        }
        length = Some(parsed);
    }
    match length {
        Some(len) => usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_RESPONSE)
            .map(Framing::Length)
            .ok_or_else(too_large),
        None => Ok(Framing::Close),
    }
}

fn length_body(rest: &[u8], len: usize, closed: bool) -> Result<Option<Vec<u8>>, String> {
    match rest.get(..len) {
        Some(body) => Ok(Some(body.to_vec())),
        None => incomplete(closed, "the body"),
    }
}

fn close_body(rest: &[u8], closed: bool) -> Result<Option<Vec<u8>>, String> {
    if rest.len() > MAX_RESPONSE {
        return Err(too_large());
    }
    Ok(closed.then(|| rest.to_vec()))
}

/// Longest chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 1 << 10;

/// A chunked body (RFC 9112 section 7.1); `trailer_room`: what is left of the head's
/// bound for the trailer section.
fn chunked_body(
    mut rest: &[u8],
    closed: bool,
    trailer_room: usize,
) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        if !rest.first().is_none_or(u8::is_ascii_hexdigit) {
            return Err("a chunk size is not a hex number".into());
        }
        let (line, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) if rest.len() > MAX_CHUNK_LINE => {
                return Err("a chunk-size line is too long".into());
            }
            Ok(httparse::Status::Partial) => return incomplete(closed, "a chunk size"),
            Err(_) => return Err("a chunk size is not a hex number".into()),
        };
        rest = rest.get(line..).unwrap_or_default();
        if size == 0 {
            return trailers(rest, closed, trailer_room).map(|done| done.then_some(body));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= MAX_RESPONSE.saturating_sub(body.len()))
            .ok_or_else(too_large)?;
        let (Some(data), Some(end)) = (rest.get(..size), rest.get(size..size + 2)) else {
            if rest.len() > size && rest.get(size) != Some(&b'\r') {
                return Err("a chunk does not end with CRLF".into());
            }
            return incomplete(closed, "a chunk");
        };
        if end != b"\r\n" {
            return Err("a chunk does not end with CRLF".into());
        }
        body.extend_from_slice(data);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// Whether the trailer section after the last chunk is complete.
fn trailers(rest: &[u8], closed: bool, room: usize) -> Result<bool, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if len <= room => Ok(true),
        Ok(httparse::Status::Partial) if rest.len() <= room => {
            incomplete::<()>(closed, "the trailers").map(|_| false)
        }
        Ok(_) => Err(too_long_head()),
        Err(e) => Err(format!("bad trailer section: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Option<HttpResponse>, String> {
        parse_response(text, false)
    }

    fn body(text: &[u8]) -> Vec<u8> {
        parse_response(text, true).unwrap().unwrap().body
    }

    #[test]
    fn requests_are_http_1_1_with_host_and_connection_close() {
        let req = HttpRequest::put("/latest/api/token".into())
            .header("X-aws-ec2-metadata-token-ttl-seconds", "21600");
        assert_eq!(
            String::from_utf8(req.to_bytes()).unwrap(),
            "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: natbox\r\n\
             Accept: */*\r\nConnection: close\r\nContent-Length: 0\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n"
        );
        assert_eq!(req.to_string(), "PUT /latest/api/token");
        let get = HttpRequest::get("/x".into());
        assert!(!String::from_utf8(get.to_bytes())
            .unwrap()
            .contains("Content-Length"));
    }

    #[test]
    fn rfc9112_6_3_content_length_delimits_the_body() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhelloEXTRA";
        let resp = parse(r).unwrap().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"hello");
        assert_eq!(resp.header("x-a"), Some("b"));
        assert_eq!(parse(&r[..r.len() - 7]).unwrap(), None, "need more bytes");
        let err = parse_response(&r[..r.len() - 7], true).unwrap_err();
        assert!(err.contains("closed before the end of the body"), "{err}");
    }

    #[test]
    fn rfc9112_6_3_item_5_bad_or_differing_lengths_are_refused() {
        for head in [
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            let text = format!("HTTP/1.1 200 OK\r\n{head}\r\nhello!");
            assert!(parse(text.as_bytes()).is_err(), "{head}");
        }
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello";
        assert_eq!(body(same), b"hello");
    }

    #[test]
    fn rfc9112_7_1_chunked_bodies_with_extensions_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n";
        assert_eq!(body(r), b"hello!");
        // Every cut short of the end needs more bytes, or is refused once closed.
        for cut in 0..r.len() {
            assert_eq!(parse(&r[..cut]).unwrap(), None, "cut at {cut}");
            assert!(parse_response(&r[..cut], true).is_err(), "cut at {cut}");
        }
        let bad = [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ];
        for r in bad {
            assert!(parse(r).is_err(), "{}", String::from_utf8_lossy(r));
        }
    }

    #[test]
    fn rfc9112_6_3_item_8_a_body_without_length_ends_at_the_close() {
        let r = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\ni-0abc";
        assert_eq!(parse(r).unwrap(), None);
        assert_eq!(body(r), b"i-0abc");
        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse(r).unwrap().unwrap().body, b"");
    }

    #[test]
    fn rfc9110_15_2_interim_responses_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse(r).unwrap().unwrap().status, 404);
        let r = b"HTTP/1.1 101 Switching\r\n\r\n";
        assert!(parse(r).is_err());
    }

    #[test]
    fn huge_heads_and_bodies_are_refused_before_they_end() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() <= MAX_HEAD {
            head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let err = parse(&head).unwrap_err();
        assert!(err.contains("fields") || err.contains("head"), "{err}");
        let mut long_line = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long_line.resize(MAX_HEAD + 1, b'a');
        assert!(parse(&long_line).unwrap_err().contains("longer than 8 KiB"));

        let big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 10 << 20);
        assert!(parse(big.as_bytes()).unwrap_err().contains("larger than"));
        let mut close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        close.resize(close.len() + MAX_RESPONSE + 1, b'a');
        assert!(parse(&close).unwrap_err().contains("larger than"));
        let chunk = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            10 << 20
        );
        assert!(parse(chunk.as_bytes()).unwrap_err().contains("larger than"));
    }

    #[test]
    fn garbage_is_refused_and_never_panics() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 999 What\r\n\r\n").is_err());
        assert_eq!(parse(b"").unwrap(), None);
        assert!(parse_response(b"", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", true).is_err());
        // Every prefix of every byte pattern: an answer, no panic.
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for i in 0..r.len() {
            for b in [0u8, b'\r', b'\n', b'0', b'f', b';', 0xff] {
                let mut m = r.to_vec();
                m[i] = b;
                let _ = parse_response(&m, false);
                let _ = parse_response(&m, true);
            }
        }
    }
}
