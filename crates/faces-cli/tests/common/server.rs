//! A real `faces serve` on a loopback port for the service tests, and a
//! small HTTP client around it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Sandbox;

pub struct Server {
    pub child: Child,
    pub base: String,
    agent: ureq::Agent,
}

/// A reply: status, headers we look at, and the body.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: status {} body {}", self.status, self.body))
    }
}

impl Server {
    /// Starts `faces serve --gallery GALLERY --addr 127.0.0.1:0 EXTRA...` and
    /// waits for its "listening on" line.
    pub fn start(sandbox: &Sandbox, gallery: &Path, extra: &[&str]) -> Server {
        let mut child = sandbox
            .command()
            .args(["serve", "--gallery", gallery.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start faces serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                eprintln!("[server] {line}");
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!("faces serve did not start ({status}); its output is above")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        Server { child, base: format!("http://{addr}"), agent }
    }

    fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = response.expect("the server answers");
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
        let (retry_after, content_type) = (header("retry-after"), header("content-type").unwrap_or_default());
        let body = r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
        Reply { status: r.status().as_u16(), retry_after, content_type, body }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        Self::reply(req.call())
    }

    pub fn delete(&self, path: &str, key: &str) -> Reply {
        Self::reply(self.agent.delete(format!("{}{path}", self.base)).header("Authorization", format!("Bearer {key}")).call())
    }

    /// POSTs a body with a content type and extra headers.
    pub fn post(&self, path: &str, key: Option<&str>, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", content_type);
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::reply(req.send(body))
    }

    /// POSTs a multipart form of text fields and files (field, path).
    pub fn post_form(&self, path: &str, key: &str, fields: &[(&str, &str)], files: &[(&str, &Path)], headers: &[(&str, &str)]) -> Reply {
        let (content_type, body) = multipart(fields, files);
        self.post(path, Some(key), &content_type, &body, headers)
    }

    /// Sends SIGTERM and waits for the process to end; true when it exited cleanly.
    pub fn stop(mut self) -> bool {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status.success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A multipart/form-data body: (content type, bytes).
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &Path)]) -> (String, Vec<u8>) {
    let boundary = "faces-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    for (name, path) in files {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend(std::fs::read(path).unwrap());
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
