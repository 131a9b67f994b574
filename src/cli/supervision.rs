//! `supervision` commands (through the admin socket): the unit's side of the procuratorate's
//! actions.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use super::ops::client;
use super::{Cli, SupervisionCommand};
use crate::admin::supervision::Shown;
use crate::supervision::actions::{AnswerDocument, AnswerRequest, MAX_DOCUMENT, MAX_DOCUMENTS};

/// `supervision …`.
pub async fn supervision(cli: &Cli, cmd: &SupervisionCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        SupervisionCommand::List { unit, open, json } => {
            let mut path = format!("/supervision?open={open}");
            if let Some(u) = unit {
                let u = crate::model::Uscc::parse(u).map_err(|e| anyhow::anyhow!("--unit: {e}"))?;
                path.push_str(&format!("&unit={u}"));
            }
            let list: Vec<Shown> = c.get(&path).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "no supervision actions{}",
                    if *open { " waiting for an answer" } else { "" }
                );
            } else {
                for s in &list {
                    println!("{}", line(s));
                }
            }
        }
        SupervisionCommand::Show { id, json } => {
            let s: Shown = c.get(&format!("/supervision/{id}")).await?;
            print_one(&s, *json)?;
        }
        SupervisionCommand::Answer {
            id,
            text,
            documents,
            json,
        } => {
            let documents = match documents {
                Some(dir) => read_documents(dir)?,
                None => Vec::new(),
            };
            let s: Shown = c
                .post(
                    &format!("/supervision/{id}/answer"),
                    &AnswerRequest {
                        text: text.clone(),
                        documents,
                    },
                )
                .await?;
            print_one(&s, *json)?;
        }
    }
    Ok(())
}

/// One action on one line.
fn line(s: &Shown) -> String {
    let a = &s.action;
    format!(
        "{:>6}  {}  {} {}  {}  {}  {}",
        a.id,
        a.at.format("%Y-%m-%d %H:%M"),
        a.unit_code,
        a.case_id,
        a.kind.label(),
        if a.is_open() {
            "待答复".to_string()
        } else if a.answers.is_empty() {
            "无需答复".to_string()
        } else {
            format!("已答复 {} 次", a.answers.len())
        },
        s.case_title.as_deref().unwrap_or("(案件已不在库中)")
    )
}

fn print_one(s: &Shown, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let a = &s.action;
    println!("{}", line(s));
    println!("  from {} on case version {}", a.client, a.case_version);
    println!("  {}", a.text.replace('\n', "\n  "));
    for d in &a.documents {
        println!(
            "  document {} {} ({} bytes, sha256 {})",
            d.doc_id, d.title, d.size, d.sha256
        );
    }
    for (i, x) in a.answers.iter().enumerate() {
        println!(
            "  answer {} by {} at {}: {}",
            i + 1,
            x.by,
            x.at.format("%Y-%m-%d %H:%M"),
            x.text.replace('\n', "\n    ")
        );
        for d in &x.documents {
            println!("    document {} {} ({} bytes)", d.doc_id, d.title, d.size);
        }
    }
    Ok(())
}

/// The files of `dir` as answer documents, each checked as an adapter's documents are (a plain
/// regular file of an accepted type whose bytes agree, within the size limit) before anything
/// is sent; every problem is reported at once.
fn read_documents(dir: &Path) -> anyhow::Result<Vec<AnswerDocument>> {
    use crate::ingest::documents;
    let limits = crate::ingest::Limits {
        document_bytes: MAX_DOCUMENT as u64,
        documents_per_submission: MAX_DOCUMENTS as u64,
        ..crate::ingest::Limits::default()
    };
    let names = documents::check_folder(dir, &limits).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("--documents {}: {}", dir.display(), list.join("; "))
    })?;
    names
        .iter()
        .map(|n| {
            let d = documents::read(dir, n, limits.document_bytes)
                .with_context(|| format!("--documents {}", dir.display()))?;
            Ok(AnswerDocument {
                name: d.name,
                media_type: d.media_type.to_string(),
                content_base64: base64::engine::general_purpose::STANDARD.encode(d.bytes),
            })
        })
        .collect()
}
