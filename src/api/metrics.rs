//! Request metrics of the port API in the Prometheus text format: requests by route and status,
//! a latency histogram per route, and gauges read at scrape time (audit entries, quarantine,
//! outbox). Routes are recorded by method and template (`GET /v1/ports/{unit}/cases`, from the
//! route table's `MatchedPath`), never with identifiers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Records one request.
    pub fn record(&self, route: String, status: u16, took: Duration) {
        let mut m = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = m.entry(route).or_default();
        *r.by_status.entry(status).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum += secs;
    }

    /// The Prometheus text, with `gauges` (name, help, value) appended.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        use std::fmt::Write;
        let m = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP xianjie_http_requests_total Port API requests by route and status.\n");
        out.push_str("# TYPE xianjie_http_requests_total counter\n");
        for (route, r) in m.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "xianjie_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP xianjie_http_request_duration_seconds Port API latency by route.\n");
        out.push_str("# TYPE xianjie_http_request_duration_seconds histogram\n");
        for (route, r) in m.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xianjie_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    r.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "xianjie_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "xianjie_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                r.sum
            );
            let _ = writeln!(
                out,
                "xianjie_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                r.count
            );
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_add_up() {
        let m = Metrics::default();
        m.record("GET /v1/ports".into(), 200, Duration::from_millis(3));
        m.record("GET /v1/ports".into(), 200, Duration::from_millis(30));
        m.record("GET /v1/ports".into(), 401, Duration::from_micros(500));
        let text = m.render(&[("xianjie_audit_entries", "Audit log entries.", 7)]);
        assert!(
            text.contains("xianjie_http_requests_total{route=\"GET /v1/ports\",status=\"200\"} 2")
        );
        assert!(
            text.contains("xianjie_http_requests_total{route=\"GET /v1/ports\",status=\"401\"} 1")
        );
        assert!(text.contains("le=\"0.001\"} 1"), "{text}");
        assert!(text.contains("le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("\nxianjie_audit_entries 7\n"), "{text}");
    }
}
