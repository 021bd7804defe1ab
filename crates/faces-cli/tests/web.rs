//! The web page end to end in headless Chromium, driven through ChromeDriver
//! (WebDriver over HTTP; Debian's chromium and chromium-driver, as the
//! set-up installs them): log in with a key, enrol a person with their
//! consent fields from a sample photo, identify them in another photo (boxes
//! and names drawn on the page), read the audit trail, and erase them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::{json, knn_train, shared_data, Sandbox, RESEARCH};
use serde_json::{json as j, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].into_iter().find(|p| Path::new(p).exists());
        let driver_bin = driver_bin.expect("ChromeDriver is needed for the web page test: run ./scripts/setup.sh (it installs Debian's chromium-driver)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver_bin).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser { driver, base, session: String::new(), agent };
        let caps = j!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1800", "--no-first-run", format!("--user-data-dir={}", profile.display())]
        } } } });
        let session = browser.call("POST", "/session", Some(caps));
        browser.session = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let reply = match method {
            "GET" => self.agent.get(url).call(),
            "DELETE" => self.agent.delete(url).call(),
            _ => self.agent.post(url).header("Content-Type", "application/json").send(body.unwrap_or(j!({})).to_string().as_bytes()),
        };
        let text = reply.unwrap().body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        if let Some(error) = v["value"]["error"].as_str() {
            panic!("WebDriver {method} {path}: {error}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(j!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", &self.at("/element"), Some(j!({ "using": "css selector", "value": css })));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.at(&format!("/element/{id}/value")), Some(j!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &self.at(&format!("/element/{id}/click")), None);
    }

    fn script(&self, script: &str) -> Value {
        self.call("POST", &self.at("/execute/sync"), Some(j!({ "script": script, "args": [] })))
    }

    /// Polls `script` until it returns true; panics with the page's status line after 60 s.
    fn wait_for(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.script(script) != j!(true) {
            if started.elapsed() > Duration::from_secs(60) {
                panic!("timed out waiting for {what}; status: {}", self.script("return document.getElementById('status').textContent"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self) -> image::RgbImage {
        let b64 = self.call("GET", &self.at("/screenshot"), None);
        image::load_from_memory(&base64_decode(b64.as_str().unwrap())).unwrap().to_rgb8()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| acc | (u32::from(value(c)) << (18 - 6 * i)));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Canonical, as ChromeDriver wants file paths.
fn knn() -> PathBuf {
    shared_data().join("samples/face_recognition/knn_examples").canonicalize().unwrap()
}

#[test]
fn the_web_page_enrols_identifies_audits_and_erases_in_chromium() {
    let sandbox = Sandbox::new();
    let train = knn_train(sandbox.path(), &["obama"]);
    let gallery = sandbox.path().join("club.gallery");
    let mut args = vec!["enrol", train.to_str().unwrap(), "--gallery", gallery.to_str().unwrap()];
    args.extend(RESEARCH);
    sandbox.ok(&args);
    let created = sandbox.ok(&["keys", "create", "--gallery", gallery.to_str().unwrap(), "--scope", "admin", "--json"]);
    let key = json(&created)["key"].as_str().unwrap().to_string();
    let server = Server::start(&sandbox, &gallery, &["--workers", "2"]);
    let browser = Browser::start(&sandbox.path().join("chromium-profile"));

    browser.go(&format!("{}/", server.base));
    browser.type_into("#key", &key);
    browser.click("#login button[type=submit]");
    browser.wait_for("the log-in", "return !document.getElementById('app').hidden");

    // Enrol Obama with his consent record, from the page.
    browser.click("nav button[data-tab=enrol]");
    browser.type_into("#enrol-name", "obama");
    browser.type_into("#enrol-purpose", "web page test");
    browser.type_into("#enrol-evidence", "FORM-7");
    browser.type_into("#enrol-photos", knn().join("train/obama/obama.jpg").to_str().unwrap());
    browser.click("#enrol-form button[type=submit]");
    browser.wait_for("the enrolment", "return document.getElementById('status').textContent.startsWith('Enrolled obama: 1 photo')");

    // Identify him in another photo: his name listed, his box drawn.
    browser.click("nav button[data-tab=identify]");
    browser.type_into("#identify-photo", knn().join("test/obama1.jpg").to_str().unwrap());
    browser.type_into("#identify-purpose", "web page test");
    browser.click("#identify-form button[type=submit]");
    browser.wait_for("the names", "return document.getElementById('identify-canvas').dataset.faces === '1'");
    let listed = browser.script("return document.querySelector('.face-name').textContent");
    assert!(listed.as_str().unwrap().starts_with("Face 1: obama (similarity"), "{listed}");
    let shot = browser.screenshot();
    // The page draws known faces' boxes in pure green (#00c000).
    let green = shot.pixels().filter(|p| p[1] > 170 && p[0] < 40 && p[2] < 40).count();
    assert!(green > 200, "the box and name are drawn on the photo: {green} green pixels");

    // The audit trail shows the searches and the enrolment under the key.
    browser.click("nav button[data-tab=audit]");
    browser.wait_for("the audit trail", "return document.querySelectorAll('#audit-rows tr').length > 0");
    let actions = browser.script("return [...document.querySelectorAll('#audit-rows tr td:nth-child(4)')].map(td => td.textContent)");
    let actions: Vec<&str> = actions.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for wanted in ["consent-add", "enrol", "identify"] {
        assert!(actions.contains(&wanted), "{wanted} in the page's audit trail: {actions:?}");
    }

    // Erase him from the People tab (confirming the dialog); then he is unknown.
    browser.click("nav button[data-tab=people]");
    browser.wait_for("the people", "return [...document.querySelectorAll('#people-rows td')].some(td => td.textContent === 'obama')");
    browser.script("window.confirm = () => true; return true");
    browser.click("button[aria-label='Erase obama completely']");
    browser.wait_for("the erasure", "return document.getElementById('status').textContent.startsWith('Erased obama')");
    let photo = knn().join("test/obama1.jpg");
    let reply = server.post_form("/v1/identify", &key, &[], &[("image", photo.as_path())], &[]);
    assert_eq!(reply.json()["faces"][0]["name"], "unknown");
}
