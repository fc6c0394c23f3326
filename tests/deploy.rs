//! The examples in `deploy/` stay true: every node file of the two-and-two site passes
//! `mailsite check-config`, all of them describe one site (only `[node]` differs), every
//! server is run by exactly one node, and the systemd unit starts a node from the file
//! of its instance, with the hardening and the paths those files need.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, run_command};
use mailsite_shared::{Role, SiteConfig};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The node files, by instance name (`mailbox1` for `deploy/site/mailbox1.toml`).
fn node_files() -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(deploy().join("site"))
        .expect("deploy/site")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    files
}

#[test]
fn every_node_file_passes_check_config() {
    let files = node_files();
    assert_eq!(files.len(), 5, "{files:?}");
    for (_, file) in files {
        let out = run_command(
            Command::new(BIN)
                .arg("--config")
                .arg(&file)
                .arg("check-config"),
            None,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(": ok"),
            "{}: {stdout}{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_node_files_describe_one_site_and_share_out_its_servers() {
    let mut site: Option<SiteConfig> = None;
    let mut runs: Vec<String> = Vec::new();
    let mut roles: Vec<Role> = Vec::new();
    for (instance, file) in node_files() {
        let config = SiteConfig::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            config
                .database
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres://")),
            "{instance}: a site of several machines keeps its directory on PostgreSQL"
        );
        assert!(
            config.tls.is_some(),
            "{instance}: one certificate for every node"
        );
        assert!(config.data_dir.is_absolute(), "{instance}");
        roles.extend(&config.roles);
        let servers: Vec<String> = config
            .mailboxes
            .iter()
            .chain(&config.sorters)
            .filter(|s| {
                let role = match config.mailbox_index(&s.name) {
                    Some(_) => Role::Mailbox,
                    None => Role::Sorter,
                };
                config.runs(role) && config.runs_server(&s.name)
            })
            .map(|s| s.name.clone())
            .collect();
        if !servers.is_empty() {
            assert_eq!(servers, [instance.as_str()], "{instance} runs its namesake");
        }
        runs.extend(servers);
        let mut same = config.clone();
        same.roles = Vec::new();
        same.node_servers = None;
        match &site {
            None => site = Some(same),
            Some(first) => assert_eq!(
                first, &same,
                "{instance}.toml describes another site than the other node files"
            ),
        }
    }
    runs.sort();
    assert_eq!(runs, ["mailbox1", "mailbox2", "sorter1", "sorter2"]);
    for role in [Role::Autoconfig, Role::Dns] {
        assert!(roles.contains(&role), "no node runs {role:?}");
    }
}

#[test]
fn the_systemd_unit_runs_a_node_from_its_file_with_hardening() {
    let unit = std::fs::read_to_string(deploy().join("systemd/mailsite@.service"))
        .expect("deploy/systemd/mailsite@.service");
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .collect()
    };
    let start = values("ExecStart").join(" ");
    assert!(
        start.contains("--config /etc/mailsite/%i.toml") && start.ends_with(" serve"),
        "{start}"
    );
    for (key, value) in [
        ("User", "mailsite"),
        ("ProtectSystem", "strict"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(values(key), [value], "{key}=");
    }
    // What the nodes write is writable.
    let writable = values("ReadWritePaths").join(" ");
    for (instance, file) in node_files() {
        let config = SiteConfig::load(&file).unwrap();
        let data = config.data_dir.to_string_lossy().into_owned();
        assert!(
            writable.split_whitespace().any(|p| data.starts_with(p)),
            "{instance}: {data} is not in ReadWritePaths={writable}"
        );
    }
}
