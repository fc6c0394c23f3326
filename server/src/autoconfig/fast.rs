//! The setup documents on the prepared HTTP/1.1 path ([`crate::http::h1`]): the requests
//! mail clients send at setup (Thunderbird's and the draft's config, Autodiscover POX and
//! JSON v2, the Apple profile) answered by the same functions the router calls, without
//! a request or response object. Any other request returns `false` and the router
//! answers it.

use mailsite_shared::autoconfig::thunderbird::Version;

use super::{Answer, App, FIXED_HEADERS, apple, autodiscover, thunderbird};
use crate::http::h1::{Head, Prepared, write_head};

impl App {
    /// The answer the router would give `request`, if it is one of the setup documents'.
    fn prepared(&self, request: &Head<'_>) -> Option<Answer> {
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.target, None),
        };
        let answer = match (request.method, path) {
            ("GET", "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml") => {
                thunderbird::answer(self, query, request.host, Version::V1_1)
            }
            ("GET", "/mail/config-v1.2.xml" | "/.well-known/autoconfig/mail/config-v1.2.xml") => {
                thunderbird::answer(self, query, request.host, Version::V1_2)
            }
            // Clients spell the Autodiscover paths in any case (the router's fallback).
            ("POST", path) if path.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") => {
                autodiscover::pox_answer(self, request.body)
            }
            ("GET", path) if path.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") => {
                autodiscover::pox_get_answer()
            }
            ("GET", path) if path.eq_ignore_ascii_case("/autodiscover/autodiscover.json") => {
                autodiscover::json_query(self, query)
            }
            ("GET", "/mobileconfig" | "/email.mobileconfig") => apple::answer(self, query),
            _ => return None,
        };
        Some(answer)
    }
}

impl Prepared for App {
    fn answer(&self, request: &Head<'_>, out: &mut Vec<u8>) -> bool {
        let Some(answer) = self.prepared(request) else {
            return false;
        };
        let [cache, sniff] = FIXED_HEADERS;
        let mut headers = [
            ("content-type", answer.content_type),
            cache,
            sniff,
            ("", ""),
        ];
        let count = match answer.disposition() {
            Some(d) => {
                headers[3] = ("content-disposition", d);
                4
            }
            None => 3,
        };
        let status = answer.status.as_u16();
        answer.body.write(out, |out, length| {
            write_head(out, status, &headers[..count], length);
        });
        self.site.metrics.http(answer.endpoint, status);
        true
    }
}
