//! Small documents for the samples: a one-page PDF (an inspection record) and a PNG (a photo
//! taken on site), each a valid file of its type whose bytes follow only from what it shows, so
//! the same row always gets the same bytes.

/// A one-page PDF 1.4 showing `lines` (ASCII; anything else is replaced by `?`) in Helvetica.
pub(crate) fn pdf(lines: &[String]) -> Vec<u8> {
    let mut text = String::from("BT /F1 12 Tf 72 770 Td 16 TL");
    for l in lines {
        let safe: String = l
            .chars()
            .map(|c| match c {
                '(' | ')' | '\\' => '?',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '?',
            })
            .collect();
        text.push_str(&format!(" ({safe}) '"));
    }
    text.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Side of the square photo, in pixels.
const SIDE: usize = 16;

/// A 16 × 16 greyscale PNG whose pixels are a pattern drawn from `seed`.
pub(crate) fn png(seed: &str) -> Vec<u8> {
    // A pixel pattern from the seed's bytes (FNV-1a, then a xorshift per pixel).
    let mut x = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut raw = Vec::with_capacity(SIDE * (SIDE + 1));
    for _ in 0..SIDE {
        let pixels = (0..SIDE).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        });
        // Each row starts with its filter type: 0, none.
        raw.extend(std::iter::once(0).chain(pixels));
    }
    // zlib: one stored (uncompressed) block, then the Adler-32 of the data.
    let len = raw.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let side = (SIDE as u32).to_be_bytes();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side);
    ihdr.extend_from_slice(&side);
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no interlace
    let mut out = b"\x89PNG\r\n\x1A\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(&data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit: a few hundred bytes per sample photo.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &d in data {
        c ^= u32::from(d);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_their_standard_check_values() {
        // The check values of both algorithms for "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn the_pdf_is_well_formed_and_its_cross_references_point_at_its_objects() {
        let doc = pdf(&["Inspection record JC2025-000001".into(), "检查 (x)".into()]);
        let text = String::from_utf8(doc.clone()).unwrap();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        assert!(text.contains("(Inspection record JC2025-000001) '"));
        assert!(
            text.contains("(?? ?x?) '"),
            "non-ASCII and parentheses replaced"
        );
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[start..].starts_with("xref\n0 6\n"));
        for (i, line) in text[start..].lines().skip(3).take(5).enumerate() {
            let at: usize = line[..10].parse().unwrap();
            assert!(
                text[at..].starts_with(&format!("{} 0 obj", i + 1)),
                "{line}"
            );
        }
        assert_eq!(
            doc,
            pdf(&["Inspection record JC2025-000001".into(), "检查 (x)".into()])
        );
    }

    #[test]
    fn the_png_has_valid_chunks_and_follows_its_seed() {
        let a = png("JC2025-000001");
        assert!(a.starts_with(b"\x89PNG\r\n\x1A\n"));
        // Every chunk's CRC covers its type and data.
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < a.len() {
            let len = u32::from_be_bytes(a[at..at + 4].try_into().unwrap()) as usize;
            let body = &a[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(a[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(a, png("JC2025-000001"));
        assert_ne!(a, png("JC2025-000002"));
    }
}
