//! Drives the metadata-server clients (`firmware_config::sources::metadata`) with
//! arbitrary responses, as a hostile server at 169.254.169.254 could send them. The
//! first byte picks the cloud (bit 0: GCE, else EC2); then records `[control, len_hi,
//! len_lo, op, payload...]` (see `natbox_fuzz::records`; `control` is unused), one per
//! request, `op & 3`:
//! - 0: `payload` is the response's bytes, through `parse_response` (closed after them);
//! - 1: `payload` is a body, wrapped in a response with a Content-Length, the status
//!   `STATUSES[(op >> 2) % 6]` and `Metadata-Flavor: Google` when bit 5 is set (so
//!   mutations of bodies reach every phase of the walk);
//! - 2: no answer (a transport error);
//! - 3: as 0, fed in two reads split at `op >> 2` bytes (partial input).
//!
//! Any panic is a bug, and so is a broken invariant: a response complete before the
//! close is the same after it, and never larger than the bounds; every request is one
//! line of visible ASCII per field; the walk ends within `MAX_REQUESTS` requests and
//! keeps its outcome; a loaded configuration is valid; a refusal names its cloud.
#![no_main]

use firmware_config::sources::metadata::{
    http::MAX_HEAD, parse_response, Cloud, Fetch, HttpResponse, Outcome, Step, MAX_REQUESTS,
    MAX_RESPONSE,
};
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 6] = [200, 404, 403, 405, 500, 401];

/// `bytes` parsed as the transport would: complete or not before the close, then after.
fn parse(bytes: &[u8], split: Option<usize>) -> Result<HttpResponse, String> {
    if let Some(at) = split {
        let first = bytes.get(..at.min(bytes.len())).unwrap_or_default();
        if let Ok(Some(early)) = parse_response(first, false) {
            // A response complete in the first read is the response, whatever follows.
            assert_eq!(parse_response(bytes, true), Ok(Some(early.clone())));
            return Ok(early);
        }
    }
    let open = parse_response(bytes, false);
    let closed = parse_response(bytes, true);
    if let Ok(Some(r)) = &open {
        assert_eq!(closed.as_ref().ok().and_then(Option::as_ref), Some(r));
    }
    if let Ok(Some(r)) = &closed {
        assert!(r.body.len() <= MAX_RESPONSE);
        assert!(r.headers.len() <= 32 && bytes.len() >= r.body.len());
        assert!((200..600).contains(&r.status));
    }
    match closed {
        Ok(Some(r)) => Ok(r),
        Ok(None) => panic!("a closed connection gives a response or an error"),
        Err(e) => {
            assert!(!e.is_empty());
            Err(e)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let cloud = if mode & 1 == 1 { Cloud::Gce } else { Cloud::Ec2 };
    let mut fetch = Fetch::new(cloud);
    let mut records = natbox_fuzz::records::<1>(data);
    let mut outcome = None;
    for _ in 0..=MAX_REQUESTS {
        let request = match fetch.next() {
            Step::Done(done) => {
                outcome = Some(done);
                break;
            }
            Step::Request(request) => request,
        };
        let bytes = request.to_bytes();
        assert!(bytes.len() < MAX_HEAD && bytes.ends_with(b"\r\n\r\n"));
        let head = &bytes[..bytes.len() - 4];
        assert!(head
            .split(|&b| b == b'\n')
            .all(|line| line.strip_suffix(b"\r").unwrap_or(line).iter().all(|b| (0x20..0x7f).contains(b))));
        let answer = match records.next() {
            None => Err("connection refused".to_string()),
            Some(r) => match r.head[0] & 3 {
                0 => parse(r.frame, None),
                1 => {
                    let status = STATUSES[usize::from(r.head[0] >> 2) % STATUSES.len()];
                    let flavor = if r.head[0] & 0x20 != 0 {
                        "Metadata-Flavor: Google\r\n"
                    } else {
                        ""
                    };
                    let mut bytes = format!(
                        "HTTP/1.1 {status} X\r\n{flavor}Content-Length: {}\r\n\r\n",
                        r.frame.len()
                    )
                    .into_bytes();
                    bytes.extend_from_slice(r.frame);
                    let parsed = parse(&bytes, None);
                    assert_eq!(parsed.as_ref().map(|p| p.body.as_slice()), Ok(r.frame));
                    parsed
                }
                2 => Err("timeout".to_string()),
                _ => parse(r.frame, Some(usize::from(r.head[0] >> 2))),
            },
        };
        fetch.answer(answer);
    }
    let outcome = outcome.expect("an outcome within MAX_REQUESTS requests");
    assert_eq!(fetch.next(), Step::Done(outcome.clone()));
    match outcome {
        Outcome::Absent(why) => assert!(!why.is_empty()),
        Outcome::Refused(r) => {
            assert_eq!(r.kind, Some(cloud.kind()));
            assert!(r.message.starts_with(cloud.kind().name()), "{}", r.message);
        }
        Outcome::Loaded(l) => {
            assert_eq!(l.kind, cloud.kind());
            assert!(firmware_config::validate(&l.config).is_ok());
        }
    }
});
