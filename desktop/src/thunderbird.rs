//! Writing the discovered account into a closed Thunderbird profile, as `user_pref`
//! lines appended to the profile's `user.js` (which Thunderbird reads at every start
//! and copies into `prefs.js`).
//!
//! [`preview`] plans the block: it reads the profile's `prefs.js` and `user.js` to
//! find the accounts, servers, identities and outgoing servers already there, numbers
//! the new ones after them and appends the new account to
//! `mail.accountmanager.accounts` and `mail.smtpservers` (so the others stay). [`write`]
//! plans again and appends that exact block atomically (a temporary file in the
//! profile, fsync, rename), keeping what `user.js` held before.
//!
//! Refusals: a profile Thunderbird has open (its `lock` symlink, or a lock file, is
//! there), and an address that already has an identity in the profile, so a second
//! write does not add the same account twice. No password is ever written: Thunderbird
//! asks for it and keeps it in its own password manager.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mailsite_shared::autoconfig::Preference;
use mailsite_shared::report::Setting;

/// What stops a preview or a write.
#[derive(Debug, thiserror::Error)]
pub enum TbError {
    #[error("{0} is not a folder: give the Thunderbird profile folder (the one holding prefs.js)")]
    NotAProfile(String),
    #[error(
        "Thunderbird is running with this profile ({0} is there): close Thunderbird first. \
         If it is closed, it did not shut down cleanly: start and quit it once."
    )]
    Running(String),
    #[error(
        "the profile already has an account for {0} (mail.identity.{1}): nothing written. \
         Remove that account in Thunderbird first to set it up again."
    )]
    Exists(String, String),
    #[error("the profile changed since the preview: preview again")]
    Changed,
    #[error("{0}")]
    Settings(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl TbError {
    /// Whether this is the caller's mistake (a wrong argument) rather than a refusal.
    pub fn is_usage(&self) -> bool {
        matches!(self, TbError::NotAProfile(_))
    }
}

/// The account to add: the address, the user's name if known, and one incoming and
/// one outgoing server as discovery reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub email: String,
    pub full_name: Option<String>,
    pub incoming: Setting,
    pub outgoing: Setting,
}

impl Account {
    /// Picks the servers from discovered settings: the first incoming one of the
    /// chosen protocol (`None`: the site's first, i.e. its preference) and the first
    /// SMTP server (the site lists implicit TLS first).
    pub fn choose(
        email: &str,
        full_name: Option<&str>,
        settings: &[Setting],
        protocol: Option<Preference>,
    ) -> Result<Account, TbError> {
        let incoming = settings
            .iter()
            .find(|s| match protocol {
                Some(p) => s.protocol == p.as_str(),
                None => s.protocol == "imap" || s.protocol == "pop3",
            })
            .ok_or_else(|| {
                TbError::Settings(match protocol {
                    Some(p) => format!("the settings found name no {} server", p.as_str()),
                    None => "the settings found name no incoming (IMAP or POP3) server".into(),
                })
            })?;
        let outgoing = settings
            .iter()
            .find(|s| s.protocol == "smtp")
            .ok_or_else(|| TbError::Settings("the settings found name no SMTP server".into()))?;
        Ok(Account {
            email: email.trim().to_string(),
            full_name: full_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from),
            incoming: incoming.clone(),
            outgoing: outgoing.clone(),
        })
    }
}

/// The block to append and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub user_js: PathBuf,
    /// The new account's key, e.g. `account3`.
    pub account_key: String,
    /// The exact text appended to `user.js`.
    pub text: String,
}

/// Escapes text for a double-quoted string literal that both JavaScript and
/// Thunderbird's preference parser read back unchanged. Everything outside printable
/// ASCII becomes `\uXXXX` (surrogate pairs beyond the BMP), so no quote, backslash,
/// control character, U+2028/U+2029 or `</script>`-like text survives literally.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\'' | '<' | '>' | '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out
}

