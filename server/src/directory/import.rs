//! Bulk user import (`mailsite user import`): CSV with a header, or JSON lines, one user
//! per row with `username`, optional `name` and `prefer` (imap or pop3), and either a
//! plain `password` (hashed here, as `user add` does) or a `password_hash`: an argon2
//! PHC string, so that 100,000 users move from another directory in seconds instead of
//! the hours 100,000 hashings take.
//!
//! Every row is checked before anything is written and each bad one is reported with
//! its line number and the fix, so a file goes in whole or not at all. The users then go
//! in by batches of [`BATCH`], each one transaction that also logs its changes, so that
//! running nodes follow an import as they follow single changes.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::valid_username;
use serde::Deserialize;
use sqlx::Row;

use super::changes::{self, Subject, list, placeholders};
use super::{Directory, DirectoryError, Result, now, password};

/// Users written per transaction.
pub const BATCH: usize = 500;

/// The columns a file may have, as the fix for an unknown one names them.
const COLUMNS: &str = "username, name, prefer, password, password_hash";

/// How the file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line naming the columns.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format a file's name says (`.csv`; `.jsonl`, `.ndjson`, `.json`), else what
    /// its text looks like (JSON lines start with `{`).
    pub fn guess(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ if text.trim_start().starts_with('{') => Format::Jsonl,
            _ => Format::Csv,
        }
    }
}

/// How a user's password is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    Hash(String),
}

/// A row that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub line: usize,
    pub username: String,
    pub display_name: String,
    pub preference: Preference,
    pub secret: Secret,
}

/// A row that cannot be imported, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: usize,
    pub problem: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// A row as the file gives it (empty CSV fields count as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    username: Option<String>,
    name: Option<String>,
    prefer: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
}

/// Reads and checks every row; either all of them are good, or here is each bad one.
pub fn parse(input: impl Read, format: Format) -> std::result::Result<Vec<NewUser>, Vec<BadRow>> {
    let rows = match format {
        Format::Csv => csv_rows(input),
        Format::Jsonl => jsonl_rows(input),
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, fields) in rows {
        let checked = fields.and_then(|fields| check(line, fields));
        match checked {
            Ok(user) => match seen.get(&user.username) {
                Some(first) => bad.push(BadRow {
                    line,
                    problem: format!(
                        "{} is also on line {first}: keep one row per user",
                        user.username
                    ),
                }),
                None => {
                    seen.insert(user.username.clone(), line);
                    good.push(user);
                }
            },
            Err(problem) => bad.push(BadRow { line, problem }),
        }
    }
    match bad.is_empty() {
        true => Ok(good),
        false => Err(bad),
    }
}

type RawRow = (usize, std::result::Result<Fields, String>);

fn csv_rows(input: impl Read) -> Vec<RawRow> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .flexible(true)
        .from_reader(input);
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(e) => return vec![(1, Err(format!("cannot read the header line: {e}")))],
    };
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !COLUMNS.split(", ").any(|c| c == *h))
        .collect();
    let has = |column: &str| headers.iter().any(|h| h == column);
    let header_problem = if !unknown.is_empty() {
        Some(format!(
            "unknown column(s) {}: the header names some of {COLUMNS}",
            unknown.join(", ")
        ))
    } else if !has("username") || !(has("password") || has("password_hash")) {
        Some(format!(
            "the header must name username and password or password_hash (of {COLUMNS}), e.g. username,name,prefer,password"
        ))
    } else {
        None
    };
    if let Some(problem) = header_problem {
        return vec![(1, Err(problem))];
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let row = match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                (line, csv_fields(&headers, &record))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                (line, Err(format!("not CSV: {e}")))
            }
        };
        rows.push(row);
    }
    rows
}

