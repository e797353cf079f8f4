//! The policy's mask functions: parsing their spelling and applying them to text-format column values.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// Fixed-width output so a redacted value leaks nothing about its length; also the fail-closed answer.
const STARS: &[u8] = b"****";
const KNOWN_MASKS: &str = "redact, null, first(n), last(n), email, iban, year, round(n), pseudonym, constant('text')";
/// Keeps step arithmetic inside u64/u128 and output inside a fixed stack buffer.
const MAX_STEP_DIGITS: usize = 18;

#[derive(Debug, Clone, PartialEq)]
pub enum Mask {
    Redact,
    Null,
    First(usize),
    Last(usize),
    Email,
    Iban,
    Year,
    Round(RoundStep),
    Pseudonym,
    Constant(String),
}

/// The `n` of `round(n)`, kept as written (`units / 10^scale`) so results print with n's decimals
/// and rounding is exact decimal arithmetic rather than binary floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundStep {
    units: u64,
    scale: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskSpecError {
    #[error("empty mask; known masks: {KNOWN_MASKS}")]
    Empty,
    #[error("unknown mask `{0}`; known masks: {KNOWN_MASKS}")]
    Unknown(String),
    #[error("mask `{0}` needs an argument in parentheses")]
    MissingArgument(&'static str),
    #[error("mask `{0}` takes no argument")]
    UnexpectedArgument(&'static str),
    #[error("mask `{0}` lacks its closing `)`{hint}", hint = unclosed_hint(.0))]
    Unclosed(String),
    #[error("{mask}(n) needs a whole number n ≥ 1, got `{got}`")]
    BadCount { mask: &'static str, got: String },
    #[error("round(n) needs a positive number n such as 10 or 0.5 (at most {MAX_STEP_DIGITS} digits), got `{0}`")]
    BadStep(String),
    #[error("constant('text') needs one single-quoted SQL string (write '' for a quote inside it), got `{0}`")]
    BadConstant(String),
}

/// `{ mask: last(3) lookup: true }` reads as the mask `last(3) lookup` (round 94).
fn unclosed_hint(spec: &str) -> &'static str {
    if spec.contains(')') {
        " (is a comma missing between two keys of a `{ … }` map? Without it YAML reads them as one value)"
    } else {
        // `{ mask: constant('[hidden]') }`: YAML's flow map ends the value at the bracket (round 116).
        " (in a `{ … }` map YAML ends a value at [ ] { } or a comma: quote such a mask, e.g. `{ mask: \"constant('[hidden]')\" }`)"
    }
}

impl FromStr for RoundStep {
    type Err = MaskSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let arg = s.trim();
        let bad = || MaskSpecError::BadStep(arg.to_owned());
        let (int, frac) = match arg.split_once('.') {
            Some((_, "")) => return Err(bad()),
            Some(parts) => parts,
            None => (arg, ""),
        };
        let well_formed = !int.is_empty()
            && int.len() + frac.len() <= MAX_STEP_DIGITS
            && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(bad());
        }
        let units = int
            .bytes()
            .chain(frac.bytes())
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
        if units == 0 {
            return Err(bad());
        }
        let scale = u32::try_from(frac.len()).map_err(|_| bad())?;
        Ok(RoundStep { units, scale })
    }
}

impl fmt::Display for RoundStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.units);
        }
        let p = 10u64.pow(self.scale);
        let width = self.scale as usize;
        write!(f, "{}.{:0width$}", self.units / p, self.units % p)
    }
}

impl FromStr for Mask {
    type Err = MaskSpecError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let s = spec.trim();
        if s.is_empty() {
            return Err(MaskSpecError::Empty);
        }
        let (name, rest) = match s.split_once('(') {
            Some((name, rest)) => (name.trim_end(), Some(rest)),
            None => (s, None),
        };
        let simple = [
            ("redact", Mask::Redact),
            ("null", Mask::Null),
            ("email", Mask::Email),
            ("iban", Mask::Iban),
            ("year", Mask::Year),
            ("pseudonym", Mask::Pseudonym),
        ];
        if let Some((known, mask)) = simple.into_iter().find(|(n, _)| *n == name) {
            return match rest {
                None => Ok(mask),
                Some(_) => Err(MaskSpecError::UnexpectedArgument(known)),
            };
        }
        let usage = match name {
            "first" => "first(n)",
            "last" => "last(n)",
            "round" => "round(n)",
            "constant" => "constant('text')",
            _ => return Err(MaskSpecError::Unknown(s.to_owned())),
        };
        let a = rest
            .ok_or(MaskSpecError::MissingArgument(usage))?
            .strip_suffix(')')
            .ok_or_else(|| MaskSpecError::Unclosed(s.to_owned()))?;
        match name {
            "first" => parse_count("first", a).map(Mask::First),
            "last" => parse_count("last", a).map(Mask::Last),
            "round" => a.parse().map(Mask::Round),
            _ => parse_sql_string(a).map(Mask::Constant),
        }
    }
}

