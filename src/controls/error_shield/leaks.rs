//! What must not leave the service: stack traces, SQL errors, secrets, internal addresses and
//! host names, file-system paths, version banners. Each class is compiled once per policy into
//! a [`Detector`] and run over the body (or header value) as text.
//!
//! The detectors anchor on structure, not on single words, so that prose and ordinary JSON
//! pass: a stack trace is several frame lines (one `panic: ` in a sentence is not a Go panic),
//! a file path needs a file-like tail (`"/app/orders/42"` is a link, `/app/orders.py` a file).

use std::ops::Range;

use regex_lite::Regex;
use serde::Deserialize;

/// The classes of leak a policy can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakClass {
    StackTrace,
    SqlError,
    Secret,
    InternalIp,
    InternalHost,
    FilePath,
    VersionBanner,
    /// A gzip/deflate body that expands far beyond its size (found while decoding, not by a
    /// pattern; see `decode.rs`).
    CompressionBomb,
}

/// The host-name suffixes `internal_host` looks for unless the policy names its own.
pub const DEFAULT_INTERNAL_SUFFIXES: [&str; 4] = ["svc.cluster.local", "internal", "local", "corp"];

impl LeakClass {
    pub const ALL: [LeakClass; 8] = [
        LeakClass::StackTrace,
        LeakClass::SqlError,
        LeakClass::Secret,
        LeakClass::InternalIp,
        LeakClass::InternalHost,
        LeakClass::FilePath,
        LeakClass::VersionBanner,
        LeakClass::CompressionBomb,
    ];

