//! A small, bounded XML element tree over quick-xml, for reading the documents the
//! site exchanges (autoconfig files, Autodiscover requests and responses), and the
//! escaping used wherever a value is written into XML.
//!
//! Namespaces are reduced to local names: the documents read here use one namespace
//! each, and clients are inconsistent about prefixes. No DTD or external entity is
//! ever expanded; only the five predefined entities and character references are.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Deepest nesting accepted; real documents here are 5 levels deep.
const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document.
const MAX_ELEMENTS: usize = 4096;

/// Escapes text for an XML element or a double-quoted attribute.
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

/// An element: local name, attributes (local names), text content, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first element with this local name anywhere below (depth first), or self.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

fn local(name: &[u8]) -> Cow<'_, str> {
    let local = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(local)
}

/// What [`walk`] meets in a document, in document order.
pub enum Step<'a> {
    /// An element opens (its attributes already checked); an empty element's
    /// [`Step::End`] follows at once.
    Start(Start<'a>),
    /// Text, CDATA or a resolved reference directly inside the innermost open element.
    Text(&'a str),
    /// The innermost open element closes.
    End,
}

/// An element's start tag.
pub struct Start<'a> {
    /// Its local name.
    pub name: &'a str,
    tag: &'a BytesStart<'a>,
}

impl Start<'_> {
    /// Its attributes, by local name, values unescaped.
    pub fn attributes(&self) -> Result<Vec<(String, String)>, XmlError> {
        let mut attributes = Vec::new();
        for a in self.tag.attributes() {
            let a = a.map_err(|err| XmlError(format!("bad attribute: {err}")))?;
            let value = a
                .unescape_value()
                .map_err(|err| XmlError(format!("bad attribute value: {err}")))?;
            attributes.push((local(a.key.as_ref()).into_owned(), value.into_owned()));
        }
        Ok(attributes)
    }
}

/// Checks an element's attributes as [`Start::attributes`] reads them, keeping none.
fn check_attributes(tag: &BytesStart<'_>) -> Result<(), XmlError> {
    for a in tag.attributes() {
        let a = a.map_err(|err| XmlError(format!("bad attribute: {err}")))?;
        a.unescape_value()
            .map_err(|err| XmlError(format!("bad attribute value: {err}")))?;
    }
    Ok(())
}

/// Parses a document into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    walk(text, |step| {
        match step {
            Step::Start(start) => stack.push(Element {
                name: start.name.to_string(),
                attributes: start.attributes()?,
                ..Element::default()
            }),
            Step::Text(text) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(text);
                }
            }
            Step::End => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
        }
        Ok(())
    })?;
    root.ok_or_else(|| XmlError("the document has no root element".into()))
}

/// Reads a whole document, giving `visit` each element's start and end and the text
/// inside, without building a tree: for reading a few values out of a request on a
/// hot path. The document is checked as [`parse`] checks it (well-formed, one root,
/// bounded depth and size, no DTD) and the same errors come back; an error from
/// `visit` ends the walk.
pub fn walk(
    text: &str,
    mut visit: impl FnMut(Step<'_>) -> Result<(), XmlError>,
) -> Result<(), XmlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let (mut depth, mut count, mut rooted) = (0usize, 0usize, false);
    loop {
        let event = reader.read_event().map_err(|e| {
            XmlError(format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if rooted => {
                return Err(XmlError("content after the root element".into()));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                count += 1;
                if count > MAX_ELEMENTS || !empty && depth >= MAX_DEPTH {
                    return Err(XmlError(match empty {
                        true => "the document is too large".into(),
                        false => "the document is nested too deeply or too large".into(),
                    }));
                }
                check_attributes(e)?;
                let name = local(e.name().into_inner());
                visit(Step::Start(Start {
                    name: &name,
                    tag: e,
                }))?;
                if empty {
                    visit(Step::End)?;
                    rooted |= depth == 0;
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                if depth == 0 {
                    return Err(XmlError("unbalanced end tag".into()));
                }
                visit(Step::End)?;
                depth -= 1;
                rooted |= depth == 0;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| XmlError(format!("bad text: {e}")))?;
                if depth > 0 {
                    visit(Step::Text(&s))?;
                } else if !s.trim().is_empty() {
                    return Err(XmlError("text outside the root element".into()));
                }
            }
            Event::CData(t) => {
                let s = t
                    .decode()
                    .map_err(|e| XmlError(format!("bad CDATA: {e}")))?;
                if depth > 0 {
                    visit(Step::Text(&s))?;
                }
            }
            Event::GeneralRef(r) => {
                let mut buffer = [0; 4];
                let resolved: &str = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.encode_utf8(&mut buffer),
                    Ok(None) => {
                        let name = r
                            .decode()
                            .map_err(|e| XmlError(format!("bad entity: {e}")))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError(format!("unknown entity &{name};")))?
                    }
                    Err(e) => return Err(XmlError(format!("bad character reference: {e}"))),
                };
                if depth > 0 {
                    visit(Step::Text(resolved))?;
                }
            }
            Event::DocType(_) => {
                return Err(XmlError(
                    "document type declarations are not accepted".into(),
                ));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if depth > 0 {
        return Err(XmlError("the document ends inside an element".into()));
    }
    if !rooted {
        return Err(XmlError("the document has no root element".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_documents_with_entities() {
        let el = parse(
            r#"<?xml version="1.0"?><a:Root xmlns:a="urn:x"><a:Item k="1&amp;2">x &lt;y&gt; &#x41;</a:Item><Empty/></a:Root>"#,
        )
        .unwrap();
        assert_eq!(el.name, "Root");
        let item = el.child("Item").unwrap();
        assert_eq!(item.text, "x <y> A");
        assert_eq!(item.attribute("k"), Some("1&2"));
        assert!(el.child("Empty").is_some());
    }

    #[test]
    fn refuses_what_is_not_a_plain_document() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>",
            "<a>&x;</a>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(escape("a\"<x>&'"), "a&quot;&lt;x&gt;&amp;&apos;");
    }
}