fn parse_count(mask: &'static str, arg: &str) -> Result<usize, MaskSpecError> {
    let a = arg.trim();
    match a.parse::<usize>() {
        // usize parsing alone would also take `+3`.
        Ok(n) if n >= 1 && a.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(MaskSpecError::BadCount {
            mask,
            got: a.to_owned(),
        }),
    }
}

fn parse_sql_string(arg: &str) -> Result<String, MaskSpecError> {
    let a = arg.trim();
    let bad = || MaskSpecError::BadConstant(a.to_owned());
    let mut chars = a.strip_prefix('\'').ok_or_else(bad)?.chars();
    let mut text = String::new();
    while let Some(c) = chars.next() {
        if c != '\'' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('\'') => text.push('\''),
            None => return Ok(text),
            Some(_) => return Err(bad()),
        }
    }
    Err(bad())
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mask::First(n) | Mask::Last(n) => write!(f, "{}({n})", self.name()),
            Mask::Round(step) => write!(f, "round({step})"),
            Mask::Constant(text) => {
                f.write_str("constant('")?;
                for part in text.split_inclusive('\'') {
                    f.write_str(part)?;
                    if part.ends_with('\'') {
                        f.write_str("'")?;
                    }
                }
                f.write_str("')")
            }
            _ => f.write_str(self.name()),
        }
    }
}

impl Mask {
    pub fn name(&self) -> &'static str {
        match self {
            Mask::Redact => "redact",
            Mask::Null => "null",
            Mask::First(_) => "first",
            Mask::Last(_) => "last",
            Mask::Email => "email",
            Mask::Iban => "iban",
            Mask::Year => "year",
            Mask::Round(_) => "round",
            Mask::Pseudonym => "pseudonym",
            Mask::Constant(_) => "constant",
        }
    }

    pub fn yields_text(&self) -> bool {
        !matches!(self, Mask::Null)
    }

    pub fn needs_key(&self) -> bool {
        matches!(self, Mask::Pseudonym)
    }

    /// `value` is the column's text-format bytes. Appends the masked bytes to `out` and returns true,
    /// or returns false (writing nothing) when the result is SQL NULL (the `null` mask).
    /// `key` is the campaign's pseudonym key; Pseudonym with key None fails closed: writes `****`.
    pub fn apply(&self, value: &[u8], key: Option<&PseudonymKey>, out: &mut Vec<u8>) -> bool {
        match self {
            Mask::Null => return false,
            Mask::Redact => out.extend_from_slice(STARS),
            Mask::First(n) => {
                let mut i = 0;
                for_each_char(value, |c| {
                    push_char(out, if i < *n { c } else { '*' });
                    i += 1;
                });
            }
            Mask::Last(n) => star_alnum(value, out, |i, total| i >= total.saturating_sub(*n)),
            Mask::Iban => star_alnum(value, out, |i, total| total > 8 && (i < 4 || i >= total - 4)),
            Mask::Email => email(value, out),
            Mask::Year => year(value, out),
            Mask::Round(step) => round(*step, value, out),
            Mask::Pseudonym => match key {
                Some(key) => key.token(value, out),
                None => out.extend_from_slice(STARS),
            },
            Mask::Constant(text) => out.extend_from_slice(text.as_bytes()),
        }
        true
    }
}

/// Per-campaign HMAC key for the pseudonym mask.
#[derive(Clone)]
pub struct PseudonymKey {
    /// Already keyed, so each value costs a clone plus the hashing, not a key schedule.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey").finish_non_exhaustive()
    }
}

