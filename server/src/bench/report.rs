//! The results: one row per measured thing (requests, errors, rates, latency
//! percentiles from an HDR histogram, the server's memory), printed as a table and
//! written as JSON with the machine they were measured on.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, to 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Median, 95th and 99th percentile, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// The percentiles of `histogram` (microseconds), or `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1_000.0;
        Some(Percentiles {
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
        })
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `signin`, `browse`, `browse_on_behalf`, …
    pub name: String,
    /// The timed operations (a switch is one operation of five requests).
    pub operations: u64,
    /// HTTP requests sent while timed, answered or not.
    pub requests: u64,
    /// Requests answered with a status the scenario does not expect, or not answered.
    pub errors: u64,
    /// Wall-clock seconds the timed part took.
    pub seconds: f64,
    /// Of the operations that met no error.
    pub latency: Option<Percentiles>,
    /// The highest `VmRSS` of the server read while the row ran, in KiB.
    pub rss_kib: Option<u64>,
    /// What else the row reports (`orders_per_second`, `refused_429`, …).
    pub extra: Map<String, Value>,
    /// The first error, as a sentence, to tell what went wrong.
    pub first_error: Option<String>,
}

impl Row {
    /// Requests per second of the timed part.
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.requests, self.seconds)
    }

    /// Operations per second of the timed part.
    pub fn operations_per_second(&self) -> f64 {
        per_second(self.operations, self.seconds)
    }

    /// The row as a JSON object: the table's figures, then `extra`.
    pub fn to_json(&self) -> Value {
        let round = |value: f64, places: i32| {
            let scale = 10f64.powi(places);
            (value * scale).round() / scale
        };
        let mut object = Map::new();
        object.insert("scenario".into(), json!(self.name));
        object.insert("operations".into(), json!(self.operations));
        object.insert("requests".into(), json!(self.requests));
        object.insert("errors".into(), json!(self.errors));
        object.insert("seconds".into(), json!(round(self.seconds, 3)));
        object.insert(
            "requests_per_second".into(),
            json!(round(self.requests_per_second(), 1)),
        );
        object.insert(
            "operations_per_second".into(),
            json!(round(self.operations_per_second(), 1)),
        );
        let latency = |pick: fn(&Percentiles) -> f64| match &self.latency {
            Some(p) => json!(round(pick(p), 3)),
            None => Value::Null,
        };
        object.insert("p50_ms".into(), latency(|p| p.p50));
        object.insert("p95_ms".into(), latency(|p| p.p95));
        object.insert("p99_ms".into(), latency(|p| p.p99));
        object.insert(
            "rss_mib".into(),
            self.rss_kib
                .map_or(Value::Null, |kib| json!(round(kib as f64 / 1024.0, 1))),
        );
        object.insert("first_error".into(), json!(self.first_error));
        for (key, value) in &self.extra {
            object.insert(key.clone(), value.clone());
        }
        Value::Object(object)
    }
}

/// `count / seconds`, 0 for no time at all.
fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// The table printed at the end: one line per row, then a note per row that has
/// something more to say (its extra figures, its first error).
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<18} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8}\n",
        "scenario", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "RSS MiB"
    );
    let ms = |value: Option<f64>| value.map_or("n/a".to_string(), |ms| format!("{ms:.2}"));
    for row in rows {
        let rss = row
            .rss_kib
            .map_or("n/a".to_string(), |kib| format!("{:.1}", kib as f64 / 1024.0));
        out.push_str(&format!(
            "{:<18} {:>9} {:>7} {:>9.1} {:>9} {:>9} {:>9} {:>8}\n",
            row.name,
            row.requests,
            row.errors,
            row.requests_per_second(),
            ms(row.latency.map(|p| p.p50)),
            ms(row.latency.map(|p| p.p95)),
            ms(row.latency.map(|p| p.p99)),
            rss
        ));
    }
    for row in rows {
        if !row.extra.is_empty() {
            let figures: Vec<String> = row
                .extra
                .iter()
                .map(|(key, value)| format!("{key} {value}"))
                .collect();
            out.push_str(&format!("{}: {}\n", row.name, figures.join(", ")));
        }
        if let Some(error) = &row.first_error {
            out.push_str(&format!("{}: first error: {error}\n", row.name));
        }
    }
    out
}

/// Where and when the figures were measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "unknown".to_string());
        Machine {
            cores: super::procfs::cores(),
            cpu: super::procfs::cpu_model(),
            timestamp,
        }
    }
}