/// A string preference's value, quoted.
fn quoted(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// The lock Thunderbird holds on an open profile, if any: `lock` (a symlink on
/// Linux and macOS, present only while it runs), `parent.lock` (Windows). `.parentlock`
/// counts too, except on Linux: there Thunderbird leaves that empty file behind after
/// quitting (it only holds an fcntl lock on it while running), so its mere presence
/// would refuse every profile ever opened, and `lock` tells the truth instead.
pub fn lock(profile: &Path) -> Option<PathBuf> {
    let mut names = vec!["lock", "parent.lock"];
    if !cfg!(target_os = "linux") {
        names.push(".parentlock");
    }
    names
        .into_iter()
        .map(|n| profile.join(n))
        // symlink_metadata: Thunderbird's `lock` is a dangling symlink ("IP:+PID").
        .find(|p| p.symlink_metadata().is_ok())
}

/// Preferences as `prefs.js` / `user.js` state them: name -> value text (strings
/// unescaped, numbers and booleans as written), later lines winning.
pub fn parse_prefs(text: &str) -> BTreeMap<String, String> {
    let mut prefs = BTreeMap::new();
    let mut rest = text;
    while let Some(at) = rest.find("pref(") {
        let before = &rest[..at];
        rest = &rest[at + "pref(".len()..];
        // `user_pref(` or `pref(`, not inside a comment line.
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        if before[line_start..].trim_start().starts_with("//") {
            continue;
        }
        let Some((name, after)) = string_literal(rest.trim_start()) else {
            continue;
        };
        let Some(after) = after.trim_start().strip_prefix(',') else {
            continue;
        };
        let after = after.trim_start();
        let (value, after) = match string_literal(after) {
            Some((v, a)) => (v, a),
            None => {
                let end = after.find(')').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        prefs.insert(name, value);
        rest = after;
    }
    prefs
}

/// A `"..."` or `'...'` literal at the start of `s`, unescaped, and what follows it.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    let mut pending_high: Option<u32> = None;
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, &s[1 + i + 1..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| -> Option<u32> {
            let digits: String = (0..n)
                .filter_map(|_| chars.next().map(|(_, c)| c))
                .collect();
            u32::from_str_radix(&digits, 16).ok()
        };
        let code = match e {
            'n' => '\n' as u32,
            'r' => '\r' as u32,
            't' => '\t' as u32,
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            other => other as u32,
        };
        if (0xD800..0xDC00).contains(&code) {
            pending_high = Some(code);
            continue;
        }
        if let (Some(high), true) = (pending_high.take(), (0xDC00..0xE000).contains(&code)) {
            let c = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00);
            out.extend(char::from_u32(c));
            continue;
        }
        out.extend(char::from_u32(code));
    }
    None
}

/// The numbers in use for keys like `mail.server.server7.hostname`, in lists like
/// `account1,account7` and in values of keys ending in one of `refs` (e.g.
/// `mail.account.account1.server` = `server7`); the next free one.
fn next_free(
    prefs: &BTreeMap<String, String>,
    prefix: &str,
    item: &str,
    lists: &[&str],
    refs: &[&str],
) -> u32 {
    let number = |s: &str| -> Option<u32> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let from_keys = prefs
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(number);
    let from_lists = lists
        .iter()
        .filter_map(|l| prefs.get(*l))
        .chain(
            prefs
                .iter()
                .filter(|(k, _)| refs.iter().any(|r| k.ends_with(r)))
                .map(|(_, v)| v),
        )
        .flat_map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
        .filter_map(|i| i.strip_prefix(item))
        .filter_map(number);
    from_keys.chain(from_lists).max().unwrap_or(0) + 1
}

fn read_if_there(path: &Path) -> Result<String, TbError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(TbError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The socketType / try_ssl number Thunderbird uses.
fn socket_type(security: &str) -> u8 {
    match security {
        "SSL" => 3,
        "STARTTLS" => 2,
        _ => 0,
    }
}

/// Plans the block for `account` in `profile` without writing anything.
pub fn preview(profile: &Path, account: &Account) -> Result<Plan, TbError> {
    plan(
        profile,
        account,
        &chrono::Utc::now().format("%Y-%m-%d").to_string(),
    )
}

fn plan(profile: &Path, account: &Account, date: &str) -> Result<Plan, TbError> {
    if !profile.is_dir() {
        return Err(TbError::NotAProfile(profile.display().to_string()));
    }
    if let Some(lock) = lock(profile) {
        return Err(TbError::Running(lock.display().to_string()));
    }
    let user_js = profile.join("user.js");
    let mut text = read_if_there(&profile.join("prefs.js"))?;
    text.push('\n');
    text.push_str(&read_if_there(&user_js)?);
    let prefs = parse_prefs(&text);

    if account.email.is_empty() || !account.email.contains('@') {
        return Err(TbError::Settings(format!(
            "{:?} is not an email address",
            account.email
        )));
    }
    let all = [
        &account.email,
        &account.incoming.host,
        &account.incoming.username,
        &account.outgoing.host,
        &account.outgoing.username,
    ];
    if all
        .iter()
        .chain(account.full_name.as_ref().iter())
        .any(|v| v.contains('\0'))
    {
        return Err(TbError::Settings(
            "a setting contains a NUL character".into(),
        ));
    }
    for (key, value) in &prefs {
        if let Some(id) = key
            .strip_prefix("mail.identity.")
            .and_then(|k| k.strip_suffix(".useremail"))
            && value.trim().eq_ignore_ascii_case(&account.email)
        {
            return Err(TbError::Exists(account.email.clone(), id.to_string()));
        }
    }

    let accounts_list = "mail.accountmanager.accounts";
    let smtp_list = "mail.smtpservers";
    let a = next_free(
        &prefs,
        "mail.account.account",
        "account",
        &[accounts_list],
        &[],
    )
    .max(
        prefs
            .get("mail.account.lastKey")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            + 1,
    );
    let s = next_free(&prefs, "mail.server.server", "server", &[], &[".server"]);
    let i = next_free(&prefs, "mail.identity.id", "id", &[], &[".identities"]);
    let t = next_free(
        &prefs,
        "mail.smtpserver.smtp",
        "smtp",
        &[smtp_list],
        &[".smtpServer", "mail.smtp.defaultserver"],
    );
    let (account_key, server, id, smtp) = (
        format!("account{a}"),
        format!("server{s}"),
        format!("id{i}"),
        format!("smtp{t}"),
    );
    let append = |list: &str, item: &str| -> String {
        let mut items: Vec<&str> = prefs
            .get(list)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        items.push(item);
        items.join(",")
    };

    let inc = &account.incoming;
    let out = &account.outgoing;
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut pref = |name: String, value: String| lines.push((name, value));
    let sv = format!("mail.server.{server}");
    pref(format!("{sv}.type"), quoted(&inc.protocol));
    pref(format!("{sv}.hostname"), quoted(&inc.host));
    pref(format!("{sv}.port"), inc.port.to_string());
    pref(
        format!("{sv}.socketType"),
        socket_type(&inc.security).to_string(),
    );
    pref(format!("{sv}.userName"), quoted(&inc.username));
    pref(format!("{sv}.name"), quoted(&account.email));
    pref(format!("{sv}.authMethod"), "3".into());
    let idp = format!("mail.identity.{id}");
    pref(format!("{idp}.useremail"), quoted(&account.email));
    if let Some(name) = &account.full_name {
        pref(format!("{idp}.fullName"), quoted(name));
    }
    pref(format!("{idp}.smtpServer"), quoted(&smtp));
    pref(format!("{idp}.valid"), "true".into());
    let sp = format!("mail.smtpserver.{smtp}");
    pref(format!("{sp}.hostname"), quoted(&out.host));
    pref(format!("{sp}.port"), out.port.to_string());
    pref(
        format!("{sp}.try_ssl"),
        socket_type(&out.security).to_string(),
    );
    pref(format!("{sp}.username"), quoted(&out.username));
    pref(format!("{sp}.authMethod"), "3".into());
    pref(format!("{sp}.description"), quoted(&account.email));
    let ap = format!("mail.account.{account_key}");
    pref(format!("{ap}.server"), quoted(&server));
    pref(format!("{ap}.identities"), quoted(&id));
    pref("mail.account.lastKey".into(), a.to_string());
    pref(
        accounts_list.into(),
        quoted(&append(accounts_list, &account_key)),
    );
    pref(smtp_list.into(), quoted(&append(smtp_list, &smtp)));
    // The user's defaults stay theirs; a first account or server becomes the default.
    let listed = |list: &str| prefs.get(list).is_some_and(|v| !v.trim().is_empty());
    if !prefs.contains_key("mail.accountmanager.defaultaccount") && !listed(accounts_list) {
        pref(
            "mail.accountmanager.defaultaccount".into(),
            quoted(&account_key),
        );
    }
    if !prefs.contains_key("mail.smtp.defaultserver") && !listed(smtp_list) {
        pref("mail.smtp.defaultserver".into(), quoted(&smtp));
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "// Added by mailsite-helper on {date}: the mail account for \"{}\" ({account_key}).",
        escape(&account.email)
    );
    text.push_str(
        "// Thunderbird applies user.js at every start; once it has started with this \
         account, these lines may be removed (prefs.js keeps them).\n",
    );
    for (name, value) in lines {
        let _ = writeln!(text, "user_pref({}, {value});", quoted(&name));
    }
    let _ = writeln!(text, "// End of the mailsite-helper account {account_key}.");
    Ok(Plan {
        user_js,
        account_key,
        text,
    })
}

/// Plans again and appends the block to `user.js` atomically, keeping what it held.
/// With `expected` (the text a preview showed), refuses if the plan is not that text.
pub fn write(profile: &Path, account: &Account, expected: Option<&str>) -> Result<Plan, TbError> {
    let plan = preview(profile, account)?;
    if expected.is_some_and(|e| e != plan.text) {
        return Err(TbError::Changed);
    }
    let io = |path: &Path, e: std::io::Error| TbError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut content = match std::fs::read(&plan.user_js) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&plan.user_js, e)),
    };
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    if !content.is_empty() {
        content.push(b'\n');
    }
    content.extend_from_slice(plan.text.as_bytes());
    let tmp = profile.join(format!(
        "user.js.mailsite-helper-{}.tmp",
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        if let Ok(meta) = std::fs::metadata(&plan.user_js) {
            let _ = f.set_permissions(meta.permissions());
        }
        f.write_all(&content).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &plan.user_js).map_err(|e| io(&plan.user_js, e))?;
        // The rename itself, durable (where a folder can be opened and synced).
        if let Ok(dir) = std::fs::File::open(profile) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(protocol: &str, host: &str, port: u16, security: &str) -> Setting {
        Setting {
            protocol: protocol.into(),
            host: host.into(),
            port,
            security: security.into(),
            username: "alice".into(),
        }
    }

    fn settings() -> Vec<Setting> {
        vec![
            setting("imap", "maila.example.test", 993, "SSL"),
            setting("pop3", "maila.example.test", 995, "SSL"),
            setting("smtp", "outbox.example.test", 465, "SSL"),
            setting("smtp", "outbox.example.test", 587, "STARTTLS"),
        ]
    }

    fn account(email: &str, protocol: Option<Preference>) -> Account {
        Account::choose(email, Some("Alice A."), &settings(), protocol).unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mailsite-tb-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn escaping_keeps_hostile_text_inside_the_literal_and_parses_back() {
        let hostile = "a\"b\\c'd\n\r\t\u{7}\u{2028}\u{2029}</script>&é😀@x";
        let e = escape(hostile);
        assert!(e.is_ascii(), "{e}");
        assert!(!e.contains('\n') && !e.contains('\r') && !e.contains('<'));
        assert!(e.contains("\\u2028") && e.contains("\\u2029"));
        assert!(e.contains("\\\"") && e.contains("\\\\"));
        assert!(e.contains("\\ud83d\\ude00"), "{e}");
        // No unescaped quote ends the literal early: it parses back whole.
        let line = format!("user_pref(\"x\", \"{e}\");\nuser_pref(\"y\", 1);");
        let prefs = parse_prefs(&line);
        assert_eq!(prefs["x"], hostile);
        assert_eq!(prefs["y"], "1");
        assert_eq!(escape("alice@example.test"), "alice@example.test");
    }

    #[test]
    fn numbering_follows_an_existing_profile_and_keeps_its_accounts() {
        let dir = tempdir("numbering");
        std::fs::write(
            dir.join("prefs.js"),
            r#"// Mozilla User Preferences
// user_pref("mail.account.account99.server", "server99");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.account.account4.server", "server5");
user_pref("mail.account.account3.server", "server8");
user_pref("mail.account.account3.identities", "id2,id6");
user_pref("mail.identity.id3.smtpServer", "smtp4");
user_pref("mail.account.lastKey", 4);
user_pref("mail.accountmanager.accounts", "account1,account4,account2");
user_pref("mail.accountmanager.defaultaccount", "account1");
user_pref("mail.identity.id1.useremail", "bob@example.org");
user_pref("mail.identity.id3.useremail", "carol@example.org");
user_pref("mail.server.server1.hostname", "imap.example.org");
user_pref("mail.server.server2.hostname", "Local Folders");
user_pref("mail.server.server5.hostname", "pop.example.org");
user_pref("mail.smtpserver.smtp1.hostname", "smtp.example.org");
user_pref("mail.smtpserver.smtp2.hostname", "smtp2.example.org");
user_pref("mail.smtpservers", "smtp1,smtp2");
user_pref("mail.smtp.defaultserver", "smtp1");
"#,
        )
        .unwrap();
        let plan = plan(
            &dir,
            &account("alice@example.test", Some(Preference::Pop3)),
            "2025-01-02",
        )
        .unwrap();
        assert_eq!(plan.account_key, "account5");
        let t = &plan.text;
        assert!(
            t.starts_with("// Added by mailsite-helper on 2025-01-02"),
            "{t}"
        );
        for line in [
            r#"user_pref("mail.accountmanager.accounts", "account1,account4,account2,account5");"#,
            r#"user_pref("mail.smtpservers", "smtp1,smtp2,smtp5");"#,
            r#"user_pref("mail.account.account5.server", "server9");"#,
            r#"user_pref("mail.account.account5.identities", "id7");"#,
            r#"user_pref("mail.account.lastKey", 5);"#,
            r#"user_pref("mail.server.server9.type", "pop3");"#,
            r#"user_pref("mail.server.server9.hostname", "maila.example.test");"#,
            r#"user_pref("mail.server.server9.port", 995);"#,
            r#"user_pref("mail.server.server9.socketType", 3);"#,
            r#"user_pref("mail.server.server9.userName", "alice");"#,
            r#"user_pref("mail.server.server9.authMethod", 3);"#,
            r#"user_pref("mail.identity.id7.useremail", "alice@example.test");"#,
            r#"user_pref("mail.identity.id7.fullName", "Alice A.");"#,
            r#"user_pref("mail.identity.id7.smtpServer", "smtp5");"#,
            r#"user_pref("mail.identity.id7.valid", true);"#,
            r#"user_pref("mail.smtpserver.smtp5.hostname", "outbox.example.test");"#,
            r#"user_pref("mail.smtpserver.smtp5.port", 465);"#,
            r#"user_pref("mail.smtpserver.smtp5.try_ssl", 3);"#,
            r#"user_pref("mail.smtpserver.smtp5.username", "alice");"#,
        ] {
            assert!(t.contains(line), "missing {line} in\n{t}");
        }
        // The defaults the user has stay theirs; no password anywhere.
        assert!(!t.contains("defaultaccount") && !t.contains("smtp.defaultserver"));
        assert!(!t.to_lowercase().contains("password\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_profile_gets_account1_as_default() {
        let dir = tempdir("empty");
        let plan = preview(&dir, &account("alice@example.test", None)).unwrap();
        let t = &plan.text;
        assert!(t.contains(r#"user_pref("mail.accountmanager.accounts", "account1");"#));
        assert!(t.contains(r#"user_pref("mail.accountmanager.defaultaccount", "account1");"#));
        assert!(t.contains(r#"user_pref("mail.server.server1.type", "imap");"#));
        assert!(t.contains(r#"user_pref("mail.server.server1.port", 993);"#));
        assert!(t.contains(r#"user_pref("mail.smtp.defaultserver", "smtp1");"#));
        assert!(!dir.join("user.js").exists(), "a preview writes nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_running_thunderbird_is_refused() {
        let dir = tempdir("locked");
        #[cfg(unix)]
        std::os::unix::fs::symlink("127.0.1.1:+4242", dir.join("lock")).unwrap();
        #[cfg(not(unix))]
        std::fs::write(dir.join("parent.lock"), "").unwrap();
        let err = write(&dir, &account("alice@example.test", None), None).unwrap_err();
        assert!(matches!(err, TbError::Running(_)), "{err}");
        assert!(err.to_string().contains("close Thunderbird first"), "{err}");
        assert!(!dir.join("user.js").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writing_keeps_user_js_and_a_second_write_is_refused() {
        let dir = tempdir("write");
        let mine = "user_pref(\"mail.mine\", \"kept\");"; // no final newline
        std::fs::write(dir.join("user.js"), mine).unwrap();
        let acct = account("alice@example.test", None);
        let shown = preview(&dir, &acct).unwrap();
        let written = write(&dir, &acct, Some(&shown.text)).unwrap();
        let content = std::fs::read_to_string(dir.join("user.js")).unwrap();
        assert_eq!(content, format!("{mine}\n\n{}", shown.text));
        assert_eq!(written, shown);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());

        // Again, even with the address in other case: refused, nothing changed.
        let err = write(&dir, &account("Alice@Example.test", None), None).unwrap_err();
        assert!(matches!(err, TbError::Exists(..)), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.join("user.js")).unwrap(),
            content
        );

        // Another address goes after the first, keeping it in the list.
        let bob = account("bob@example.test", None);
        let plan = write(&dir, &bob, None).unwrap();
        assert_eq!(plan.account_key, "account2");
        assert!(
            plan.text
                .contains(r#"user_pref("mail.accountmanager.accounts", "account1,account2");"#)
        );
        // A preview that no longer matches the profile is not written.
        let err = write(&dir, &account("carol@example.test", None), Some("old")).unwrap_err();
        assert!(matches!(err, TbError::Changed), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn choosing_needs_the_protocol_and_smtp() {
        let only_imap = vec![setting("imap", "maila.example.test", 993, "SSL")];
        assert!(Account::choose("a@b.c", None, &only_imap, None).is_err());
        let err = Account::choose("a@b.c", None, &settings()[2..], Some(Preference::Imap));
        assert!(err.unwrap_err().to_string().contains("no imap server"));
        let a = account("a@b.c", Some(Preference::Pop3));
        assert_eq!((a.incoming.port, a.outgoing.port), (995, 465));
    }
}