    /// The policy name of the class (`stack_trace`).
    pub fn name(self) -> &'static str {
        self.code().trim_start_matches("error_shield.")
    }

    /// The reason code used in problem bodies, logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            LeakClass::StackTrace => "error_shield.stack_trace",
            LeakClass::SqlError => "error_shield.sql_error",
            LeakClass::Secret => "error_shield.secret",
            LeakClass::InternalIp => "error_shield.internal_ip",
            LeakClass::InternalHost => "error_shield.internal_host",
            LeakClass::FilePath => "error_shield.file_path",
            LeakClass::VersionBanner => "error_shield.version_banner",
            LeakClass::CompressionBomb => "error_shield.compression_bomb",
        }
    }

    /// Patterns of which one match is a leak.
    fn patterns(self) -> &'static [&'static str] {
        match self {
            LeakClass::StackTrace => &[
                // Go: the goroutine header is followed by a frame (`main.main()`).
                r"(?m)^goroutine \d+ \[[\w ,:]+\]:\s*\n\S+\(",
                // PHP's error line names the script and line, in text or in its HTML format.
                r"(?:Fatal error|Warning|Notice|Parse error|Deprecated|Catchable fatal error): +.{1,500}? in \S+\.(?:php|phtml|inc)(?::\d+| on line \d+)",
                r"<b>(?:Fatal error|Warning|Notice|Parse error|Deprecated)</b>: +.{1,500}? in <b>[^<\n]+</b> on line <b>\d+</b>",
            ],
            LeakClass::SqlError => &[
                // MySQL / MariaDB, their drivers (go-sql-driver, mysql2, Connector/J)
                r"(?i)you have an error in your sql syntax",
                r"\bERROR \d{4} \([0-9A-Z]{5}\)",
                r"\bError \d{4} \([0-9A-Z]{5}\): ",
                r"\bMysql2::Error\b",
                r"\bcom\.mysql\.(?:cj\.)?jdbc\.\w+",
                r"(?i)\bmysql_(?:fetch|num_rows|query)\w*\(",
                // PostgreSQL and its drivers (libpq, psycopg, JDBC, pgx, lib/pq, pg gem)
                r#"(?i)\bsyntax error at or near ""#,
                r#"\b(?:relation|column) "[^"\n]{1,128}" (?:of relation "[^"\n]{1,128}" )?does not exist"#,
                r"\bduplicate key value violates unique constraint\b",
                r"\borg\.postgresql\.util\.PSQLException\b",
                r"\bpsycopg2?\.(?:errors\.\w+|[A-Z]\w*Error)\b",
                r"\bPG::[A-Z]\w*\b",
                r"\(SQLSTATE [0-9A-Z]{5}\)",
                r"\bpq: (?:syntax error|relation|column|duplicate key|invalid input|permission denied)",
                // Oracle
                r"\bORA-\d{5}\b",
                r"\boracle\.jdbc\.\w+",
                // SQL Server: ADO.NET, Microsoft.Data.SqlClient, JDBC, ODBC
                r"(?i)unclosed quotation mark after the character string",
                r"\bIncorrect syntax near\b",
                r"\b(?:System|Microsoft)\.Data\.SqlClient\.SqlException\b",
                r"\bcom\.microsoft\.sqlserver\.jdbc\.SQLServerException\b",
                r"\[Microsoft\]\[ODBC[^\]\n]*\]",
                // SQLite from C, Python, Java, Ruby, .NET
                r"\bSQLITE_(?:ERROR|CONSTRAINT|BUSY|LOCKED|READONLY|CORRUPT|MISMATCH|IOERR)\b",
                r"\bsqlite3\.(?:Operational|Integrity|Programming|Database|Interface)Error\b",
                r"\bSQLite3::\w+\b",
                r"\b(?:org\.sqlite\.|Microsoft\.Data\.Sqlite\.|System\.Data\.SQLite\.)?SQLiteException\b",
                r#"\bnear "[^"\n]{1,64}": syntax error\b"#,
                // JDBC in general, and the ORMs and data layers above the drivers
                r"\bjava\.sql\.SQL\w*Exception\b",
                r"\borg\.hibernate\.(?:exception\.\w+|\w*Exception)\b",
                r"\borg\.springframework\.(?:jdbc|dao)\.\w+",
                r"\bSQLSTATE\[[0-9A-Z]{5}\]",
                r"\bPDOException\b",
                r"\bsqlalchemy\.exc\.\w+",
                r"\bActiveRecord::(?:StatementInvalid|RecordNotUnique|NotNullViolation|InvalidForeignKey|ConnectionNotEstablished|\w+Error)\b",
                r"\bMicrosoft\.EntityFrameworkCore\.\w+Exception\b",
                r"\bSequelize(?:Database|UniqueConstraint|ForeignKeyConstraint|Connection)Error\b",
                // Go's database/sql
                r"\bsql: (?:no rows in result set|database is closed|Scan error on column|converting argument|transaction has already been committed or rolled back|expected \d+ arguments)",
            ],
            LeakClass::Secret => &[
                // PEM private keys of every kind (RSA, EC, OPENSSH, ENCRYPTED, PKCS#8)
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
                // Cloud and platform access keys with a fixed, documented shape
                r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
                r"\bAIza[0-9A-Za-z_\-]{35}\b",
                r"\bgh[pousr]_[A-Za-z0-9]{36}\b",
                r"\bxox[abpr]-[0-9A-Za-z\-]{10,}",
                r"\b[sr]k_live_[0-9A-Za-z]{24,}\b",
                r"\bAccountKey=[A-Za-z0-9+/]{80,}={0,2}",
                // An environment dump: a KEY=value line whose name says it is a secret
                r"(?m)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS)[A-Z0-9_]*=[^\s]+",
            ],
            LeakClass::InternalIp => &[
                r"\b10\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b172\.(?:1[6-9]|2\d|3[01])\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b192\.168\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b169\.254\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
            ],
            // Built from the policy's suffixes: see `internal_host_pattern`.
            LeakClass::InternalHost | LeakClass::CompressionBomb => &[],
            LeakClass::FilePath => &[
                // A Unix path under a server root whose last segment is a file: source, config,
                // log, key or binary; a web asset (.png, .css, .html, .js) only with a line number.
                r"(?:^|[\s'\x22(=:\[>,])/(?:home|root|var/www|var/lib|var/log|srv|opt|usr/local|usr/lib|usr/share|app|etc|tmp|mnt|Users|workspace)(?:/[\w.\-@+]+)*/[\w\-@+.]*\w\.(?:(?:py|pyc|rb|erb|php|phtml|inc|java|class|jar|war|kt|scala|groovy|go|rs|c|cc|cpp|h|hpp|cs|dll|exe|so|pl|pm|sh|bash|yml|yaml|toml|ini|conf|cfg|env|properties|log|pem|key|crt|sqlite|db|sql|ex|exs|erl|lua|tpl|twig|mjs|cjs|ts|tsx|jsx)\b|(?:js|html?|css|json|xml|txt)(?::\d+|\(\d+\)))",
                // A Windows path under a well-known root
                r"\b[A-Za-z]:\\(?:Users|inetpub|Windows|Program Files|ProgramData|src|app|home|www|projects)\\",
            ],
            LeakClass::VersionBanner => &[
                // Server software with its version, as in a default error page or signature.
                r"\b(?:nginx|openresty|Apache(?:-Coyote)?|Apache Tomcat|Microsoft-IIS|Microsoft-HTTPAPI|lighttpd|LiteSpeed|Caddy|Jetty|Tomcat|WildFly|JBoss|Undertow|GlassFish|WebLogic|WebSphere|gunicorn|uvicorn|Werkzeug|Kestrel|Phusion(?:_| )Passenger|Puma|Unicorn|PHP|OpenSSL|mod_\w+|Varnish|HAProxy|Express|Node\.js|Python|Ruby|Perl|ASP\.NET)/\d+\.\d+(?:\.\d+)*(?: \([A-Za-z][\w .\-]*\))?",
                r"\bPowered by (?:PHP|ASP\.NET|Express|Phusion Passenger)\b",
            ],
        }
    }

    /// Lower-case literals of which every pattern of the class contains one (case ignored): a
    /// text with none of them cannot match, and is not run through the regexes (regex-lite
    /// has no literal prefilter of its own; this takes a clean 256 KiB body from ~100 ms to
    /// ~1 ms for sql_error). Empty: always run.
    fn needles(self) -> &'static [&'static str] {
        match self {
            LeakClass::SqlError => &[
                "sql",
                "error ",
                "mysql",
                "syntax error",
                "does not exist",
                "duplicate key",
                "psql",
                "psycopg",
                "pg::",
                "ora-",
                "oracle.jdbc",
                "unclosed quotation",
                "incorrect syntax",
                "odbc",
                "sqlite",
                "hibernate",
                "springframework",
                "pdoexception",
                "activerecord::",
                "entityframeworkcore",
                "sequelize",
                "pq: ",
            ],
            LeakClass::Secret => &[
                "private key-----",
                "akia",
                "asia",
                "abia",
                "acca",
                "aiza",
                "gh",
                "xox",
                "k_live_",
                "accountkey=",
                "secret",
                "password",
                "passwd",
                "token",
                "key",
                "credentials",
            ],
            LeakClass::InternalIp => &["10.", "172.", "192.168.", "169.254."],
            LeakClass::FilePath => &[
                "/home",
                "/root",
                "/var/",
                "/srv",
                "/opt",
                "/usr/",
                "/app",
                "/etc",
                "/tmp",
                "/mnt",
                "/users",
                "/workspace",
                ":\\",
            ],
            LeakClass::VersionBanner => &[
                "nginx/",
                "openresty/",
                "apache",
                "microsoft-",
                "lighttpd/",
                "litespeed/",
                "caddy/",
                "jetty/",
                "tomcat/",
                "wildfly/",
                "jboss/",
                "undertow/",
                "glassfish/",
                "weblogic/",
                "websphere/",
                "gunicorn/",
                "uvicorn/",
                "werkzeug/",
                "kestrel/",
                "passenger",
                "puma/",
                "unicorn/",
                "php/",
                "openssl/",
                "mod_",
                "varnish/",
                "haproxy/",
                "express/",
                "node.js/",
                "python/",
                "ruby/",
                "perl/",
                "asp.net/",
                "powered by ",
            ],
            // A frame line starts a line (or follows a quote or `>`) with `at ` (Java, .NET,
            // Node.js; two frames are needed, so the text's own start does not matter), or
            // names a source file the way only traces do.
            LeakClass::StackTrace => &[
                "\nat ",
                "\n at ",
                "\n  at ",
                "   at ",
                "\tat ",
                "\"at ",
                "'at ",
                ">at ",
                "\" at ",
                "> at ",
                "goroutine ",
                ".go:",
                ".php",
                ".phtml",
                ".inc",
                " on line ",
                ".rb:",
                "traceback (most",
                "file \"",
                "exception",
                "error",
                "caused by: ",
                "{main}",
                "[internal function]",
                ".js:",
                ".mjs:",
                ".cjs:",
                ".ts:",
                ".jsx:",
                ".tsx:",
                "node:",
                ".java:",
                ".kt:",
                ".scala:",
                ".groovy:",
                ".clj:",
                "native method",
                "unknown source",
            ],
            _ => &[],
        }
    }

    /// Patterns of lines of which several make a leak (the frames of a stack trace).
    fn repeated(self) -> &'static [&'static str] {
        match self {
            LeakClass::StackTrace => &[
                // Java, Kotlin, Scala; Exception/Caused by headers count as lines of the trace.
                r"(?m)(?:^|[\x22'>])[ \t]*at [\w$.<>/]+\((?:[\w$]+\.(?:java|kt|scala|groovy|clj):\d+|Native Method|Unknown Source)\)",
                r#"(?m)^(?:Exception in thread "[^"\n]*" |Caused by: )[\w$]+(?:\.[\w$]+)+"#,
                r"(?m)^(?:[a-z][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?::|\r?$)",
                // .NET: at Ns.Type.Method(args) [in C:\src\x.cs:line 42]
                r"(?m)(?:^|[\x22'>])[ \t]*at [\w`<>\[\]]+(?:\.[\w`<>\[\]|]+)+\([^()\n]*\)(?: in [^\n]+:line \d+)?[ \t]*\r?$",
                r"(?m)^(?:Unhandled exception\. )?System\.(?:[\w]+\.)*\w*Exception: ",
                // Python
                r"(?m)^Traceback \(most recent call last\):",
                r#"(?m)^[ \t]*File "[^"\n]+", line \d+"#,
                // Node.js: at fn (/app/x.js:10:5), at node:internal/…:12:5
                r"(?m)(?:^|[\x22'>])[ \t]*at (?:[^\n()]+ \()?(?:file://)?(?:node:[\w/\-]+|(?:[A-Za-z]:)?[\w/\\.\-@]*\.(?:js|mjs|cjs|ts|jsx|tsx)):\d+:\d+\)?",
                // Go: a goroutine header, and `\t/path/x.go:12 +0x1d`
                r"(?m)^goroutine \d+ \[",
                r"(?m)^\t\S+\.go:\d+(?: \+0x[0-9a-f]+)?\s*$",
                // PHP: #0 /var/www/x.php(12): fn()
                r"(?m)^#\d+ (?:\S+\.(?:php|phtml|inc)\(\d+\)|\[internal function\]|\{main\})",
                // Ruby (backtick before 3.4, quote since): app/x.rb:12:in 'Order#place'
                r"(?m)^[ \t]*(?:from )?[\w/.\-]+\.rb:\d+:in [`'][^'\n]+'",
            ],
            _ => &[],
        }
    }
}

