//! The HTTP service against a real server on a loopback port: keys and
//! scopes, identify with the CLI's JSON, enrolment through consent, erasure,
//! the audit trail, metrics, the OpenAPI document, bad inputs answered with
//! JSON errors while the server keeps serving, a full queue answering 503
//! with Retry-After, and graceful shutdown.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::server::Server;
use common::{json, knn_train, shared_data, Sandbox, RESEARCH};

fn knn() -> PathBuf {
    shared_data().join("samples/face_recognition/knn_examples")
}

/// A gallery of the knn training people except Obama (who is enrolled through the API).
fn gallery(sandbox: &Sandbox) -> PathBuf {
    let train = knn_train(sandbox.path(), &["obama"]);
    let gallery = sandbox.path().join("club.gallery");
    let mut args = vec!["enrol", train.to_str().unwrap(), "--gallery", gallery.to_str().unwrap()];
    args.extend(RESEARCH);
    sandbox.ok(&args);
    gallery
}

fn key(sandbox: &Sandbox, gallery: &Path, scopes: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--gallery", gallery.to_str().unwrap(), "--json"];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    json(&sandbox.ok(&args))["key"].as_str().unwrap().to_string()
}

fn names(reply: &common::server::Reply) -> Vec<String> {
    let v = reply.json();
    v["faces"].as_array().unwrap_or_else(|| panic!("no faces: {}", reply.body)).iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn api_with_keys_scopes_enrolment_erasure_and_audit() {
    let sandbox = Sandbox::new();
    let gallery = gallery(&sandbox);
    let admin = key(&sandbox, &gallery, &["admin"]);
    let desk = key(&sandbox, &gallery, &["identify", "enrol"]);
    let detect_only = key(&sandbox, &gallery, &["detect"]);
    let server = Server::start(&sandbox, &gallery, &["--workers", "2"]);
    let test = knn().join("test");

    // Liveness needs no key; everything else does.
    let health = server.get("/health", None);
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let anonymous = server.post_form("/v1/identify", "", &[], &[("image", &test.join("obama1.jpg"))], &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.json()["error"].as_str().unwrap().contains("API key"));
    let wrong_scope = server.post_form("/v1/identify", &detect_only, &[], &[("image", &test.join("obama1.jpg"))], &[]);
    assert_eq!(wrong_scope.status, 403, "{}", wrong_scope.body);
    assert!(wrong_scope.json()["error"].as_str().unwrap().contains("identify"));
    let detected = server.post_form("/v1/detect", &detect_only, &[], &[("image", &test.join("obama_and_biden.jpg"))], &[]);
    assert_eq!(detected.status, 200, "{}", detected.body);
    // Biden, Obama and a child at the lower right (the samples' manifest counts 3).
    assert_eq!(detected.json()["faces"].as_array().unwrap().len(), 3);

    // Identify answers with the CLI's JSON, as multipart or as a raw body.
    let cli = json(&sandbox.ok(&["identify", test.join("obama_and_biden.jpg").to_str().unwrap(), "--gallery", gallery.to_str().unwrap(), "--json"]));
    let reply = server.post_form("/v1/identify", &desk, &[], &[("image", &test.join("obama_and_biden.jpg"))], &[("X-Purpose", "api test")]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let api = reply.json();
    let keys = |v: &serde_json::Value| v["faces"][0].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&api), keys(&cli), "same fields as `faces identify --json`");
    let mut got = names(&reply);
    got.sort();
    assert_eq!(got, ["biden", "unknown", "unknown"], "Obama is not enrolled yet, nor is the child");
    let raw = server.post("/v1/identify", Some(&desk), "image/jpeg", &std::fs::read(test.join("kit_with_rose.jpg")).unwrap(), &[]);
    let mut got = names(&raw);
    got.sort();
    assert_eq!(got, ["kit_harington", "rose_leslie"], "{}", raw.body);

    // Compare: the main faces of two photos at the gallery's threshold.
    let (a, b) = (test.join("obama1.jpg"), knn().join("train/obama/obama2.jpg"));
    let same = server.post_form("/v1/compare", &desk, &[], &[("a", &a), ("b", &b)], &[]);
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.json()["same"], true, "{}", same.body);
    let other = server.post_form("/v1/compare", &desk, &[], &[("a", &a), ("b", &knn().join("train/biden/biden.jpg"))], &[]);
    assert_eq!(other.json()["same"], false, "{}", other.body);
    assert!(other.json()["similarity"].as_f64().unwrap() < same.json()["similarity"].as_f64().unwrap());

    // Enrolment needs an active consent record first.
    let obama = [("image", knn().join("train/obama/obama.jpg")), ("image", knn().join("train/obama/obama2.jpg"))];
    let files: Vec<(&str, &Path)> = obama.iter().map(|(f, p)| (*f, p.as_path())).collect();
    let refused = server.post_form("/v1/subjects", &desk, &[("name", "obama")], &files, &[]);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.json()["error"].as_str().unwrap().contains("consent"));
    let consent = serde_json::json!({ "subject": "obama", "basis": "consent", "purpose": "api test", "evidence": "FORM-1" });
    let recorded = server.post("/v1/consent", Some(&desk), "application/json", consent.to_string().as_bytes(), &[]);
    assert_eq!(recorded.status, 200, "{}", recorded.body);
    let notes = sandbox.path().join("notes.jpg");
    std::fs::write(&notes, b"not a photo").unwrap();
    let unreadable = server.post_form("/v1/subjects", &desk, &[("name", "obama")], &[("image", &notes)], &[]);
    assert_eq!(unreadable.status, 422, "{}", unreadable.body);
    assert!(unreadable.json()["error"].as_str().unwrap().contains("notes.jpg"), "names the upload: {}", unreadable.body);
    let enrolled = server.post_form("/v1/subjects", &desk, &[("name", "obama")], &files, &[]);
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    assert_eq!(enrolled.json()["enrolled"], 2);
    let again = server.post_form("/v1/identify", &desk, &[], &[("image", &test.join("obama1.jpg"))], &[]);
    assert_eq!(names(&again), ["obama"]);
    let listed = server.get("/v1/subjects", Some(&desk)).json();
    assert!(listed["subjects"].as_array().unwrap().iter().any(|s| s["name"] == "obama" && s["templates"] == 2), "{listed}");

    // Erasure is admin-only and takes effect at once.
    assert_eq!(server.delete("/v1/subjects/obama", &desk).status, 403);
    let erased = server.delete("/v1/subjects/obama", &admin);
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(names(&server.post_form("/v1/identify", &desk, &[], &[("image", &test.join("obama1.jpg"))], &[])), ["unknown"]);
    assert_eq!(server.delete("/v1/subjects/obama", &admin).status, 404);

    // A consent withdrawn, through the API or from the CLI while the server
    // runs, makes the person unmatchable from the next request.
    let withdrawn = server.post("/v1/consent/rose_leslie/withdraw", Some(&desk), "application/json", b"", &[]);
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    let mut got = names(&server.post_form("/v1/identify", &desk, &[], &[("image", &test.join("kit_with_rose.jpg"))], &[]));
    got.sort();
    assert_eq!(got, ["kit_harington", "unknown"]);
    sandbox.ok(&["consent", "withdraw", "biden", "--gallery", gallery.to_str().unwrap()]);
    let mut got = names(&server.post_form("/v1/identify", &desk, &[], &[("image", &test.join("obama_and_biden.jpg"))], &[]));
    got.sort();
    assert_eq!(got, ["unknown", "unknown", "unknown"]);

    // A revoked key is refused from its next request.
    let listed = json(&sandbox.ok(&["keys", "list", "--gallery", gallery.to_str().unwrap(), "--json"]));
    let detect_id = listed.as_array().unwrap().iter().find(|k| k["scopes"] == serde_json::json!(["detect"])).unwrap()["id"].as_str().unwrap().to_string();
    sandbox.ok(&["keys", "revoke", &detect_id, "--gallery", gallery.to_str().unwrap()]);
    let revoked = server.post_form("/v1/detect", &detect_only, &[], &[("image", &test.join("obama1.jpg"))], &[]);
    assert_eq!(revoked.status, 401);
    assert!(revoked.json()["error"].as_str().unwrap().contains("revoked"));

    // The audit trail names the key and the stated purpose, never a name or an embedding.
    let audit = server.get("/v1/audit", Some(&admin));
    assert_eq!(audit.status, 200);
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    let desk_id = desk.split('_').nth(1).unwrap();
    assert!(entries.iter().any(|e| e["action"] == "identify" && e["actor"] == format!("key:{desk_id}") && e["purpose"] == "api test"), "{entries:?}");
    for action in ["enrol", "forget", "consent-add", "consent-withdraw", "compare", "detect"] {
        assert!(entries.iter().any(|e| e["action"] == *action && e["actor"].as_str().unwrap().starts_with("key:")), "no {action} entry");
    }
    assert!(!audit.body.contains("obama"), "no names in the audit trail");
    assert_eq!(server.get("/v1/audit", Some(&desk)).status, 403);
    sandbox.ok(&["audit", "verify"]);

    // Metrics: per-route counts and latency, no personal data; admin only.
    let metrics = server.get("/metrics", Some(&admin));
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("faces_requests_total{method=\"POST\",route=\"/v1/identify\",status=\"200\"}"), "{}", metrics.body);
    assert!(metrics.body.contains("faces_request_seconds_bucket{route=\"/v1/identify\""));
    assert!(metrics.body.contains("route=\"/v1/subjects/{name}\""), "routes by pattern, not by name");
    assert!(!metrics.body.contains("obama"));

    // Every route of the table is in the OpenAPI document, with its method.
    let doc = server.get("/openapi.json", Some(&desk)).json();
    for route in faces_server::ROUTES {
        let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing from /openapi.json", route.method, route.path);
    }
    assert_eq!(doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum::<usize>(), faces_server::ROUTES.len());
    assert!(server.stop(), "clean exit on SIGTERM");
}

