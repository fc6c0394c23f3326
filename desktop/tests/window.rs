//! The real window under Xvfb, typed into with xdotool as a user types: Tab to the
//! address, the address, Tab, the password, Shift-Tab back to the address to finish
//! it, Tab, Enter. The check that runs is for the
//! address alone (the password went to the password field, not after the address),
//! and it passes against a real `mailsite serve`.
//!
//! Needs Xvfb and xdotool (scripts/test installs them).

#![cfg(feature = "gui")]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{HELPER, Site};

const PASSWORD: &str = "correct horse battery";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `check` holds, at most `limit`.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool runs (apt-get install xdotool)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn tab_moves_from_the_address_to_the_password_and_enter_checks() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let display = format!(":{}", 40 + std::process::id() % 50);
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
                // Without it the server resets when the readiness probe below
                // disconnects, and a window opening during that reset is refused.
                "-noreset",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (apt-get install xvfb)"),
    );
    assert!(
        within(Duration::from_secs(10), || {
            Command::new("xdotool")
                .arg("getdisplaygeometry")
                .env("DISPLAY", &display)
                .output()
                .is_ok_and(|o| o.status.success())
        }),
        "Xvfb did not start on {display}"
    );
    let log = site.dir.join("window.log");
    let mut args = vec!["gui".to_string()];
    args.extend(site.helper_args());
    let _window = Killed(
        Command::new(HELPER)
            .args(&args)
            .env("DISPLAY", &display)
            .env("ICED_BACKEND", "tiny-skia")
            .env("RUST_LOG", "info")
            .env("MAILSITE_HELPER_CONFIG_DIR", site.dir.join("helper-config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file"))
            .spawn()
            .expect("mailsite-helper gui runs"),
    );
    assert!(
        within(Duration::from_secs(30), || {
            !xdotool(
                &display,
                &["search", "--onlyvisible", "--name", "mailsite helper"],
            )
            .trim()
            .is_empty()
        }),
        "no window: {}",
        read(&log)
    );
    assert!(
        within(Duration::from_secs(10), || read(&log)
            .contains("first frame")),
        "{}",
        read(&log)
    );
    // Without a window manager the window gets the keyboard only when given it.
    let window = xdotool(
        &display,
        &["search", "--onlyvisible", "--name", "mailsite helper"],
    );
    let window = window.lines().next().unwrap_or_default().to_string();
    xdotool(&display, &["windowfocus", "--sync", &window]);
    std::thread::sleep(Duration::from_millis(500));
    // Nothing has the focus yet: Tab gives it to the first field, the address. The
    // address is typed with its last letter missing, which Shift-Tab goes back for
    // after the password (the check is alice's only if it landed in the address).
    for keys in [
        vec!["key", "Tab"],
        vec!["type", "--delay", "20", "alice@example.tes"],
        vec!["key", "Tab"],
        vec!["type", "--delay", "20", PASSWORD],
        vec!["key", "shift+Tab"],
        vec!["type", "--delay", "20", "t"],
        vec!["key", "Tab"],
        vec!["key", "Return"],
    ] {
        xdotool(&display, &keys);
        // A focus change is applied after the events that came with it: a key typed
        // while the window is still catching up (a busy machine) lands in the field
        // that had the focus before, so each step waits before the next.
        std::thread::sleep(Duration::from_millis(if keys[0] == "key" {
            1000
        } else {
            300
        }));
    }
    let passed = within(Duration::from_secs(60), || {
        read(&log).contains("check finished")
    });
    let text = read(&log);
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    assert!(passed, "no check finished: {tail:#?}");
    assert!(
        text.contains("passed for alice@example.test"),
        "the check was not alice's, or failed: {text}"
    );
    assert!(!text.contains(PASSWORD), "the password reached the log");
}
