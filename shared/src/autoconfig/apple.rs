//! Apple configuration profiles (`.mobileconfig`): a `Configuration` plist holding one
//! `com.apple.mail.managed` payload for the user's preferred protocol.

use std::fmt::Write;

use super::{ClientConfig, Protocol, Security};
use crate::xml::escape;

pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// A UUID derived from `seed`, so that installing the profile again replaces it
/// rather than adding a second account (RFC 9562 version 8: custom).
pub fn stable_uuid(seed: &str) -> String {
    fn fnv(seed: &str, basis: u64) -> u64 {
        seed.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }
    let hi = fnv(seed, 0xcbf2_9ce4_8422_2325);
    let lo = fnv(seed, 0x8422_2325_cbf2_9ce4);
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_8000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn key_string(out: &mut String, key: &str, value: &str) {
    let _ = write!(
        out,
        "\t\t\t<key>{key}</key>\n\t\t\t<string>{}</string>\n",
        escape(value)
    );
}

fn key_int(out: &mut String, key: &str, value: u16) {
    let _ = write!(
        out,
        "\t\t\t<key>{key}</key>\n\t\t\t<integer>{value}</integer>\n"
    );
}

fn key_bool(out: &mut String, key: &str, value: bool) {
    let _ = write!(out, "\t\t\t<key>{key}</key>\n\t\t\t<{value}/>\n");
}

/// Renders the profile. `config.email` must be set (profiles are per user).
pub fn render(config: &ClientConfig) -> String {
    let email = config.email.as_deref().unwrap_or_default();
    let incoming = &config.incoming[0];
    let outgoing = &config.outgoing[0];
    let reverse_domain: Vec<&str> = config.domain.rsplit('.').collect();
    let identifier = format!("{}.mailsite", reverse_domain.join("."));
    let account_uuid = stable_uuid(&format!("account:{email}"));
    let profile_uuid = stable_uuid(&format!("profile:{email}"));

    let mut out = String::with_capacity(4096);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n",
    );
    let account_type = match incoming.protocol {
        Protocol::Pop3 => "EmailTypePOP",
        _ => "EmailTypeIMAP",
    };
    key_string(&mut out, "EmailAccountDescription", &config.display_name);
    key_string(&mut out, "EmailAccountName", email);
    key_string(&mut out, "EmailAccountType", account_type);
    key_string(&mut out, "EmailAddress", email);
    key_string(
        &mut out,
        "IncomingMailServerAuthentication",
        "EmailAuthPassword",
    );
    key_string(&mut out, "IncomingMailServerHostName", &incoming.hostname);
    key_int(&mut out, "IncomingMailServerPortNumber", incoming.port);
    key_bool(
        &mut out,
        "IncomingMailServerUseSSL",
        incoming.security != Security::Plain,
    );
    key_string(&mut out, "IncomingMailServerUsername", &incoming.username);
    key_string(
        &mut out,
        "OutgoingMailServerAuthentication",
        "EmailAuthPassword",
    );
    key_string(&mut out, "OutgoingMailServerHostName", &outgoing.hostname);
    key_int(&mut out, "OutgoingMailServerPortNumber", outgoing.port);
    key_bool(
        &mut out,
        "OutgoingMailServerUseSSL",
        outgoing.security != Security::Plain,
    );
    key_string(&mut out, "OutgoingMailServerUsername", &outgoing.username);
    key_bool(&mut out, "OutgoingPasswordSameAsIncomingPassword", true);
    key_string(
        &mut out,
        "PayloadDescription",
        &format!("Mail account {email}"),
    );
    key_string(&mut out, "PayloadDisplayName", &config.display_name);
    key_string(
        &mut out,
        "PayloadIdentifier",
        &format!("{identifier}.account.{account_uuid}"),
    );
    key_string(&mut out, "PayloadType", "com.apple.mail.managed");
    key_string(&mut out, "PayloadUUID", &account_uuid);
    let _ = write!(
        out,
        "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
    );
    key_bool(&mut out, "PreventAppSheet", false);
    key_bool(&mut out, "PreventMove", false);
    key_bool(&mut out, "SMIMEEnabled", false);
    out.push_str("\t\t</dict>\n\t</array>\n");
    let _ = write!(
        out,
        "\t<key>PayloadDescription</key>\n\t<string>Sets up {} for {}</string>\n\t<key>PayloadDisplayName</key>\n\t<string>{}</string>\n\t<key>PayloadIdentifier</key>\n\t<string>{}.{}</string>\n\t<key>PayloadOrganization</key>\n\t<string>{}</string>\n\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n\t<key>PayloadType</key>\n\t<string>Configuration</string>\n\t<key>PayloadUUID</key>\n\t<string>{profile_uuid}</string>\n\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>\n</plist>\n",
        escape(&config.display_name),
        escape(email),
        escape(&config.display_name),
        escape(&identifier),
        profile_uuid,
        escape(&config.display_name),
    );
    out
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
        assert_eq!(&a[14..15], "8");
    }
}