/// A PNG whose header claims 40000x40000 pixels over a few kB of deflated zeros.
fn png_bomb(path: &Path) {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let sum = crc(&out[start..]);
        out.extend(sum.to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(40_000u32.to_be_bytes());
    ihdr.extend(40_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 16 << 20]).unwrap();
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    assert!(png.len() < 64 << 10, "a small file: {} bytes", png.len());
    std::fs::write(path, png).unwrap();
}

/// Sends only the head of a POST that declares `length` bytes, as a client
/// waiting for an early answer would, and reads the answer: (status, body).
fn declare_huge_body(server: &Server, key: &str, length: usize) -> (u16, String) {
    use std::io::Read;
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/identify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: image/jpeg\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn bad_inputs_get_json_errors_and_the_server_keeps_serving() {
    let sandbox = Sandbox::new();
    let gallery = gallery(&sandbox);
    let desk = key(&sandbox, &gallery, &["identify"]);
    let server = Server::start(&sandbox, &gallery, &["--workers", "1", "--max-body-mb", "2"]);
    let good = knn().join("test/obama_and_biden.jpg");
    let dir = sandbox.path();

    let jpeg = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(dir.join("notes.jpg"), b"these are meeting notes, not a photo").unwrap();
    png_bomb(&dir.join("bomb.png"));
    let cases: [(&str, u16, &str); 3] = [("truncated.jpg", 422, "truncated"), ("notes.jpg", 422, "not an image"), ("bomb.png", 413, "megapixel")];
    for (file, status, words) in cases {
        let reply = server.post_form("/v1/identify", &desk, &[], &[("image", &dir.join(file))], &[]);
        assert_eq!(reply.status, status, "{file}: {}", reply.body);
        assert!(reply.content_type.starts_with("application/json"), "{file}: {}", reply.content_type);
        assert!(reply.json()["error"].as_str().unwrap().contains(words), "{file}: {}", reply.body);
    }
    // A body above the limit is refused from its Content-Length, before it is read.
    let (status, body) = declare_huge_body(&server, &desk, 3 << 20);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"error\"") && body.contains("limit"), "{body}");
    // The same bytes as raw bodies, and requests wrong in other ways.
    assert_eq!(server.post("/v1/identify", Some(&desk), "image/jpeg", &jpeg[..jpeg.len() / 2], &[]).status, 422);
    let wrong_type = server.post("/v1/identify", Some(&desk), "text/plain", b"hello", &[]);
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.body);
    assert!(wrong_type.json()["error"].as_str().unwrap().contains("Content-Type"));
    let no_field = server.post_form("/v1/identify", &desk, &[("photo", "x")], &[], &[]);
    assert_eq!(no_field.status, 400);
    assert!(no_field.json()["error"].as_str().unwrap().contains("`image`"));
    let broken_form = server.post("/v1/identify", Some(&desk), "multipart/form-data; boundary=x", b"--x\r\nnonsense", &[]);
    assert_eq!(broken_form.status, 400, "{}", broken_form.body);
    assert_eq!(server.post("/v1/identify", Some("fk_00000000_00"), "image/jpeg", &jpeg, &[]).status, 401);
    let unknown = server.get("/v1/nothing", Some(&desk));
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].is_string());

    // Still serving.
    let reply = server.post_form("/v1/identify", &desk, &[], &[("image", &good)], &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["faces"].as_array().unwrap().len(), 3);
    assert!(server.stop());
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_shutdown_finishes_in_flight_requests() {
    let sandbox = Sandbox::new();
    let gallery = gallery(&sandbox);
    let desk = key(&sandbox, &gallery, &["identify"]);
    let server = std::sync::Arc::new(Server::start(&sandbox, &gallery, &["--workers", "1", "--queue", "1"]));
    let photo = knn().join("test/obama_and_biden.jpg");
    let replies: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (server, desk, photo) = (&server, &desk, &photo);
                s.spawn(move || {
                    let r = server.post_form("/v1/identify", desk, &[], &[("image", photo)], &[]);
                    (r.status, r.retry_after)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.0 == 200).count();
    let busy: Vec<_> = replies.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok + busy.len(), replies.len(), "only 200 and 503: {replies:?}");
    assert!(ok >= 2 && !busy.is_empty(), "one worker and one queue place cannot take 12 at once: {replies:?}");
    assert!(busy.iter().all(|r| r.1.as_deref() == Some("1")), "Retry-After on every 503: {busy:?}");

    // SIGTERM while requests are in flight: they finish, then the server exits cleanly.
    let server = std::sync::Arc::try_unwrap(server).ok().unwrap();
    let status = std::thread::scope(|s| {
        let request = s.spawn(|| server.post_form("/v1/identify", &desk, &[], &[("image", &photo)], &[]).status);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let pid = server.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        request.join().unwrap()
    });
    assert_eq!(status, 200, "the in-flight request was answered");
    assert!(server.stop(), "clean exit");
}
