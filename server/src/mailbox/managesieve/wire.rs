//! ManageSieve's command syntax (RFC 5804 4): a command name, then arguments that are
//! numbers, quoted strings (at most 1024 octets, `\"` and `\\` escaped) or literals
//! (`{n+}` or `{n}`, CRLF, then n octets), on one line that literals may continue
//! over several. [`parse_line`] reads one physical line; the connection loop reads a
//! literal's octets when it says so and then the line that follows it.

/// Longest command line accepted (literals not counted), its CRLF not counted.
pub const MAX_LINE: usize = 8 * 1024;
/// Longest quoted string (RFC 5804 4).
pub const MAX_QUOTED: usize = 1024;
/// The most arguments of one command.
pub const MAX_ARGS: usize = 8;

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A command name or other bare word (its letters as sent).
    Atom(String),
    Number(u64),
    /// A quoted string or a literal's octets.
    String(Vec<u8>),
}

impl Arg {
    /// The argument as a string, if it is one and is UTF-8.
    pub fn text(&self) -> Option<&str> {
        match self {
            Arg::String(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// How a line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The command is complete.
    Done,
    /// A literal of this many octets follows the line; the command goes on after it.
    Literal(usize),
}

/// Parses one line (without its CRLF) onto `args`.
pub fn parse_line(line: &[u8], args: &mut Vec<Arg>) -> Result<Line, String> {
    let mut i = 0;
    loop {
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let Some(&first) = line.get(i) else {
            return Ok(Line::Done);
        };
        if args.len() >= MAX_ARGS {
            return Err("too many arguments".into());
        }
        if i > 0 && line[i - 1] != b' ' {
            return Err("arguments must be separated by a space".into());
        }
        match first {
            b'"' => {
                let mut value = Vec::new();
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err("a quoted string is not closed".into()),
                        Some(b'"') => break,
                        Some(b'\\') => match line.get(i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                value.push(c);
                                i += 1;
                            }
                            _ => return Err("only \\\" and \\\\ may be escaped".into()),
                        },
                        Some(0) => return Err("a quoted string may not hold NUL".into()),
                        Some(&c) => value.push(c),
                    }
                    if value.len() > MAX_QUOTED {
                        return Err(format!(
                            "a quoted string may hold at most {MAX_QUOTED} octets: send a literal"
                        ));
                    }
                    i += 1;
                }
                i += 1;
                args.push(Arg::String(value));
            }
            b'{' => {
                let end = line[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("a literal's length is not closed with }")?;
                let spec = &line[i + 1..i + end];
                let digits = spec.strip_suffix(b"+").unwrap_or(spec);
                if i + end + 1 != line.len() {
                    return Err("a literal's length must end the line".into());
                }
                let length = parse_number(digits).ok_or("a literal's length is not a number")?;
                let length = usize::try_from(length).map_err(|_| "a literal is too long")?;
                return Ok(Line::Literal(length));
            }
            b'0'..=b'9' => {
                let end = word_end(line, i);
                let number = parse_number(&line[i..end]).ok_or("not a number")?;
                args.push(Arg::Number(number));
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let end = word_end(line, i);
                let word = &line[i..end];
                if !word.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
                    return Err("a command name holds only letters".into());
                }
                args.push(Arg::Atom(String::from_utf8_lossy(word).into_owned()));
                i = end;
            }
            _ => return Err("expected a string, a number or a command name".into()),
        }
    }
}

fn word_end(line: &[u8], start: usize) -> usize {
    line[start..]
        .iter()
        .position(|&c| c == b' ')
        .map_or(line.len(), |p| start + p)
}

/// A number of at most 10 digits (RFC 5804: up to 4294967295).
fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n <= u64::from(u32::MAX))
}

/// A string as responses carry it: quoted when it can be (short, valid UTF-8, no
/// control characters: a client that shows or logs a response line must not be
/// tricked by one a script or a client put there), else a literal.
pub fn string(value: &[u8]) -> Vec<u8> {
    let quotable = value.len() <= MAX_QUOTED
        && std::str::from_utf8(value).is_ok()
        && !value.iter().any(|&c| c < b' ' || c == 0x7f);
    let mut out = Vec::with_capacity(value.len() + 16);
    if quotable {
        out.push(b'"');
        for &c in value {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
        out.extend_from_slice(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<(Vec<Arg>, Line), String> {
        let mut args = Vec::new();
        parse_line(line.as_bytes(), &mut args).map(|l| (args, l))
    }

    #[test]
    fn commands_with_strings_numbers_and_literals() {
        let (args, line) = parse(r#"HAVESPACE "my \"script\"" 1234"#).expect("a valid line");
        assert_eq!(line, Line::Done);
        assert_eq!(
            args,
            vec![
                Arg::Atom("HAVESPACE".into()),
                Arg::String(br#"my "script""#.to_vec()),
                Arg::Number(1234)
            ]
        );
        let (args, line) = parse(r#"PUTSCRIPT "a" {12+}"#).expect("a valid line");
        assert_eq!(line, Line::Literal(12));
        assert_eq!(args.len(), 2);
        assert_eq!(
            parse("CHECKSCRIPT {3}").expect("a valid line").1,
            Line::Literal(3)
        );
        assert_eq!(parse("").expect("an empty line"), (vec![], Line::Done));
    }

    #[test]
    fn malformed_lines_are_refused_with_a_reason() {
        for bad in [
            r#"PUTSCRIPT "open"#,
            r#"X "a"b"#,
            "X {12+} more",
            "X {abc}",
            "X {99999999999}",
            r#"X "\n""#,
            "X (paren)",
            "X 99999999999",
            "A B C D E F G H I",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = format!("X \"{}\"", "a".repeat(MAX_QUOTED + 1));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn strings_are_quoted_or_sent_as_literals() {
        assert_eq!(string(br#"a"b\c"#), br#""a\"b\\c""#.to_vec());
        assert_eq!(string(b"two\r\nlines"), b"{10}\r\ntwo\r\nlines".to_vec());
        assert_eq!(string(b"bell\x07"), b"{5}\r\nbell\x07".to_vec());
    }
}