impl PseudonymKey {
    /// Derives the campaign's key from the deployment's master secret: equal master + campaign → equal key;
    /// different campaigns → unrelated keys.
    pub fn derive(master: &[u8], campaign: &str) -> Self {
        let mut kdf = keyed(master);
        // Domain separation keeps this key distinct from anything else derived from the same master.
        kdf.update(b"unscharf pseudonym key v1\0");
        kdf.update(campaign.as_bytes());
        PseudonymKey {
            mac: keyed(&kdf.finalize().into_bytes()),
        }
    }

    fn token(&self, value: &[u8], out: &mut Vec<u8>) {
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut hex = [0u8; 16];
        match tag.get(..8).map(|t| hex::encode_to_slice(t, &mut hex)) {
            Some(Ok(())) => {
                out.extend_from_slice(b"ps_");
                out.extend_from_slice(&hex);
            }
            _ => out.extend_from_slice(STARS),
        }
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // RFC 2104 HMAC takes keys of every length (long ones are hashed), so the hmac crate never errs here.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Visits the scalars of `value` as `String::from_utf8_lossy` would see them, without allocating.
/// (Internal iteration: a flat_map iterator here made iban twice as slow.)
fn for_each_char(value: &[u8], mut f: impl FnMut(char)) {
    for chunk in value.utf8_chunks() {
        chunk.valid().chars().for_each(&mut f);
        if !chunk.invalid().is_empty() {
            f(char::REPLACEMENT_CHARACTER);
        }
    }
}

fn first_char(value: &[u8]) -> Option<char> {
    let chunk = value.utf8_chunks().next()?;
    chunk.valid().chars().next().or(Some(char::REPLACEMENT_CHARACTER))
}

fn push_char(out: &mut Vec<u8>, c: char) {
    if c.is_ascii() {
        out.push(c as u8);
    } else {
        out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
    }
}

/// Keeps separators, and of the letters/digits only those `keep(index, total)` selects.
fn star_alnum(value: &[u8], out: &mut Vec<u8>, keep: impl Fn(usize, usize) -> bool) {
    // Phone numbers and IBANs are ASCII; bytes are then scalars, and char::is_alphanumeric agrees
    // with the ASCII test.
    if value.is_ascii() {
        let total = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
        let start = out.len();
        out.extend_from_slice(value);
        let mut i = 0;
        for b in &mut out[start..] {
            if b.is_ascii_alphanumeric() {
                if !keep(i, total) {
                    *b = b'*';
                }
                i += 1;
            }
        }
        return;
    }
    star_alnum_scalars(value, out, keep);
}

/// Separators are ASCII: any other character that is no letter or digit is starred too (round
/// 202 AM2: Unicode tag digits, combining accents and braille came through whole).
fn star_alnum_scalars(value: &[u8], out: &mut Vec<u8>, keep: impl Fn(usize, usize) -> bool) {
    let mut total = 0;
    for_each_char(value, |c| total += usize::from(c.is_alphanumeric()));
    let mut i = 0;
    for_each_char(value, |c| {
        if c.is_alphanumeric() {
            push_char(out, if keep(i, total) { c } else { '*' });
            i += 1;
        } else {
            push_char(out, if c.is_ascii() { c } else { '*' });
        }
    });
}

/// The first character, `***`, and the domain. Only a domain is shown: what follows the last `@`
/// must be a host name (labels of letters, digits and hyphens, the last one with a letter), or
/// nothing is (round 202 AM1: `kurt@example.org (privat: +49 171 …)` showed the note after it).
fn email(value: &[u8], out: &mut Vec<u8>) {
    let Some(at) = value.iter().rposition(|&b| b == b'@') else {
        return out.extend_from_slice(STARS);
    };
    let (local, domain) = value.split_at(at);
    let domain = domain.trim_ascii_end();
    match (first_char(local), is_host_name(&domain[1..])) {
        (Some(first), true) => {
            push_char(out, first);
            out.extend_from_slice(b"***");
            out.extend_from_slice(domain);
        }
        _ => out.extend_from_slice(STARS),
    }
}

/// Whether `host` reads as a DNS name: at least two labels of letters, digits and hyphens (any
/// script), the last with a letter in it.
fn is_host_name(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|l| l.chars().any(char::is_alphabetic))
}

fn year(value: &[u8], out: &mut Vec<u8>) {
    let v = value.trim_ascii();
    if v.eq_ignore_ascii_case(b"infinity") || v.eq_ignore_ascii_case(b"-infinity") {
        return out.extend_from_slice(v);
    }
    let mut i = 0;
    while i < v.len() {
        let run = v
            .get(i..)
            .map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count());
        // Postgres DateStyle prints `13:45:00.123456 1984`: fractional seconds come before the year.
        let fraction = i
            .checked_sub(4)
            .and_then(|s| v.get(s..i))
            .is_some_and(|p| matches!(p, [b':', d, e, b'.'] if d.is_ascii_digit() && e.is_ascii_digit()));
        if run >= 4 && !fraction {
            if let Some(digits) = v.get(i..i + run) {
                out.extend_from_slice(digits);
                if v.ends_with(b" BC") {
                    out.extend_from_slice(b" BC");
                }
                return;
            }
        }
        i += run.max(1);
    }
    out.extend_from_slice(STARS);
}

