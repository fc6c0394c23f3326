//! The `mailsite-helper` command line against a real site: exit codes, `--json`,
//! `report --out`, `prefer` (stored locally and on the server, which then lists the
//! choice first), and `mailsite helpdesk explain` reading the reports.

mod support;

use std::process::Command;

use mailsite_shared::report::Report;
use support::{HELPER, Site, assert_no_secret, run};

const PASSWORD: &str = "correct horse battery";

fn helper(
    site: &Site,
    config_dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut cmd = Command::new(HELPER);
    cmd.args(args)
        .args(site.helper_args())
        .env("MAILSITE_HELPER_CONFIG_DIR", config_dir);
    run(&mut cmd, stdin)
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let out = run(
        Command::new(HELPER).args(["check", "a@example.test", "--protocol", "smoke"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        Command::new(HELPER).args(["check", "not an address", "--password-stdin"]),
        Some("x\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an email address"));
    let out = run(Command::new(HELPER).arg("--help"), None);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--password-stdin") && help.contains("Exit status"),
        "{help}"
    );
}

#[test]
fn check_report_prefer_and_helpdesk_explain() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    site.add_user("bob", PASSWORD);
    let config_dir = site.dir.join("helper-config");

    // All passes: exit 0, JSON on stdout.
    let out = helper(
        &site,
        &config_dir,
        &["check", "alice@example.test", "--json", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(report.passed && report.schema_version == 1);
    assert_no_secret(
        &String::from_utf8_lossy(&out.stdout),
        PASSWORD,
        &["alice", "alice@example.test"],
    );

    // As text: a summary a person reads at a glance, the details with --verbose (a
    // certificate's long list of names once, not once per step).
    let check_text = |extra: &[&str], password: &str| {
        let mut args = vec![
            "check",
            "alice@example.test",
            "--password-stdin",
            "--no-round-trip",
        ];
        args.extend_from_slice(extra);
        let out = helper(&site, &config_dir, &args, Some(&format!("{password}\n")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let brief = check_text(&[], PASSWORD);
    assert!(brief.starts_with("All "), "{brief}");
    assert!(brief.lines().count() < 40, "{brief}");
    assert!(
        !brief.contains("| C:") && !brief.contains("sans:"),
        "{brief}"
    );
    assert!(brief.contains("--verbose"), "{brief}");
    let verbose = check_text(&["--verbose"], PASSWORD);
    assert!(
        verbose.contains("| C: EHLO mailsite-helper.invalid"),
        "{verbose}"
    );
    let sans: Vec<&str> = verbose
        .lines()
        .filter(|l| l.trim_start().starts_with("sans:"))
        .collect();
    assert!(sans.len() > 1, "{verbose}");
    assert_eq!(
        sans.iter().filter(|l| !l.ends_with("(as above)")).count(),
        1,
        "{sans:#?}"
    );

    // What failed is shown with its problem and the end of its transcript.
    let failed = check_text(&[], "not the password");
    assert!(failed.contains("checks failed"), "{failed}");
    assert!(
        failed.contains("  FAIL IMAP login")
            && failed.contains("problem: ")
            && failed.contains("| S: "),
        "{failed}"
    );
    assert!(!failed.contains("not the password"), "{failed}");

    // A wrong password: exit 1; the report files name it.
    let file = site.dir.join("wrong.json");
    let out = helper(
        &site,
        &config_dir,
        &[
            "report",
            "alice@example.test",
            "--out",
            file.to_str().unwrap(),
            "--password-stdin",
            "--no-round-trip",
        ],
        Some("not the password\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&file).unwrap();
    let text = std::fs::read_to_string(format!("{}.txt", file.display())).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("checks failed for alice@example.test"),
        "{text}"
    );
    assert_no_secret(&json, "not the password", &["alice", "alice@example.test"]);
    assert_no_secret(&text, "not the password", &["alice", "alice@example.test"]);
    let explained = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(
        explained.contains(
            "likely cause: login refused: alice exists and is enabled, so the password was wrong"
        ),
        "{explained}"
    );

    // A client on mailbox1's own name while mailbox1 is in maintenance.
    site.ok(&["server", "maintenance", "mailbox1"], None);
    site.wait_served("a", "mailbox2");
    let file = site.dir.join("referral.json");
    let out = helper(
        &site,
        &config_dir,
        &[
            "report",
            "alice@example.test",
            "--out",
            file.to_str().unwrap(),
            "--password-stdin",
            "--no-round-trip",
            "--incoming-host",
            "mailbox1.example.test",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(1));
    let explained = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(
        explained.contains("served by mailbox2 as maila.example.test (mailbox1 is maintenance)"),
        "{explained}"
    );
    site.ok(&["server", "up", "mailbox1"], None);

    // POP3 chosen: saved locally and on the server, which then lists POP3 first.
    let first = |site: &Site| {
        let doc = site.get("/mail/config-v1.1.xml?emailaddress=alice@example.test");
        doc.find("type=\"pop3\"").unwrap() < doc.find("type=\"imap\"").unwrap()
    };
    assert!(!first(&site));
    let out = helper(
        &site,
        &config_dir,
        &["prefer", "pop3", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("POP downloads your mail"));
    assert!(
        first(&site),
        "autoconfig lists POP3 first after the preference"
    );
    let saved = std::fs::read_to_string(config_dir.join("preferences.toml")).unwrap();
    assert!(
        saved.contains("pop3") && !saved.contains(PASSWORD),
        "{saved}"
    );
    assert!(site.ok(&["user", "show", "alice"], None).contains("pop3"));
    // A wrong password changes nothing on the server, nor here (exit 1: refused, not
    // a usage error). The address may also come as --email, as it used to.
    let out = helper(
        &site,
        &config_dir,
        &[
            "prefer",
            "imap",
            "--email",
            "alice@example.test",
            "--password-stdin",
        ],
        Some("wrong\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was saved on this computer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(first(&site));
    assert_eq!(
        std::fs::read_to_string(config_dir.join("preferences.toml")).unwrap(),
        saved
    );
    // The choice is alice's: another address checked here still gets the site's order.
    let out = helper(
        &site,
        &config_dir,
        &[
            "check",
            "bob@example.test",
            "--json",
            "--password-stdin",
            "--no-round-trip",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report.protocol, "imap");
    // The last address checked is bob now: name alice again.
    let out = helper(
        &site,
        &config_dir,
        &[
            "check",
            "alice@example.test",
            "--json",
            "--password-stdin",
            "--no-round-trip",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(
        (report.email.as_str(), report.protocol.as_str()),
        ("alice@example.test", "pop3")
    );
    assert!(report.passed);
}

#[test]
fn thunderbird_previews_then_writes_the_discovered_account_into_a_profile() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let config_dir = site.dir.join("helper-config");
    let profile = site.dir.join("tb-profile");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(
        profile.join("prefs.js"),
        "user_pref(\"mail.accountmanager.accounts\", \"account1\");\n\
         user_pref(\"mail.account.account1.server\", \"server1\");\n\
         user_pref(\"mail.smtpservers\", \"smtp1\");\n",
    )
    .unwrap();
    let mine = "user_pref(\"browser.mine\", true);\n";
    std::fs::write(profile.join("user.js"), mine).unwrap();
    let dir = profile.display().to_string();

    // The preview: the lines on stdout, nothing written. No password is asked for.
    let out = helper(
        &site,
        &config_dir,
        &["thunderbird", "alice@example.test", "--profile", &dir],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let preview = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "user_pref(\"mail.server.server2.hostname\", \"maila.example.test\");",
        "user_pref(\"mail.server.server2.type\", \"imap\");",
        "user_pref(\"mail.server.server2.port\", 10993);",
        "user_pref(\"mail.server.server2.socketType\", 3);",
        "user_pref(\"mail.accountmanager.accounts\", \"account1,account2\");",
        "user_pref(\"mail.smtpservers\", \"smtp1,smtp2\");",
        "user_pref(\"mail.identity.id1.useremail\", \"alice@example.test\");",
    ] {
        assert!(preview.contains(line), "missing {line} in\n{preview}");
    }
    assert!(stderr.contains("--write"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(profile.join("user.js")).unwrap(),
        mine
    );

    // --write appends exactly that (POP here: the choice is the user's).
    let out = helper(
        &site,
        &config_dir,
        &[
            "thunderbird",
            "alice@example.test",
            "--profile",
            &dir,
            "--protocol",
            "pop3",
            "--name",
            "Alice \"Q\" Example",
            "--write",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let user_js = std::fs::read_to_string(profile.join("user.js")).unwrap();
    assert!(user_js.starts_with(mine) && user_js.ends_with(&written));
    for line in [
        "user_pref(\"mail.server.server2.hostname\", \"maila.example.test\");",
        "user_pref(\"mail.server.server2.type\", \"pop3\");",
        "user_pref(\"mail.server.server2.port\", 10995);",
        "user_pref(\"mail.identity.id1.fullName\", \"Alice \\\"Q\\\" Example\");",
        "mailsite-helper",
    ] {
        assert!(user_js.contains(line), "missing {line} in\n{user_js}");
    }
    assert!(!user_js.contains(PASSWORD));

    // Again: refused, exit 1, nothing changed.
    let out = helper(
        &site,
        &config_dir,
        &[
            "thunderbird",
            "alice@example.test",
            "--profile",
            &dir,
            "--write",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has an account"));
    assert_eq!(
        std::fs::read_to_string(profile.join("user.js")).unwrap(),
        user_js
    );

    // Thunderbird running (its lock symlink): refused with what to do.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("127.0.1.1:+4242", profile.join("lock")).unwrap();
        let out = helper(
            &site,
            &config_dir,
            &[
                "thunderbird",
                "bob@example.test",
                "--profile",
                &dir,
                "--write",
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("close Thunderbird first"));
        assert_eq!(
            std::fs::read_to_string(profile.join("user.js")).unwrap(),
            user_js
        );
    }

    // Usage: no such profile folder; --help explains.
    let out = helper(
        &site,
        &config_dir,
        &[
            "thunderbird",
            "alice@example.test",
            "--profile",
            "/nonexistent/tb",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(Command::new(HELPER).args(["thunderbird", "--help"]), None);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--write") && help.contains("close"), "{help}");
}
