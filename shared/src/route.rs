//! Letter routing: the one place that answers "which alias, which server" for an
//! address. Every role asks [`SiteMap::route`]; nothing else computes an owner.
//!
//! Users are sharded by the first letter of the username. Each letter has a home
//! server (from the configuration's letter map, or an operator's `letter move`); when
//! the home server is in maintenance or down, the letter is served by another server
//! that is up, so clients that only know `mail<letter>.<domain>` never change settings.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::{BUCKETS, Server, SiteConfig, valid_domain};

/// The longest address accepted (RFC 5321's path limit less the angle brackets).
pub const MAX_ADDRESS: usize = 254;
/// The longest local part accepted (RFC 5321).
pub const MAX_LOCAL_PART: usize = 64;

/// The operating state of a mailbox server or sorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerState {
    #[default]
    Up,
    /// Drained by an operator: nothing is routed to it.
    Maintenance,
    /// Failed health checks: nothing is routed to it until it recovers.
    Down,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::Maintenance => "maintenance",
            ServerState::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<ServerState> {
        match s {
            "up" => Some(ServerState::Up),
            "maintenance" => Some(ServerState::Maintenance),
            "down" => Some(ServerState::Down),
            _ => None,
        }
    }
}

impl ServerState {
    /// The state the site acts on, from what an operator set (`None`: nothing) and
    /// what the health checks found (`None`: not checked, or passing).
    ///
    /// An operator's maintenance pins a server: health never overrides it, so a
    /// drained server stays drained however well it answers. Otherwise failing health
    /// checks make a server down, and passing ones let it serve again.
    pub fn effective(operator: Option<ServerState>, failing: bool) -> ServerState {
        match operator.unwrap_or_default() {
            ServerState::Up if failing => ServerState::Down,
            state => state,
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why an address cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is longer than {MAX_ADDRESS} characters")]
    TooLong,
    #[error("the address has no @domain part")]
    NoDomain,
    #[error("the part before @ is empty")]
    EmptyLocalPart,
    #[error("the part before @ is longer than {MAX_LOCAL_PART} characters")]
    LocalPartTooLong,
    #[error("the address contains spaces or control characters")]
    BadCharacter,
    #[error(
        "the domain is not a valid domain name (internationalised domains must be given in their xn-- form)"
    )]
    BadDomain,
    #[error("{0} is not a mail domain of this site")]
    ForeignDomain(String),
}

