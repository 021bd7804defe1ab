//! Privacy through the CLI on real galleries built from the sample photos:
//! consent before enrolment, withdrawal and expiry, complete erasure (raw
//! bytes), encrypted templates (wrong key, tampering, rekey), the hash-chained
//! audit trail, and subject access.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{json, knn_train, shared_data, text, Sandbox, RESEARCH};

fn test_photo(name: &str) -> String {
    shared_data().join("samples/face_recognition/knn_examples/test").join(name).to_str().unwrap().to_string()
}

/// Sorted names given to the faces of one test photo.
fn names_in(sb: &Sandbox, gallery: &Path, photo: &str) -> Vec<String> {
    let out = sb.ok(&["identify", "--json", "--gallery", gallery.to_str().unwrap(), &test_photo(photo)]);
    let mut names: Vec<String> = json(&out)["faces"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// A gallery of all five knn_examples people, enrolled under a research basis.
fn enrolled(sb: &Sandbox) -> PathBuf {
    let train = knn_train(sb.path(), &[]);
    let gallery = sb.path().join("club.gallery");
    sb.ok(&[&["enrol", train.to_str().unwrap(), "--gallery", gallery.to_str().unwrap()][..], &RESEARCH].concat());
    gallery
}

fn sql(gallery: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(gallery).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The gallery file and every SQLite side file next to it.
fn gallery_files(gallery: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| {
            let path = PathBuf::from(format!("{}{suffix}", gallery.display()));
            std::fs::read(&path).ok().map(|bytes| (path.display().to_string(), bytes))
        })
        .collect()
}

#[test]
fn enrolment_needs_consent_and_withdrawal_or_expiry_makes_a_person_unmatchable() {
    let sb = Sandbox::new();
    let train = knn_train(sb.path(), &[]);
    let gallery = sb.path().join("club.gallery");
    let (t, g) = (train.to_str().unwrap(), gallery.to_str().unwrap());

    // Nobody has consented: everyone is refused, and the message says what to do.
    let out = sb.faces(&["enrol", "--json", t, "--gallery", g]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("obama: no active consent record") && stderr.contains("faces consent add NAME --gallery"), "{stderr}");
    assert_eq!(json(&out)["refused_no_consent"], 9);
    assert!(sb.key_file().is_file(), "the first gallery makes a key file");

    // Explicit consent needs a reference to the evidence.
    let no_evidence = sb.faces(&["consent", "add", "obama", "--gallery", g, "--basis", "consent", "--purpose", "club door"]);
    assert_eq!(no_evidence.status.code(), Some(1));
    assert!(text(&no_evidence.stderr).contains("needs --evidence"), "{}", text(&no_evidence.stderr));
    let past = sb.faces(&["consent", "add", "obama", "--gallery", g, "--basis", "consent", "--purpose", "p", "--evidence", "f", "--expires", "2001-01-01"]);
    assert!(text(&past.stderr).contains("already past"), "{}", text(&past.stderr));
    for person in ["obama", "biden"] {
        let form = format!("forms/{person}-2026.pdf");
        sb.ok(&["consent", "add", person, "--gallery", g, "--basis", "consent", "--purpose", "club door", "--evidence", &form, "--expires", "2099-12-31"]);
    }

    // Only the two who consented are enrolled; the others are refused again.
    let out = sb.faces(&["enrol", "--json", t, "--gallery", g]);
    assert_eq!(out.status.code(), Some(1));
    let summary = json(&out);
    assert_eq!((summary["enrolled"].as_u64(), summary["refused_no_consent"].as_u64()), (Some(4), Some(5)), "{summary}");
    assert_eq!(names_in(&sb, &gallery, "obama_and_biden.jpg"), ["biden", "obama", "unknown"]);

    // Withdrawal: unmatchable at once, still held until pruned.
    sb.ok(&["consent", "withdraw", "biden", "--gallery", g]);
    assert_eq!(names_in(&sb, &gallery, "obama_and_biden.jpg"), ["obama", "unknown", "unknown"]);
    let shown = json(&sb.ok(&["consent", "show", "biden", "--json", "--gallery", g]));
    assert!(shown["withdrawn"].is_string() && shown["active"] == false, "{shown}");
    // A data-set-wide basis enrols the others but never overrides a withdrawal.
    let out = sb.faces(&[&["enrol", "--json", t, "--gallery", g][..], &RESEARCH].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("biden: withdrew consent"), "{}", text(&out.stderr));
    assert_eq!((json(&out)["enrolled"].as_u64(), json(&out)["refused_no_consent"].as_u64()), (Some(5), Some(2)));
    assert_eq!(names_in(&sb, &gallery, "obama_and_biden.jpg"), ["obama", "unknown", "unknown"]);

    // Expiry: time passes (the record's last day is set in the past).
    sql(&gallery).execute("UPDATE consents SET expires = '2020-01-01' WHERE subject_uid = (SELECT uid FROM subjects WHERE name = 'obama')", []).unwrap();
    assert_eq!(names_in(&sb, &gallery, "obama1.jpg"), ["unknown"]);

    // Prune erases both; their consent records stay, without personal fields.
    let pruned = json(&sb.ok(&["gallery", "prune", "--json", "--gallery", g]));
    assert_eq!(pruned["erased"].as_array().unwrap().len(), 2, "{pruned}");
    let listing = json(&sb.ok(&["gallery", "list", "--json", "--gallery", g]));
    let held: Vec<&str> = listing["subjects"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(held, ["alex_lacamoire", "kit_harington", "rose_leslie"]);
    let records = sb.ok(&["consent", "list", "--json", "--gallery", g]);
    let erased: Vec<serde_json::Value> =
        text(&records.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|r| r["subject"].is_null()).collect();
    assert_eq!(erased.len(), 2);
    for r in erased {
        assert!(r["evidence"].is_null() && r["recorded_by"].is_null() && r["erased"].is_string(), "{r}");
        assert_eq!(r["basis"], "consent");
    }
}

#[test]
fn forget_leaves_no_bytes_of_the_person_in_the_gallery_or_its_journal() {
    let sb = Sandbox::new();
    let gallery = enrolled(&sb);
    let templates: Vec<Vec<u8>> = sql(&gallery)
        .prepare("SELECT t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = 'obama'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(templates.len(), 2);
    let everything = |files: &[(String, Vec<u8>)]| files.iter().flat_map(|(_, b)| b.clone()).collect::<Vec<u8>>();
    let before = everything(&gallery_files(&gallery));
    assert!(contains(&before, b"obama") && templates.iter().all(|t| contains(&before, t)), "the needles are there before");

    let out = sb.ok(&["forget", "obama", "--json", "--gallery", gallery.to_str().unwrap()]);
    let erasure = json(&out);
    assert_eq!((erasure["templates"].as_i64(), erasure["photos"].as_i64()), (Some(2), Some(2)), "{erasure}");

    for (file, bytes) in gallery_files(&gallery) {
        assert!(!contains(&bytes, b"obama"), "{file} still holds the name");
        for t in &templates {
            // The random 24-byte nonce alone would identify a leftover template.
            assert!(!contains(&bytes, &t[..24]), "{file} still holds a template");
        }
    }
    // Everyone else is still there and named.
    assert_eq!(names_in(&sb, &gallery, "obama_and_biden.jpg"), ["biden", "unknown", "unknown"]);
    let again = sb.faces(&["forget", "obama", "--gallery", gallery.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "forgetting twice says there is no such subject");
    // The audit trail names the erased person only by pseudonymous id.
    let log = std::fs::read_to_string(sb.audit_log()).unwrap();
    assert!(!log.contains("obama"), "{log}");
    assert!(log.contains(erasure["subject_id"].as_str().unwrap()));
}

#[test]
fn a_wrong_key_a_loose_key_file_or_a_tampered_template_is_refused() {
    let sb = Sandbox::new();
    let gallery = enrolled(&sb);
    let g = gallery.to_str().unwrap();
    let photo = test_photo("obama1.jpg");
    let one_line_error = |out: std::process::Output, why: &str| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(why), "{why:?} in {stderr}");
        assert!(out.stdout.is_empty(), "nothing identified: {}", text(&out.stdout));
    };

    // Another key, from the environment or from a file.
    let other = "ab".repeat(32);
    let mut cmd = sb.command();
    cmd.env_remove("FACES_KEY_FILE").env("FACES_KEY", &other).args(["identify", "--gallery", g, &photo]);
    one_line_error(cmd.output().unwrap(), "wrong key");
    let mut cmd = sb.command();
    cmd.env_remove("FACES_KEY_FILE").env("FACES_KEY", "not hex").args(["identify", "--gallery", g, &photo]);
    one_line_error(cmd.output().unwrap(), "64 hex characters");
    // A key file others can read is refused.
    let loose = sb.path().join("loose.key");
    std::fs::copy(sb.key_file(), &loose).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    one_line_error(sb.faces(&["--key-file", loose.to_str().unwrap(), "identify", "--gallery", g, &photo]), "chmod 600");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(sb.key_file()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the generated key file is owner-only");

    // Rekey: the new key opens the gallery, the old one no longer does.
    let new_key = sb.path().join("new.key");
    sb.ok(&["gallery", "rekey", "--gallery", g, "--new-key-file", new_key.to_str().unwrap()]);
    one_line_error(sb.faces(&["identify", "--gallery", g, &photo]), "wrong key");
    let named = sb.ok(&["--key-file", new_key.to_str().unwrap(), "identify", "--json", "--gallery", g, &photo]);
    assert_eq!(json(&named)["faces"][0]["name"], "obama");

    // One flipped bit in one template, or a template moved to another person.
    let db = sql(&gallery);
    let (id, mut sealed): (i64, Vec<u8>) = db.query_row("SELECT id, embedding FROM templates ORDER BY id LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    sealed[40] ^= 1;
    db.execute("UPDATE templates SET embedding = ?1 WHERE id = ?2", rusqlite::params![sealed, id]).unwrap();
    let tampered = sb.faces(&["--key-file", new_key.to_str().unwrap(), "identify", "--gallery", g, &photo]);
    one_line_error(tampered, "failed authentication");
    sealed[40] ^= 1;
    db.execute("UPDATE templates SET embedding = ?1 WHERE id = ?2", rusqlite::params![sealed, id]).unwrap();
    sb.ok(&["--key-file", new_key.to_str().unwrap(), "identify", "--gallery", g, &photo]);
    db.execute("UPDATE templates SET subject_id = (SELECT id FROM subjects WHERE name = 'obama') WHERE id = ?1", [id]).unwrap();
    one_line_error(sb.faces(&["--key-file", new_key.to_str().unwrap(), "identify", "--gallery", g, &photo]), "failed authentication");
}

#[test]
fn the_audit_trail_records_each_action_and_verify_catches_any_edit() {
    let sb = Sandbox::new();
    let gallery = enrolled(&sb);
    let g = gallery.to_str().unwrap();
    sb.ok(&["gallery", "require-purpose", "--gallery", g]);
    let refused = sb.faces(&["identify", "--gallery", g, &test_photo("obama1.jpg")]);
    assert!(text(&refused.stderr).contains("requires a stated purpose"), "{}", text(&refused.stderr));
    sb.ok(&["identify", "--gallery", g, "--purpose", "door check", &test_photo("obama_and_biden.jpg")]);
    let sample = |name: &str| shared_data().join("samples/face_recognition").join(name).to_str().unwrap().to_string();
    sb.ok(&["compare", &sample("obama.jpg"), &sample("obama2.jpg")]);
    sb.ok(&["consent", "withdraw", "biden", "--gallery", g]);
    sb.ok(&["forget", "biden", "--gallery", g]);
    let export = sb.path().join("audit-export.jsonl");
    sb.ok(&["audit", "export", "--out", export.to_str().unwrap()]);

    let entries = sb.audit();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["consent-add", "enrol", "identify", "compare", "consent-withdraw", "forget", "audit-export"]);
    let identify = &entries[2];
    assert_eq!(identify["purpose"], "door check");
    assert_eq!(identify["counts"]["faces"], 3);
    assert_eq!(identify["subjects"].as_array().unwrap().len(), 2, "obama and biden named, by id: {identify}");
    let raw = std::fs::read_to_string(sb.audit_log()).unwrap();
    for banned in ["obama", "biden", "embedding", ".jpg"] {
        assert!(!raw.contains(banned), "the audit log holds no names, photos or templates: {banned}");
    }
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 6, "the export holds the entries before it");
    let verify = |log: &Path| sb.faces(&["--audit-log", log.to_str().unwrap(), "audit", "verify"]);
    assert!(verify(&sb.audit_log()).status.success(), "{}", text(&verify(&sb.audit_log()).stderr));

    // Each kind of tampering, on a copy of the log with its head file.
    let lines: Vec<&str> = raw.lines().collect();
    let head = std::fs::read(sb.path().join("audit.jsonl.head")).unwrap();
    let mut cases: BTreeMap<&str, (Vec<String>, &str)> = BTreeMap::new();
    let edited = lines[2].replace("\"faces\":3", "\"faces\":0");
    assert_ne!(edited, lines[2]);
    cases.insert("edited", ([&lines[..2], &[edited.as_str()], &lines[3..]].concat().iter().map(|s| s.to_string()).collect(), "edited"));
    cases.insert("removed", ([&lines[..3], &lines[4..]].concat().iter().map(|s| s.to_string()).collect(), "removed"));
    let mut swapped: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    swapped.swap(3, 4);
    cases.insert("reordered", (swapped, "moved"));
    cases.insert("cut", (lines[..6].iter().map(|s| s.to_string()).collect(), "removed from the end"));
    for (name, (lines, why)) in cases {
        let log = sb.path().join(format!("{name}.jsonl"));
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        std::fs::write(sb.path().join(format!("{name}.jsonl.head")), &head).unwrap();
        let out = verify(&log);
        assert_eq!(out.status.code(), Some(1), "{name} caught");
        assert!(text(&out.stderr).contains(why), "{name}: {why:?} in {}", text(&out.stderr));
    }
}

#[test]
fn subject_export_holds_everything_about_one_person_and_nothing_else() {
    let sb = Sandbox::new();
    let train = knn_train(sb.path(), &[]);
    let gallery = sb.path().join("club.gallery");
    let g = gallery.to_str().unwrap();
    sb.ok(&["consent", "add", "rose_leslie", "--gallery", g, "--basis", "consent", "--purpose", "staff photos", "--evidence", "form-17"]);
    sb.ok(&[&["enrol", train.to_str().unwrap(), "--gallery", g][..], &RESEARCH].concat());
    sb.ok(&["identify", "--gallery", g, &test_photo("kit_with_rose.jpg")]);
    sb.ok(&["identify", "--gallery", g, &test_photo("obama1.jpg")]);
    let out_file = sb.path().join("rose.json");
    sb.ok(&["subject", "export", "rose_leslie", "--gallery", g, "--out", out_file.to_str().unwrap()]);

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(report["subject"], "rose_leslie");
    let consents = report["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "her own record, not the data-set-wide one: {report}");
    assert_eq!(consents[0]["evidence"], "form-17");
    assert_eq!(report["photos"].as_array().unwrap().len(), 2);
    let templates = report["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 2);
    assert!(templates.iter().all(|t| t["face"]["landmarks"]["left_eye"].is_object() && t.get("embedding").is_none()), "{templates:?}");
    // Her consent, her enrolment and the search that named her; not the search that did not.
    let audit: Vec<&str> = report["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(audit, ["consent-add", "enrol", "identify"], "{report}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out_file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the export is owner-only");
    let missing = sb.faces(&["subject", "export", "nobody", "--gallery", g]);
    assert_eq!(missing.status.code(), Some(1));
}
