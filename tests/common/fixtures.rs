//! Hostile files, generated: XLSX archives built to exhaust a reader (absurd declared counts,
//! sheets and shared strings that inflate a thousandfold, sizes that lie) and XML nested or
//! swollen beyond any limit. Each is small on disk or quick to write.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;

/// What becomes of one entry when an archive is copied.
pub enum Part {
    /// Copied as it is.
    Keep,
    /// Replaced by these bytes.
    Bytes(Vec<u8>),
    /// Replaced by `head`, `len` copies of `byte`, then `tail`, written in chunks.
    Repeat {
        head: Vec<u8>,
        byte: u8,
        len: u64,
        tail: Vec<u8>,
    },
}

/// Copies the XLSX (zip) archive `base` to `out`, deflating every entry at the best ratio,
/// with `f(name, bytes)` deciding what each entry becomes.
pub fn rezip(base: &Path, out: &Path, f: impl Fn(&str, &[u8]) -> Part) {
    let mut input = zip::ZipArchive::new(std::fs::File::open(base).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    for i in 0..input.len() {
        let mut e = input.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        w.start_file(name.as_str(), opts).unwrap();
        match f(&name, &bytes) {
            Part::Keep => w.write_all(&bytes).unwrap(),
            Part::Bytes(b) => w.write_all(&b).unwrap(),
            Part::Repeat {
                head,
                byte,
                len,
                tail,
            } => {
                w.write_all(&head).unwrap();
                let chunk = vec![byte; 1 << 20];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    w.write_all(&chunk[..n]).unwrap();
                    left -= n as u64;
                }
                w.write_all(&tail).unwrap();
            }
        }
    }
    w.finish().unwrap();
}

fn is_shared_strings(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with("sharedstrings.xml")
}

fn is_first_sheet(name: &str) -> bool {
    name.eq_ignore_ascii_case("xl/worksheets/sheet1.xml")
}

/// A copy of `base` whose shared strings declare `uniqueCount="{count}"`: a library that reserves
/// room for them asks for `count` times the size of a string.
pub fn absurd_unique_count(base: &Path, out: &Path, count: u64) {
    rezip(base, out, |name, bytes| {
        if !is_shared_strings(name) {
            return Part::Keep;
        }
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let start = text.find("uniqueCount=\"").unwrap() + "uniqueCount=\"".len();
        let end = start + text[start..].find('"').unwrap();
        Part::Bytes(format!("{}{count}{}", &text[..start], &text[end..]).into_bytes())
    });
}

/// A copy of `base` whose first sheet inflates to `len` bytes, almost all spaces.
pub fn swollen_sheet(base: &Path, out: &Path, len: u64) {
    rezip(base, out, |name, _| {
        if !is_first_sheet(name) {
            return Part::Keep;
        }
        Part::Repeat {
            head: br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#.to_vec(),
            byte: b' ',
            len,
            tail: b"</sheetData></worksheet>".to_vec(),
        }
    });
}

/// A copy of `base` whose shared strings hold one string of `len` bytes.
pub fn swollen_shared_strings(base: &Path, out: &Path, len: u64) {
    rezip(base, out, |name, _| {
        if !is_shared_strings(name) {
            return Part::Keep;
        }
        Part::Repeat {
            head: br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>"#.to_vec(),
            byte: b'A',
            len,
            tail: b"</t></si></sst>".to_vec(),
        }
    });
}

/// A copy of `base` whose first sheet inflates to `len` bytes while its headers declare 1,000.
pub fn lying_sizes(base: &Path, out: &Path, len: u64) {
    swollen_sheet(base, out, len);
    let mut bytes = std::fs::read(out).unwrap();
    let name = b"xl/worksheets/sheet1.xml";
    let mut patched = 0;
    // Local file headers: uncompressed size at offset 22, name length at 26, name at 30.
    // Central directory headers: uncompressed size at 24, name length at 28, name at 46.
    for (sig, size_at, len_at, name_at) in [
        (b"PK\x03\x04", 22usize, 26usize, 30usize),
        (b"PK\x01\x02", 24, 28, 46),
    ] {
        let mut i = 0;
        while let Some(j) = bytes[i..].windows(4).position(|w| w == sig) {
            let at = i + j;
            let n = u16::from_le_bytes([bytes[at + len_at], bytes[at + len_at + 1]]) as usize;
            if bytes.get(at + name_at..at + name_at + n) == Some(name.as_slice()) {
                let size = &mut bytes[at + size_at..at + size_at + 4];
                // A zip64 entry keeps its sizes in an extra field; this one is small enough not to.
                assert_ne!(size, &[0xFF; 4], "unexpected zip64 entry");
                size.copy_from_slice(&1000u32.to_le_bytes());
                patched += 1;
            }
            i = at + 4;
        }
    }
    assert_eq!(patched, 2, "both headers of the sheet are patched");
    std::fs::write(out, bytes).unwrap();
}

/// XML opened `depth` elements deep (and never closed).
pub fn deep_xml(out: &Path, depth: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    f.write_all(b"<SGS_DATA><RECORDS>").unwrap();
    for _ in 0..depth {
        f.write_all(b"<a>").unwrap();
    }
    f.flush().unwrap();
}

/// A copy of the XML file `base` where the first `<open>` element's text is `len` bytes long.
pub fn swollen_xml_field(base: &Path, out: &Path, element: &str, len: u64) {
    let text = std::fs::read_to_string(base).unwrap();
    let open = format!("<{element}>");
    let start = text.find(&open).unwrap() + open.len();
    let end = start + text[start..].find('<').unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    f.write_all(&text.as_bytes()[..start]).unwrap();
    let chunk = "罚".repeat(1 << 18);
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        // Whole characters only: `len` is rounded down to a multiple of 3.
        let n = n - n % 3;
        if n == 0 {
            break;
        }
        f.write_all(&chunk.as_bytes()[..n]).unwrap();
        left -= n as u64;
    }
    f.write_all(&text.as_bytes()[end..]).unwrap();
    f.flush().unwrap();
}
