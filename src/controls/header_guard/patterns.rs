//! The default deny patterns. Each is specified by a regular expression (documented, and
//! checked against the matcher here by the unit tests and the fuzz target), and matched by a
//! hand-written scanner: regex-lite costs tens of nanoseconds per byte, and an attacker
//! controls up to `max_total_bytes` of near-misses per request.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Log4Shell,
    Shellshock,
    Ognl,
}

/// (matcher, name, the regular expression it implements).
pub const BUILTINS: &[(Builtin, &str, &str)] = &[
    // Log4Shell (CVE-2021-44228) and its lookup obfuscations: `${jndi:`, `${${lower:j}ndi:`,
    // `${${::-j}ndi:`, `${env:AWS_SECRET}`.
    (
        Builtin::Log4Shell,
        "log4shell",
        r"(?i)\$\{\s*(?:jndi|env|sys|java|lower|upper|date|main|ctx|bundle|spring|k8s|docker|log4j|web|::-|\$\{)",
    ),
    // Shellshock (CVE-2014-6271): a function definition in a value bash imports.
    (Builtin::Shellshock, "shellshock", r"^\s*\(\s*\)\s*\{"),
    // Struts 2 OGNL injection through Content-Type (CVE-2017-5638): `%{(#_=…`.
    (Builtin::Ognl, "ognl", r"%\{\s*\(?\s*[#@]"),
];

/// The alternatives after `${` in the Log4Shell pattern, lower case.
const LOOKUPS: &[&[u8]] = &[
    b"jndi", b"env", b"sys", b"java", b"lower", b"upper", b"date", b"main", b"ctx", b"bundle",
    b"spring", b"k8s", b"docker", b"log4j", b"web", b"::-", b"${",
];

/// regex-lite's `\s`: ASCII whitespace including vertical tab.
fn skip_ws(v: &[u8]) -> &[u8] {
    let n = v
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .count();
    v.get(n..).unwrap_or_default()
}

/// `f` applied after each occurrence of the two-byte `anchor`.
fn after_each(v: &[u8], anchor: [u8; 2], f: impl Fn(&[u8]) -> bool) -> bool {
    v.windows(2)
        .enumerate()
        .any(|(i, w)| w == anchor && f(v.get(i + 2..).unwrap_or_default()))
}

impl Builtin {
    /// Every match contains a `{`: values without one skip the scan.
    pub fn matches(self, v: &[u8]) -> bool {
        match self {
            Builtin::Log4Shell => after_each(v, *b"${", |rest| {
                let rest = skip_ws(rest);
                let Some(first) = rest.first().map(u8::to_ascii_lowercase) else {
                    return false;
                };
                LOOKUPS.iter().any(|k| {
                    k.first() == Some(&first)
                        && rest
                            .get(..k.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(k))
                })
            }),
            Builtin::Shellshock => skip_ws(v)
                .strip_prefix(b"(")
                .map(skip_ws)
                .and_then(|r| r.strip_prefix(b")"))
                .map(skip_ws)
                .is_some_and(|r| r.first() == Some(&b'{')),
            Builtin::Ognl => after_each(v, *b"%{", |rest| {
                let rest = skip_ws(rest);
                let rest = rest.strip_prefix(b"(").map_or(rest, skip_ws);
                matches!(rest.first(), Some(b'#' | b'@'))
            }),
        }
    }
}
