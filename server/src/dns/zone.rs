//! The site's zones, computed from the live [`SiteMap`]: what `mail<letter>`,
//! `outbox`, MX and SRV records say right now. Rebuilt whenever the site changes;
//! also written out as a BIND-format file by `mailsite zone export`.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;

use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, SOA, SRV, TLSA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use mailsite_shared::SiteMap;
use mailsite_shared::autoconfig::pacc;
use mailsite_shared::mta_sts;
use mailsite_shared::route::alias_label;

use super::dnssec::{self, Keys};

/// One record set of a name, with the records a resolver will want next (the
/// addresses of MX, SRV and NS targets).
#[derive(Debug, Default)]
pub struct RecordSet {
    pub rtype: Option<RecordType>,
    pub records: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The RRSIG over the records, in a signed zone.
    pub signatures: Vec<Record>,
}

/// Every record set of one name.
#[derive(Debug, Default)]
pub struct Node {
    pub sets: Vec<RecordSet>,
    /// All records of the name, for ANY queries.
    pub all: Vec<Record>,
}

impl Node {
    pub fn set(&self, rtype: RecordType) -> Option<&RecordSet> {
        self.sets.iter().find(|s| s.rtype == Some(rtype))
    }
}

/// The answer to a query, before it is put on the wire.
pub enum Lookup<'z> {
    Found(&'z RecordSet),
    Any(&'z Node),
    /// The name exists but has no records of that type.
    NoData(&'z Record),
    NxDomain(&'z Record),
    /// Not a name this server is authoritative for.
    Refused,
}

/// The zones of every site domain.
#[derive(Debug, Default)]
pub struct Zone {
    origins: Vec<(LowerName, Record)>,
    nodes: HashMap<LowerName, Node>,
    /// Records in a stable order, for export.
    ordered: Vec<Record>,
    /// The UDP answers to plain queries, encoded ahead.
    prepared: super::prepared::Prepared,
    /// In a signed zone, every name in canonical order (RFC 4034 6.1), for NSEC.
    names: Vec<Name>,
}

fn name(text: &str) -> Name {
    // Names here are built from validated domains and server names.
    Name::from_ascii(text).unwrap_or_else(|_| Name::root())
}

/// A TXT record of one text, split into strings of at most 255 octets (an RSA key's
/// DKIM record is longer than one string holds; receivers join them).
fn txt(owner: &Name, ttl: u32, text: &str) -> Record {
    let strings = text
        .as_bytes()
        .chunks(255)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    Record::from_rdata(owner.clone(), ttl, RData::TXT(TXT::new(strings)))
}

fn address(owner: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(owner.clone(), ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(v6))),
    }
}

impl Zone {
    /// The zone of the site, without TLSA records.
    pub fn build(site: &SiteMap) -> Zone {
        Zone::build_with(site, None)
    }

    /// The zone of the site, unsigned; `certificate` is the SHA-256 of the server
    /// certificate's public key, published as DANE-EE TLSA records (3 1 1) for the
    /// sorters' SMTP and submission ports.
    pub fn build_with(site: &SiteMap, certificate: Option<[u8; 32]>) -> Zone {
        Zone::build_signed(site, certificate, &Keys::default())
    }

    /// The zone of the site, each domain with a key of `keys` signed (DNSSEC).
    pub fn build_signed(site: &SiteMap, certificate: Option<[u8; 32]>, keys: &Keys) -> Zone {
        let config = &site.config;
        let mut zone = Zone::default();
        let serial = site.generation.clamp(1, i64::from(u32::MAX)) as u32;
        let now = crate::dkim::now();
        for domain in config.domains() {
            let apex = name(&format!("{domain}."));
            let at = |label: &str| name(&format!("{label}.{domain}."));
            let ns_host = at("ns");
            let soa = Record::from_rdata(
                apex.clone(),
                config.ttl,
                RData::SOA(SOA::new(
                    ns_host.clone(),
                    at("hostmaster"),
                    serial,
                    3600,
                    600,
                    86400,
                    config.alias_ttl,
                )),
            );
            let mut add = |record: Record| zone.ordered.push(record);
            add(soa.clone());
            add(Record::from_rdata(
                apex.clone(),
                config.ttl,
                RData::NS(NS(ns_host.clone())),
            ));
            for sorter in site.outbox_sorters() {
                add(Record::from_rdata(
                    apex.clone(),
                    config.ttl,
                    RData::MX(MX::new(10, at(&sorter.name))),
                ));
            }
            for ip in &config.dns_addresses {
                add(address(&ns_host, config.ttl, *ip));
            }
            for server in config.mailboxes.iter().chain(&config.sorters) {
                for ip in &server.addresses {
                    add(address(&at(&server.name), config.ttl, *ip));
                }
            }
            for bucket in 0..mailsite_shared::config::BUCKETS {
                for ip in &site.owner(bucket).addresses {
                    add(address(&at(&alias_label(bucket)), config.alias_ttl, *ip));
                }
            }
            for sorter in site.outbox_sorters() {
                for ip in &sorter.addresses {
                    add(address(&at("outbox"), config.outbox_ttl, *ip));
                }
            }
            for label in ["autoconfig", "autodiscover"] {
                for ip in &config.http_addresses {
                    add(address(&at(label), config.ttl, *ip));
                }
            }
            // PACC: the document's host, and the digest of the bytes it serves (the
            // same function makes both; nothing when the site publishes no document).
            if let Ok(document) = pacc::Document::for_domain(config, domain) {
                for ip in &config.http_addresses {
                    add(address(&at(pacc::HOST_LABEL), config.ttl, *ip));
                }
                add(Record::from_rdata(
                    at(pacc::RECORD_LABEL),
                    config.ttl,
                    RData::TXT(TXT::new(vec![document.record()])),
                ));
            }
            // SPF (RFC 7208): the sorters are the only machines that send the site's
            // mail (mailbox servers' replies leave through them too).
            let mut spf = String::from("v=spf1");
            for ip in config.sorters.iter().flat_map(|s| &s.addresses) {
                match ip {
                    IpAddr::V4(v4) => spf.push_str(&format!(" ip4:{v4}")),
                    IpAddr::V6(v6) => spf.push_str(&format!(" ip6:{v6}")),
                }
            }
            spf.push_str(" -all");
            add(txt(&apex, config.ttl, &spf));
            // DMARC (RFC 7489) and TLS-RPT (RFC 8460): reports to the domain's
            // postmaster, a local mailbox.
            add(txt(
                &at("_dmarc"),
                config.ttl,
                &format!(
                    "v=DMARC1; p={}; rua=mailto:postmaster@{domain}",
                    config.mail_auth.dmarc_policy.as_str()
                ),
            ));
            add(txt(
                &at("_smtp._tls"),
                config.ttl,
                &format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
            ));
            // MTA-STS (RFC 8461): the policy's host and the id of the policy it serves.
            let policy = mta_sts::policy(config, domain);
            add(txt(
                &at(mta_sts::RECORD_LABEL),
                config.ttl,
                &mta_sts::record(&policy),
            ));
            for ip in &config.http_addresses {
                add(address(&at(mta_sts::HOST_LABEL), config.ttl, *ip));
            }
            // DANE (RFC 7672, RFC 7671): the certificate's key for every MX host and
            // the submission host.
            if let Some(digest) = certificate {
                let tlsa = |owner: Name| {
                    Record::from_rdata(
                        owner,
                        config.ttl,
                        RData::TLSA(TLSA::new(
                            CertUsage::DaneEe,
                            Selector::Spki,
                            Matching::Sha256,
                            digest.to_vec(),
                        )),
                    )
                };
                for sorter in &config.sorters {
                    add(tlsa(at(&format!(
                        "_{}._tcp.{}",
                        config.ports.smtp, sorter.name
                    ))));
                }
                for port in [config.ports.submission, config.ports.submissions] {
                    add(tlsa(at(&format!("_{port}._tcp.outbox"))));
                }
            }
            // DKIM public keys (RFC 6376 3.6.2.2): each selector of the domain until it
            // is withdrawn.
            for key in site.dkim.iter() {
                if key.domain == domain && key.published(now) {
                    add(txt(
                        &name(&format!("{}.", key.record_name())),
                        config.ttl,
                        &key.record(),
                    ));
                }
            }
            let p = config.ports;
            for (service, port) in [
                ("_imap._tcp", p.imap),
                ("_imaps._tcp", p.imaps),
                ("_pop3._tcp", p.pop3),
                ("_pop3s._tcp", p.pop3s),
                // ManageSieve (RFC 5804 1.8): any mailbox server manages any user's
                // scripts, which live in the site database.
                ("_sieve._tcp", p.managesieve),
            ] {
                // Domain-wide records cannot know the user's letter: they name the
                // serving mailbox servers, which refer a login to the right one.
                for server in site.serving_mailboxes() {
                    add(Record::from_rdata(
                        at(service),
                        config.ttl,
                        RData::SRV(SRV::new(0, 1, port, at(&server.name))),
                    ));
                }
            }
            for (service, port, target) in [
                ("_submission._tcp", p.submission, "outbox"),
                ("_submissions._tcp", p.submissions, "outbox"),
                (
                    "_autodiscover._tcp",
                    config.http_listen.port(),
                    "autodiscover",
                ),
            ] {
                add(Record::from_rdata(
                    at(service),
                    config.ttl,
                    RData::SRV(SRV::new(0, 1, port, at(target))),
                ));
            }
            if let Some(key) = keys.for_apex(&apex) {
                add(key.dnskey_record(config.ttl));
            }
            zone.origins.push((LowerName::new(&apex), soa));
        }
        zone.index();
        if !keys.is_empty() {
            zone.sign(keys, now.max(0) as u64);
        }
        zone.prepared = super::prepared::Prepared::build(&zone);
        zone
    }

    /// Every name of the zone with its records.
    pub(super) fn nodes(&self) -> impl Iterator<Item = (&LowerName, &Node)> {
        self.nodes.iter()
    }

    /// The answers to plain queries, encoded when the zone was built.
    pub fn prepared(&self) -> &super::prepared::Prepared {
        &self.prepared
    }

    fn index(&mut self) {
        for record in &self.ordered {
            let node = self.nodes.entry(LowerName::new(&record.name)).or_default();
            let rtype = record.record_type();
            match node.sets.iter_mut().find(|s| s.rtype == Some(rtype)) {
                Some(set) => set.records.push(record.clone()),
                None => node.sets.push(RecordSet {
                    rtype: Some(rtype),
                    records: vec![record.clone()],
                    ..RecordSet::default()
                }),
            }
            node.all.push(record.clone());
        }
        // Glue: the addresses of every in-zone MX, SRV and NS target.
        let mut glue: Vec<(LowerName, usize, Vec<Record>)> = Vec::new();
        for (owner, node) in &self.nodes {
            for (i, set) in node.sets.iter().enumerate() {
                let mut extra = Vec::new();
                for record in &set.records {
                    let target = match &record.data {
                        RData::MX(mx) => &mx.exchange,
                        RData::SRV(srv) => &srv.target,
                        RData::NS(ns) => &ns.0,
                        _ => continue,
                    };
                    if let Some(target_node) = self.nodes.get(&LowerName::new(target)) {
                        for t in [RecordType::A, RecordType::AAAA] {
                            if let Some(s) = target_node.set(t) {
                                extra.extend(s.records.iter().cloned());
                            }
                        }
                    }
                }
                if !extra.is_empty() {
                    glue.push((owner.clone(), i, extra));
                }
            }
        }
        for (owner, i, extra) in glue {
            if let Some(node) = self.nodes.get_mut(&owner) {
                node.sets[i].additionals = extra;
            }
        }
    }

    /// Signs every domain that has a key: NSEC records for every name (empty
    /// non-terminals included), then an RRSIG for every record set.
    fn sign(&mut self, keys: &Keys, now: u64) {
        let mut signed = Vec::new();
        for (apex, soa) in &self.origins {
            if let Some(key) = keys.for_apex(&Name::from(apex)) {
                // NSEC's TTL: the SOA's negative caching TTL (RFC 9077).
                let ttl = match &soa.data {
                    RData::SOA(fields) => fields.minimum.min(soa.ttl),
                    _ => soa.ttl,
                };
                signed.push((apex.clone(), key, ttl));
            }
        }
        let owners: Vec<LowerName> = self.nodes.keys().cloned().collect();
        for owner in &owners {
            if let Some((apex, ..)) = signed.iter().find(|(apex, ..)| apex.zone_of(owner)) {
                for name in dnssec::with_ancestors(owner, apex).into_iter().skip(1) {
                    self.nodes.entry(name).or_default();
                }
            }
        }
        for (apex, key, ttl) in &signed {
            let mut names: Vec<Name> = self
                .nodes
                .keys()
                .filter(|name| apex.zone_of(name))
                .map(Name::from)
                .collect();
            names.sort();
            for (i, owner) in names.iter().enumerate() {
                let next = names.get(i + 1).unwrap_or(&names[0]);
                let Some(node) = self.nodes.get_mut(&LowerName::new(owner)) else {
                    continue;
                };
                let types: Vec<RecordType> = node.sets.iter().filter_map(|set| set.rtype).collect();
                let record = dnssec::nsec(owner, next, &types, *ttl);
                node.all.push(record.clone());
                self.ordered.push(record.clone());
                node.sets.push(RecordSet {
                    rtype: Some(RecordType::NSEC),
                    records: vec![record],
                    ..RecordSet::default()
                });
                for set in &mut node.sets {
                    match key.sign(&set.records, now) {
                        Ok(signature) => {
                            self.ordered.push(signature.clone());
                            set.signatures = vec![signature];
                        }
                        Err(error) => {
                            tracing::warn!(%owner, error = format!("{error:#}"), "cannot sign a record set")
                        }
                    }
                }
            }
            self.names.extend(names);
        }
        self.names.sort();
    }

    /// Whether any domain of the zone is signed.
    pub fn signed(&self) -> bool {
        !self.names.is_empty()
    }

    /// The signatures over the SOA record `soa` (none in an unsigned zone).
    pub fn soa_signatures(&self, soa: &Record) -> &[Record] {
        self.nodes
            .get(&LowerName::new(&soa.name))
            .and_then(|node| node.set(RecordType::SOA))
            .map_or(&[], |set| &set.signatures)
    }

    /// The NSEC records, with their signatures, that prove `qname` has no record of
    /// the type asked (`exists`), or that neither it nor a wildcard that could stand
    /// for it exists (RFC 4035 3.1.3). None in an unsigned zone.
    pub fn denial(&self, qname: &LowerName, exists: bool) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        let mut add = |owner: Option<&Name>| {
            let Some(set) = owner
                .and_then(|owner| self.nodes.get(&LowerName::new(owner)))
                .and_then(|node| node.set(RecordType::NSEC))
            else {
                return;
            };
            if !out
                .iter()
                .any(|r| set.records.iter().any(|s| s.name == r.name))
            {
                out.extend(set.records.iter().cloned());
                out.extend(set.signatures.iter().cloned());
            }
        };
        if self.names.is_empty() {
            return out;
        }
        let name = Name::from(qname);
        if exists {
            add(Some(&name));
            return out;
        }
        add(self.covering(&name));
        let mut encloser = qname.base_name();
        while !encloser.is_root() && !self.nodes.contains_key(&encloser) {
            encloser = encloser.base_name();
        }
        if let Ok(wildcard) = Name::from_ascii("*").and_then(|w| w.append_domain(&encloser)) {
            add(self.covering(&wildcard));
        }
        out
    }

    /// The name of the zone just before `name` in canonical order: the owner of the
    /// NSEC record whose span covers it.
    fn covering(&self, name: &Name) -> Option<&Name> {
        let at = self.names.partition_point(|n| n < name);
        at.checked_sub(1).map(|at| &self.names[at])
    }

    /// Answers a question.
    pub fn lookup(&self, qname: &LowerName, qtype: RecordType) -> Lookup<'_> {
        let Some((_, soa)) = self
            .origins
            .iter()
            .find(|(origin, _)| origin.zone_of(qname))
        else {
            return Lookup::Refused;
        };
        let Some(node) = self.nodes.get(qname) else {
            return Lookup::NxDomain(soa);
        };
        if qtype == RecordType::ANY {
            return Lookup::Any(node);
        }
        match node.set(qtype) {
            Some(set) => Lookup::Found(set),
            None => Lookup::NoData(soa),
        }
    }

    /// The addresses `host` has now: its A and AAAA records, in the zone's order;
    /// `None` when the zone gives it none. What the site's DNS answers is the one truth
    /// the helpdesk compares a user's lookups with.
    pub fn addresses(&self, host: &str) -> Option<Vec<IpAddr>> {
        let owner = LowerName::new(&name(&format!("{}.", host.trim_end_matches('.'))));
        let addresses: Vec<IpAddr> = self
            .nodes
            .get(&owner)?
            .all
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect();
        (!addresses.is_empty()).then_some(addresses)
    }

    /// The zone of `domain` as a BIND-format master file.
    pub fn export(&self, domain: &str) -> Option<String> {
        let apex = LowerName::new(&name(&format!("{domain}.")));
        let (_, soa) = self.origins.iter().find(|(o, _)| *o == apex)?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "; zone {domain}, written by mailsite (serial {})",
            match &soa.data {
                RData::SOA(s) => s.serial,
                _ => 0,
            }
        );
        let _ = writeln!(out, "$ORIGIN {domain}.");
        for record in &self.ordered {
            if apex.zone_of(&LowerName::new(&record.name)) {
                match &record.data {
                    RData::TXT(text) => {
                        let _ = writeln!(
                            out,
                            "{} {} {} TXT {}",
                            record.name,
                            record.ttl,
                            record.dns_class,
                            quoted(text)
                        );
                    }
                    RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(rrsig)) => {
                        let input = rrsig.input();
                        let _ = writeln!(
                            out,
                            "{} {} {} RRSIG {} {} {} {} {} {} {} {} {}",
                            record.name,
                            record.ttl,
                            record.dns_class,
                            input.type_covered,
                            u8::from(input.algorithm),
                            input.num_labels,
                            input.original_ttl,
                            signature_time(input.sig_expiration.get()),
                            signature_time(input.sig_inception.get()),
                            input.key_tag,
                            input.signer_name,
                            base64::Engine::encode(
                                &base64::engine::general_purpose::STANDARD,
                                rrsig.sig()
                            )
                        );
                    }
                    _ => {
                        let _ = writeln!(out, "{record}");
                    }
                }
            }
        }
        Some(out)
    }
}

