//! Apple configuration profiles (`.mobileconfig`): a `Configuration` plist holding one
//! `com.apple.mail.managed` payload for the user's preferred protocol.

use std::sync::LazyLock;

use serde::Serialize;
use uuid::Uuid;

use super::{ClientConfig, Protocol, Security};

pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// The namespace of mailsite's profile UUIDs (RFC 9562 version 5: names hashed into a
/// namespace), itself the version 5 UUID of the DNS name `mobileconfig.mailsite.invalid`.
static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"mobileconfig.mailsite.invalid"));

/// A UUID derived from `seed` (which names the site's domain and the user), so that
/// installing the profile again replaces it rather than adding a second account.
pub fn stable_uuid(seed: &str) -> String {
    UuidText::of(seed.as_bytes()).as_str().to_string()
}

/// A profile UUID as text (upper case, hyphenated), held inline: the prepared path
/// derives two per request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UuidText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl UuidText {
    fn of(seed: &[u8]) -> UuidText {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        // Upper case, as Apple's own tools write them.
        Uuid::new_v5(&NAMESPACE, seed)
            .hyphenated()
            .encode_upper(&mut text);
        UuidText(text)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a formatted UUID is ASCII")
    }
}

impl std::fmt::Debug for UuidText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The top level of a profile: a `Configuration` holding the account payload.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Profile<'a> {
    payload_content: [Account<'a>; 1],
    payload_description: String,
    payload_display_name: &'a str,
    payload_identifier: String,
    payload_organization: &'a str,
    payload_removal_disallowed: bool,
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    payload_uuid: String,
    payload_version: u8,
}

/// The `com.apple.mail.managed` payload: one mail account.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Account<'a> {
    email_account_description: &'a str,
    email_account_name: &'a str,
    email_account_type: &'static str,
    email_address: &'a str,
    incoming_mail_server_authentication: &'static str,
    incoming_mail_server_host_name: &'a str,
    incoming_mail_server_port_number: u16,
    #[serde(rename = "IncomingMailServerUseSSL")]
    incoming_mail_server_use_ssl: bool,
    incoming_mail_server_username: &'a str,
    outgoing_mail_server_authentication: &'static str,
    outgoing_mail_server_host_name: &'a str,
    outgoing_mail_server_port_number: u16,
    #[serde(rename = "OutgoingMailServerUseSSL")]
    outgoing_mail_server_use_ssl: bool,
    outgoing_mail_server_username: &'a str,
    outgoing_password_same_as_incoming_password: bool,
    payload_description: String,
    payload_display_name: &'a str,
    payload_identifier: String,
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    payload_uuid: String,
    payload_version: u8,
    prevent_app_sheet: bool,
    prevent_move: bool,
    #[serde(rename = "SMIMEEnabled")]
    smime_enabled: bool,
}

/// The profile's two UUIDs for an address: the account payload's and the profile's.
pub fn uuids(email: &str) -> (String, String) {
    let (account, profile) = address_uuids(&[email]);
    (account.as_str().to_string(), profile.as_str().to_string())
}

