//! Servers: adding mailbox servers and sorters to the running site, draining them for
//! maintenance and bringing them back, and what their health checks find.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use mailsite_shared::config::Server;
use mailsite_shared::{ServerState, SiteMap};

use super::letters::{LetterChange, letter_changes};
use super::{Admin, Result, refused};
use crate::directory::{DirectoryError, Health};

/// Which kind of server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mailbox,
    Sorter,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mailbox => "mailbox",
            Kind::Sorter => "sorter",
        }
    }
}

/// One server as the interfaces list it.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub kind: Kind,
    pub server: Server,
    pub state: ServerState,
    /// What its health checks last found (`None`: never failed).
    pub health: Option<Health>,
}

/// A new server to add.
pub struct NewServer {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    pub kind: Kind,
    /// A mailbox server's own storage (default: the site's shared storage).
    pub storage: Option<PathBuf>,
}

/// What a state change did.
#[derive(Debug)]
pub struct StateChange {
    pub name: String,
    pub kind: Kind,
    pub state: ServerState,
    pub before: SiteMap,
    pub after: SiteMap,
    /// Its health checks fail: set up, it stays down until they pass.
    pub failing: Option<String>,
}

impl StateChange {
    /// Letters served elsewhere after the change.
    pub fn changes(&self) -> Vec<LetterChange> {
        letter_changes(&self.before, &self.after)
    }
}

/// Which kind of server of the site `name` is.
pub fn kind_of(map: &SiteMap, name: &str) -> Option<Kind> {
    if map.config.mailbox_index(name).is_some() {
        Some(Kind::Mailbox)
    } else if map.config.sorters.iter().any(|s| s.name == name) {
        Some(Kind::Sorter)
    } else {
        None
    }
}

/// The state of a server of either kind.
pub fn state_of(map: &SiteMap, name: &str) -> Option<ServerState> {
    match kind_of(map, name)? {
        Kind::Mailbox => map.mailbox_state(name),
        Kind::Sorter => map
            .config
            .sorters
            .iter()
            .position(|s| s.name == name)
            .map(|i| map.sorter_states[i]),
    }
}

/// Why draining `name` would leave its kind with no server up, and what users would
/// see; `None` when another server of its kind is up to take over.
pub fn last_up_warning(map: &SiteMap, name: &str) -> Option<String> {
    let domain = &map.config.domain;
    match kind_of(map, name)? {
        Kind::Mailbox => {
            let others_up = map
                .config
                .mailboxes
                .iter()
                .any(|s| s.name != name && map.mailbox_state(&s.name) == Some(ServerState::Up));
            let served = (0..mailsite_shared::config::BUCKETS)
                .filter(|&b| map.owner(b).name == name)
                .count();
            (!others_up).then(|| {
                format!(
                    "{name} is the last mailbox server up: no other server that is up can take over its {served} letter(s), so its users keep depending on it. Stopping it for maintenance leaves them without their mail: their clients say the server cannot be reached until it is back."
                )
            })
        }
        Kind::Sorter => {
            let others_up = map
                .config
                .sorters
                .iter()
                .zip(&map.sorter_states)
                .any(|(s, state)| s.name != name && *state == ServerState::Up);
            (!others_up).then(|| {
                format!(
                    "{name} is the last sorter up: outbox.{domain} keeps pointing at every sorter (a name must resolve), and stopping them leaves users unable to send mail, and mail from other sites waiting at their senders."
                )
            })
        }
    }
}

impl Admin {
    /// Every server of the site (configured and added), its state and health.
    pub async fn servers(&self) -> Result<Vec<ServerView>> {
        let map = self.site_map().await?;
        let mut health = self.directory.server_health().await?;
        let mailboxes = map
            .config
            .mailboxes
            .iter()
            .zip(&map.mailbox_states)
            .map(|(s, st)| (Kind::Mailbox, s, *st));
        let sorters = map
            .config
            .sorters
            .iter()
            .zip(&map.sorter_states)
            .map(|(s, st)| (Kind::Sorter, s, *st));
        Ok(mailboxes
            .chain(sorters)
            .map(|(kind, server, state)| ServerView {
                kind,
                server: server.clone(),
                state,
                health: health.remove(&server.name),
            })
            .collect())
    }

    /// What the health checks last found, by server name.
    pub async fn server_health(&self) -> Result<HashMap<String, Health>> {
        Ok(self.directory.server_health().await?)
    }

    /// Adds a server to the running site; every node knows it within a poll. A new
    /// mailbox server serves no letter until letters move to it ([`Admin::rebalance`]).
    pub async fn add_server(&self, new: NewServer) -> Result<()> {
        let name = new.name.to_ascii_lowercase();
        if new.kind == Kind::Sorter && new.storage.is_some() {
            return Err(refused(
                "only mailbox servers store mail: leave --storage out for a sorter",
            ));
        }
        let server = Server {
            name,
            addresses: new.addresses,
            storage: new.storage,
        };
        Ok(self
            .directory
            .add_server(&self.config, new.kind == Kind::Mailbox, &server)
            .await?)
    }

    /// Drains a server (maintenance) or brings it back (up). Draining the last server
    /// of its kind that is up is refused, with what users would see, unless `force`.
    pub async fn set_server_state(
        &self,
        name: &str,
        state: ServerState,
        force: bool,
    ) -> Result<StateChange> {
        let name = name.trim().to_ascii_lowercase();
        if state == ServerState::Down {
            return Err(refused(
                "down is what health checks find, not a state an operator sets: use maintenance or up",
            ));
        }
        let before = self.site_map().await?;
        let Some(kind) = kind_of(&before, &name) else {
            return Err(DirectoryError::NoServer(name).into());
        };
        let already = state_of(&before, &name) == Some(ServerState::Maintenance);
        if state == ServerState::Maintenance
            && !force
            && !already
            && let Some(warning) = last_up_warning(&before, &name)
        {
            return Err(refused(format!(
                "{warning} Drain it anyway with --force (the console asks to confirm the warning)."
            )));
        }
        self.directory
            .set_server_state(&self.config, &name, state)
            .await?;
        let after = self.site_map().await?;
        let failing = match self.directory.server_health().await?.remove(&name) {
            Some(h) if h.failing && state == ServerState::Up => Some(h.detail),
            _ => None,
        };
        Ok(StateChange {
            name,
            kind,
            state,
            before,
            after,
            failing,
        })
    }
}
