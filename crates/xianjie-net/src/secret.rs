//! Secret-holding types: the keystore passphrase, secret key bytes and secret text.
//!
//! This module owns how secrets live in memory: each type wraps its contents in
//! [`zeroize::Zeroizing`] so the buffer is wiped on drop, prints `<redacted>` through
//! both `Debug` and `Display` so a secret cannot leak into logs or error messages by
//! accident, and compares in constant time. None of the types implements `Clone` or
//! `serde::Serialize`: copying or serialising a secret has to be spelled out with
//! `expose()`, where a reviewer can see it.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, Zeroizing};

/// Largest passphrase file [`Passphrase::from_file`] accepts, in bytes.
///
/// A passphrase is a line of text; anything bigger is almost certainly the wrong file
/// (a key, an archive), and reading it whole into memory would serve no purpose.
pub const MAX_PASSPHRASE_FILE_BYTES: u64 = 4096;

/// What a redacted secret prints as.
const REDACTED: &str = "<redacted>";

/// Errors from loading secrets. Messages name files and modes, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The passphrase file could not be opened or read.
    #[error("cannot read passphrase file {}: {source}", path.display())]
    Io {
        /// The passphrase file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The passphrase file can be read by users other than its owner.
    #[error(
        "passphrase file {} has mode {mode:04o}, which lets group or other users read it; \
         restrict it with `chmod 600 {}` and try again",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The passphrase file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
    /// The passphrase file holds nothing but (at most) a trailing newline.
    #[error(
        "passphrase file {} is empty (after removing one trailing newline); \
         write the passphrase into it",
        path.display()
    )]
    Empty {
        /// The passphrase file.
        path: PathBuf,
    },
    /// The passphrase file is not UTF-8 text.
    #[error("passphrase file {} is not UTF-8 text; save it as UTF-8", path.display())]
    NotUtf8 {
        /// The passphrase file.
        path: PathBuf,
    },
    /// The passphrase file is too large to be a passphrase.
    #[error(
        "passphrase file {} is larger than {limit} bytes; it does not look like a passphrase file",
        path.display()
    )]
    TooLarge {
        /// The passphrase file.
        path: PathBuf,
        /// The size limit in bytes ([`MAX_PASSPHRASE_FILE_BYTES`]).
        limit: u64,
    },
    /// The path names a directory.
    #[error("passphrase file {} is a directory; give the path of the file itself", path.display())]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Lengths are compared first (a length is not treated as secret); equal-length inputs
/// are compared without an early exit, so the time taken does not reveal where the
/// first difference is. `black_box` keeps the optimiser from reintroducing a
/// short-circuit.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff = std::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

