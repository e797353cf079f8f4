//! The string literals of the decision tables' Rust sources, so other tests can reuse their SQL.

/// The string literals of a Rust source file (decision tables keep their SQL in them).
pub fn string_literals(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal such as '"' must not open a string; lifetimes have no closing quote.
                if b.get(i + 2) == Some(&b'\'') {
                    i += 2;
                } else if b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') {
                    i += 3;
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#')) && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) == Some(&b'"') {
                    let close = format!("\"{}", "#".repeat(hashes));
                    let end = src[open + 1..].find(&close).expect("unterminated raw string") + open + 1;
                    out.push(src[open + 1..end].to_owned());
                    i = end + close.len();
                    continue;
                }
            }
            b'"' => {
                let mut s = String::new();
                let mut chars = src[i + 1..].char_indices();
                loop {
                    let (at, c) = chars.next().expect("unterminated string");
                    match c {
                        '"' => {
                            i += 1 + at;
                            break;
                        }
                        '\\' => match chars.next().expect("escape").1 {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            '0' => s.push('\0'),
                            '\n' => {
                                while chars.clone().next().is_some_and(|(_, c)| c.is_whitespace()) {
                                    chars.next();
                                }
                            }
                            other => s.push(other),
                        },
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            _ => {}
        }
        i += 1;
    }
    out
}
