//! Reads a Python bytes literal (`NAME = b'...'`) out of Python source, the
//! way some wheels ship an ONNX file. We parse the literal ourselves and never
//! run the package's code.

/// Returns the bytes of the literal assigned to `variable` at the top level of `source`.
pub fn assigned_bytes(source: &str, variable: &str) -> Result<Vec<u8>, String> {
    let start = source
        .lines()
        .scan(0usize, |offset, line| {
            let here = *offset;
            *offset += line.len() + 1;
            Some((here, line))
        })
        .find_map(|(offset, line)| {
            let rest = line.strip_prefix(variable)?.trim_start().strip_prefix('=')?;
            Some(offset + line.len() - rest.len())
        })
        .ok_or_else(|| format!("no top-level assignment to {variable}"))?;
    parse_literal(source[start..].trim_start().as_bytes())
}

/// Parses one bytes literal at the start of `src` (`b'...'` or `b"..."`).
pub fn parse_literal(src: &[u8]) -> Result<Vec<u8>, String> {
    let (prefix, body) = src.split_at(src.len().min(2));
    let quote = match prefix {
        [b'b' | b'B', q @ (b'\'' | b'"')] => *q,
        _ => return Err("expected a bytes literal (b'...' or b\"...\")".into()),
    };
    if body.starts_with(&[quote, quote]) {
        return Err("triple-quoted bytes literals are not supported".into());
    }
    let mut out = Vec::with_capacity(body.len() / 3);
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        match c {
            _ if c == quote => return Ok(out),
            b'\n' => return Err("bytes literal ends at a line break without its closing quote".into()),
            b'\\' => i = escape(body, i, &mut out)?,
            0x80.. => return Err("bytes literals may only contain ASCII characters".into()),
            _ => out.push(c),
        }
    }
    Err("bytes literal has no closing quote (file truncated?)".into())
}

/// Decodes the escape whose character follows a backslash at `i`; returns the next index.
fn escape(body: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let Some(&c) = body.get(i) else { return Err("bytes literal ends in a backslash".into()) };
    let simple = match c {
        b'\n' => return Ok(i + 1), // line continuation
        b'\\' | b'\'' | b'"' => Some(c),
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Ok(i + 1);
    }
    if c == b'x' {
        let hex = body.get(i + 1..i + 3).ok_or("truncated \\x escape")?;
        let text = std::str::from_utf8(hex).map_err(|_| "bad \\x escape")?;
        out.push(u8::from_str_radix(text, 16).map_err(|_| format!("bad \\x escape \\x{text}"))?);
        return Ok(i + 3);
    }
    if (b'0'..=b'7').contains(&c) {
        let digits = body[i..].iter().take(3).take_while(|d| (b'0'..=b'7').contains(d)).count();
        let value = body[i..i + digits].iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
        out.push((value & 0xff) as u8);
        return Ok(i + digits);
    }
    // Python keeps unknown escapes as written.
    out.extend_from_slice(&[b'\\', c]);
    Ok(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_escape_python_writes_decodes() {
        let src = r#"X = b'a\x00\xff\n\r\t\\\'"\101\7\q'"#;
        assert_eq!(
            assigned_bytes(src, "X").unwrap(),
            b"a\x00\xff\n\r\t\\'\"A\x07\\q".to_vec()
        );
    }

    #[test]
    fn finds_the_named_assignment_and_double_quotes() {
        let src = "import os\nOTHER = b'no'\nWEIGHTS = b\"it's\"\n";
        assert_eq!(assigned_bytes(src, "WEIGHTS").unwrap(), b"it's".to_vec());
        assert!(assigned_bytes(src, "MISSING").is_err());
    }

    #[test]
    fn truncated_literals_are_errors_not_short_data() {
        assert!(parse_literal(b"b'abc").is_err());
        assert!(parse_literal(b"b'ab\\x4").is_err());
        assert!(parse_literal(b"'abc'").is_err());
    }
}