/// A syntactically checked address: local part and domain, both lower case.
///
/// The local part is lenient on purpose (clients send what users type; anything
/// printable but `@` is kept and escaped wherever it is echoed); usernames in the
/// directory are stricter, see [`valid_username`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        if input.chars().count() > MAX_ADDRESS {
            return Err(AddressError::TooLong);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::BadCharacter);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(AddressError::NoDomain)?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.chars().count() > MAX_LOCAL_PART {
            return Err(AddressError::LocalPartTooLong);
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(if domain.is_empty() {
                AddressError::NoDomain
            } else {
                AddressError::BadDomain
            });
        }
        Ok(Address {
            local: local.to_lowercase(),
            domain,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Whether `name` may be a username in the directory: 1 to 64 characters of lower-case
/// ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit. These names
/// are safe as file names and in every protocol without quoting.
pub fn valid_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LOCAL_PART
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !name.contains("..")
}

/// The directory username that a name typed to sign in stands for: `alice`, `Alice`,
/// or `alice@` one of the site's domains in any case; `None` for an address of another
/// domain, or for nothing.
///
/// Every sign-in (IMAP, POP3, SMTP AUTH, the helper's preference, the console) asks
/// this, so that a name one of them accepts, every one accepts. Surrounding whitespace
/// is dropped: no username contains any, and a name pasted into a form or sent by a
/// sloppy client must not be refused for it.
pub fn login_username(config: &SiteConfig, typed: &str) -> Option<String> {
    let typed = typed.trim();
    let local = match typed.rsplit_once('@') {
        Some((local, domain)) if config.serves_domain(&domain.to_ascii_lowercase()) => local,
        Some(_) => return None,
        None => typed,
    };
    Some(local.to_lowercase()).filter(|name| !name.is_empty())
}

/// The routing bucket of a username: 0..=25 for `a`..`z`, 26 for anything else
/// (digits, punctuation, non-ASCII letters).
pub fn bucket_of(username: &str) -> usize {
    username
        .bytes()
        .next()
        .and_then(letter_bucket)
        .unwrap_or(OTHER_BUCKET)
}

/// The bucket of everything that does not start with an ASCII letter.
pub const OTHER_BUCKET: usize = BUCKETS - 1;

/// The bucket of an ASCII letter, in either case.
pub fn letter_bucket(letter: u8) -> Option<usize> {
    letter
        .is_ascii_alphabetic()
        .then(|| usize::from(letter.to_ascii_lowercase() - b'a'))
}

/// The character that stands for a bucket in alias labels: `a`..`z`, `0` for the
/// other bucket. A username starting with it falls in that bucket.
pub fn bucket_char(bucket: usize) -> char {
    if bucket < OTHER_BUCKET {
        char::from(b'a' + bucket as u8)
    } else {
        '0'
    }
}

/// The printable name of a bucket: `a`..`z`, or `other`.
pub fn bucket_name(bucket: usize) -> String {
    if bucket < OTHER_BUCKET {
        bucket_char(bucket).to_string()
    } else {
        "other".to_string()
    }
}

/// Parses a bucket as operators name it: a letter `a`..`z`, or `other` / `0`.
pub fn parse_bucket(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_bytes() {
        [c] if c.is_ascii_lowercase() => letter_bucket(*c),
        [b'0'] => Some(OTHER_BUCKET),
        _ if s == "other" => Some(OTHER_BUCKET),
        _ => None,
    }
}

/// The alias label of a bucket: `maila`..`mailz`, `mail0` for other first characters.
pub fn alias_label(bucket: usize) -> String {
    format!("mail{}", bucket_char(bucket))
}

/// The alias host of a bucket in `domain`: `mail<letter>.<domain>`, the name clients
/// are configured with.
pub fn alias_host(bucket: usize, domain: &str) -> String {
    format!("{}.{domain}", alias_label(bucket))
}

/// The submission host of `domain`: `outbox.<domain>`, an alias for the sorters.
pub fn outbox_host(domain: &str) -> String {
    format!("outbox.{domain}")
}

/// Whether a server name would take one of the site's alias names (`mail` and one
/// character, or `outbox`) in the zone.
pub fn is_alias_label(name: &str) -> bool {
    name.len() == 5 && name.starts_with("mail") || name == "outbox"
}

/// Everything a role needs to know about where an address lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The normalised address, `username@domain`.
    pub address: String,
    /// The username (lower-cased local part): the login name.
    pub username: String,
    pub domain: String,
    pub bucket: usize,
    /// `a`..`z`, or `other`.
    pub letter: String,
    /// `mail<letter>.<domain>`: the host clients are configured with.
    pub alias: String,
    /// The mailbox server that serves the letter now.
    pub server: String,
    /// Its addresses.
    pub server_addresses: Vec<std::net::IpAddr>,
    /// The letter's home server (configuration or operator move), before failover.
    pub home: String,
    /// The home server's state, when it is not the serving server.
    pub home_state: ServerState,
    /// `outbox.<domain>`: where clients submit mail.
    pub outbox: String,
}

impl Route {
    /// Whether the letter is served by another server than its home.
    pub fn redirected(&self) -> bool {
        self.server != self.home
    }
}

/// The servers whose state is up, or all of them if none is.
fn up_or_all<'a>(servers: &'a [Server], states: &[ServerState]) -> Vec<&'a Server> {
    let up: Vec<&Server> = servers
        .iter()
        .zip(states)
        .filter(|(_, s)| **s == ServerState::Up)
        .map(|(s, _)| s)
        .collect();
    if up.is_empty() {
        servers.iter().collect()
    } else {
        up
    }
}

