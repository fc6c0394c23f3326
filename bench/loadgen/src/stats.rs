//! Latency samples per operation, and the report: a table for people and `stat` lines
//! (`key=value`) for scripts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default, Clone)]
struct Op {
    /// Microseconds, one per completed operation.
    samples: Vec<u32>,
    errors: u64,
}

/// The samples of every operation of a workload, shared by its clients.
#[derive(Clone)]
pub struct Recorder {
    names: &'static [&'static str],
    ops: Arc<Mutex<Vec<Op>>>,
    /// Operations that complete after this instant are not counted (the measured window
    /// of a timed run); `None` counts everything.
    deadline: Option<Instant>,
}

impl Recorder {
    pub fn new(names: &'static [&'static str], deadline: Option<Instant>) -> Recorder {
        Recorder {
            names,
            ops: Arc::new(Mutex::new(vec![Op::default(); names.len()])),
            deadline,
        }
    }

    fn in_window(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() <= d)
    }

    /// One successful operation of kind `op` that started at `started`.
    pub fn ok(&self, op: usize, started: Instant) {
        if !self.in_window() {
            return;
        }
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops[op].samples.push(micros);
    }

    /// One failed operation (a NO/BAD/-ERR answer, a broken connection, a timeout).
    pub fn error(&self, op: usize) {
        if !self.in_window() {
            return;
        }
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops[op].errors += 1;
    }

    /// Prints the table and the `stat` lines for a run that lasted `elapsed`.
    /// `extra` is appended to the `stat op=all` line (e.g. `messages=8000`).
    pub fn report(&self, title: &str, elapsed: Duration, extra: &str) {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!("# {title}");
        println!(
            "{:<16} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "operation", "count", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let mut all = Vec::new();
        let mut all_errors = 0;
        let mut lines = Vec::new();
        for (name, op) in self.names.iter().zip(&ops) {
            all.extend_from_slice(&op.samples);
            all_errors += op.errors;
            if op.samples.is_empty() && op.errors == 0 {
                continue;
            }
            lines.push(row(name, op.samples.clone(), op.errors, secs));
        }
        lines.push(row("all", all, all_errors, secs));
        for (table, _) in &lines {
            println!("{table}");
        }
        for (_, stat) in &lines {
            if stat.starts_with("stat op=all ") {
                println!("{stat} elapsed_s={secs:.3}{extra}");
            } else {
                println!("{stat}");
            }
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

fn row(name: &str, mut samples: Vec<u32>, errors: u64, secs: f64) -> (String, String) {
    samples.sort_unstable();
    let count = samples.len();
    let rate = count as f64 / secs;
    let (p50, p90, p99) = (
        pct(&samples, 0.50),
        pct(&samples, 0.90),
        pct(&samples, 0.99),
    );
    let max = samples.last().map_or(0.0, |&m| f64::from(m) / 1000.0);
    let mean = if count == 0 {
        0.0
    } else {
        samples.iter().map(|&s| f64::from(s)).sum::<f64>() / count as f64 / 1000.0
    };
    let table = format!(
        "{name:<16} {count:>9} {errors:>7} {rate:>10.1} {p50:>9.2} {p90:>9.2} {p99:>9.2} {max:>9.1}"
    );
    let stat = format!(
        "stat op={name} count={count} errors={errors} ops_s={rate:.2} mean_ms={mean:.3} p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} max_ms={max:.3}"
    );
    (table, stat)
}