/// The fields of one record. A PHC string holds commas (`m=19456,t=2,p=1`): in a last
/// `password_hash` column it may stand unquoted, and the extra fields are joined again.
fn csv_fields(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> std::result::Result<Fields, String> {
    let hash_last = headers.iter().next_back() == Some("password_hash");
    let (expected, len) = (headers.len(), record.len());
    if len < expected || (len > expected && !hash_last) {
        return Err(format!(
            "{len} field(s) where the header has {expected}: quote a field that holds a comma (\"Liddell, Alice\")"
        ));
    }
    let mut fields = Fields::default();
    for (index, column) in headers.iter().enumerate() {
        let value = match index + 1 == expected && hash_last {
            true => record.iter().skip(index).collect::<Vec<_>>().join(","),
            false => record[index].to_string(),
        };
        let value = (!value.is_empty()).then_some(value);
        match column {
            "username" => fields.username = value,
            "name" => fields.name = value,
            "prefer" => fields.prefer = value,
            "password" => fields.password = value,
            _ => fields.password_hash = value,
        }
    }
    Ok(fields)
}

fn jsonl_rows(mut input: impl Read) -> Vec<RawRow> {
    let mut text = String::new();
    if let Err(e) = input.read_to_string(&mut text) {
        return vec![(1, Err(format!("cannot read the file as UTF-8 text: {e}")))];
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let fields = serde_json::from_str::<Fields>(line)
                .map_err(|e| format!("not a JSON object of {COLUMNS} (all strings): {e}"));
            (index + 1, fields)
        })
        .collect()
}

/// Checks one row: what `user add` would refuse is refused here too.
fn check(line: usize, fields: Fields) -> std::result::Result<NewUser, String> {
    let username = fields
        .username
        .ok_or("no username: every row needs one")?
        .trim()
        .to_lowercase();
    if !valid_username(&username) {
        return Err(DirectoryError::BadUsername(username).to_string());
    }
    let preference = match fields.prefer.as_deref().map(str::trim) {
        None | Some("") => Preference::Imap,
        Some(p) => Preference::parse(&p.to_ascii_lowercase()).ok_or_else(|| {
            format!("prefer is {p:?}: use imap or pop3 (or leave it empty for imap)")
        })?,
    };
    let secret = match (fields.password, fields.password_hash) {
        (Some(_), Some(_)) => {
            return Err("both a password and a password_hash: give one of them".to_string());
        }
        (None, None) => return Err("no password: give a password or a password_hash".to_string()),
        (Some(p), None) if p.chars().count() < 8 => {
            return Err("the password is too short: use at least 8 characters".to_string());
        }
        (Some(p), None) => Secret::Password(p),
        (None, Some(h)) if !password::is_argon2(h.trim()) => {
            return Err(
                "password_hash is not an argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash): give the hash as argon2 wrote it, or a plain password instead"
                    .to_string(),
            );
        }
        (None, Some(h)) => Secret::Hash(h.trim().to_string()),
    };
    Ok(NewUser {
        line,
        username,
        display_name: fields.name.unwrap_or_default(),
        preference,
        secret,
    })
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub added: usize,
    /// Users already there whose name, preference and password were replaced (`update`).
    pub updated: usize,
    /// Users already there and left as they were (without `update`).
    pub skipped: Vec<String>,
}