/// The passphrase that unlocks the keystore. Wiped from memory on drop.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. The `String`'s buffer is taken over and wiped on drop.
    #[must_use]
    pub fn new(passphrase: String) -> Self {
        Self(Zeroizing::new(passphrase))
    }

    /// The passphrase text, for handing to the key-derivation function.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a passphrase from a file, as used for unattended start-up.
    ///
    /// Exactly one trailing `"\n"` or `"\r\n"` is removed, because editors and
    /// `echo` add one and it is never meant as part of the passphrase; any other
    /// whitespace is kept, because it may be. On unix the file is refused when its mode
    /// lets group or other users read it (`mode & 0o077 != 0`): a passphrase that other
    /// accounts can read protects nothing. The check is made on the opened file, so the
    /// file cannot be swapped between the check and the read.
    ///
    /// # Errors
    /// [`SecretError`] when the file cannot be read, is too permissive, too large, not
    /// UTF-8, or empty.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(SecretError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SecretError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }

        // Pre-size the buffer so reading never reallocates: a reallocation would leave
        // an unwiped copy of the passphrase behind in freed memory. Pipes and other
        // non-regular files (e.g. `<(pass show ...)`) are allowed; `take` bounds them.
        let cap = usize::try_from(MAX_PASSPHRASE_FILE_BYTES).unwrap_or(4096) + 2;
        let mut buf = Zeroizing::new(Vec::with_capacity(cap));
        (&file)
            .take(MAX_PASSPHRASE_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|source| SecretError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if buf.len() as u64 > MAX_PASSPHRASE_FILE_BYTES {
            return Err(SecretError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_PASSPHRASE_FILE_BYTES,
            });
        }

        if buf.ends_with(b"\r\n") {
            let keep = buf.len() - 2;
            buf.truncate(keep);
        } else if buf.ends_with(b"\n") {
            let keep = buf.len() - 1;
            buf.truncate(keep);
        }
        if buf.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_path_buf(),
            });
        }

        // Move the allocation into the String (no copy); on failure, wipe the bytes the
        // error hands back, since they are the would-be passphrase.
        match String::from_utf8(std::mem::take(&mut *buf)) {
            Ok(text) => Ok(Self::new(text)),
            Err(err) => {
                let mut bytes = err.into_bytes();
                bytes.zeroize();
                Err(SecretError::NotUtf8 {
                    path: path.to_path_buf(),
                })
            }
        }
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passphrase({REDACTED})")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Secret binary material (a data key, a signing seed, a token). Wiped on drop;
/// compares in constant time.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps secret bytes. The `Vec`'s buffer is taken over and wiped on drop.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` bytes from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system's random number generator fails, as `rand::rngs::OsRng`
    /// does; there is no safe way to continue making keys without one.
    #[must_use]
    pub fn random(len: usize) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time comparison (see [`constant_time_eq`]), so comparing a presented
    /// secret against a stored one does not leak how many leading bytes match.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({REDACTED})")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Secret text (for example a login password for a provincial platform). Wiped on