/// `internal_host`: names under one of `suffixes`, as whole DNS labels (`db.corp`, not `corporate`).
fn internal_host_pattern(suffixes: &[String]) -> String {
    let alternatives: Vec<String> = suffixes.iter().map(|s| regex_lite::escape(s)).collect();
    format!(
        r"(?i)\b[a-z0-9](?:[a-z0-9\-]{{0,61}}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{{0,61}}[a-z0-9])?)*\.(?:{})\b(?:[^.\-\w]|$)",
        alternatives.join("|")
    )
}

/// Check a policy's host suffix (`svc.cluster.local`): DNS labels, lower case, no dots at ends.
pub fn valid_suffix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// One class compiled: a match of `any`, or `min_repeats` matches of `repeated`, is a leak.
#[derive(Debug)]
pub struct Detector {
    any: Option<Regex>,
    repeated: Option<Regex>,
    needles: Vec<String>,
}

/// Frame lines that make a stack trace.
const MIN_FRAMES: usize = 2;

fn alternation(patterns: &[&str]) -> Result<Option<Regex>, regex_lite::Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let joined: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
    Regex::new(&joined.join("|")).map(Some)
}

impl Detector {
    /// The detector of `class`; `suffixes` are those of `internal_host`. The patterns are
    /// constants covered by the tests; an error is reported as a configuration error.
    pub fn compile(class: LeakClass, suffixes: &[String]) -> Result<Self, regex_lite::Error> {
        let any = if class == LeakClass::InternalHost {
            Some(Regex::new(&internal_host_pattern(suffixes))?)
        } else {
            alternation(class.patterns())?
        };
        let needles = if class == LeakClass::InternalHost {
            suffixes.iter().map(|s| format!(".{s}")).collect()
        } else {
            class.needles().iter().map(|n| n.to_string()).collect()
        };
        Ok(Detector {
            any,
            repeated: alternation(class.repeated())?,
            needles,
        })
    }

