//! The `console_reports` target: the fuzzer's bytes as the report file a helpdesk
//! operator uploads on the console's report page (`POST /console/report`, multipart,
//! with the session's CSRF token), through the web fixture ([`super::web`]).
//!
//! The answer is the explanation page (only for a text that reads as a helper
//! report) or the form again with a clear error, as well-formed HTML either way. The
//! explanation shows the report's address escaped, and the same report with its
//! markup characters defused (`<`, `>`, `"` in every string) gives a page with the
//! same elements: nothing in a report becomes markup.

use axum::http::{Method, StatusCode};

use super::web::{self, Answer, Web};
use crate::helpdesk;

/// The upload form as a browser sends it, with `report` as the chosen file.
fn upload(web: &Web, report: &[u8]) -> Answer {
    let mut boundary = String::from("mailsite-fuzz-boundary");
    while report
        .windows(boundary.len())
        .any(|w| w == boundary.as_bytes())
    {
        boundary.push('x');
    }
    let mut body = Vec::with_capacity(report.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"report\"; filename=\"report.json\"\r\n\
             Content-Type: application/json\r\n\r\n",
            web.csrf
        )
        .as_bytes(),
    );
    body.extend_from_slice(report);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n\r\n--{boundary}--\r\n").as_bytes(),
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    web.send(
        Method::POST,
        "/console/report",
        None,
        Some(&content_type),
        body,
        Some(web.session()),
    )
}

/// Every string of a JSON value with its markup characters defused.
fn defuse(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            *s = s.replace('<', "(").replace('>', ")").replace('"', "'");
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(defuse),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(defuse),
        _ => {}
    }
}

/// The page's text with maud's escaping, as a value shows in it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Any bytes as an uploaded report: see the module's documentation.
pub fn console_reports(data: &[u8]) {
    let web = web::web();
    let answer = upload(web, data);
    let shape = web::check(&answer).expect("the report page is HTML");
    let report = std::str::from_utf8(data)
        .ok()
        .and_then(|text| helpdesk::parse_report(text).ok());
    match answer.status {
        StatusCode::OK => {
            let report = report.expect("a page explaining what is not a report");
            let page = answer.text();
            assert!(
                page.contains(&escaped(&report.email)),
                "the report's address is not shown escaped: {page}"
            );
            // The same report with its markup defused has the same elements.
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
                return;
            };
            defuse(&mut value);
            let defused = serde_json::to_vec(&value).expect("JSON from JSON");
            if defused == data {
                return;
            }
            let again = upload(web, &defused);
            if again.status == StatusCode::OK {
                let again_shape = web::check(&again).expect("the report page is HTML");
                assert_eq!(
                    shape,
                    again_shape,
                    "markup in a report changed the page's elements:\n{page}\n----- defused:\n{}",
                    again.text()
                );
            }
        }
        StatusCode::BAD_REQUEST => {
            assert!(
                answer.text().contains("class=\"error\"")
                    || answer.text().contains("role=\"alert\""),
                "a refusal without its reason: {}",
                answer.text()
            );
        }
        status => panic!("the upload got {status}: {}", answer.text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/console_reports")
                .join(name),
        )
        .expect("a seed")
    }

    /// A real report is explained, markup in it shows as text, and what is not a
    /// report gets the form again with the reason.
    #[test]
    fn reports_are_explained_or_refused() {
        let web = web::web();
        let answer = upload(web, &seed("referral.json"));
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(answer.text().contains("Likely cause"), "{}", answer.text());

        let answer = upload(web, &seed("hostile-strings.json"));
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let page = answer.text();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("&lt;h1&gt;big&lt;/h1&gt;"), "{page}");

        for refused in ["truncated.json", "binary.json", "foreign-address.json"] {
            let answer = upload(web, &seed(refused));
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{refused}");
        }
        console_reports(&seed("hostile-strings.json"));
    }
}
