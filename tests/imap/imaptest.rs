//! Dovecot's imaptest against a real `mailsite serve`: its scripted conformance tests
//! (src/tests: 71 groups, every base command and every extension mailsite advertises)
//! must all pass, and its stress mix (10 clients at once, with logins between commands
//! and with clients that stay logged in) must see no protocol error. imaptest is built
//! from tests/vendor by scripts/imaptest-build (scripts/test runs it first).

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Site, run_command};

const PASSWORD: &str = "imaptest-password";

/// The imaptest binary: `IMAPTEST` if set, else where scripts/imaptest-build puts it.
fn imaptest() -> PathBuf {
    let built = std::env::var_os("IMAPTEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
                PathBuf::from,
            );
            target.join("imaptest/imaptest-924f619/src/imaptest")
        });
    assert!(
        built.is_file(),
        "imaptest is not built at {}: run scripts/imaptest-build (scripts/test does), or set IMAPTEST",
        built.display()
    );
    built
}

/// A site with one user served by mailbox1 (letter i), and imaptest's arguments for it.
fn site() -> (Site, Vec<String>) {
    let site = Site::isolated();
    site.add_user("itester", PASSWORD, &[]);
    let args = vec![
        format!("host={}", site.addr(11)),
        "port=10143".to_string(),
        "user=itester".to_string(),
        format!("pass={PASSWORD}"),
    ];
    (site, args)
}

fn run(args: &[String], extra: &[String]) -> String {
    let binary = imaptest();
    let out = run_command(
        Command::new(&binary)
            .args(args)
            .args(extra)
            .env("LD_LIBRARY_PATH", "/usr/lib/dovecot"),
        None,
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tests_dir() -> PathBuf {
    imaptest()
        .parent()
        .expect("imaptest lives in src/")
        .join("tests")
}

#[test]
fn imaptest_scripted_tests_all_pass() {
    let (_site, args) = site();
    let tests = tests_dir();
    let out = run(&args, &[format!("test={}", tests.display())]);
    let tail: Vec<&str> = out.lines().rev().take(40).collect();
    for line in [
        "71 test groups: 0 failed, 0 skipped due to missing capabilities",
        "base protocol: 0/457 individual commands failed",
        "extensions: 0/211 individual commands failed",
    ] {
        assert!(
            out.contains(line),
            "no {line:?} in imaptest's summary:\n{tail:#?}\n{out}"
        );
    }
}

#[test]
fn imaptest_stress_mix_sees_no_error() {
    let (site, args) = site();
    let mbox = tests_dir().join("default.mbox");
    let secs = std::env::var("IMAPTEST_SECS").unwrap_or_else(|_| "30".to_string());
    // `qresync`: the clients ENABLE QRESYNC, come back with SELECT (QRESYNC ...) and
    // check every VANISHED against what they saw.
    for extra in [None, Some("logout=0"), Some("qresync")] {
        let mut more = vec![
            format!("mbox={}", mbox.display()),
            "clients=10".to_string(),
            format!("secs={secs}"),
        ];
        more.extend(extra.map(str::to_string));
        let out = run(&args, &more);
        let errors: Vec<&str> = out.lines().filter(|l| l.contains("Error:")).collect();
        assert!(
            errors.is_empty(),
            "imaptest ({extra:?}) met {} errors: {errors:#?}",
            errors.len()
        );
        // It did run: the totals line of its per-second table counts commands.
        assert!(
            out.lines().any(|l| l.trim_start().starts_with("Logi")),
            "no imaptest table in:\n{out}"
        );
    }
    assert!(!site.log().contains("panicked"));
}