    /// Whether `text` holds a leak of this class. Scanning several classes over one text,
    /// [`Scan`] lower-cases it once for all of them.
    pub fn is_match(&self, text: &str) -> bool {
        self.is_match_in(&Scan::new(text))
    }

    pub fn is_match_in(&self, scan: &Scan) -> bool {
        let text = scan.text;
        if self.needles.is_empty() {
            return self.is_match_span(text, 0..text.len());
        }
        let spans = spans_around(scan, &self.needles);
        if spans.is_empty() {
            return false;
        }
        // Dense hits: one pass over the whole text costs less than many small ones.
        let covered: usize = spans.iter().map(|s| s.len()).sum();
        if covered > text.len() / 2 {
            return self.is_match_span(text, 0..text.len());
        }
        if let Some(re) = &self.any {
            if spans
                .iter()
                .any(|s| matches_in(re, text, s.clone()).next().is_some())
            {
                return true;
            }
        }
        self.repeated.as_ref().is_some_and(|re| {
            spans
                .iter()
                .flat_map(|s| matches_in(re, text, s.clone()))
                .nth(MIN_FRAMES - 1)
                .is_some()
        })
    }

    fn is_match_span(&self, text: &str, span: Range<usize>) -> bool {
        self.any
            .as_ref()
            .is_some_and(|re| matches_in(re, text, span.clone()).next().is_some())
            || self
                .repeated
                .as_ref()
                .is_some_and(|re| matches_in(re, text, span).nth(MIN_FRAMES - 1).is_some())
    }
}