/// A DKIM public key the site publishes (RFC 6376 3.6) and when its domain signs
/// with it. Keys are rotated by time, so that every node agrees without talking: a
/// domain signs, per algorithm, with the published key whose `sign_from` is the
/// latest one already reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// `ed25519` (RFC 8463) or `rsa`.
    pub algorithm: String,
    /// The public key in base64: the record's `p=` (SubjectPublicKeyInfo for RSA, the
    /// 32 bytes for Ed25519).
    pub public_key: String,
    /// Unix seconds from which mail is signed with it.
    pub sign_from: i64,
    /// Unix seconds at which it leaves the zone; none while it is the newest.
    pub withdraw_at: Option<i64>,
}

impl DkimKey {
    /// The name of its TXT record.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The text of its TXT record.
    pub fn record(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm, self.public_key)
    }

    /// Whether the zone holds it at `now` (Unix seconds).
    pub fn published(&self, now: i64) -> bool {
        self.withdraw_at.is_none_or(|at| now < at)
    }

    /// The keys of `keys` that `domain` signs with at `now`: per algorithm, the
    /// published key with the latest `sign_from` already reached.
    pub fn signing<'k>(keys: &'k [DkimKey], domain: &str, now: i64) -> Vec<&'k DkimKey> {
        let mut chosen: Vec<&DkimKey> = Vec::new();
        for key in keys.iter().filter(|k| {
            k.domain.eq_ignore_ascii_case(domain) && k.sign_from <= now && k.published(now)
        }) {
            match chosen.iter_mut().find(|c| c.algorithm == key.algorithm) {
                Some(slot) if slot.sign_from <= key.sign_from => *slot = key,
                Some(_) => {}
                None => chosen.push(key),
            }
        }
        chosen
    }
}

/// The site as it is now: configuration, operator overrides and server states,
/// resolved into an owner for every letter. Cheap to read, rebuilt on every change.
#[derive(Debug, Clone)]
pub struct SiteMap {
    pub config: Arc<SiteConfig>,
    /// The DKIM keys the zone publishes or will withdraw (the directory's
    /// `dkim_keys`), oldest first.
    pub dkim: Arc<[DkimKey]>,
    /// A counter that grows with every change of the directory or site state.
    pub generation: i64,
    pub mailbox_states: Vec<ServerState>,
    pub sorter_states: Vec<ServerState>,
    /// Home server of each bucket (after operator overrides), index into `mailboxes`.
    home: [usize; BUCKETS],
    /// Serving server of each bucket (after maintenance and failures).
    owner: [usize; BUCKETS],
}

impl SiteMap {
    /// Resolves the letter map. `overrides` maps a bucket to a mailbox server name
    /// (unknown names are ignored: the configuration wins over stale rows);
    /// `states` maps server names to their state (absent means up).
    pub fn new(
        config: Arc<SiteConfig>,
        overrides: &[(usize, String)],
        states: &HashMap<String, ServerState>,
        generation: i64,
    ) -> SiteMap {
        let mut home = config.letters;
        for (bucket, server) in overrides {
            if let (Some(slot), Some(index)) = (home.get_mut(*bucket), config.mailbox_index(server))
            {
                *slot = index;
            }
        }
        let state_of = |s: &Server| states.get(&s.name).copied().unwrap_or_default();
        let mailbox_states: Vec<ServerState> = config.mailboxes.iter().map(state_of).collect();
        let sorter_states: Vec<ServerState> = config.sorters.iter().map(state_of).collect();

        // Letters whose home is not up are spread over the servers that are, in turn,
        // so that a drained server's load is shared rather than piled on one.
        let up: Vec<usize> = (0..config.mailboxes.len())
            .filter(|&i| mailbox_states[i] == ServerState::Up)
            .collect();
        let mut owner = home;
        let mut next = 0;
        if !up.is_empty() {
            for slot in owner.iter_mut() {
                if mailbox_states[*slot] != ServerState::Up {
                    *slot = up[next % up.len()];
                    next += 1;
                }
            }
        }
        SiteMap {
            config,
            dkim: Arc::new([]),
            generation,
            mailbox_states,
            sorter_states,
            home,
            owner,
        }
    }

