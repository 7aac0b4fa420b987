//! Outgoing HTTP requests, over `wasi:http`.
//!
//! ```ignore
//! let response = taskhost_sdk::http::get("https://api.example.com/v1/items")?;
//! let items: Vec<Item> = response.json()?;
//! ```
//!
//! Requests are blocking: the task waits for the response while the host, which runs tasks
//! that import `wasi:http` on its async executor, goes on with other work. The host only lets
//! requests through to the hosts its operator allows (`--allow-http-host`); any other fails
//! with an [`HttpError`] saying the request was denied. An allowed name that resolves only to
//! internal addresses (loopback, private, link-local, ...) fails with one saying the
//! destination IP is prohibited, unless the operator allowed that IP address itself. A
//! request never outlives its job:
//! the job's deadline stops it.

use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

use wasip2::http::outgoing_handler::{self, RequestOptions};
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};

/// An HTTP request to send.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// The response to a request.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received; names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request failed: a bad URL, a host the host does not allow, a network error, a
/// timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn error(message: impl Into<String>) -> HttpError {
    HttpError(message.into())
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

impl Request {
    /// A request with this method (`GET`, `POST`, ...) to this `http://` or `https://` URL.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Gives up after this long without a connection, or between parts of the response (the
    /// job's deadline bounds it anyway).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(&self) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&self.url)?;
        let headers = Fields::new();
        let has_length = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !self.body.is_empty() && !has_length {
            let length = self.body.len().to_string();
            headers
                .append("content-length", length.as_bytes())
                .map_err(|e| error(format!("content-length: {e:?}")))?;
        }
        for (name, value) in &self.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|e| error(format!("header {name:?}: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        let set =
            |ok: Result<(), ()>, what: &str| ok.map_err(|()| error(format!("invalid {what}")));
        set(request.set_method(&method), "method")?;
        set(request.set_scheme(Some(&scheme)), "scheme")?;
        set(request.set_authority(Some(authority)), "host")?;
        set(request.set_path_with_query(Some(path)), "path")?;
        let body = request.body().map_err(|()| error("request body taken"))?;
        let options = self.timeout.map(|timeout| {
            let options = RequestOptions::new();
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });
        let pending = outgoing_handler::handle(request, options)
            .map_err(|code| error(format!("request refused: {code:?}")))?;
        let sent = write_body(body, &self.body);

        pending.subscribe().block();
        // A refused request closes its body stream: its reason, not the closed stream's, is
        // the one to report.
        let response = pending
            .get()
            .ok_or_else(|| error("no response"))?
            .map_err(|()| error("response taken"))?
            .map_err(|code| error(describe(&code)))?;
        sent?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| error("response body taken"))?;
        let body = read_body(incoming)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

impl Response {
    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|e| error(format!("body is not UTF-8: {e}")))
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| error(format!("body is not the JSON expected: {e}")))
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if !bytes.is_empty() {
        let mut stream = body
            .write()
            .map_err(|()| error("request body stream taken"))?;
        stream
            .write_all(bytes)
            .and_then(|()| Write::flush(&mut stream))
            .map_err(|e| error(format!("sending the body: {e}")))?;
    } // the stream must be gone before the body is finished
    OutgoingBody::finish(body, None).map_err(|code| error(describe(&code)))
}

fn read_body(body: IncomingBody) -> Result<Vec<u8>, HttpError> {
    let mut bytes = Vec::new();
    {
        let mut stream = body
            .stream()
            .map_err(|()| error("response body stream taken"))?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| error(format!("reading the body: {e}")))?;
    } // the stream must be gone before the body is finished
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Splits `scheme://authority/path?query`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| error(format!("{url:?} is not an http:// or https:// URL")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(error(format!("{url:?} is not an http:// or https:// URL"))),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(error(format!("{url:?} has no host")));
    }
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// A `wasi:http` error code, for a person.
fn describe(code: &wasip2::http::types::ErrorCode) -> String {
    use wasip2::http::types::ErrorCode;
    match code {
        ErrorCode::HttpRequestDenied => {
            "request denied: the host does not allow this destination (see --allow-http-host)"
                .into()
        }
        ErrorCode::DestinationIpProhibited => {
            "destination IP prohibited: the host name resolves to an internal address (loopback, \
             private, link-local, ...), which an allowed name may not reach; the job's log says \
             which"
                .into()
        }
        ErrorCode::ConnectionTimeout | ErrorCode::HttpResponseTimeout => "timed out".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        other => format!("request failed: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        let (scheme, host, path) = split_url("https://api.example.com:8443/a/b?c=d").unwrap();
        assert!(matches!(scheme, Scheme::Https));
        assert_eq!((host, path), ("api.example.com:8443", "/a/b?c=d"));
        let (_, host, path) = split_url("http://localhost").unwrap();
        assert_eq!((host, path), ("localhost", "/"));
        let (_, host, path) = split_url("http://h?q=1").unwrap();
        assert_eq!((host, path), ("h", "?q=1"));
        assert!(split_url("ftp://x/").is_err());
        assert!(split_url("example.com").is_err());
        assert!(split_url("http:///path").is_err());
    }
}
