//! Checks of the HTML the console renders, for the web entry points: the page is well
//! formed (every `<` starts a tag, elements nest and close, attribute values are
//! quoted, entities are whole), carries no script, and its shape (the sequence of
//! elements with their attribute names) is what the fuzz targets compare between an
//! input and the same input with its markup characters defused: text a user or a
//! report supplies may change the words on a page, never its elements.

/// Elements that have no end tag.
const VOID: [&str; 13] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Elements whose content is text up to their end tag.
const RAW_TEXT: [&str; 2] = ["style", "script"];

/// One element's start tag: its name and its attribute names, in order.
pub type Shape = Vec<(String, Vec<String>)>;

fn entity_ok(text: &str) -> bool {
    // `&` starts a named or numeric reference ending in `;`.
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else {
            return false;
        };
        let name = &after[..end];
        let ok = match name.strip_prefix('#') {
            Some(num) => match num.strip_prefix(['x', 'X']) {
                Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
                None => !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()),
            },
            None => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
        };
        if !ok {
            return false;
        }
        rest = &after[end + 1..];
    }
    true
}

/// Parses one start tag's inside (`name attr="v" flag`), returning its name and
/// attribute names.
fn start_tag(inside: &str) -> Result<(String, Vec<String>), String> {
    let inside = inside.trim_end_matches('/');
    let name_end = inside
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(inside.len());
    let name = inside[..name_end].to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("a tag named {name:?}"));
    }
    let mut attributes = Vec::new();
    let mut rest = inside[name_end..].trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let attribute = rest[..end].to_ascii_lowercase();
        if attribute.is_empty()
            || !attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("an attribute named {attribute:?} in <{name}>"));
        }
        if attribute.starts_with("on") {
            return Err(format!("an event handler attribute {attribute:?}"));
        }
        rest = &rest[end..];
        if let Some(value) = rest.strip_prefix('=') {
            let value = value
                .strip_prefix('"')
                .ok_or_else(|| format!("an unquoted value of {attribute:?}"))?;
            let close = value
                .find('"')
                .ok_or_else(|| format!("an unterminated value of {attribute:?}"))?;
            let text = &value[..close];
            if !entity_ok(text) {
                return Err(format!("a broken entity in {attribute:?}: {text:?}"));
            }
            if text
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("javascript:")
            {
                return Err(format!("a script URL in {attribute:?}"));
            }
            rest = &value[close + 1..];
        }
        rest = rest.trim_start();
        attributes.push(attribute);
    }
    Ok((name, attributes))
}

/// The shape of a page, or why it is not well formed.
pub fn shape(page: &str) -> Result<Shape, String> {
    let mut shape = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = page;
    loop {
        let Some(lt) = rest.find('<') else {
            if rest.contains('>') || !entity_ok(rest) {
                return Err(format!("stray markup in text: {rest:?}"));
            }
            break;
        };
        let text = &rest[..lt];
        if text.contains('>') || !entity_ok(text) {
            return Err(format!("stray markup in text: {text:?}"));
        }
        rest = &rest[lt + 1..];
        let gt = rest
            .find('>')
            .ok_or_else(|| "an unterminated tag".to_string())?;
        let inside = &rest[..gt];
        rest = &rest[gt + 1..];
        if inside.contains('<') {
            return Err(format!("a '<' inside a tag: <{inside}>"));
        }
        if let Some(doctype) = inside.strip_prefix('!') {
            if !doctype.eq_ignore_ascii_case("doctype html") {
                return Err(format!("an unexpected declaration <{inside}>"));
            }
            continue;
        }
        if let Some(name) = inside.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match open.pop() {
                Some(top) if top == name => continue,
                top => return Err(format!("</{name}> closes {top:?}")),
            }
        }
        let (name, attributes) = start_tag(inside)?;
        if name == "script" {
            return Err("a script element".to_string());
        }
        if RAW_TEXT.contains(&name.as_str()) {
            let end = format!("</{name}>");
            let close = rest
                .find(&end)
                .ok_or_else(|| format!("an unclosed <{name}>"))?;
            rest = &rest[close + end.len()..];
        } else if !VOID.contains(&name.as_str()) {
            open.push(name.clone());
        }
        shape.push((name, attributes));
    }
    if let Some(top) = open.pop() {
        return Err(format!("an unclosed <{top}>"));
    }
    Ok(shape)
}

/// The shape of a page the console rendered; panics, naming the fault, if it is not
/// well formed.
pub fn checked(page: &str) -> Shape {
    shape(page).unwrap_or_else(|fault| panic!("malformed HTML ({fault}):\n{page}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        let page = "<!DOCTYPE html><html><head><style>a > b {}</style></head><body><p class=\"x\">a &amp; b<br><input value=\"&quot;\" required></p></body></html>";
        let parsed = checked(page);
        assert_eq!(parsed.len(), 7);
        assert_eq!(parsed[5], ("br".to_string(), vec![]));
        assert_eq!(
            parsed[6],
            ("input".to_string(), vec!["value".into(), "required".into()])
        );
        for bad in [
            "<p>a < b</p>",
            "<p>a > b</p>",
            "<p>fish & chips</p>",
            "<p><b></p>",
            "<p class=x></p>",
            "<p onclick=\"x\"></p>",
            "<script>x</script>",
            "<a href=\"javascript:x\"></a>",
            "<p>",
        ] {
            assert!(shape(bad).is_err(), "{bad}");
        }
    }
}
