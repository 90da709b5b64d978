//! The rows of `mesh top`: requests grouped by source, destination, method and path.

use std::collections::HashMap;

use crate::cmd::tap::event::Tapped;

#[derive(Debug, Default)]
pub struct Table {
    rows: HashMap<Key, Stats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    source: String,
    destination: String,
    method: String,
    path: String,
}

#[derive(Debug, Clone, Default)]
struct Stats {
    count: u64,
    successes: u64,
    best_us: u64,
    worst_us: u64,
    last_us: u64,
}

const HEADERS: [&str; 9] = [
    "Source",
    "Destination",
    "Method",
    "Path",
    "Count",
    "Best",
    "Worst",
    "Last",
    "Success Rate",
];

impl Table {
    /// Counts one request. Inbound, the source is the client's address and the destination
    /// the tapped pod; outbound, the source is the pod and the destination the authority.
    pub fn add(&mut self, tapped: &Tapped) {
        let e = &tapped.event;
        let (source, destination) = if e.direction == "outbound" {
            (tapped.pod.clone(), e.authority.clone())
        } else {
            (host(&e.src).to_string(), tapped.pod.clone())
        };
        let key = Key {
            source,
            destination,
            method: e.method.clone(),
            path: e.path.clone(),
        };
        let latency = e.latency_us;
        let stats = self.rows.entry(key).or_default();
        if stats.count == 0 {
            stats.best_us = latency;
        }
        stats.count += 1;
        stats.successes += u64::from(e.success());
        stats.best_us = stats.best_us.min(latency);
        stats.worst_us = stats.worst_us.max(latency);
        stats.last_us = latency;
    }

    /// The table, most frequent first, at most `rows` rows, cut to `width` columns.
    pub fn render(&self, title: &str, rows: usize, width: usize) -> String {
        let mut sorted: Vec<(&Key, &Stats)> = self.rows.iter().collect();
        sorted.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        let mut cells: Vec<[String; 9]> = vec![HEADERS.map(String::from)];
        for (key, stats) in sorted.into_iter().take(rows) {
            cells.push([
                key.source.clone(),
                key.destination.clone(),
                key.method.clone(),
                key.path.clone(),
                stats.count.to_string(),
                duration(stats.best_us),
                duration(stats.worst_us),
                duration(stats.last_us),
                format!(
                    "{:.2}%",
                    100.0 * stats.successes as f64 / stats.count as f64
                ),
            ]);
        }
        let widths: Vec<usize> = (0..9)
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("{title}    press q to quit\n\n");
        for row in &cells {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                // Text columns align left, numbers right.
                if c < 4 {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
                line.push_str("  ");
            }
            let line: String = line.trim_end().chars().take(width).collect();
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn host(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

/// Latency as Linkerd's top shows it: µs below a millisecond, ms below a second, else s.
fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{:.1}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::tap::event::Event;

    fn tapped(path: &str, status: u16, latency_us: u64) -> Tapped {
        Tapped {
            pod_index: 0,
            pod: "web-1".into(),
            event: Event {
                id: 0,
                direction: "inbound".into(),
                tls: "no_identity".into(),
                src: "10.0.0.9:4000".into(),
                dst: "10.0.0.2:8080".into(),
                method: "GET".into(),
                authority: "web:8080".into(),
                path: path.into(),
                status: Some(status),
                grpc_status: None,
                error: None,
                latency_us,
                duration_us: 1,
                response_bytes: 2,
            },
        }
    }

    #[test]
    fn rows_are_sorted_by_count_with_latency_and_success() {
        let mut table = Table::default();
        table.add(&tapped("/a", 200, 2_000));
        table.add(&tapped("/b", 200, 900));
        table.add(&tapped("/b", 500, 1_500_000));
        table.add(&tapped("/b", 200, 3_000));
        let text = table.render("mesh top deploy/web", 10, 200);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "mesh top deploy/web    press q to quit");
        assert_eq!(
            lines[2],
            "Source    Destination  Method  Path  Count   Best  Worst  Last  Success Rate"
        );
        assert_eq!(
            lines[3],
            "10.0.0.9  web-1        GET     /b        3  900µs   1.5s   3ms        66.67%"
        );
        assert_eq!(
            lines[4],
            "10.0.0.9  web-1        GET     /a        1    2ms    2ms   2ms       100.00%"
        );
        assert_eq!(table.render("t", 1, 200).lines().count(), 4);
        assert!(
            table
                .render("t", 10, 20)
                .lines()
                .all(|l| l.chars().count() <= 20)
        );
    }
}
