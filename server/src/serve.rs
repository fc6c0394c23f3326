//! `mailsite serve`: start the roles this node runs, say what was started, and stop
//! cleanly on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use mailsite_shared::{Role, SiteConfig};
use tokio::sync::watch;

use crate::autoconfig::App;
use crate::directory::{Directory, DirectoryError};
use crate::state::Site;

/// The demo account of the embedded default site.
pub const DEMO_USER: &str = "demo";

/// The demo account at this start.
enum Demo {
    /// Created now, with this password: the one start that prints it.
    Created(String),
    /// Made at an earlier start; its password is in the data directory's file.
    Exists,
}

/// The file that keeps the demo password for its owner (mode 0600).
fn demo_password_file(config: &SiteConfig) -> std::path::PathBuf {
    config.data_dir.join("demo-password")
}

/// Creates the demo account on first start. Its password is printed then, and kept in
/// the data directory, readable by its owner only; later starts print where it is, not
/// the password, so that it does not end up in every log that captures standard output.
async fn ensure_demo(config: &SiteConfig, dir: &Directory) -> anyhow::Result<Demo> {
    let file = demo_password_file(config);
    match dir.user(DEMO_USER).await {
        Ok(_) => Ok(Demo::Exists),
        Err(DirectoryError::NoUser(_)) => {
            use rand::Rng;
            let password: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(16)
                .map(char::from)
                .collect();
            dir.add_user(DEMO_USER, &password, "Demo User", Default::default())
                .await?;
            write_private(&file, &password)?;
            Ok(Demo::Created(password))
        }
        Err(e) => Err(e.into()),
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{text}")?;
    f.sync_all()?;
    Ok(())
}

/// Warns about data that others on this machine can read or change: files kept from
/// before mailsite wrote with a strict umask, or loosened by hand. It looks at the data
/// directory, what it holds directly, the TLS folder and each storage root, not at every
/// message (a site's mail can be millions of files).
fn warn_loose_modes(config: &SiteConfig) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = &config.data_dir;
        let mut paths = vec![data.clone()];
        for folder in [data.clone(), data.join("tls")] {
            if let Ok(entries) = std::fs::read_dir(&folder) {
                paths.extend(entries.flatten().map(|e| e.path()));
            }
        }
        paths.extend(config.mailboxes.iter().map(|m| config.mail_root(&m.name)));
        paths.sort();
        paths.dedup();
        for path in paths {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if meta.file_type().is_symlink() || mode & 0o077 == 0 {
                continue;
            }
            let fix = if meta.is_dir() {
                format!("chmod -R go-rwx {}", path.display())
            } else {
                format!("chmod 600 {}", path.display())
            };
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "others on this machine can read (or change) this mailsite data; run: {fix}"
            );
        }
    }
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn serve(config: SiteConfig, embedded: bool) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let directory = Directory::open(&config).await?;
    warn_loose_modes(&config);
    let demo = if embedded {
        Some(ensure_demo(&config, &directory).await?)
    } else {
        None
    };
    let site = Site::load(config.clone(), directory).await?;
    site.spawn_watcher();
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut started = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();

    if config.runs(Role::Autoconfig) {
        let addr = config.http_listen;
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(16);
        let listeners = crate::http::bind(addr, threads).with_context(|| {
            format!("cannot listen for HTTP on {addr}: is another mailsite (or another web server) running there? Set [http] listen in the configuration")
        })?;
        let app = App::new(site.clone(), ready.clone());
        let console = crate::console::Console::new(config.clone(), app.clone());
        let router = crate::autoconfig::counted(
            crate::autoconfig::router(app.clone()).merge(crate::console::router(console)),
            site.metrics.clone(),
        );
        let thread = crate::http::serve(listeners, app, router, stop_rx.clone())
            .context("cannot start the HTTP threads")?;
        tasks.spawn(async move {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(result)) => result.context("the HTTP service failed"),
                _ => Err(anyhow::anyhow!("an HTTP thread panicked")),
            }
        });
        started.push(format!(
            "autoconfig  http://{addr}/  (Thunderbird, Autodiscover, Apple profiles, /metrics; helpdesk console /console)"
        ));
    }
    if config.runs(Role::Dns) {
        let mut dns = crate::dns::start(&site, stop_rx.clone()).await?;
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            tokio::select! {
                r = dns.tcp.block_until_done() => r.context("the DNS service failed"),
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    let _ = dns.tcp.shutdown_gracefully().await;
                    while dns.udp.join_next().await.is_some() {}
                    Ok(())
                }
            }
        });
        started.push(format!(
            "dns         {} udp+tcp, authoritative for {}",
            config.dns_listen,
            config.domains().collect::<Vec<_>>().join(", ")
        ));
    }
    if config.runs(Role::Mailbox) {
        // One store per mail root: servers sharing the site's storage share one (its
        // caches and locks), a server with storage of its own gets its own, beside the
        // first on the same database (one writer queue, wake-ups across them).
        let first_store = crate::mailbox::store::Store::for_site(&config, &site.directory);
        let mut stores: std::collections::HashMap<
            std::path::PathBuf,
            crate::mailbox::store::Store,
        > = std::collections::HashMap::new();
        let tls =
            crate::tls::acceptor(&config).context("cannot set up TLS for the mailbox servers")?;
        let mut listening = Vec::new();
        for server in config
            .mailboxes
            .iter()
            .filter(|s| config.runs_server(&s.name))
        {
            let mailbox = crate::mailbox::MailboxServer {
                name: server.name.clone(),
                hostname: format!("{}.{}", server.name, config.domain),
                site: site.clone(),
                store: stores
                    .entry(config.mail_root(&server.name))
                    .or_insert_with_key(|root| first_store.beside(root.clone()))
                    .clone(),
                tls: Some(tls.clone()),
                sieve: std::sync::Arc::new(crate::mailbox::sieve::Engine::new(&format!(
                    "{}.{}",
                    server.name, config.domain
                ))),
            };
            for ip in &server.addresses {
                for (protocol, port) in [
                    ("LMTP", config.ports.lmtp),
                    ("POP3", config.ports.pop3),
                    ("POP3S", config.ports.pop3s),
                    ("IMAP", config.ports.imap),
                    ("IMAPS", config.ports.imaps),
                    ("ManageSieve", config.ports.managesieve),
                ] {
                    let addr = std::net::SocketAddr::new(*ip, port);
                    let listener =
                        tokio::net::TcpListener::bind(addr).await.with_context(|| {
                            format!("cannot listen for {protocol} on {addr} ({})", server.name)
                        })?;
                    let stop = stop_rx.clone();
                    let m = mailbox.clone();
                    match protocol {
                        "LMTP" => tasks.spawn(crate::mailbox::lmtp::run(listener, m, stop)),
                        "POP3" => tasks.spawn(crate::mailbox::pop3::run(listener, m, false, stop)),
                        "POP3S" => tasks.spawn(crate::mailbox::pop3::run(listener, m, true, stop)),
                        "IMAP" => tasks.spawn(crate::mailbox::imap::run(listener, m, false, stop)),
                        "ManageSieve" => {
                            tasks.spawn(crate::mailbox::managesieve::run(listener, m, stop))
                        }
                        _ => tasks.spawn(crate::mailbox::imap::run(listener, m, true, stop)),
                    };
                    if protocol == "LMTP" {
                        let p = config.ports;
                        listening.push(format!(
                            "{} {ip}: IMAP {}/{} (TLS), POP3 {}/{} (TLS), LMTP {}, ManageSieve {}",
                            server.name, p.imap, p.imaps, p.pop3, p.pop3s, p.lmtp, p.managesieve
                        ));
                    }
                }
            }
        }
        started.push(format!(
            "mailbox     {}",
            listening.join("\n              ")
        ));
        if config.tls.is_none() {
            started.push(format!(
                "tls         site CA {} (trust it to connect without warnings)",
                crate::tls::ca_file(&config).display()
            ));
        }
    }
    if config.runs(Role::Sorter) {
        let tls = crate::tls::acceptor(&config).context("cannot set up TLS for the sorters")?;
        // The sorters start every sorter of the configuration they are given: give
        // them this node's.
        let mut own = (*config).clone();
        own.sorters.retain(|s| config.runs_server(&s.name));
        let lines = crate::sorter::start(&own, &site, tls, &mut tasks, &stop_rx).await?;
        started.push(format!("sorter      {}", lines.join("\n              ")));
    }
    if config.runs(Role::Dns) {
        // Started once this node's own servers listen, so that it never finds them down.
        if config.health.enabled {
            tasks.spawn(crate::health::run(site.clone(), stop_rx.clone()));
            let h = config.health;
            started.push(format!(
                "health      every mailbox server and sorter every {} ms; down after {} failed checks, up after {} passed",
                h.interval_ms, h.down_after, h.up_after
            ));
        } else {
            tokio::spawn(crate::health::forget(site.clone()));
        }
    }
    println!(
        "mailsite {} serving {} ({})",
        env!("CARGO_PKG_VERSION"),
        config.domain,
        config.name
    );
    for line in &started {
        println!("  {line}");
    }
    println!("  data        {}", config.data_dir.display());
    if embedded {
        match &demo {
            Some(Demo::Created(password)) => println!(
                "  demo user   {DEMO_USER}@{} password {password} (shown once; kept in {})",
                config.domain,
                demo_password_file(&config).display()
            ),
            _ => println!(
                "  demo user   {DEMO_USER}@{} (its password is in {}, readable by its owner only)",
                config.domain,
                demo_password_file(&config).display()
            ),
        }
        println!(
            "  try         curl 'http://{}/mail/config-v1.1.xml?emailaddress=demo@{}'",
            config.http_listen, config.domain
        );
        println!(
            "              dig @{} -p {} maild.{} A",
            config.dns_listen.ip(),
            config.dns_listen.port(),
            config.domain
        );
    }
    ready.store(true, Ordering::Release);
    tracing::info!(domain = %config.domain, "mailsite started");

    tokio::select! {
        _ = stop_signal() => tracing::info!("stopping"),
        Some(result) = tasks.join_next() => {
            match result {
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(anyhow::anyhow!("a service stopped: {e}")),
                Ok(Ok(())) => {}
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}
