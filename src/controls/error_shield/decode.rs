//! Content-encodings error-shield can read: gzip (RFC 1952) and deflate (RFC 9110 §8.4.1.2:
//! zlib, RFC 1950; raw deflate as some servers send it). Inflate only (miniz_oxide, pure Rust),
//! into an output bounded by the scan limit. A body that expands far beyond its size is a
//! compression bomb, reported as such rather than decoded further.

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// Decoded bytes per encoded byte beyond which a body is a bomb. Ordinary text and JSON
/// compress 3-20x, very repetitive JSON ~100x; deflate's own ceiling is ~1032x.
pub const BOMB_RATIO: usize = 200;

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The body as text to scan: all of it, or its first `limit` bytes (`complete: false`).
    Text { bytes: Vec<u8>, complete: bool },
    /// An encoding we do not decode (`br`, `zstd`, …) or a corrupt stream.
    Undecodable,
    /// Output reached `limit` at more than `BOMB_RATIO` times the input consumed.
    Bomb,
}

/// Undo `content-encoding` (codings listed in the order applied, so undone right to left).
/// `None` or `identity` leave the body as it is.
pub fn decode(encoding: Option<&str>, body: &[u8], limit: usize) -> Decoded {
    let codings: Vec<String> = encoding
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let mut bytes = body.to_vec();
    let mut complete = true;
    for coding in codings.iter().rev() {
        let layer = match coding.as_str() {
            "gzip" | "x-gzip" => gunzip(&bytes, limit),
            "deflate" => inflate_deflate(&bytes, limit),
            _ => return Decoded::Undecodable,
        };
        match layer {
            Decoded::Text {
                bytes: b,
                complete: c,
            } => {
                bytes = b;
                complete &= c;
            }
            other => return other,
        }
    }
    if bytes.len() > limit {
        bytes.truncate(limit);
        complete = false;
    }
    Decoded::Text { bytes, complete }
}

/// `deflate` is zlib-wrapped by the standard; a stream whose first two bytes are not a zlib
/// header is read as raw deflate.
fn inflate_deflate(body: &[u8], limit: usize) -> Decoded {
    let zlib = match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    };
    let flags = if zlib {
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
    } else {
        0
    };
    match inflate(body, flags, limit) {
        Inflated::Ok { out, done, .. } => Decoded::Text {
            bytes: out,
            complete: done,
        },
        Inflated::Bomb => Decoded::Bomb,
        Inflated::Corrupt => Decoded::Undecodable,
    }
}

/// gzip: each member is a header, raw deflate, and an 8-byte trailer; members concatenate.
fn gunzip(mut body: &[u8], limit: usize) -> Decoded {
    let mut out = Vec::new();
    loop {
        let Some(stream) = gzip_header_len(body).and_then(|start| body.get(start..)) else {
            return Decoded::Undecodable;
        };
        let room = limit.saturating_sub(out.len());
        match inflate(stream, 0, room) {
            Inflated::Ok {
                out: part,
                done,
                consumed,
            } => {
                out.extend_from_slice(&part);
                let rest = stream.get(consumed + 8..).unwrap_or(&[]);
                if !done || out.len() >= limit || rest.is_empty() {
                    let complete = done && out.len() < limit && rest.is_empty();
                    return Decoded::Text {
                        bytes: out,
                        complete,
                    };
                }
                body = rest;
            }
            Inflated::Bomb => return Decoded::Bomb,
            Inflated::Corrupt => return Decoded::Undecodable,
        }
    }
}

/// The length of a gzip member header (RFC 1952 §2.3), `None` if it is not one.
fn gzip_header_len(b: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let [0x1f, 0x8b, 8, flags, _, _, _, _, _, _, ..] = *b else {
        return None;
    };
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = usize::from(*b.get(at)?) | usize::from(*b.get(at + 1)?) << 8;
        at += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += b.get(at..)?.iter().position(|&c| c == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= b.len()).then_some(at)
}

enum Inflated {
    /// `done`: the stream ended; otherwise the output limit or the end of the input came first
    /// (a body larger than what was buffered decodes as far as it goes).
    Ok {
        out: Vec<u8>,
        done: bool,
        consumed: usize,
    },
    Bomb,
    Corrupt,
}