    /// The site with no overrides and every server up.
    pub fn initial(config: Arc<SiteConfig>) -> SiteMap {
        SiteMap::new(config, &[], &HashMap::new(), 0)
    }

    /// The server that serves `bucket` now.
    pub fn owner(&self, bucket: usize) -> &Server {
        &self.config.mailboxes[self.owner[bucket]]
    }

    /// The home server of `bucket` (before failover).
    pub fn home(&self, bucket: usize) -> &Server {
        &self.config.mailboxes[self.home[bucket]]
    }

    pub fn mailbox_state(&self, name: &str) -> Option<ServerState> {
        let i = self.config.mailbox_index(name)?;
        Some(self.mailbox_states[i])
    }

    /// Whether the mailbox server `name` is out of service with its letters served by
    /// others (maintenance or down while another server is up): its open sessions
    /// should be told to reconnect through the aliases.
    pub fn drained(&self, name: &str) -> bool {
        self.mailbox_state(name)
            .is_some_and(|state| state != ServerState::Up)
            && self.serving_mailboxes().iter().all(|s| s.name != name)
    }

    /// The keys `domain` signs with at `now`: per algorithm, the published key with
    /// the latest `sign_from` already reached.
    pub fn dkim_signing(&self, domain: &str, now: i64) -> Vec<&DkimKey> {
        DkimKey::signing(&self.dkim, domain, now)
    }

