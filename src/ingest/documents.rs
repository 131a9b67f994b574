//! Documents that arrive with the data: the files an adapter record names (kept in the folder
//! `<export>.files/` beside its export) and the document copies (文书副本) a unit submits with
//! its quarterly report. Both come from outside, so a name and its file are checked before a
//! byte is kept: one plain file name inside its folder, an accepted type whose first bytes say
//! so, a regular file (never a symbolic link, a directory or a device, and still the file that
//! was looked at when it is opened), within `[ingest.limits] document_mib`, read through a
//! bounded reader.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::decode::bytes_shown;
use super::{LimitError, Limits};
use crate::model::DocumentRef;

/// What follows an export's file name to name the folder of its documents.
pub const FOLDER_SUFFIX: &str = ".files";

/// The folder that holds the documents of `export`'s records: `<export>.files`.
pub fn folder_of(export: &Path) -> PathBuf {
    let mut s = export.as_os_str().to_owned();
    s.push(FOLDER_SUFFIX);
    PathBuf::from(s)
}

/// The accepted types: extension, media type, and the bytes every such file starts with. Final
/// documents and photographs only: editable office files (doc, docx, xls, xlsx) may carry
/// macros and are not what a decision or a record is kept as.
const TYPES: [(&str, &str, &[u8]); 5] = [
    ("pdf", "application/pdf", b"%PDF-"),
    // OFD (GB/T 33190, the national format for electronic documents) is a ZIP package.
    ("ofd", "application/ofd", b"PK\x03\x04"),
    ("jpg", "image/jpeg", b"\xFF\xD8\xFF"),
    ("jpeg", "image/jpeg", b"\xFF\xD8\xFF"),
    ("png", "image/png", b"\x89PNG\r\n\x1A\n"),
];

/// The accepted extensions, for messages.
const ACCEPTED: &str = "pdf, ofd, jpg, jpeg, png";

/// Longest name accepted, in bytes (a file name's limit on common file systems).
const MAX_NAME: usize = 255;

/// The media type of an accepted document name (by its extension, in any case), if it has one.
pub fn media_type(name: &str) -> Option<&'static str> {
    type_of(name).map(|(_, m, _)| m)
}

/// The media type of a document named `name` holding `bytes` (a supervision action's or
/// answer's, which arrive as bytes, not files): an accepted extension whose first bytes agree;
/// otherwise why not.
pub fn media_type_of_bytes(name: &str, bytes: &[u8]) -> Result<&'static str, String> {
    let (ext, media_type, magic) = type_of(name)
        .ok_or_else(|| format!("is not an accepted document type (accepted: {ACCEPTED})"))?;
    if bytes.starts_with(magic) {
        Ok(media_type)
    } else {
        Err(format!("does not start as a .{ext} file does"))
    }
}

fn type_of(name: &str) -> Option<(&'static str, &'static str, &'static [u8])> {
    let (_, ext) = name.rsplit_once('.')?;
    TYPES
        .iter()
        .find(|(e, _, _)| e.eq_ignore_ascii_case(ext))
        .copied()
}