fn inflate(input: &[u8], zlib: u32, limit: usize) -> Inflated {
    let mut out = vec![0u8; limit];
    let mut state = DecompressorOxide::new();
    let flags = zlib | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, consumed, written) = decompress(&mut state, input, &mut out, 0, flags);
    out.truncate(written);
    match status {
        TINFLStatus::Done => Inflated::Ok {
            out,
            done: true,
            consumed,
        },
        TINFLStatus::HasMoreOutput if written > consumed.saturating_mul(BOMB_RATIO) => {
            Inflated::Bomb
        }
        // The limit came first, or the input ended (a prefix of a larger body).
        TINFLStatus::HasMoreOutput
        | TINFLStatus::NeedsMoreInput
        | TINFLStatus::FailedCannotMakeProgress => Inflated::Ok {
            out,
            done: false,
            consumed,
        },
        _ => Inflated::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn text(d: Decoded) -> (Vec<u8>, bool) {
        match d {
            Decoded::Text { bytes, complete } => (bytes, complete),
            other => panic!("{other:?}"),
        }
    }

    const BODY: &[u8] = b"java.lang.IllegalStateException\n\tat a.B.c(B.java:1)\n";

    #[test]
    fn gzip_and_both_deflate_forms_decode() {
        assert_eq!(
            text(decode(Some("gzip"), &gzip(BODY), 1024)),
            (BODY.to_vec(), true)
        );
        assert_eq!(text(decode(Some("x-gzip"), &gzip(BODY), 1024)).0, BODY);
        assert_eq!(text(decode(Some("deflate"), &zlib(BODY), 1024)).0, BODY);
        assert_eq!(text(decode(Some("Deflate"), &raw(BODY), 1024)).0, BODY);
        assert_eq!(text(decode(None, BODY, 1024)), (BODY.to_vec(), true));
        assert_eq!(text(decode(Some("identity"), BODY, 1024)).0, BODY);
    }

    #[test]
    fn codings_are_undone_right_to_left() {
        let twice = gzip(&zlib(BODY));
        assert_eq!(text(decode(Some("deflate, gzip"), &twice, 1024)).0, BODY);
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let two = [gzip(b"first "), gzip(b"second")].concat();
        assert_eq!(
            text(decode(Some("gzip"), &two, 1024)),
            (b"first second".to_vec(), true)
        );
    }

    #[test]
    fn gzip_header_fields_are_skipped() {
        let mut e = flate2::GzBuilder::new()
            .filename("orders.txt")
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::default());
        e.write_all(BODY).unwrap();
        assert_eq!(
            text(decode(Some("gzip"), &e.finish().unwrap(), 1024)).0,
            BODY
        );
    }

    #[test]
    fn output_is_bounded_by_the_limit() {
        let big: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (bytes, complete) = text(decode(Some("gzip"), &gzip(&big), 1000));
        assert_eq!((bytes.len(), complete), (1000, false));
        assert_eq!(bytes, big[..1000]);
    }

    #[test]
    fn a_truncated_stream_decodes_as_far_as_it_goes() {
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gzip(&big);
        let (bytes, complete) = text(decode(Some("gzip"), &z[..z.len() / 2], 1 << 20));
        assert!(!complete && !bytes.is_empty() && big.starts_with(&bytes));
    }

    #[test]
    fn a_compression_bomb_is_a_bomb() {
        let zeros = vec![0u8; 4 << 20];
        assert_eq!(
            decode(Some("gzip"), &gzip(&zeros), 256 * 1024),
            Decoded::Bomb
        );
        assert_eq!(
            decode(Some("deflate"), &zlib(&zeros), 256 * 1024),
            Decoded::Bomb
        );
    }

    #[test]
    fn unknown_codings_and_corrupt_streams_are_undecodable() {
        assert_eq!(decode(Some("br"), BODY, 1024), Decoded::Undecodable);
        assert_eq!(decode(Some("gzip, zstd"), BODY, 1024), Decoded::Undecodable);
        assert_eq!(decode(Some("gzip"), BODY, 1024), Decoded::Undecodable);
        // A gzip header, then a deflate block of the reserved type 3.
        let corrupt = [&gzip(b"")[..10], &[0xff, 0xff][..]].concat();
        assert_eq!(decode(Some("gzip"), &corrupt, 1024), Decoded::Undecodable);
    }
}