/// A text to scan, with its ASCII lower-case copy (same byte offsets) for the needles.
pub struct Scan<'t> {
    text: &'t str,
    lower: String,
}

impl<'t> Scan<'t> {
    pub fn new(text: &'t str) -> Self {
        Scan {
            text,
            lower: text.to_ascii_lowercase(),
        }
    }
}

/// How far from a needle a match may start or end. Every pattern of a class contains one of
/// its needles, and no pattern matches more than a few hundred bytes around it (the longest,
/// PHP's error line, allows 500 before `.php`), so a match lies within `REACH` of a needle.
const REACH: usize = 1024;

/// The byte ranges of `scan.text` within `REACH` of a needle, merged, in order. Only these
/// are run through the regexes: regex-lite has no literal prefilter, and a body of prose that
/// mentions `error` or `key` here and there is mostly text no pattern can match.
fn spans_around(scan: &Scan, needles: &[String]) -> Vec<Range<usize>> {
    let text = scan.text;
    let mut hits: Vec<Range<usize>> = needles
        .iter()
        .flat_map(|n| {
            scan.lower.match_indices(n.as_str()).map(|(at, n)| {
                floor_char(text, at.saturating_sub(REACH))
                    ..ceil_char(text, at.saturating_add(n.len()).saturating_add(REACH))
            })
        })
        .collect();
    hits.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(hits.len());
    for r in hits {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The matches of `re` that start within `span`, with the text before the span as context, so
/// that `^`, `\b` and look-behind-like alternations such as `(?:^|[>'"])` judge a span's
/// first byte as they would in the whole text. The search reads at most `REACH` past the span.
fn matches_in<'t>(
    re: &'t Regex,
    text: &'t str,
    span: Range<usize>,
) -> impl Iterator<Item = regex_lite::Match<'t>> + 't {
    let end = if span.end >= text.len() {
        text.len()
    } else {
        ceil_char(text, span.end.saturating_add(REACH))
    };
    let hay = text.get(..end).unwrap_or(text);
    let mut at = span.start;
    std::iter::from_fn(move || {
        if at >= span.end || at > hay.len() {
            return None;
        }
        let m = re.find_at(hay, at)?;
        if m.start() >= span.end {
            return None;
        }
        // An empty match must still move on (no pattern matches empty, but never loop).
        at = if m.end() > m.start() {
            m.end()
        } else {
            ceil_char(hay, m.end() + 1)
        };
        Some(m)
    })
}

/// The text the detectors read: JSON string escapes undone (`\n\tat com.…`, `\/var\/www\/…`,
/// `C:\\Users\\…`), so that a trace or path embedded in a JSON string is found as it would be
/// in plain text. One pass, left to right: `\\n` is a backslash and an `n`, not a newline.
pub fn unescape_for_scan(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('"' | '/' | '\\')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(class: LeakClass) -> Detector {
        let suffixes: Vec<String> = DEFAULT_INTERNAL_SUFFIXES.map(String::from).to_vec();
        Detector::compile(class, &suffixes).unwrap()
    }

    fn hit(class: LeakClass, text: &str) -> bool {
        detector(class).is_match(&unescape_for_scan(text))
    }

    #[test]
    fn every_pattern_compiles_on_its_own() {
        for class in LeakClass::ALL {
            for p in class.patterns().iter().chain(class.repeated()) {
                assert!(Regex::new(p).is_ok(), "{class:?}: {p}");
            }
        }
        assert!(Regex::new(&internal_host_pattern(&["corp".into()])).is_ok());
    }

    #[test]
    fn class_names_round_trip_through_the_policy_spelling() {
        for class in LeakClass::ALL {
            let v = serde_json::Value::String(class.name().into());
            assert_eq!(serde_json::from_value::<LeakClass>(v).unwrap(), class);
        }
    }

    #[test]
    fn stack_trace_of_each_runtime_is_several_frame_lines() {
        let traces = [
            "java.lang.NullPointerException\n\tat com.acme.orders.OrderService.place(OrderService.java:42)\n\tat com.acme.Api.post(Api.java:7)",
            "Traceback (most recent call last):\n  File \"/app/main.py\", line 10, in <module>",
            "   at Acme.Orders.Place() in C:\\src\\Orders.cs:line 42\n   at Acme.Api.Post(Order o) in C:\\src\\Api.cs:line 9",
            "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.ThrowHelper.ThrowNoElementsException()",
            "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d",
            "TypeError: x is undefined\n    at place (/app/src/orders.js:10:15)\n    at node:internal/main:12:5",
            "app/models/order.rb:12:in 'Order#place': boom (RuntimeError)\n\tfrom app/api.rb:5:in 'Api.post'",
            "app/models/order.rb:12:in `place'\n\tfrom app/api.rb:5:in `post'",
            "#0 /var/www/html/lib.php(12): Db->query('x')\n#1 {main}",
        ];
        for t in traces {
            assert!(hit(LeakClass::StackTrace, t), "{t}");
        }
    }

    #[test]
    fn stack_trace_php_error_line_is_enough_in_text_and_html() {
        for t in [
            "PHP Fatal error:  Uncaught Error: Call to undefined function x() in /var/www/html/index.php:7",
            "Warning: Division by zero in /var/www/html/cart.php on line 14",
            "<br />\n<b>Warning</b>:  Undefined variable $total in <b>/var/www/html/cart.php</b> on line <b>14</b><br />",
        ] {
            assert!(hit(LeakClass::StackTrace, t), "{t}");
        }
    }

    #[test]
    fn stack_trace_single_frame_or_prose_passes() {
        for t in [
            "The build will panic: \nso check the logs first.",
            "panic: runtime error: index out of range\n",
            "Meet us at Home(sweet home) on Friday.",
            "Traceback (most recent call last) is how Python starts its reports.",
            "{\"error\": \"java.lang.IllegalStateException: order 42\"}",
            "Warning: the cart is empty on line 3 of the form",
        ] {
            assert!(!hit(LeakClass::StackTrace, t), "{t}");
        }
    }

    #[test]
    fn sql_error_of_each_driver() {
        for t in [
            "You have an error in your SQL syntax; check the manual",
            "Error 1064 (42000): You have an error",
            "ORA-00933: SQL command not properly ended",
            "SQLSTATE[42000]: Syntax error or access violation",
            "ERROR: syntax error at or near \"FROM\"",
            "Unclosed quotation mark after the character string 'x'.",
            "System.Data.SqlClient.SqlException (0x80131904): Incorrect syntax near 'x'.",
            "psycopg2.errors.UndefinedTable: relation \"orders\" does not exist",
            "sqlite3.OperationalError: no such table: orders",
            "SQLITE_ERROR: no such column: x",
            "org.postgresql.util.PSQLException: ERROR: column \"x\" does not exist",
            "com.microsoft.sqlserver.jdbc.SQLServerException: Invalid object name 'x'.",
            "sqlalchemy.exc.ProgrammingError: (psycopg2.errors.SyntaxError)",
            "ActiveRecord::StatementInvalid: PG::UndefinedTable",
            "sql: Scan error on column index 0, name \"id\"",
            "pq: relation \"orders\" does not exist",
        ] {
            assert!(hit(LeakClass::SqlError, t), "{t}");
        }
    }

    #[test]
    fn sql_words_in_prose_pass() {
        for t in [
            "Our SQL course covers syntax errors and how to fix them.",
            "{\"query\": \"select\", \"error\": null}",
            "The sql: field names the query language.",
        ] {
            assert!(!hit(LeakClass::SqlError, t), "{t}");
        }
    }

    #[test]
    fn secret_private_keys_access_keys_and_env_dumps() {
        for t in [
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "PATH=/usr/bin\nDB_PASSWORD=hunter2\nHOME=/root",
            "export STRIPE_SECRET_KEY=sk_x",
        ] {
            assert!(hit(LeakClass::Secret, t), "{t}");
        }
        for t in [
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "Set DB_PASSWORD in your environment.",
            "PASSWORD=",
            "{\"token\": \"short\"}",
            "AKIA is a prefix of AWS keys",
        ] {
            assert!(!hit(LeakClass::Secret, t), "{t}");
        }
    }

    #[test]
    fn internal_ip_rfc1918_and_link_local_but_not_public_ones() {
        for t in [
            "upstream 10.0.3.7 refused",
            "db at 172.16.0.1",
            "host 192.168.1.20",
            "169.254.169.254",
        ] {
            assert!(hit(LeakClass::InternalIp, t), "{t}");
        }
        for t in [
            "8.8.8.8",
            "172.32.0.1",
            "version 10.0.3",
            "110.1.2.3",
            "10.0.0.256",
        ] {
            assert!(!hit(LeakClass::InternalIp, t), "{t}");
        }
    }

    #[test]
    fn internal_host_under_each_default_suffix() {
        for t in [
            "connect to orders.default.svc.cluster.local:8080 failed",
            "http://billing.internal/v1",
            "db1.prod.corp refused",
            "printer.local",
            "\"host\": \"ip-10-0-0-1.ec2.internal\"",
        ] {
            assert!(hit(LeakClass::InternalHost, t), "{t}");
        }
        for t in [
            "an internal error",
            "corporate.example.com",
            "local.example.com",
            "shop.example.com/internal/x",
            "the value is locally cached",
            "file.internals",
        ] {
            assert!(!hit(LeakClass::InternalHost, t), "{t}");
        }
    }

    #[test]
    fn internal_host_suffixes_come_from_the_policy() {
        let d = Detector::compile(LeakClass::InternalHost, &["lan".into()]).unwrap();
        assert!(d.is_match("nas.home.lan"));
        assert!(!d.is_match("db.corp"));
    }

    #[test]
    fn valid_suffix_is_lower_case_dns_labels() {
        assert!(valid_suffix("svc.cluster.local"));
        for bad in ["", ".corp", "corp.", "Corp", "a..b", "-x", "x y", "*.corp"] {
            assert!(!valid_suffix(bad), "{bad}");
        }
    }

    #[test]
    fn file_path_needs_a_file_like_tail() {
        for t in [
            "open /home/deploy/app/config.yml failed",
            "see /var/www/html/x.php",
            "C:\\Users\\svc\\app.log",
            "{\"file\": \"\\/var\\/www\\/html\\/index.php\"}",
            "at /app/src/orders.js:10",
        ] {
            assert!(hit(LeakClass::FilePath, t), "{t}");
        }
        for t in [
            "GET /api/orders/42",
            "{\"next\": \"/app/orders/42\"}",
            "{\"logo\": \"/app/static/logo.png\", \"home\": \"/home/index.html\"}",
            "/home/deploy/app",
        ] {
            assert!(!hit(LeakClass::FilePath, t), "{t}");
        }
    }

    #[test]
    fn version_banner_of_servers_in_bodies() {
        for t in [
            "<hr><center>nginx/1.25.3</center>",
            "<address>Apache/2.4.58 (Ubuntu) Server at shop Port 80</address>",
            "Apache Tomcat/9.0.83",
            "X-Powered-By: PHP/8.2.1",
        ] {
            assert!(hit(LeakClass::VersionBanner, t), "{t}");
        }
        for t in [
            "nginx is our web server",
            "Apache-2.0 licensed",
            "HTTP/1.1 200",
        ] {
            assert!(!hit(LeakClass::VersionBanner, t), "{t}");
        }
    }

    #[test]
    fn unescape_for_scan_is_one_pass() {
        assert_eq!(unescape_for_scan(r"a\nb\tc\/d\\n\q"), "a\nb\tc/d\\n\\q");
    }

    #[test]
    fn ordinary_json_is_clean() {
        let body = r#"{"id": 42, "items": [{"sku": "a1", "at": "2024-01-01T10:00:00Z"}], "total": "10.00", "self": "/app/orders/42"}"#;
        for class in LeakClass::ALL {
            assert!(!hit(class, body), "{class:?}");
        }
    }
}