fn round(step: RoundStep, value: &[u8], out: &mut Vec<u8>) {
    let v = value.trim_ascii();
    let special = [&b"NaN"[..], b"Infinity", b"-Infinity", b"+Infinity"];
    if special.iter().any(|s| v.eq_ignore_ascii_case(s)) {
        return out.extend_from_slice(v);
    }
    match round_decimal(v, step) {
        Some((negative, units)) => write_scaled(negative, units, step.scale, out),
        None => out.extend_from_slice(STARS),
    }
}

/// Rounds decimal text to a multiple of `step`, halves away from zero; returns the sign and the
/// result in units of 10^-scale. None when the text is not a number or the result exceeds u128.
fn round_decimal(v: &[u8], step: RoundStep) -> Option<(bool, u128)> {
    let (negative, v) = split_sign(v);
    let (mantissa, exp) = match v.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(e) => (v.get(..e)?, parse_exponent(v.get(e + 1..)?)?),
        None => (v, 0),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(p) => (mantissa.get(..p)?, mantissa.get(p + 1..)?),
        None => (mantissa, &b""[..]),
    };
    let digits = || int.iter().chain(frac).map(|b| u128::from(b.wrapping_sub(b'0')));
    if int.len() + frac.len() == 0 || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let n_digits = i64::try_from(int.len() + frac.len()).ok()?;
    // Where the decimal point falls, counted in mantissa digits, once the value is scaled by 10^scale.
    let point = i64::try_from(int.len())
        .ok()?
        .saturating_add(exp)
        .saturating_add(i64::from(step.scale));
    let mut whole: u128 = 0;
    for d in digits().take(usize::try_from(point.clamp(0, n_digits)).ok()?) {
        whole = whole.checked_mul(10)?.checked_add(d)?;
    }
    if whole != 0 {
        // Overflow ends this loop within 39 rounds however large the exponent.
        for _ in n_digits..point {
            whole = whole.checked_mul(10)?;
        }
    }
    let next_digit = match usize::try_from(point) {
        Ok(p) => digits().nth(p).unwrap_or(0),
        Err(_) => 0,
    };
    let m = u128::from(step.units);
    let (q, r) = (whole / m, whole % m);
    // Round up when the remainder plus the dropped fraction is at least half a step.
    let up = 2 * r >= m || (2 * r + 1 == m && next_digit >= 5);
    let units = (q + u128::from(up)).checked_mul(m)?;
    Some((negative && units != 0, units))
}

fn split_sign(v: &[u8]) -> (bool, &[u8]) {
    match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, v),
    }
}

fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Anything past a million digits already over- or underflows, so saturate rather than fail.
    let e = digits
        .iter()
        .fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(1_000_000));
    Some(if negative { -e } else { e })
}

fn write_scaled(negative: bool, units: u128, scale: u32, out: &mut Vec<u8>) {
    use std::io::Write;
    let sign = if negative { "-" } else { "" };
    let p = 10u128.pow(scale);
    let width = scale as usize;
    // Writing into a Vec cannot fail.
    let _ = match scale {
        0 => write!(out, "{sign}{units}"),
        _ => write!(out, "{sign}{}.{:0width$}", units / p, units % p),
    };
}

#[cfg(test)]
mod tests;