/// drop; compares in constant time.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps secret text. The `String`'s buffer is taken over and wiped on drop.
    #[must_use]
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret text.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for SecretString {
    /// Constant-time comparison (see [`constant_time_eq`]).
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({REDACTED})")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SECRET_TEXT: &str = "hunter2-Zq9-秘密-passphrase";

    /// Every formatting of `value` must be free of `secret`.
    fn assert_redacted<T: fmt::Debug + fmt::Display>(value: &T, secret: &str) {
        for shown in [
            format!("{value:?}"),
            format!("{value:#?}"),
            format!("{value}"),
        ] {
            assert!(!shown.contains(secret), "secret leaked in {shown:?}");
            assert!(
                shown.contains("<redacted>"),
                "not marked redacted: {shown:?}"
            );
        }
    }

    /// Writes `contents` to a fresh file with the given unix mode.
    fn write_file(dir: &tempfile::TempDir, contents: &[u8], mode: u32) -> PathBuf {
        let path = dir.path().join("passphrase");
        let mut f = File::create(&path).unwrap();
        f.write_all(contents).unwrap();
        drop(f);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path
    }

    #[test]
    fn formatting_never_shows_the_secret() {
        let p = Passphrase::new(SECRET_TEXT.to_owned());
        assert_redacted(&p, SECRET_TEXT);
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
        assert_eq!(format!("{p}"), "<redacted>");
        assert_eq!(p.expose(), SECRET_TEXT);

        let s = SecretString::new(SECRET_TEXT.to_owned());
        assert_redacted(&s, SECRET_TEXT);
        assert_eq!(s.expose(), SECRET_TEXT);

        let b = SecretBytes::new(SECRET_TEXT.as_bytes().to_vec());
        assert_redacted(&b, SECRET_TEXT);
        for shown in [format!("{b:?}"), format!("{b}")] {
            assert!(!shown.contains(&hex::encode(SECRET_TEXT)));
            assert!(!shown.contains("104")); // 'h' as a decimal byte, as `{:?}` of a Vec would print
        }
        assert_eq!(b.expose(), SECRET_TEXT.as_bytes());
    }

    #[test]
    fn secret_bytes_compare_by_content_and_length() {
        let a = SecretBytes::new(vec![1, 2, 3, 4]);
        assert_eq!(a, SecretBytes::new(vec![1, 2, 3, 4]));
        assert_ne!(a, SecretBytes::new(vec![1, 2, 3, 5]));
        assert_ne!(a, SecretBytes::new(vec![0, 2, 3, 4]));
        assert_ne!(a, SecretBytes::new(vec![1, 2, 3]));
        assert_eq!(SecretBytes::new(Vec::new()), SecretBytes::new(Vec::new()));
        assert_eq!(a.len(), 4);
        assert!(!a.is_empty());
        assert!(SecretBytes::new(Vec::new()).is_empty());
        assert_eq!(
            SecretString::new("abc".into()),
            SecretString::new("abc".into())
        );
        assert_ne!(
            SecretString::new("abc".into()),
            SecretString::new("abd".into())
        );
    }

    #[test]
    fn random_bytes_have_the_requested_length_and_differ() {
        let a = SecretBytes::random(32);
        let b = SecretBytes::random(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "two 256-bit random draws collided");
        assert!(SecretBytes::random(0).is_empty());
    }

    #[test]
    fn from_file_strips_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 6] = [
            (b"pw", "pw"),
            (b"pw\n", "pw"),
            (b"pw\r\n", "pw"),
            (b"pw\n\n", "pw\n"),
            (b"pw \t\n", "pw \t"),
            (b" pw\r\n\r\n", " pw\r\n"),
        ];
        for (contents, want) in cases {
            let path = write_file(&dir, contents, 0o600);
            let p = Passphrase::from_file(&path).unwrap();
            assert_eq!(p.expose(), want, "contents {contents:?}");
        }
    }

    #[test]
    fn from_file_refuses_an_empty_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        for contents in [&b""[..], b"\n", b"\r\n"] {
            let path = write_file(&dir, contents, 0o600);
            let err = Passphrase::from_file(&path).unwrap_err();
            assert!(matches!(err, SecretError::Empty { .. }), "{err:?}");
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }

    #[cfg(unix)]
    #[test]
    fn from_file_refuses_group_or_other_access() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660, 0o610, 0o601, 0o700 | 0o004] {
            let path = write_file(&dir, format!("{SECRET_TEXT}\n").as_bytes(), mode);
            let err = Passphrase::from_file(&path).unwrap_err();
            match &err {
                SecretError::Permissions { path: p, mode: m } => {
                    assert_eq!(p, &path);
                    assert_eq!(*m, mode);
                }
                other => panic!("expected Permissions, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(!msg.contains(SECRET_TEXT) && !format!("{err:?}").contains(SECRET_TEXT));
        }
        // Owner-only modes are accepted.
        for mode in [0o600, 0o400, 0o700] {
            let path = write_file(&dir, format!("{SECRET_TEXT}\n").as_bytes(), mode);
            assert_eq!(Passphrase::from_file(&path).unwrap().expose(), SECRET_TEXT);
        }
    }

    #[test]
    fn from_file_reports_missing_large_and_non_utf8_files_without_contents() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Passphrase::from_file(&missing).unwrap_err();
        assert!(matches!(err, SecretError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&missing.display().to_string()));

        let big = vec![b'a'; 4097];
        let path = write_file(&dir, &big, 0o600);
        let err = Passphrase::from_file(&path).unwrap_err();
        assert!(matches!(err, SecretError::TooLarge { .. }), "{err:?}");

        let path = write_file(&dir, b"\xffsecret\xfe\n", 0o600);
        let err = Passphrase::from_file(&path).unwrap_err();
        assert!(matches!(err, SecretError::NotUtf8 { .. }), "{err:?}");
        assert!(!err.to_string().contains("secret"));

        let err = Passphrase::from_file(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                SecretError::IsDirectory { .. } | SecretError::Io { .. }
            ),
            "{err:?}"
        );
    }
}
