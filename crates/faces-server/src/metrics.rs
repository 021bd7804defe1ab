//! Prometheus-style metrics: requests by route and status, latency
//! histograms by route, faces processed, and queue state. Routes are the
//! route table's patterns (`/v1/subjects/{name}`), never a name or any other
//! personal data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub faces: AtomicU64,
    pub refused_busy: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            requests: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(BTreeMap::new()),
            faces: AtomicU64::new(0),
            refused_busy: AtomicU64::new(0),
        }
    }

    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            let s = elapsed.as_secs_f64();
            for (i, &b) in BUCKETS.iter().enumerate() {
                if s <= b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    /// The text exposition format.
    pub fn render(&self, waiting: usize, capacity: usize, workers: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP faces_requests_total HTTP requests by method, route and status.\n# TYPE faces_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(out, "faces_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        let _ = writeln!(out, "# HELP faces_request_seconds Request latency by route.\n# TYPE faces_request_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (b, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(out, "faces_request_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {n}");
                }
                let _ = writeln!(out, "faces_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "faces_request_seconds_sum{{route=\"{route}\"}} {:.6}", h.sum);
                let _ = writeln!(out, "faces_request_seconds_count{{route=\"{route}\"}} {}", h.count);
            }
        }
        let faces = self.faces.load(Ordering::Relaxed);
        let uptime = self.started.elapsed().as_secs_f64();
        let _ = writeln!(out, "# HELP faces_faces_total Faces detected in uploaded photos.\n# TYPE faces_faces_total counter\nfaces_faces_total {faces}");
        let _ = writeln!(out, "# HELP faces_faces_per_second Faces detected per second since start.\n# TYPE faces_faces_per_second gauge\nfaces_faces_per_second {:.3}", faces as f64 / uptime.max(1e-9));
        let _ = writeln!(out, "# HELP faces_refused_busy_total Requests refused because the queue was full.\n# TYPE faces_refused_busy_total counter\nfaces_refused_busy_total {}", self.refused_busy.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP faces_queue_waiting Jobs waiting for a worker.\n# TYPE faces_queue_waiting gauge\nfaces_queue_waiting {waiting}");
        let _ = writeln!(out, "# HELP faces_queue_capacity Most jobs that may wait.\n# TYPE faces_queue_capacity gauge\nfaces_queue_capacity {capacity}");
        let _ = writeln!(out, "# HELP faces_workers Inference worker threads.\n# TYPE faces_workers gauge\nfaces_workers {workers}");
        let _ = writeln!(out, "# HELP faces_uptime_seconds Seconds since start.\n# TYPE faces_uptime_seconds gauge\nfaces_uptime_seconds {uptime:.1}");
        out
    }
}