/// Why a document was refused. Each message names the file and says what to correct.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The name is not one plain file name.
    #[error("'{name}' is not a plain file name ({why}); name a file directly inside {folder}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
        /// The folder it must be in.
        folder: String,
    },
    /// Its extension is not an accepted type.
    #[error("'{name}' is not an accepted document type (accepted: {ACCEPTED})")]
    Type {
        /// The name.
        name: String,
    },
    /// There is no such file (or no folder of documents at all).
    #[error("'{name}' is not in {folder}; deliver it there with the export")]
    Missing {
        /// The name.
        name: String,
        /// The folder looked in.
        folder: String,
    },
    /// The name is a symbolic link, a directory or a special file.
    #[error("'{name}' in {folder} is {what}, not a regular file")]
    NotRegular {
        /// The name.
        name: String,
        /// The folder.
        folder: String,
        /// What it is.
        what: &'static str,
    },
    /// Over `document_mib`.
    #[error("'{name}': {limit}")]
    TooLarge {
        /// The name.
        name: String,
        /// The limit and the size found.
        limit: LimitError,
    },
    /// The bytes are not what the extension says.
    #[error(
        "'{name}' does not start as a .{ext} file does; it is refused rather than served as {media_type}"
    )]
    Content {
        /// The name.
        name: String,
        /// Its extension's type.
        ext: &'static str,
        /// The media type it would be served as.
        media_type: &'static str,
    },
    /// The file or its folder was replaced while it was read.
    #[error("'{name}' in {folder} was replaced while it was read; deliver it again")]
    Replaced {
        /// The name.
        name: String,
        /// The folder.
        folder: String,
    },
    /// Reading failed.
    #[error("cannot read '{name}' in {folder}: {source}")]
    Io {
        /// The name.
        name: String,
        /// The folder.
        folder: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// More documents than the limit allows.
    #[error("{0}")]
    TooMany(LimitError),
    /// The folder of documents is not a directory of its own.
    #[error("{folder} is {what}; documents must be in a directory of their own")]
    Folder {
        /// The folder.
        folder: String,
        /// What it is instead.
        what: &'static str,
    },
}

/// A document read and checked; its bytes go to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The file name, as given.
    pub name: String,
    /// Its media type, from its extension (and its first bytes agree).
    pub media_type: &'static str,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Attached {
    /// The case's listing of this document: its id is its file name (stable from one delivery
    /// to the next), its title the name without the extension, its kind what the source calls
    /// such files.
    pub fn reference(&self, kind: &str) -> DocumentRef {
        let title = self
            .name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(stem, _)| stem);
        DocumentRef {
            doc_id: self.name.clone(),
            title: title.to_string(),
            kind: kind.to_string(),
            media_type: self.media_type.to_string(),
            size: self.bytes.len() as u64,
            sha256: self.sha256.clone(),
        }
    }
}

/// How a folder is named in messages: by its own name, never the gateway's path to it.
fn shown(folder: &Path) -> String {
    folder.file_name().map_or_else(
        || folder.display().to_string(),
        |n| format!("{}/", n.to_string_lossy()),
    )
}

/// Checks that `name` is one plain file name of an accepted type, and returns the type.
fn check_name(
    name: &str,
    folder: &Path,
) -> Result<(&'static str, &'static str, &'static [u8]), DocumentError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME {
        Some("it is longer than 255 bytes")
    } else if name.contains(['/', '\\']) {
        Some("it holds a path separator")
    } else if name.starts_with('.') {
        Some("it starts with a dot")
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(DocumentError::BadName {
            name: name.to_string(),
            why,
            folder: shown(folder),
        });
    }
    type_of(name).ok_or_else(|| DocumentError::Type {
        name: name.to_string(),
    })
}

/// What a file system entry is, for messages, when it is not a regular file.
fn not_regular(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else if !t.is_file() {
        Some("a special file")
    } else {
        None
    }
}