    /// The next time (Unix seconds, after `now`) at which a DKIM key leaves the zone or
    /// starts signing: when the zone and the signers must look again.
    pub fn dkim_next_change(&self, now: i64) -> Option<i64> {
        self.dkim
            .iter()
            .flat_map(|k| [Some(k.sign_from), k.withdraw_at])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// The sorters that `outbox` points at: those that are up, or all of them if none is
    /// (a name that resolves to something beats one that resolves to nothing).
    pub fn outbox_sorters(&self) -> Vec<&Server> {
        up_or_all(&self.config.sorters, &self.sorter_states)
    }

    /// The mailbox servers that are up (all of them if none is).
    pub fn serving_mailboxes(&self) -> Vec<&Server> {
        up_or_all(&self.config.mailboxes, &self.mailbox_states)
    }

    /// Routes an address of one of the site's domains.
    pub fn route(&self, email: &str) -> Result<Route, AddressError> {
        let address = Address::parse(email)?;
        if !self.config.serves_domain(&address.domain) {
            return Err(AddressError::ForeignDomain(address.domain));
        }
        Ok(self.route_user(&address.local, &address.domain))
    }

    /// Routes a username at one of the site's domains (not checked here).
    pub fn route_user(&self, username: &str, domain: &str) -> Route {
        let bucket = bucket_of(username);
        let server = self.owner(bucket);
        let home_index = self.home[bucket];
        Route {
            address: format!("{username}@{domain}"),
            username: username.to_string(),
            domain: domain.to_string(),
            bucket,
            letter: bucket_name(bucket),
            alias: alias_host(bucket, domain),
            server: server.name.clone(),
            server_addresses: server.addresses.clone(),
            home: self.config.mailboxes[home_index].name.clone(),
            home_state: self.mailbox_states[home_index],
            outbox: outbox_host(domain),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteMap {
        SiteMap::initial(Arc::new(SiteConfig::embedded()))
    }

    #[test]
    fn routes_by_first_letter_case_insensitively() {
        let r = site().route("Alice@Example.TEST").unwrap();
        assert_eq!(r.username, "alice");
        assert_eq!(r.alias, "maila.example.test");
        assert_eq!(r.server, "mailbox1");
        assert_eq!(r.outbox, "outbox.example.test");
        let r = site().route("nora@example.test").unwrap();
        assert_eq!(r.alias, "mailn.example.test");
        assert_eq!(r.server, "mailbox2");
        assert!(!r.redirected());
    }

    #[test]
    fn digits_and_non_ascii_go_to_the_other_bucket() {
        for addr in ["1bob@example.test", "émile@example.test", "_x@example.test"] {
            let r = site().route(addr).unwrap();
            assert_eq!(r.letter, "other", "{addr}");
            assert_eq!(r.alias, "mail0.example.test");
            assert_eq!(r.server, "mailbox1");
        }
        assert_eq!(
            site().route("ÉMILE@example.test").unwrap().username,
            "émile"
        );
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        let s = site();
        assert_eq!(s.route(""), Err(AddressError::Empty));
        assert_eq!(s.route("alice"), Err(AddressError::NoDomain));
        assert_eq!(s.route("@example.test"), Err(AddressError::EmptyLocalPart));
        assert_eq!(s.route("a b@example.test"), Err(AddressError::BadCharacter));
        assert_eq!(s.route("a\n@example.test"), Err(AddressError::BadCharacter));
        assert_eq!(s.route(&"a".repeat(10_000)), Err(AddressError::TooLong));
        assert_eq!(
            s.route(&format!("{}@example.test", "a".repeat(65))),
            Err(AddressError::LocalPartTooLong)
        );
        assert_eq!(s.route("a@exa_mple.test"), Err(AddressError::BadDomain));
        assert_eq!(
            s.route("a@example.org"),
            Err(AddressError::ForeignDomain("example.org".into()))
        );
    }

    #[test]
    fn hostile_local_parts_are_kept_verbatim() {
        let r = site().route("a\"<x>&@example.test").unwrap();
        assert_eq!(r.username, "a\"<x>&");
        assert_eq!(r.server, "mailbox1");
    }

    #[test]
    fn override_moves_a_letter() {
        let config = Arc::new(SiteConfig::embedded());
        let s = SiteMap::new(config, &[(0, "mailbox2".into())], &HashMap::new(), 1);
        let r = s.route("alice@example.test").unwrap();
        assert_eq!(r.server, "mailbox2");
        assert_eq!(r.home, "mailbox2");
        assert_eq!(r.alias, "maila.example.test");
    }

    #[test]
    fn maintenance_moves_every_letter_to_the_others_and_back() {
        let config = Arc::new(SiteConfig::embedded());
        let mut states = HashMap::new();
        states.insert("mailbox1".to_string(), ServerState::Maintenance);
        let s = SiteMap::new(config.clone(), &[], &states, 1);
        for b in 0..BUCKETS {
            assert_eq!(s.owner(b).name, "mailbox2");
        }
        let r = s.route("alice@example.test").unwrap();
        assert!(r.redirected());
        assert_eq!(r.home_state, ServerState::Maintenance);
        states.insert("mailbox1".to_string(), ServerState::Up);
        let s = SiteMap::new(config, &[], &states, 2);
        assert_eq!(s.owner(0).name, "mailbox1");
    }

    #[test]
    fn maintenance_pins_a_server_whatever_its_health() {
        use ServerState::*;
        assert_eq!(ServerState::effective(None, false), Up);
        assert_eq!(ServerState::effective(None, true), Down);
        assert_eq!(ServerState::effective(Some(Up), true), Down);
        assert_eq!(
            ServerState::effective(Some(Maintenance), false),
            Maintenance
        );
        assert_eq!(ServerState::effective(Some(Maintenance), true), Maintenance);
        assert_eq!(ServerState::effective(Some(Down), false), Down);
    }

    #[test]
    fn a_server_is_drained_only_while_another_serves_its_letters() {
        let config = Arc::new(SiteConfig::embedded());
        let mut states = HashMap::new();
        assert!(!SiteMap::new(config.clone(), &[], &states, 1).drained("mailbox1"));
        states.insert("mailbox1".to_string(), ServerState::Down);
        let s = SiteMap::new(config.clone(), &[], &states, 2);
        assert!(s.drained("mailbox1"));
        assert!(!s.drained("mailbox2"));
        states.insert("mailbox2".to_string(), ServerState::Maintenance);
        assert!(!SiteMap::new(config, &[], &states, 3).drained("mailbox1"));
    }

    #[test]
    fn all_servers_down_keeps_the_home() {
        let config = Arc::new(SiteConfig::embedded());
        let mut states = HashMap::new();
        states.insert("mailbox1".to_string(), ServerState::Down);
        states.insert("mailbox2".to_string(), ServerState::Down);
        let s = SiteMap::new(config, &[], &states, 1);
        assert_eq!(s.owner(0).name, "mailbox1");
        assert_eq!(s.owner(25).name, "mailbox2");
    }

    #[test]
    fn outbox_skips_sorters_that_are_not_up() {
        let config = Arc::new(SiteConfig::embedded());
        let mut states = HashMap::new();
        states.insert("sorter1".to_string(), ServerState::Down);
        let s = SiteMap::new(config, &[], &states, 1);
        let names: Vec<&str> = s.outbox_sorters().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sorter2"]);
    }

    #[test]
    fn usernames_are_strict() {
        assert!(valid_username("alice"));
        assert!(valid_username("j.doe-2"));
        assert!(!valid_username("Alice"));
        assert!(!valid_username("../etc"));
        assert!(!valid_username(".hidden"));
        assert!(!valid_username("a/b"));
        assert!(!valid_username("a..b"));
        assert!(!valid_username(""));
        assert!(!valid_username(&"a".repeat(65)));
    }

    #[test]
    fn typed_names_become_usernames() {
        let mut config = SiteConfig::embedded();
        config.other_domains = vec!["example.org".to_string()];
        let name = |typed: &str| login_username(&config, typed);
        assert_eq!(name("alice").as_deref(), Some("alice"));
        assert_eq!(name("Alice").as_deref(), Some("alice"));
        assert_eq!(name("Alice@Example.Test").as_deref(), Some("alice"));
        assert_eq!(name("alice@example.org").as_deref(), Some("alice"));
        assert_eq!(name("ÉMILE").as_deref(), Some("émile"));
        assert_eq!(name("alice@example.net"), None);
        assert_eq!(name("alice@"), None);
        assert_eq!(name("@example.test"), None);
        assert_eq!(name(""), None);
    }

    /// The mailbox servers' login kept the whitespace around a typed name (so
    /// ` alice` never matched a user) while the web sign-ins dropped it: one rule now,
    /// the web's, since no username can contain whitespace.
    #[test]
    fn whitespace_around_a_typed_name_is_dropped() {
        let config = SiteConfig::embedded();
        let name = |typed: &str| login_username(&config, typed);
        assert_eq!(name(" alice ").as_deref(), Some("alice"));
        assert_eq!(name("\talice@example.test\r\n").as_deref(), Some("alice"));
        assert_eq!(name("   "), None);
        assert_eq!(name(" @example.test"), None);
    }

    #[test]
    fn letters_buckets_and_aliases_agree() {
        for bucket in 0..BUCKETS {
            let name = bucket_name(bucket);
            assert_eq!(parse_bucket(&name), Some(bucket));
            assert_eq!(bucket_of(&bucket_char(bucket).to_string()), bucket);
            assert_eq!(
                alias_host(bucket, "example.test"),
                format!("{}.example.test", alias_label(bucket))
            );
            assert!(is_alias_label(&alias_label(bucket)));
        }
        assert_eq!(bucket_of("Zoe"), 25);
        assert_eq!(bucket_of(""), OTHER_BUCKET);
        assert_eq!(letter_bucket(b'M'), Some(12));
        assert_eq!(letter_bucket(b'1'), None);
        assert_eq!(alias_label(0), "maila");
        assert_eq!(bucket_name(OTHER_BUCKET), "other");
        assert!(is_alias_label("outbox"));
        assert!(!is_alias_label("mailbox1"));
    }

    #[test]
    fn buckets_parse_as_operators_write_them() {
        assert_eq!(parse_bucket("A"), Some(0));
        assert_eq!(parse_bucket("z"), Some(25));
        assert_eq!(parse_bucket("other"), Some(26));
        assert_eq!(parse_bucket("0"), Some(26));
        assert_eq!(parse_bucket("ab"), None);
        assert_eq!(alias_label(26), "mail0");
    }
}
