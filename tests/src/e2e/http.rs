//! A small blocking HTTP client whose sockets live in a lab namespace: the fake API server,
//! the probes and the admin API are reachable only there. A socket keeps the namespace it
//! was created in, so a short-lived thread moves into the namespace, connects, and hands the
//! connected stream back; the request itself runs on the caller's thread.
//!
//! HTTP/1.0 requests, so answers are never chunked and end when the server closes.

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    os::fd::AsFd,
    time::Duration,
};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::lab::{LabError, Result};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).map_err(|e| LabError::new(format!("not JSON ({e}): {}", self.body)))
    }

    pub fn ok(self) -> Result<Self> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(LabError::new(format!("HTTP {}: {}", self.status, self.body)))
        }
    }
}

/// A TCP connection to `addr` from inside namespace `ns` (its name under /run/netns).
pub fn connect_in(ns: &str, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<TcpStream> {
        let file = File::open(&path).map_err(|e| LabError::new(format!("open {path}: {e}")))?;
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| LabError::new(format!("setns {path}: {e}")))?;
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| LabError::new(format!("connect {addr}: {e}")))
    })
    .join()
    .map_err(|_| LabError::new("connect thread panicked"))?
}

/// One request; `timeout` bounds the connect and every read and write.
pub fn request(
    ns: &str,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response> {
    let mut stream = connect_in(ns, addr, timeout)?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| LabError::new(format!("{method} http://{addr}{path}: {e}"));
    stream.write_all(head.as_bytes()).map_err(io)?;
    if let Some(b) = body {
        stream.write_all(b.as_bytes()).map_err(io)?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| LabError::new(format!("{method} http://{addr}{path}: no HTTP answer: {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| LabError::new(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// `GET` with a timeout; the status and body.
pub fn get(ns: &str, addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response> {
    request(ns, addr, "GET", path, &[], None, timeout)
}

/// Splits `http://IP:PORT` into an address.
pub fn addr_of(url: &str) -> Result<SocketAddr> {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| LabError::new(format!("{url}: not http://IP:PORT ({e})")))
}