/// Reads the document `name` from `folder`, checked as the module says, at most `max_bytes`.
pub fn read(folder: &Path, name: &str, max_bytes: u64) -> Result<Attached, DocumentError> {
    let (ext, media_type, magic) = check_name(name, folder)?;
    let err = |source: std::io::Error| DocumentError::Io {
        name: name.to_string(),
        folder: shown(folder),
        source,
    };
    let missing = || DocumentError::Missing {
        name: name.to_string(),
        folder: shown(folder),
    };
    let irregular = |what| DocumentError::NotRegular {
        name: name.to_string(),
        folder: shown(folder),
        what,
    };
    let replaced = || DocumentError::Replaced {
        name: name.to_string(),
        folder: shown(folder),
    };
    // The folder itself must be a real directory: a link would take the names elsewhere.
    let dir = match std::fs::symlink_metadata(folder) {
        Ok(m) if m.is_dir() => m,
        Ok(m) => {
            return Err(DocumentError::Folder {
                folder: shown(folder),
                what: not_regular(m.file_type()).unwrap_or("a file"),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(err(e)),
    };
    let path = folder.join(name);
    let seen = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(err(e)),
    };
    if let Some(what) = not_regular(seen.file_type()) {
        return Err(irregular(what));
    }
    let too_large = |found: u64| DocumentError::TooLarge {
        name: name.to_string(),
        limit: LimitError::new(
            "document_mib",
            bytes_shown(max_bytes),
            format!("the file is {}", bytes_shown(found)),
        ),
    };
    if seen.len() > max_bytes {
        return Err(too_large(seen.len()));
    }
    // No link is followed and nothing waits on a pipe put in the file's place since it was
    // looked at; what was opened must be that same file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => irregular("a symbolic link"),
            _ if e.kind() == std::io::ErrorKind::NotFound => missing(),
            _ => err(e),
        })?;
    let opened = file.metadata().map_err(err)?;
    if !opened.is_file() || (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(replaced());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(seen.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    // The folder is still the one the names were checked in.
    match std::fs::symlink_metadata(folder) {
        Ok(m) if m.is_dir() && (m.dev(), m.ino()) == (dir.dev(), dir.ino()) => {}
        _ => return Err(replaced()),
    }
    if !bytes.starts_with(magic) {
        return Err(DocumentError::Content {
            name: name.to_string(),
            ext,
            media_type,
        });
    }
    Ok(Attached {
        name: name.to_string(),
        media_type,
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
    })
}

/// The documents a record names, read from `folder` and handed to `keep` (the store) one at a
/// time, so memory holds one document at most. Returns the case's listing in the order named
/// (a name given twice is listed once), or every problem found; `keep`'s own error stops it.
pub fn attach<E>(
    folder: &Path,
    names: &[String],
    kind: &str,
    limits: &Limits,
    keep: &mut dyn FnMut(&Attached) -> Result<(), E>,
) -> Result<Result<Vec<DocumentRef>, Vec<DocumentError>>, E> {
    let mut unique: Vec<&String> = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    if unique.len() as u64 > limits.documents_per_record {
        return Ok(Err(vec![DocumentError::TooMany(LimitError::new(
            "documents_per_record",
            limits.documents_per_record,
            format!("the record names {} documents", unique.len()),
        ))]));
    }
    let mut refs = Vec::with_capacity(unique.len());
    let mut problems = Vec::new();
    for name in unique {
        match read(folder, name, limits.document_bytes) {
            Ok(doc) => {
                keep(&doc)?;
                refs.push(doc.reference(kind));
            }
            Err(e) => problems.push(e),
        }
    }
    Ok(if problems.is_empty() {
        Ok(refs)
    } else {
        Err(problems)
    })
}

/// The names of the documents in `dir` (a report submission's document copies), sorted, after
/// checking each as [`read`] does; every problem is returned, not only the first.
pub fn check_folder(dir: &Path, limits: &Limits) -> Result<Vec<String>, Vec<DocumentError>> {
    let io = |source| {
        vec![DocumentError::Io {
            name: ".".into(),
            folder: dir.display().to_string(),
            source,
        }]
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            return Err(vec![DocumentError::Folder {
                folder: dir.display().to_string(),
                what: not_regular(m.file_type()).unwrap_or("a file"),
            }]);
        }
        Err(e) => return Err(io(e)),
    }
    let mut names = Vec::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        match entry.file_name().into_string() {
            Ok(n) => names.push(n),
            Err(raw) => problems.push(DocumentError::BadName {
                name: raw.to_string_lossy().into_owned(),
                why: "it is not UTF-8",
                folder: shown(dir),
            }),
        }
    }
    names.sort();
    if names.len() as u64 > limits.documents_per_submission {
        problems.push(DocumentError::TooMany(LimitError::new(
            "documents_per_submission",
            limits.documents_per_submission,
            format!("{} holds {} files", shown(dir), names.len()),
        )));
        return Err(problems);
    }
    for n in &names {
        if let Err(e) = read(dir, n, limits.document_bytes) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(names)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.4\n% a decision\n%%EOF\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR";

    fn folder() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let f = folder_of(&tmp.path().join("export.xlsx"));
        std::fs::create_dir(&f).unwrap();
        (tmp, f)
    }

    fn refused(folder: &Path, name: &str, max: u64) -> String {
        read(folder, name, max).expect_err(name).to_string()
    }

    #[test]
    fn a_plain_name_of_an_accepted_type_is_read_with_its_digest() {
        let (_tmp, f) = folder();
        std::fs::write(f.join("检查笔录.PDF"), PDF).unwrap();
        let d = read(&f, "检查笔录.PDF", 1024).unwrap();
        assert_eq!(d.bytes, PDF);
        assert_eq!(d.media_type, "application/pdf");
        assert_eq!(d.sha256, hex::encode(Sha256::digest(PDF)));
        let r = d.reference("检查记录文件");
        assert_eq!(
            (r.doc_id.as_str(), r.title.as_str(), r.kind.as_str(), r.size),
            ("检查笔录.PDF", "检查笔录", "检查记录文件", PDF.len() as u64)
        );
        assert!(f.to_string_lossy().ends_with("export.xlsx.files"));
    }

    #[test]
    fn names_that_leave_the_folder_are_refused_before_anything_is_opened() {
        let (tmp, f) = folder();
        std::fs::write(tmp.path().join("secret.pdf"), PDF).unwrap();
        for (name, says) in [
            ("../secret.pdf", "path separator"),
            ("/etc/passwd.pdf", "path separator"),
            ("sub/secret.pdf", "path separator"),
            ("..\\secret.pdf", "path separator"),
            ("..", "starts with a dot"),
            (".hidden.pdf", "starts with a dot"),
            ("", "empty"),
            ("a\u{1}.pdf", "control character"),
        ] {
            let e = refused(&f, name, 1024);
            assert!(
                e.contains(says) && e.contains("export.xlsx.files/"),
                "{name:?}: {e}"
            );
        }
        let long = format!("{}.pdf", "长".repeat(90));
        assert!(refused(&f, &long, 1024).contains("255 bytes"));
    }

    #[test]
    fn only_accepted_types_whose_bytes_agree_are_read() {
        let (_tmp, f) = folder();
        for name in ["run.exe", "page.html", "notes.docx", "noextension"] {
            std::fs::write(f.join(name), PDF).unwrap();
            let e = refused(&f, name, 1024);
            assert!(e.contains("not an accepted document type"), "{e}");
            assert!(e.contains("pdf, ofd, jpg, jpeg, png"), "{e}");
        }
        // A page of HTML named .pdf, a PNG named .jpg: refused, never served as what they claim.
        std::fs::write(f.join("fake.pdf"), b"<html><script>alert(1)</script>").unwrap();
        let e = refused(&f, "fake.pdf", 1024);
        assert!(e.contains("does not start as a .pdf file does"), "{e}");
        std::fs::write(f.join("photo.jpg"), PNG).unwrap();
        assert!(refused(&f, "photo.jpg", 1024).contains(".jpg"));
        std::fs::write(f.join("photo.png"), PNG).unwrap();
        assert_eq!(read(&f, "photo.png", 1024).unwrap().media_type, "image/png");
        assert_eq!(media_type("a.JPEG"), Some("image/jpeg"));
        assert_eq!(media_type("a.ofd"), Some("application/ofd"));
    }

    #[test]
    fn missing_too_large_and_irregular_files_are_refused_naming_the_file() {
        let (tmp, f) = folder();
        let e = refused(&f, "absent.pdf", 1024);
        assert!(
            e.contains("'absent.pdf' is not in export.xlsx.files/"),
            "{e}"
        );
        // One byte over the limit.
        let mut big = PDF.to_vec();
        big.resize(1025, b' ');
        std::fs::write(f.join("big.pdf"), &big).unwrap();
        let e = refused(&f, "big.pdf", 1024);
        assert!(
            e.contains("'big.pdf'") && e.contains("document_mib") && e.contains("1,025 bytes"),
            "{e}"
        );
        assert!(read(&f, "big.pdf", 1025).is_ok());
        // A link to a file outside, and one to a file inside: neither is followed.
        std::fs::write(tmp.path().join("outside.pdf"), PDF).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside.pdf"), f.join("out.pdf")).unwrap();
        std::fs::write(f.join("real.pdf"), PDF).unwrap();
        std::os::unix::fs::symlink(f.join("real.pdf"), f.join("alias.pdf")).unwrap();
        for name in ["out.pdf", "alias.pdf"] {
            let e = refused(&f, name, 1024);
            assert!(e.contains("is a symbolic link, not a regular file"), "{e}");
        }
        std::fs::create_dir(f.join("dir.pdf")).unwrap();
        assert!(refused(&f, "dir.pdf", 1024).contains("a directory"));
        // No folder beside the export at all, and a folder that is a link elsewhere.
        let none = folder_of(&tmp.path().join("other.xlsx"));
        assert!(refused(&none, "real.pdf", 1024).contains("not in other.xlsx.files/"));
        let linked = folder_of(&tmp.path().join("linked.xlsx"));
        std::os::unix::fs::symlink(&f, &linked).unwrap();
        let e = refused(&linked, "real.pdf", 1024);
        assert!(e.contains("linked.xlsx.files/ is a symbolic link"), "{e}");
    }

    #[test]
    fn a_record_lists_every_problem_and_keeps_nothing_twice() {
        let (_tmp, f) = folder();
        std::fs::write(f.join("a.pdf"), PDF).unwrap();
        std::fs::write(f.join("b.png"), PNG).unwrap();
        let limits = Limits {
            documents_per_record: 3,
            ..Limits::default()
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut kept = Vec::new();
        let mut keep = |d: &Attached| {
            kept.push(d.name.clone());
            Ok::<_, std::convert::Infallible>(())
        };
        let Ok(listed) = attach(
            &f,
            &names(&["a.pdf", "b.png", "a.pdf"]),
            "k",
            &limits,
            &mut keep,
        );
        let listed = listed.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].media_type, "image/png");
        assert_eq!(kept, ["a.pdf", "b.png"]);
        let Ok(problems) = attach(
            &f,
            &names(&["a.pdf", "../x.pdf", "gone.pdf"]),
            "k",
            &limits,
            &mut |_| Ok::<_, std::convert::Infallible>(()),
        );
        let problems = problems.unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let Ok(too_many) = attach(
            &f,
            &names(&["a.pdf", "b.png", "c.pdf", "d.pdf"]),
            "k",
            &limits,
            &mut |_| Ok::<_, std::convert::Infallible>(()),
        );
        let e = too_many.unwrap_err()[0].to_string();
        assert!(
            e.contains("documents_per_record = 3") && e.contains("names 4"),
            "{e}"
        );
    }

    #[test]
    fn a_submitted_folder_is_checked_whole() {
        let (tmp, f) = folder();
        std::fs::write(f.join("b.pdf"), PDF).unwrap();
        std::fs::write(f.join("a.png"), PNG).unwrap();
        let limits = Limits::default();
        assert_eq!(check_folder(&f, &limits).unwrap(), ["a.png", "b.pdf"]);
        std::fs::write(f.join("Thumbs.db"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path(), f.join("up.pdf")).unwrap();
        let problems: Vec<String> = check_folder(&f, &limits)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Thumbs.db"), "{problems:?}");
        assert!(problems[1].contains("up.pdf") && problems[1].contains("symbolic link"));
        let few = Limits {
            documents_per_submission: 2,
            ..Limits::default()
        };
        let e = check_folder(&f, &few).unwrap_err()[0].to_string();
        assert!(e.contains("documents_per_submission = 2"), "{e}");
    }
}
