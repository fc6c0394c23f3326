//! The window, driven with iced_test's simulator (no display needed): a user types an
//! address and a password and presses Check; a real check runs against a real
//! `mailsite serve` and each step appears as it finishes; a step opens to show its
//! details; the POP/IMAP choice is stored here and on the site; the report is
//! reviewed, copied and saved. Effects are performed by the same `Job::run` the window
//! uses, and their messages fed back to `update`, as iced would.

#![cfg(feature = "gui")]

mod support;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use iced::widget::Id;
use iced_test::Simulator;
use mailsite_helper::gui::{Effect, Job, Message, Phase, Startup, State, view};
use mailsite_helper::{Progress, Report, explain, render};
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::report::{Discovery, Outcome, Step};
use support::{Site, assert_no_secret};

const PASSWORD: &str = "correct horse battery";

/// Tall enough that every line of the results is on screen, so it can be clicked.
fn simulator(state: &State) -> Simulator<'_, Message> {
    Simulator::with_size(
        iced::Settings::default(),
        iced::Size::new(1024.0, 6000.0),
        view::view(state),
    )
}

/// Lets the user act on the window as it is now; the messages go to `update`, and
/// the effects it asks for come back.
fn act(state: &mut State, user: impl FnOnce(&mut Simulator<'_, Message>)) -> Vec<Effect> {
    let messages: Vec<Message> = {
        let mut ui = simulator(state);
        user(&mut ui);
        ui.into_messages().collect()
    };
    messages
        .into_iter()
        .filter_map(|m| state.update(m))
        .collect()
}

fn sees(state: &State, text: &str) -> bool {
    simulator(state).find(text).is_ok()
}

fn startup(dir: &Path) -> Startup {
    Startup {
        config_dir: Some(dir.join("helper-config")),
        report_path: dir.join("report.json"),
        step_timeout: Some(Duration::from_secs(8)),
        ..Startup::default()
    }
}

fn the_job(effects: Vec<Effect>) -> Job {
    match <[Effect; 1]>::try_from(effects) {
        Ok([Effect::Run(job)]) => job,
        Ok(other) => panic!("expected one job, got {other:?}"),
        Err(other) => panic!("expected one job, got {other:?}"),
    }
}

/// Types the address and password and presses Check; the check job it starts.
fn type_and_check(state: &mut State, email: &str, password: &str) -> Vec<Effect> {
    act(state, |ui| {
        ui.click(Id::new("email")).expect("the address field");
        let _ = ui.typewrite(email);
        ui.click(Id::new("password")).expect("the password field");
        let _ = ui.typewrite(password);
        ui.click("Check").expect("the Check button");
    })
}

#[tokio::test]
async fn typing_an_address_and_pressing_check_shows_each_step_of_a_real_check() {
    let site = Site::start();
    site.add_user("alice", PASSWORD);
    let mut state = State::new(Startup {
        site: site.overrides(),
        ..startup(&site.dir)
    });
    assert!(sees(
        &state,
        "Type your address and password, then press Check."
    ));

    let job = the_job(type_and_check(&mut state, "alice@example.test", PASSWORD));
    assert_eq!(state.email, "alice@example.test");
    assert!(matches!(job, Job::Check { .. }), "{job:?}");
    assert!(sees(&state, "Checking… 0 steps done"));
    assert!(sees(&state, "Checking…"), "the button says a check runs");

    // Run the check as the window would, watching the window after every message.
    let mut seen = Vec::new();
    let mut stream = job.run();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Some(message) = tokio::time::timeout_at(deadline, stream.next())
        .await
        .expect("the check finishes within a minute")
    {
        let progress = match &message {
            Message::Progress(p) => Some(p.clone()),
            _ => None,
        };
        assert!(state.update(message).is_none());
        match progress {
            Some(Progress::Step(step)) => {
                seen.push(step.title.clone());
                assert!(
                    sees(&state, &format!("Checking… {} steps done", seen.len())),
                    "the count follows the steps"
                );
                assert!(sees(&state, &step.title), "{} is shown", step.title);
            }
            Some(Progress::Discovered(d)) => {
                assert_eq!(d.method.as_deref(), Some("autoconfig"));
                let line = discovery_line(&d);
                assert!(
                    line.starts_with("Settings found by autoconfig: IMAP maila.example.test:"),
                    "{line}"
                );
                assert!(sees(&state, &line), "{line} is shown");
            }
            Some(Progress::Note(_)) | None => {}
        }
    }

    let Phase::Done { report, .. } = &state.phase else {
        panic!("the check is over: {:?}", state.phase);
    };
    let report = report.clone();
    assert!(report.passed, "{}", render::text(&report));
    assert_eq!(
        seen.len(),
        report.steps.len(),
        "every step appeared as it finished"
    );
    assert!(sees(&state, &report.summary), "the summary is shown");
    assert!(report.summary.starts_with("All "), "{}", report.summary);
    assert_eq!(state.title(), "mailsite helper: all passed");
    for step in &report.steps {
        assert!(sees(&state, &step.title));
    }
    // The round trip went through outbox and came back over IMAP.
    let trip = report.steps.iter().find(|s| s.kind == "roundtrip").unwrap();
    assert_eq!(trip.outcome, Outcome::Pass);

    // A step opens to show its details, and closes again.
    let login = report.steps.iter().find(|s| s.kind == "imap").unwrap();
    let (key, value) = &login.details[0];
    let detail = format!("{key}: {value}");
    assert!(!sees(&state, &detail));
    assert!(
        act(&mut state, |ui| {
            ui.click(login.title.as_str()).expect("the IMAP step");
        })
        .is_empty()
    );
    assert!(sees(&state, &detail), "{detail} is shown once opened");
    act(&mut state, |ui| {
        ui.click(login.title.as_str()).expect("the IMAP step");
    });
    assert!(!sees(&state, &detail));

    // The address is remembered for next time; the password is nowhere on disk.
    let prefs = std::fs::read_to_string(site.dir.join("helper-config/preferences.toml")).unwrap();
    assert!(prefs.contains("alice@example.test"), "{prefs}");
    assert_no_secret(&prefs, PASSWORD, &["alice", "alice@example.test"]);
}

/// The line the window shows once discovery is over.
fn discovery_line(d: &Discovery) -> String {
    format!(
        "Settings found by {}: {}",
        d.method.as_deref().unwrap_or(""),
        d.settings
            .iter()
            .map(|s| format!("{} {}:{}", s.protocol.to_uppercase(), s.host, s.port))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[tokio::test]
async fn choosing_pop_is_explained_and_stored_here_and_on_the_site() {
    let site = Site::start();
    site.add_user("nora", PASSWORD);
    let mut state = State::new(Startup {
        email: "nora@example.test".into(),
        password: mailsite_helper::gui::Password(PASSWORD.into()),
        site: site.overrides(),
        ..startup(&site.dir)
    });
    // Both consequences are spelled out before anything is chosen.
    assert!(sees(
        &state,
        mailsite_helper::prefs::consequence(Preference::Pop3)
    ));
    assert!(sees(
        &state,
        mailsite_helper::prefs::consequence(Preference::Imap)
    ));
    assert!(
        site.get("/mail/config-v1.1.xml?emailaddress=nora@example.test")
            .find("type=\"imap\"")
            < site
                .get("/mail/config-v1.1.xml?emailaddress=nora@example.test")
                .find("type=\"pop3\""),
        "IMAP first before the choice"
    );

    assert!(
        act(&mut state, |ui| {
            ui.click("POP: download it to this computer")
                .expect("the POP choice");
        })
        .is_empty()
    );
    assert_eq!(state.choice, Some(Preference::Pop3));
    let job = the_job(act(&mut state, |ui| {
        ui.click("Save my choice").expect("the save button");
    }));
    assert!(sees(&state, "Saving…"));
    let mut stream = job.run();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the site answers")
    {
        assert!(state.update(m).is_none());
    }
    let status = state.choice_status.clone().expect("a status");
    let line = status.expect("stored");
    assert!(
        line.contains("Saved on this computer") && line.contains("The site:"),
        "{line}"
    );
    assert!(sees(&state, &line));

    // Here, and on the site: autoconfig now lists POP3 first.
    let prefs = mailsite_helper::prefs::load(&site.dir.join("helper-config")).unwrap();
    assert_eq!(
        prefs.protocol_for("nora@example.test"),
        Some(Preference::Pop3)
    );
    let xml = site.get("/mail/config-v1.1.xml?emailaddress=nora@example.test");
    assert!(
        xml.find("type=\"pop3\"") < xml.find("type=\"imap\""),
        "POP3 first now: {xml}"
    );

    // A wrong password stores nothing on the site, and says so.
    state.update(Message::PasswordChanged(mailsite_helper::gui::Password(
        "not it".into(),
    )));
    state.update(Message::Choose(Preference::Imap));
    let job = the_job(act(&mut state, |ui| {
        ui.click("Save my choice").expect("the save button");
    }));
    let mut stream = job.run();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the site answers")
    {
        state.update(m);
    }
    let err = state.choice_status.clone().unwrap().unwrap_err();
    assert!(err.contains("refused the password"), "{err}");
    assert!(err.contains("Not saved, here or on the site"), "{err}");
    assert!(sees(&state, &err));
    // Nor here: this computer keeps the choice the site has.
    let prefs = mailsite_helper::prefs::load(&site.dir.join("helper-config")).unwrap();
    assert_eq!(
        prefs.protocol_for("nora@example.test"),
        Some(Preference::Pop3)
    );
}

/// A finished report with one failed login, as the core makes it.
fn failed_report() -> Report {
    let pass = |id: &str, kind: &str, title: &str, details: &[(&str, &str)]| Step {
        id: id.into(),
        kind: kind.into(),
        title: title.into(),
        outcome: Outcome::Pass,
        millis: 3,
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        transcript: Vec::new(),
        problem: None,
    };
    let mut login = pass(
        "imap:maila.example.test:993",
        "imap",
        "IMAP login on maila.example.test:993",
        &[("address", "127.0.0.11")],
    );
    login.outcome = Outcome::Fail;
    login.transcript = vec![
        "C: a1 LOGIN \"alice\" <redacted>".into(),
        "S: a1 NO [AUTHENTICATIONFAILED] failed".into(),
    ];
    login.problem = Some(explain::auth_refused("IMAP", "alice"));
    let mut report = Report {
        schema_version: mailsite_shared::report::SCHEMA_VERSION,
        helper_version: "test".into(),
        os: "linux x86_64".into(),
        started_at: "2025-01-01T00:00:00.000Z".into(),
        finished_at: "2025-01-01T00:00:00.400Z".into(),
        email: "alice@example.test".into(),
        protocol: "imap".into(),
        overrides: Vec::new(),
        discovery: Discovery {
            method: Some("autoconfig".into()),
            attempts: Vec::new(),
            settings: Vec::new(),
        },
        steps: vec![
            pass(
                "dns:maila.example.test",
                "dns",
                "DNS lookup of maila.example.test",
                &[("a", "127.0.0.11 (ttl 30 s)")],
            ),
            login,
        ],
        findings: Vec::new(),
        summary: String::new(),
        passed: false,
    };
    report.summary = render::summary(&report);
    report
}

#[tokio::test]
async fn a_failure_opens_by_itself_and_the_report_is_reviewed_copied_and_saved() {
    let dir = std::env::temp_dir().join(format!("helper-gui-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut state = State::new(startup(&dir));

    // Nothing runs without a password, and the form says why.
    state.update(Message::EmailChanged("alice@example.test".into()));
    assert!(
        act(&mut state, |ui| {
            ui.click("Check").expect("the Check button");
        })
        .is_empty()
    );
    assert!(sees(
        &state,
        "Type your password: the servers are tested with it."
    ));

    let report = failed_report();
    state.update(Message::Checked(Ok(Box::new(report.clone()))));
    assert!(sees(&state, &report.summary));
    assert!(
        report.summary.starts_with("1 of 2 checks failed"),
        "{}",
        report.summary
    );
    // The failed step is open: what happened and what to try.
    let problem = report.steps[1].problem.clone().unwrap();
    assert!(sees(&state, &problem.explanation));
    assert!(sees(&state, &format!("Try: {}", problem.suggestion)));
    // The words first; what the server said behind a button of its own.
    assert!(!sees(&state, "C: a1 LOGIN \"alice\" <redacted>"));
    act(&mut state, |ui| {
        ui.click("Show what the server said (2 lines)")
            .expect("the transcript button");
    });
    assert!(sees(&state, "C: a1 LOGIN \"alice\" <redacted>"));
    assert!(sees(&state, "Hide what the server said"));
    // Each step says it opens.
    assert!(sees(&state, "Show details") && sees(&state, "Hide details"));
    // The passed one is closed until pressed.
    assert!(!sees(&state, "a: 127.0.0.11 (ttl 30 s)"));
    act(&mut state, |ui| {
        ui.click("DNS lookup of maila.example.test")
            .expect("the DNS step");
    });
    assert!(sees(&state, "a: 127.0.0.11 (ttl 30 s)"));

    // Review: the text the helpdesk reads, in the window.
    act(&mut state, |ui| {
        ui.click("Review report").expect("the review button");
    });
    assert!(sees(&state, &render::text(&report)));
    // Copy: exactly that text.
    let effects = act(&mut state, |ui| {
        ui.click("Copy to clipboard").expect("the copy button");
    });
    match effects.as_slice() {
        [Effect::Copy(text)] => assert_eq!(text, &render::text(&report)),
        other => panic!("expected a copy, got {other:?}"),
    }
    state.update(Message::Copied);
    assert!(sees(&state, "The report text is on the clipboard."));
    // Save: JSON and text, where the field says.
    let job = the_job(act(&mut state, |ui| {
        ui.click("Save report").expect("the save button");
    }));
    let mut stream = job.run();
    while let Some(m) = stream.next().await {
        state.update(m);
    }
    let saved = state.export_status.clone().unwrap().expect("saved");
    assert!(sees(&state, &saved));
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let text = std::fs::read_to_string(dir.join("report.json.txt")).unwrap();
    assert!(text.starts_with(&report.summary));
    act(&mut state, |ui| {
        ui.click("Back").expect("the back button");
    });
    assert!(sees(&state, "How should your mail be kept?"));
    std::fs::remove_dir_all(dir).ok();
}

/// Runs a job to its end and feeds its messages to `update`, as the window would.
async fn perform(state: &mut State, job: Job) {
    let messages: Vec<Message> = job.run().collect().await;
    for m in messages {
        assert!(state.update(m).is_none());
    }
}

#[tokio::test]
async fn the_account_is_previewed_then_written_into_a_thunderbird_profile() {
    let dir = std::env::temp_dir().join(format!("helper-gui-tb-{}", rand::random::<u64>()));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(profile.join("user.js"), "// mine\n").unwrap();
    let mut state = State::new(startup(&dir));
    let mut report = failed_report();
    report.discovery.settings = [
        ("imap", 993, "SSL"),
        ("pop3", 995, "SSL"),
        ("smtp", 465, "SSL"),
    ]
    .iter()
    .map(
        |(protocol, port, security)| mailsite_shared::report::Setting {
            protocol: protocol.to_string(),
            host: if *protocol == "smtp" {
                "outbox.example.test".into()
            } else {
                "maila.example.test".into()
            },
            port: *port,
            security: security.to_string(),
            username: "alice".into(),
        },
    )
    .collect();
    assert!(
        state
            .update(Message::Checked(Ok(Box::new(report))))
            .is_none()
    );
    assert!(sees(&state, "Thunderbird profile"));

    // Nothing to write before a preview: the button does nothing.
    assert!(
        act(&mut state, |ui| {
            let _ = ui.click("Write to profile");
        })
        .is_empty()
    );

    // Type the folder, press Preview: the lines are shown, nothing is written.
    let job = the_job(act(&mut state, |ui| {
        ui.click(Id::new("thunderbird-profile"))
            .expect("the profile field");
        let _ = ui.typewrite(&profile.display().to_string());
        ui.click("Preview").expect("the Preview button");
    }));
    assert!(matches!(job, Job::ThunderbirdPreview { .. }), "{job:?}");
    perform(&mut state, job).await;
    let preview = state.tb_preview.clone().expect("a preview");
    assert!(
        preview.contains("user_pref(\"mail.server.server1.hostname\", \"maila.example.test\");"),
        "{preview}"
    );
    assert!(preview.contains("user_pref(\"mail.server.server1.type\", \"imap\");"));
    assert!(sees(
        &state,
        "Nothing is written yet: these lines are what Write to profile adds."
    ));
    assert_eq!(
        std::fs::read_to_string(profile.join("user.js")).unwrap(),
        "// mine\n"
    );

    // Write: exactly the previewed lines are appended.
    let job = the_job(act(&mut state, |ui| {
        ui.click("Write to profile").expect("the Write button");
    }));
    perform(&mut state, job).await;
    let status = state.tb_status.clone().unwrap().expect("written");
    assert!(status.contains("Added account1"), "{status}");
    assert!(sees(&state, &status));
    assert_eq!(
        std::fs::read_to_string(profile.join("user.js")).unwrap(),
        format!("// mine\n\n{preview}")
    );

    // Thunderbird open on the profile: the refusal says what to do.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("127.0.1.1:+4242", profile.join("lock")).unwrap();
        let job = the_job(act(&mut state, |ui| {
            ui.click("Preview").expect("the Preview button");
        }));
        perform(&mut state, job).await;
        let err = state.tb_status.clone().unwrap().unwrap_err();
        assert!(err.contains("close Thunderbird first"), "{err}");
        assert!(sees(&state, &err));
        assert!(state.tb_preview.is_none());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// "Remember the password" ticked: after a check whose login worked, the window says
/// which keyring kept the password (the real one: the kernel's here, with no desktop
/// session), and the next start finds it; after a refused password it says it kept
/// nothing, and nothing is kept.
#[tokio::test]
async fn remembering_the_password_says_where_it_was_kept() {
    let site = Site::start();
    let name = format!("gui{}", rand::random::<u32>());
    site.add_user(&name, PASSWORD);
    let email = format!("{name}@example.test");
    let mut state = State::new(Startup {
        site: site.overrides(),
        ..startup(&site.dir)
    });
    act(&mut state, |ui| {
        ui.click("Remember the password in the keyring")
            .expect("the checkbox");
    });
    assert!(state.remember);

    let job = the_job(type_and_check(&mut state, &email, "not the password"));
    perform(&mut state, job).await;
    assert!(
        sees(
            &state,
            "The password was not remembered: no server accepted it."
        ),
        "{:?}",
        state.remember_status
    );
    assert_eq!(mailsite_helper::secret::get(&email).unwrap(), None);

    state.update(Message::PasswordChanged(mailsite_helper::gui::Password(
        PASSWORD.to_string(),
    )));
    let job = the_job(act(&mut state, |ui| {
        ui.click("Check").expect("the Check button");
    }));
    perform(&mut state, job).await;
    let said = match &state.remember_status {
        Some(Ok(said)) => said.clone(),
        other => panic!("not remembered: {other:?}"),
    };
    assert!(said.starts_with("Remembered the password in "), "{said}");
    assert!(sees(&state, &said), "{said} is shown");
    assert_eq!(
        mailsite_helper::secret::get(&email).unwrap().as_deref(),
        Some(PASSWORD)
    );
    assert!(mailsite_helper::secret::forget(&email).unwrap());
}

/// The keys a user presses, simulated: the address field leaves Tab to the window
/// (which moves the focus: Tab forward, Shift-Tab back, as in every window) instead of
/// taking it, so a password typed after Tab never lands in the address; Enter in either
/// field runs the check; the password typed is never shown.
#[test]
fn tab_is_left_to_the_window_enter_checks_and_the_password_stays_masked() {
    use iced::keyboard::Modifiers;
    use iced::keyboard::key::{Key, Named};
    let dir = std::env::temp_dir().join(format!("helper-gui-keys-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut state = State::new(startup(&dir));

    let mut tab_status = None;
    let effects = act(&mut state, |ui| {
        ui.click(Id::new("email")).expect("the address field");
        let _ = ui.typewrite("alice@example.test");
        tab_status = Some(ui.tap_key(Key::Named(Named::Tab)));
    });
    assert_eq!(tab_status, Some(iced::event::Status::Ignored));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(state.email, "alice@example.test", "no Tab in the address");
    let tab = Key::Named(Named::Tab);
    for (modifiers, forward) in [(Modifiers::empty(), true), (Modifiers::SHIFT, false)] {
        let message = mailsite_helper::gui::key_message(&tab, modifiers).expect("a focus move");
        match state.update(message) {
            Some(Effect::Focus { forward: f }) => assert_eq!(f, forward),
            other => panic!("expected a focus move, got {other:?}"),
        }
    }
    // Ctrl-Tab and other keys are left alone.
    assert!(mailsite_helper::gui::key_message(&tab, Modifiers::CTRL).is_none());
    assert!(
        mailsite_helper::gui::key_message(&Key::Named(Named::Enter), Modifiers::empty()).is_none()
    );

    // The password, typed and submitted with Enter: a check starts, and the window
    // never shows the password.
    let effects = act(&mut state, |ui| {
        ui.click(Id::new("password")).expect("the password field");
        let _ = ui.typewrite(PASSWORD);
        let _ = ui.tap_key(Key::Named(Named::Enter));
    });
    assert!(matches!(the_job(effects), Job::Check { .. }));
    assert_eq!(state.password.0, PASSWORD);
    // No text on screen holds it (the field itself draws it masked).
    let shown =
        simulator(&state).find(
            |candidate: iced_test::selector::Candidate<'_>| match candidate {
                iced_test::selector::Candidate::Text { content, .. }
                    if content.contains(PASSWORD) =>
                {
                    Some(())
                }
                _ => None,
            },
        );
    assert!(shown.is_err(), "the password is shown as text");
    // Enter in the address field runs it too (once the first check is over).
    state.update(Message::Checked(Err("stopped".into())));
    let effects = act(&mut state, |ui| {
        ui.click(Id::new("email")).expect("the address field");
        let _ = ui.tap_key(Key::Named(Named::Enter));
    });
    assert!(matches!(the_job(effects), Job::Check { .. }));
    std::fs::remove_dir_all(dir).ok();
}