/// A signature's inception or expiration as a master file writes it: YYYYMMDDHHmmSS
/// in UTC (RFC 4034 3.2; NSD reads no other form).
fn signature_time(seconds: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(seconds), 0)
        .map(|t| t.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// A TXT record's strings as a master file writes them (RFC 1035 5.1): each quoted,
/// with `"` and `\` escaped and other octets outside printable ASCII as `\DDD`.
/// Unquoted, a record with spaces (SPF, DMARC) would be read back as several strings.
fn quoted(text: &TXT) -> String {
    let mut out = Vec::new();
    for string in &text.txt_data {
        let mut s = String::from("\"");
        for &b in string.iter() {
            match b {
                b'"' | b'\\' => {
                    s.push('\\');
                    s.push(b as char);
                }
                0x20..=0x7e => s.push(b as char),
                _ => s.push_str(&format!("\\{b:03}")),
            }
        }
        s.push('"');
        out.push(s);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use mailsite_shared::{ServerState, SiteConfig};

    use super::*;

    fn lower(s: &str) -> LowerName {
        LowerName::new(&name(s))
    }

    fn ips(lookup: Lookup<'_>) -> Vec<String> {
        match lookup {
            Lookup::Found(set) => set.records.iter().map(|r| r.data.to_string()).collect(),
            _ => panic!("no records"),
        }
    }

    #[test]
    fn aliases_follow_the_site_map() {
        let config = Arc::new(SiteConfig::embedded());
        let zone = Zone::build(&SiteMap::initial(config.clone()));
        assert_eq!(
            ips(zone.lookup(&lower("maila.example.test."), RecordType::A)),
            ["127.0.0.11"]
        );
        assert_eq!(
            ips(zone.lookup(&lower("MAILZ.example.test."), RecordType::A)),
            ["127.0.0.12"]
        );
        assert_eq!(
            ips(zone.lookup(&lower("outbox.example.test."), RecordType::A)),
            ["127.0.0.21", "127.0.0.22"]
        );
        let mut states = HashMap::new();
        states.insert("mailbox2".to_string(), ServerState::Maintenance);
        states.insert("sorter1".to_string(), ServerState::Down);
        let zone = Zone::build(&SiteMap::new(config, &[], &states, 7));
        assert_eq!(
            ips(zone.lookup(&lower("mailz.example.test."), RecordType::A)),
            ["127.0.0.11"]
        );
        assert_eq!(
            ips(zone.lookup(&lower("outbox.example.test."), RecordType::A)),
            ["127.0.0.22"]
        );
    }

    #[test]
    fn unknown_names_and_foreign_zones() {
        let zone = Zone::build(&SiteMap::initial(Arc::new(SiteConfig::embedded())));
        assert!(matches!(
            zone.lookup(&lower("nope.example.test."), RecordType::A),
            Lookup::NxDomain(_)
        ));
        assert!(matches!(
            zone.lookup(&lower("example.org."), RecordType::A),
            Lookup::Refused
        ));
        assert!(matches!(
            zone.lookup(&lower("maila.example.test."), RecordType::MX),
            Lookup::NoData(_)
        ));
        match zone.lookup(&lower("example.test."), RecordType::MX) {
            Lookup::Found(set) => {
                assert_eq!(set.records.len(), 2);
                assert_eq!(set.additionals.len(), 2);
            }
            _ => panic!("no MX"),
        }
    }

    #[test]
    fn export_is_a_master_file() {
        let zone = Zone::build(&SiteMap::initial(Arc::new(SiteConfig::embedded())));
        let text = zone.export("example.test").unwrap();
        assert!(text.contains("$ORIGIN example.test."));
        assert!(
            text.contains("maila.example.test. 5 IN A 127.0.0.11"),
            "{text}"
        );
        assert!(
            text.contains("_imaps._tcp.example.test. 300 IN SRV 0 1 10993 mailbox1.example.test."),
            "{text}"
        );
        assert!(
            text.contains("_sieve._tcp.example.test. 300 IN SRV 0 1 10190 mailbox2.example.test."),
            "{text}"
        );
        assert!(zone.export("example.org").is_none());
        // TXT strings are quoted, so that spaces stay inside one string.
        assert!(
            text.contains(
                "example.test. 300 IN TXT \"v=spf1 ip4:127.0.0.21 ip4:127.0.0.22 -all\"\n"
            ),
            "{text}"
        );
        let mut text = TXT::new(vec!["a \"b\" \\c".into(), "d\u{7f}".into()]);
        assert_eq!(quoted(&text), "\"a \\\"b\\\" \\\\c\" \"d\\127\"");
        text = TXT::new(Vec::new());
        assert_eq!(quoted(&text), "");
    }

    #[test]
    fn addresses_are_what_the_zone_answers() {
        let zone = Zone::build(&SiteMap::initial(Arc::new(SiteConfig::embedded())));
        let ips = |host: &str| {
            zone.addresses(host)
                .map(|ips| ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(ips("maila.example.test").unwrap(), ["127.0.0.11"]);
        assert_eq!(ips("MAILZ.Example.Test.").unwrap(), ["127.0.0.12"]);
        assert_eq!(
            ips("outbox.example.test").unwrap(),
            ["127.0.0.21", "127.0.0.22"]
        );
        assert_eq!(ips("mailbox2.example.test").unwrap(), ["127.0.0.12"]);
        assert_eq!(ips("example.test"), None);
        assert_eq!(ips("_imaps._tcp.example.test"), None);
        assert_eq!(ips("nope.example.test"), None);
        assert_eq!(ips("maila.example.org"), None);
    }
}