/// [`uuids`] for the address made of `parts` (`[username, "@", domain]`), as text held
/// inline: seeded `account:<address>` and `profile:<address>`, the two prefixes of one
/// length, so one buffer serves both.
pub fn address_uuids(parts: &[&str]) -> (UuidText, UuidText) {
    const ACCOUNT: &[u8] = b"account:";
    const PROFILE: &[u8] = b"profile:";
    const _: () = assert!(ACCOUNT.len() == PROFILE.len());
    let mut seed = Vec::with_capacity(ACCOUNT.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    seed.extend_from_slice(ACCOUNT);
    for part in parts {
        seed.extend_from_slice(part.as_bytes());
    }
    let account = UuidText::of(&seed);
    seed[..PROFILE.len()].copy_from_slice(PROFILE);
    (account, UuidText::of(&seed))
}

/// Renders the profile. `config.email` must be set (profiles are per user).
pub fn render(config: &ClientConfig) -> String {
    let (account_uuid, profile_uuid) = uuids(config.email.as_deref().unwrap_or_default());
    render_with(config, account_uuid, profile_uuid)
}

/// Renders the profile with the UUIDs given: [`render`], or a template whose UUIDs are
/// filled per address.
pub fn render_with(config: &ClientConfig, account_uuid: String, profile_uuid: String) -> String {
    let email = config.email.as_deref().unwrap_or_default();
    let incoming = &config.incoming[0];
    let outgoing = &config.outgoing[0];
    let reverse_domain: Vec<&str> = config.domain.rsplit('.').collect();
    let identifier = format!("{}.mailsite", reverse_domain.join("."));
    let account = Account {
        email_account_description: &config.display_name,
        email_account_name: email,
        email_account_type: match incoming.protocol {
            Protocol::Pop3 => "EmailTypePOP",
            _ => "EmailTypeIMAP",
        },
        email_address: email,
        incoming_mail_server_authentication: "EmailAuthPassword",
        incoming_mail_server_host_name: &incoming.hostname,
        incoming_mail_server_port_number: incoming.port,
        incoming_mail_server_use_ssl: incoming.security != Security::Plain,
        incoming_mail_server_username: &incoming.username,
        outgoing_mail_server_authentication: "EmailAuthPassword",
        outgoing_mail_server_host_name: &outgoing.hostname,
        outgoing_mail_server_port_number: outgoing.port,
        outgoing_mail_server_use_ssl: outgoing.security != Security::Plain,
        outgoing_mail_server_username: &outgoing.username,
        outgoing_password_same_as_incoming_password: true,
        payload_description: format!("Mail account {email}"),
        payload_display_name: &config.display_name,
        payload_identifier: format!("{identifier}.account.{account_uuid}"),
        payload_type: "com.apple.mail.managed",
        payload_uuid: account_uuid,
        payload_version: 1,
        prevent_app_sheet: false,
        prevent_move: false,
        smime_enabled: false,
    };
    let profile = Profile {
        payload_content: [account],
        payload_description: format!("Sets up {} for {email}", config.display_name),
        payload_display_name: &config.display_name,
        payload_identifier: format!("{identifier}.{profile_uuid}"),
        payload_organization: &config.display_name,
        payload_removal_disallowed: false,
        payload_type: "Configuration",
        payload_uuid: profile_uuid,
        payload_version: 1,
    };
    let mut out = Vec::with_capacity(4096);
    // Strings, integers and booleans written into memory: nothing here can fail.
    plist::to_writer_xml(&mut out, &profile).expect("a profile serialises");
    out.push(b'\n');
    String::from_utf8(out).expect("plist writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = stable_uuid("alice@example.test");
        assert_eq!(a, stable_uuid("alice@example.test"));
        assert_ne!(a, stable_uuid("bob@example.test"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
        assert_eq!(a, a.to_uppercase());
    }

    #[test]
    fn an_address_keeps_the_uuids_it_had_so_a_profile_installed_again_replaces_itself() {
        // Python's uuid.uuid5(uuid.uuid5(NAMESPACE_DNS, "mobileconfig.mailsite.invalid"),
        // "account:alice@example.test"), and "profile:..." alike, upper case.
        let account = "74685973-848C-5DA4-B261-6CADEACFD69D";
        let profile = "DB23D2FE-7098-5BAC-8156-8247CD629B99";
        let (a, p) = address_uuids(&["alice", "@", "example.test"]);
        assert_eq!((a.as_str(), p.as_str()), (account, profile));
        assert_eq!(
            uuids("alice@example.test"),
            (account.to_string(), profile.to_string())
        );
        assert_eq!(stable_uuid("profile:alice@example.test"), profile);
    }

    #[test]
    fn a_profile_reads_back_with_its_keys_and_values() {
        use std::sync::Arc;

        use crate::autoconfig::Preference;
        use crate::config::SiteConfig;
        use crate::route::SiteMap;

        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let route = map.route("a\"<x>&'@example.test").unwrap();
        let config = ClientConfig::for_route(&map.config, &route, Preference::Pop3);
        let text = render(&config);
        let profile: plist::Dictionary = plist::from_bytes(text.as_bytes()).unwrap();
        let string = |d: &plist::Dictionary, key: &str| {
            d.get(key)
                .and_then(plist::Value::as_string)
                .map(str::to_string)
        };
        assert_eq!(string(&profile, "PayloadType").unwrap(), "Configuration");
        let uuid = string(&profile, "PayloadUUID").unwrap();
        assert_eq!(uuid, stable_uuid("profile:a\"<x>&'@example.test"));
        let account = profile["PayloadContent"].as_array().unwrap()[0]
            .as_dictionary()
            .unwrap();
        assert_eq!(string(account, "EmailAddress").unwrap(), route.address);
        assert_eq!(string(account, "EmailAccountType").unwrap(), "EmailTypePOP");
        assert_eq!(
            account["IncomingMailServerPortNumber"].as_signed_integer(),
            Some(i64::from(config.incoming[0].port))
        );
        assert_eq!(account["IncomingMailServerUseSSL"].as_boolean(), Some(true));
        assert_eq!(
            string(account, "PayloadIdentifier").unwrap(),
            format!(
                "test.example.mailsite.account.{}",
                stable_uuid("account:a\"<x>&'@example.test")
            )
        );
    }
}
