//! `check --remember`, a later `check` without a password, and `forget`, each a
//! separate `mailsite-helper` process as a user runs them, against the real keyrings,
//! and read back with tools nobody here wrote: the kernel keyring with `keyctl`
//! (keyutils), the desktop keyring with `secret-tool` (libsecret) on a session bus of
//! its own (`dbus-run-session`) served by GNOME Keyring. A session bus with no keyring
//! on it falls back to the kernel keyring and says so.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{HELPER, Site, run};

const PASSWORD: &str = "correct horse battery";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A user of its own (the kernel keyring is one per Unix user, shared by every test):
/// the address, and the scripts' arguments (the address, then the site's).
fn user(site: &Site) -> (String, Vec<String>) {
    let name = format!("kr{}", rand::random::<u32>());
    site.add_user(&name, PASSWORD);
    let email = format!("{name}@example.test");
    let mut args = vec![email.clone()];
    args.extend(site.helper_args());
    (email, args)
}

/// A shell script's environment: no session bus unless the script makes one, and a
/// home and runtime folder of its own.
fn shell(dir: &Path, script: &str, args: &[String]) -> Output {
    let home = dir.join("home");
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HELPER", HELPER);
    run(&mut cmd, None)
}

/// The steps every store goes through: remember, find, forget, forget again. `$1` is
/// the address, `$2`... the site arguments; `LOOKUP` prints what the store holds.
const ROUND_TRIP: &str = r#"
email=$1; shift
echo "== remember"
echo "$PASSWORD" | "$HELPER" check "$email" --remember --password-stdin "$@" 2>&1; echo "exit=$?"
echo "== stored"
lookup "$email"; echo
echo "== again"
"$HELPER" check "$email" "$@" </dev/null 2>&1; echo "exit=$?"
echo "== forget"
"$HELPER" forget "$email" 2>&1; echo "exit=$?"
echo "== gone"
lookup "$email"; echo "lookup=$?"
echo "== forget again"
"$HELPER" forget "$email" 2>&1; echo "exit=$?"
"#;

/// The text after `== name` up to the next section.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("== {name}\n");
    let start = out
        .find(&marker)
        .unwrap_or_else(|| panic!("no section {name:?} in:\n{out}"))
        + marker.len();
    let end = out[start..].find("\n== ").map_or(out.len(), |e| start + e);
    &out[start..end]
}

fn check_round_trip(out: &str, kept_in: &str) {
    let remember = section(out, "remember");
    assert!(
        remember.contains(&format!("remembered the password in {kept_in}"))
            && remember.contains("exit=0"),
        "{out}"
    );
    assert_eq!(section(out, "stored").trim(), PASSWORD, "{out}");
    let again = section(out, "again");
    assert!(
        again.contains("exit=0") && !again.contains("no password"),
        "the stored password was not used:\n{out}"
    );
    let forget = section(out, "forget");
    assert!(
        forget.contains("forgot the password") && forget.contains("exit=0"),
        "{out}"
    );
    let gone = section(out, "gone");
    assert!(
        !gone.contains(PASSWORD) && !gone.contains("lookup=0"),
        "the password is still stored:\n{out}"
    );
    assert!(
        section(out, "forget again").contains("no password was stored"),
        "{out}"
    );
}

#[test]
fn the_kernel_keyring_keeps_the_password_across_processes_and_forgets_it() {
    let site = Site::start();
    let (_, args) = user(&site);
    let script = format!(
        r#"PASSWORD='{PASSWORD}'
lookup() {{ id=$(keyctl search @u user "mailsite-helper:$1" 2>/dev/null) && keyctl print "$id"; }}
{ROUND_TRIP}"#
    );
    let out = shell(&site.dir.join("kernel"), &script, &args);
    check_round_trip(&text(&out), "the kernel keyring");
}

#[test]
fn the_desktop_keyring_keeps_the_password_and_a_bus_without_one_falls_back() {
    let site = Site::start();
    let (email, args) = user(&site);
    // GNOME Keyring on a session bus of the script's own, its login keyring unlocked
    // as a desktop login would.
    let script = format!(
        r#"export PASSWORD='{PASSWORD}'
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
exec dbus-run-session -- sh -c '
printf "login-keyring-password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
lookup() {{ secret-tool lookup service mailsite-helper username "$1"; }}
{}' sh "$@""#,
        ROUND_TRIP.replace('\'', "'\\''")
    );
    let out = shell(&site.dir.join("desktop"), &script, &args);
    let out = text(&out);
    check_round_trip(&out, "the desktop keyring (Secret Service)");
    // Nothing went to the kernel keyring on the way.
    let kernel = run(
        Command::new("keyctl").args(["search", "@u", "user", &format!("mailsite-helper:{email}")]),
        None,
    );
    assert!(!kernel.status.success(), "{out}");

    // A session bus that nobody serves a keyring on (no activation either): the
    // password goes to the kernel keyring, and the helper says which.
    let dir = site.dir.join("no-keyring");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
    )
    .unwrap();
    let script = format!(
        r#"email=$1; shift
echo '{PASSWORD}' | dbus-run-session --config-file="{}" -- "$HELPER" check "$email" --remember --password-stdin "$@" 2>&1
echo "exit=$?"
"$HELPER" forget "$email" 2>&1"#,
        config.display()
    );
    let out = text(&shell(&dir, &script, &args));
    assert!(
        out.contains("remembered the password in the kernel keyring") && out.contains("exit=0"),
        "{out}"
    );
    assert!(out.contains("forgot the password"), "{out}");
}