/// What the run was asked to do, for the JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub url: String,
    pub duration_seconds: u64,
    pub requests_cap: u64,
    pub connections: usize,
    pub server_pid: Option<u32>,
}

/// The whole report as JSON: the machine, the settings and the rows.
pub fn to_json(machine: &Machine, settings: &Settings, rows: &[Row]) -> Value {
    json!({
        "timestamp": machine.timestamp,
        "machine": { "cores": machine.cores, "cpu": machine.cpu },
        "url": settings.url,
        "duration_seconds": settings.duration_seconds,
        "requests_cap": settings.requests_cap,
        "connections": settings.connections,
        "server_pid": settings.server_pid,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> Row {
        Row {
            name: name.to_string(),
            operations: 500,
            requests: 1_000,
            errors: 2,
            seconds: 4.0,
            latency: Some(Percentiles {
                p50: 1.5,
                p95: 3.25,
                p99: 12.0,
            }),
            rss_kib: Some(51_200),
            extra: Map::new(),
            first_error: None,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let mut histogram = new_histogram();
        // 1..=1000 ms: the median is 500 ms, p95 950 ms, p99 990 ms (to 3 digits).
        for ms in 1..=1_000u64 {
            histogram.record(ms * 1_000).unwrap();
        }
        let p = Percentiles::of(&histogram).unwrap();
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p95 - 950.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 1.0, "{p:?}");
        assert_eq!(
            Percentiles::of(&new_histogram()),
            None,
            "no samples, no percentiles"
        );
        // A slow tail moves p99 and not the median.
        let mut histogram = new_histogram();
        for _ in 0..98 {
            histogram.record(2_000).unwrap();
        }
        histogram.record(400_000).unwrap();
        histogram.record(400_000).unwrap();
        let p = Percentiles::of(&histogram).unwrap();
        assert!((p.p50 - 2.0).abs() < 0.01 && (p.p95 - 2.0).abs() < 0.01, "{p:?}");
        assert!((p.p99 - 400.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn the_table_has_a_line_per_row_and_n_a_for_what_is_unknown() {
        let mut unknown = row("flood");
        unknown.rss_kib = None;
        unknown.latency = None;
        unknown.extra.insert("refused_429".into(), json!(166));
        unknown.first_error = Some("GET /: 500 internal".into());
        let text = table(&[row("signin"), unknown]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("scenario") && lines[0].ends_with("RSS MiB"),
            "{text}"
        );
        let signin: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            signin,
            ["signin", "1000", "2", "250.0", "1.50", "3.25", "12.00", "50.0"]
        );
        let flood: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(flood, ["flood", "1000", "2", "250.0", "n/a", "n/a", "n/a", "n/a"]);
        assert_eq!(lines[3], "flood: refused_429 166");
        assert_eq!(lines[4], "flood: first error: GET /: 500 internal");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn the_json_has_the_same_figures_and_the_machine() {
        let machine = Machine {
            cores: 2,
            cpu: "AMD EPYC 7B13".into(),
            timestamp: "2026-12-04T10:00:00Z".into(),
        };
        let settings = Settings {
            url: "http://127.0.0.1:3000".into(),
            duration_seconds: 10,
            requests_cap: 100,
            connections: 16,
            server_pid: None,
        };
        let mut orders = row("orders");
        orders.extra.insert("orders_per_second".into(), json!(125.0));
        orders.rss_kib = None;
        let report = to_json(&machine, &settings, &[row("signin"), orders]);
        assert_eq!(report["machine"]["cores"], 2);
        assert_eq!(report["machine"]["cpu"], "AMD EPYC 7B13");
        assert_eq!(report["timestamp"], "2026-12-04T10:00:00Z");
        assert_eq!(report["server_pid"], Value::Null);
        let rows = report["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["scenario"], "signin");
        assert_eq!(rows[0]["requests"], 1_000);
        assert_eq!(rows[0]["errors"], 2);
        assert_eq!(rows[0]["requests_per_second"], 250.0);
        assert_eq!(rows[0]["operations_per_second"], 125.0);
        assert_eq!(rows[0]["p95_ms"], 3.25);
        assert_eq!(rows[0]["rss_mib"], 50.0);
        assert_eq!(rows[1]["orders_per_second"], 125.0);
        assert_eq!(rows[1]["rss_mib"], Value::Null);
        // And it is valid JSON text once written.
        let text = serde_json::to_string_pretty(&report).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), report);
    }

    #[test]
    fn no_time_is_no_rate() {
        let mut empty = row("switch");
        empty.seconds = 0.0;
        assert_eq!(empty.requests_per_second(), 0.0);
    }
}