impl Directory {
    /// Writes checked users by batches; `progress(done, total)` after each batch. Users
    /// already in the directory are updated when `update`, else skipped.
    pub async fn import_users(
        &self,
        users: Vec<NewUser>,
        update: bool,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Summary> {
        let mut summary = Summary::default();
        let total = users.len();
        let mut done = 0;
        for batch in users.chunks(BATCH) {
            self.import_batch(batch, update, &mut summary).await?;
            done += batch.len();
            progress(done, total);
        }
        Ok(summary)
    }

    async fn import_batch(
        &self,
        batch: &[NewUser],
        update: bool,
        summary: &mut Summary,
    ) -> Result<()> {
        // Hash outside the transaction: it takes long, and needs no database.
        let plain: Vec<String> = batch
            .iter()
            .filter_map(|u| match &u.secret {
                Secret::Password(p) => Some(p.clone()),
                Secret::Hash(_) => None,
            })
            .collect();
        let mut hashed = password::hash_many(plain).await?.into_iter();
        let hashes: Vec<String> = batch
            .iter()
            .map(|u| match &u.secret {
                Secret::Password(_) => hashed.next().unwrap_or_default(),
                Secret::Hash(h) => h.clone(),
            })
            .collect();

        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT username FROM users WHERE username IN ({})",
            list(batch.len())
        );
        let mut query = sqlx::query(&sql);
        for user in batch {
            query = query.bind(user.username.clone());
        }
        let mut existing = std::collections::HashSet::new();
        for row in query.fetch_all(&mut *tx).await? {
            existing.insert(row.try_get::<String, _>(0)?);
        }

        let (old, new): (Vec<_>, Vec<_>) = batch
            .iter()
            .zip(hashes)
            .partition(|(u, _)| existing.contains(&u.username));
        let mut changed: Vec<&str> = Vec::with_capacity(batch.len());
        if !new.is_empty() {
            let sql = format!(
                "INSERT INTO users (username, password_hash, display_name, preference, enabled, operator, created_at) \
                 VALUES {} ON CONFLICT (username) DO NOTHING",
                placeholders(new.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            let at = now();
            for (user, hash) in &new {
                query = query
                    .bind(user.username.clone())
                    .bind(hash.clone())
                    .bind(user.display_name.clone())
                    .bind(user.preference.as_str())
                    .bind(1_i64)
                    .bind(0_i64)
                    .bind(at);
            }
            summary.added += query.execute(&mut *tx).await?.rows_affected() as usize;
            changed.extend(new.iter().map(|(u, _)| u.username.as_str()));
        }
        for (user, hash) in &old {
            if !update {
                summary.skipped.push(user.username.clone());
                continue;
            }
            sqlx::query(
                "UPDATE users SET password_hash = $1, display_name = $2, preference = $3 WHERE username = $4",
            )
            .bind(hash.clone())
            .bind(user.display_name.clone())
            .bind(user.preference.as_str())
            .bind(user.username.clone())
            .execute(&mut *tx)
            .await?;
            summary.updated += 1;
            changed.push(&user.username);
        }
        changes::record(&mut tx, Subject::User, &changed).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::changes::Pending;
    use crate::directory::tests::temp_directory;

    fn problems(text: &str, format: Format) -> Vec<String> {
        parse(text.as_bytes(), format)
            .expect_err("some rows are bad")
            .iter()
            .map(BadRow::to_string)
            .collect()
    }

    #[test]
    fn csv_rows_become_users() {
        let text = "username, name, prefer, password, password_hash\n\
                    Alice,\"Liddell, Alice\",pop3,wonderland-1,\n\
                    bob,,,,$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$6Hf0Nn5mMGtmYNr3uu0QXQ\n";
        let users = parse(text.as_bytes(), Format::Csv).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].username, "alice");
        assert_eq!(users[0].display_name, "Liddell, Alice");
        assert_eq!(users[0].preference, Preference::Pop3);
        assert_eq!(users[0].secret, Secret::Password("wonderland-1".into()));
        assert_eq!((users[1].line, users[1].preference), (3, Preference::Imap));
        assert!(matches!(users[1].secret, Secret::Hash(_)));
    }

    #[test]
    fn each_bad_row_is_named_by_line_with_its_fix() {
        let text = "username,name,prefer,password\n\
                    alice,,,wonderland-1\n\
                    ../etc,,,wonderland-1\n\
                    carol,,smtp,wonderland-1\n\
                    dave,,,short\n\
                    ALICE,,,wonderland-2\n\
                    erin,too,many,fields,here\n\
                    frank,,,\n";
        let found = problems(text, Format::Csv);
        let expected = [
            ("line 3: ", "not a valid username"),
            ("line 4: ", "use imap or pop3"),
            ("line 5: ", "too short"),
            ("line 6: ", "alice is also on line 2"),
            ("line 7: ", "quote a field that holds a comma"),
            ("line 8: ", "give a password or a password_hash"),
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (problem, (line, says)) in found.iter().zip(expected) {
            assert!(
                problem.starts_with(line) && problem.contains(says),
                "{problem}"
            );
        }
        assert!(
            problems("user,password\nalice,x\n", Format::Csv)[0].contains("unknown column(s) user")
        );
        assert!(
            problems("username,name\nalice,A\n", Format::Csv)[0]
                .contains("must name username and password")
        );
    }

    #[test]
    fn json_lines_count_blank_lines_too() {
        let text = "{\"username\": \"alice\", \"password\": \"wonderland-1\", \"prefer\": \"pop3\"}\n\
                    \n\
                    {\"username\": \"bob\", \"password_hash\": \"not-a-hash\"}\n\
                    {\"username\": \"carol\", \"pasword\": \"wonderland-1\"}\n\
                    not json\n";
        let found = problems(text, Format::Jsonl);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("line 3: password_hash is not an argon2 PHC string"));
        assert!(found[1].starts_with("line 4: not a JSON object") && found[1].contains("pasword"));
        assert!(found[2].starts_with("line 5: not a JSON object"));
        let good = parse(&text.as_bytes()[..text.find('\n').unwrap()], Format::Jsonl).unwrap();
        assert_eq!(good[0].preference, Preference::Pop3);
    }

    #[test]
    fn the_format_comes_from_the_name_or_the_text() {
        let guess = |name: &str, text: &str| Format::guess(Path::new(name), text);
        assert_eq!(guess("users.csv", "{"), Format::Csv);
        assert_eq!(guess("users.jsonl", "username"), Format::Jsonl);
        assert_eq!(guess("-", "  {\"username\": \"a\"}"), Format::Jsonl);
        assert_eq!(guess("-", "username,password"), Format::Csv);
    }

    #[tokio::test]
    async fn imports_in_batches_skipping_or_updating_who_is_there() {
        let (d, _, dir) = temp_directory().await;
        d.add_user("user7", "old-password", "Seven", Preference::Imap)
            .await
            .unwrap();
        let g0 = d.generation().await.unwrap();
        let hash = password::hash("shared-password").await.unwrap();
        let rows: String = (0..BATCH + 20)
            .map(|n| format!("user{n},User {n},pop3,,{hash}\n"))
            .collect();
        let text = format!("username,name,prefer,password,password_hash\n{rows}");
        let users = parse(text.as_bytes(), Format::Csv).unwrap();
        let mut seen = Vec::new();
        let summary = d
            .import_users(users.clone(), false, |done, total| seen.push((done, total)))
            .await
            .unwrap();
        assert_eq!(summary.added, BATCH + 19);
        assert_eq!(summary.skipped, ["user7"]);
        assert_eq!(seen, [(BATCH, BATCH + 20), (BATCH + 20, BATCH + 20)]);
        assert!(
            d.verify_password("user300", "shared-password")
                .await
                .unwrap()
        );
        assert_eq!(d.user("user7").await.unwrap().display_name, "Seven");
        // Every added user is in the change log, for the nodes to follow.
        match d.changes_after(g0).await.unwrap() {
            Pending::Changes { changes, .. } => assert_eq!(changes.len(), BATCH + 19),
            other => panic!("{other:?}"),
        }

        let again = "username,password\nuser7,new-password\nnewcomer,new-password\n";
        let summary = d
            .import_users(
                parse(again.as_bytes(), Format::Csv).unwrap(),
                true,
                |_, _| {},
            )
            .await
            .unwrap();
        assert_eq!((summary.added, summary.updated), (1, 1));
        assert!(summary.skipped.is_empty());
        assert!(d.verify_password("user7", "new-password").await.unwrap());
        assert!(d.verify_password("newcomer", "new-password").await.unwrap());
        std::fs::remove_dir_all(dir).ok();
    }
}
