//! Patterns of information that must not leave the service: stack traces, SQL errors, internal
//! addresses, file-system paths. Compiled once; scanned over a bounded prefix of the body.

use regex_lite::Regex;
use serde::Deserialize;

/// The classes of leak a policy can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakClass {
    StackTrace,
    SqlError,
    InternalIp,
    FilePath,
}

impl LeakClass {
    pub const ALL: [LeakClass; 4] = [
        LeakClass::StackTrace,
        LeakClass::SqlError,
        LeakClass::InternalIp,
        LeakClass::FilePath,
    ];

    /// The reason code used in problem bodies, logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            LeakClass::StackTrace => "error_shield.stack_trace",
            LeakClass::SqlError => "error_shield.sql_error",
            LeakClass::InternalIp => "error_shield.internal_ip",
            LeakClass::FilePath => "error_shield.file_path",
        }
    }

    fn patterns(self) -> &'static [&'static str] {
        match self {
            LeakClass::StackTrace => &[
                // Java: at com.example.Foo.bar(Foo.java:42)
                r"\bat [\w$.<>]+\([\w$]+\.(?:java|kt|scala|groovy):\d+\)",
                r"\bException in thread ",
                // Python
                r"Traceback \(most recent call last\)",
                r#"File "[^"]+", line \d+, in "#,
                // .NET: at Ns.Type.Method() in C:\src\x.cs:line 42
                r"\bat [\w.`<>]+\(.*\) in .+:line \d+",
                r"\bSystem\.[A-Z]\w*Exception\b",
                // Go
                r"\bgoroutine \d+ \[[a-z ]+\]:",
                r"\bpanic: .+\n",
                // Node.js: at fn (/app/x.js:10:5)
                r"\bat (?:[\w$.<> ]+ \()?(?:[A-Za-z]:)?[\w/\\.\-@]+\.(?:js|mjs|cjs|ts):\d+:\d+\)?",
                // PHP, Ruby
                r"(?:Fatal error|Warning|Parse error): .+ on line \d+",
                r"\.rb:\d+:in `",
            ],
            LeakClass::SqlError => &[
                r"(?i)you have an error in your sql syntax",
                r"\bORA-\d{5}\b",
                r"\bSQLSTATE\[[0-9A-Z]{5}\]",
                r"(?i)\bpsycopg2?\.(?:errors|[A-Z]\w*Error)\b",
                r"\bPG::[A-Z]\w*Error\b",
                r"(?i)syntax error at or near ",
                r"(?i)unclosed quotation mark after the character string",
                r"\bjava\.sql\.SQLException\b",
                r"(?i)\bSQLite(?:3::|Exception|\.Exception)",
                r"(?i)\bmysql_fetch_\w+\(",
            ],
            LeakClass::InternalIp => &[
                r"\b10\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b172\.(?:1[6-9]|2\d|3[01])\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b192\.168\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
                r"\b169\.254\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
            ],
            LeakClass::FilePath => &[
                r"(?:^|[\s'\x22(=:])/(?:home|root|var/www|srv|opt|usr/local/lib|usr/lib/python\d|app|etc)/[\w.\-/]+",
                r"\b[A-Za-z]:\\(?:Users|inetpub|Windows|Program Files|src)\\",
            ],
        }
    }
}

/// All patterns of one class as a single alternation. The patterns are constants covered by
/// the tests below; an error here is reported as a configuration error, never a panic.
pub fn compile(class: LeakClass) -> Result<Regex, regex_lite::Error> {
    let joined = class
        .patterns()
        .iter()
        .map(|p| format!("(?:{p})"))
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(class: LeakClass, text: &str) -> bool {
        compile(class).unwrap().is_match(text)
    }

    #[test]
    fn every_pattern_compiles() {
        for class in LeakClass::ALL {
            for p in class.patterns() {
                assert!(Regex::new(p).is_ok(), "{class:?}: {p}");
            }
        }
    }

    #[test]
    fn stack_traces_of_each_runtime() {
        let traces = [
            "java.lang.NullPointerException\n\tat com.acme.orders.OrderService.place(OrderService.java:42)",
            "Traceback (most recent call last):\n  File \"/app/main.py\", line 10, in <module>",
            "   at Acme.Orders.Place() in C:\\src\\Orders.cs:line 42",
            "System.InvalidOperationException: Sequence contains no elements",
            "goroutine 1 [running]:\nmain.main()",
            "TypeError: x is undefined\n    at place (/app/src/orders.js:10:15)",
            "PHP Fatal error: Uncaught Error in /var/www/html/index.php on line 7",
            "app/models/order.rb:12:in `place'",
        ];
        for t in traces {
            assert!(hit(LeakClass::StackTrace, t), "{t}");
        }
    }

    #[test]
    fn sql_errors() {
        for t in [
            "You have an error in your SQL syntax; check the manual",
            "ORA-00933: SQL command not properly ended",
            "SQLSTATE[42000]: Syntax error",
            "ERROR: syntax error at or near \"FROM\"",
            "Unclosed quotation mark after the character string 'x'.",
            "psycopg2.errors.UndefinedTable: relation does not exist",
        ] {
            assert!(hit(LeakClass::SqlError, t), "{t}");
        }
    }

    #[test]
    fn rfc1918_and_link_local_addresses_but_not_public_ones() {
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
    fn file_paths() {
        for t in [
            "open /home/deploy/app/config.yml failed",
            "see /var/www/html/x.php",
            "C:\\Users\\svc\\app.log",
        ] {
            assert!(hit(LeakClass::FilePath, t), "{t}");
        }
        assert!(!hit(LeakClass::FilePath, "GET /api/orders/42"));
    }

    #[test]
    fn ordinary_json_is_clean() {
        let body = r#"{"id": 42, "items": [{"sku": "a1", "at": "2024-01-01T10:00:00Z"}], "total": "10.00"}"#;
        for class in LeakClass::ALL {
            assert!(!hit(class, body), "{class:?}");
        }
    }
}
