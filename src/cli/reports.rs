//! `reports` commands (through the admin socket): build a quarter, its status, one report, the
//! public disclosure.

use std::path::Path;

use anyhow::Context;

use super::ops::client;
use super::{Cli, ReportsCommand};
use crate::admin::client::AdminClient;
use crate::admin::reports::{BuildLine, BuildRequest};
use crate::reports::status::{QuarterStatus, State};

/// Asks the gateway to write the public disclosure of `quarter` in `format` into `out`; returns
/// the files written. The gateway may run in another working directory and refuses a relative
/// one, so `out` is made absolute here, against the caller's (the demo's `./data/disclosure`).
pub async fn disclose(
    c: &AdminClient,
    quarter: &str,
    format: &str,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    let out =
        std::path::absolute(out).with_context(|| format!("cannot resolve {}", out.display()))?;
    Ok(c.post(
        "/reports/disclose",
        &crate::admin::reports::DiscloseRequest {
            quarter: quarter.into(),
            format: format.into(),
            out: out.display().to_string(),
        },
    )
    .await?)
}

/// `reports …`.
pub async fn reports(cli: &Cli, cmd: &ReportsCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        ReportsCommand::Build { quarter, json } => {
            let lines: Vec<BuildLine> = c
                .post(
                    "/reports/build",
                    &BuildRequest {
                        quarter: quarter.clone(),
                    },
                )
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                for l in lines {
                    let what = match l.stored {
                        crate::store::ReportStored::New { version } => {
                            format!("new version {version}")
                        }
                        crate::store::ReportStored::Unchanged { version } => {
                            format!("unchanged (version {version})")
                        }
                    };
                    println!(
                        "{} {:<24} {:>6} case(s)  {what}",
                        l.unit_code, l.unit_name, l.total
                    );
                }
            }
        }
        ReportsCommand::Status { quarter, json } => {
            let s: QuarterStatus = c.get(&format!("/reports/status?quarter={quarter}")).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{}: submissions due {}; window {}",
                    s.quarter,
                    s.deadline,
                    s.window
                        .as_ref()
                        .map_or("not opened yet".to_string(), |w| format!(
                            "opened {}",
                            w.opened_at.format("%Y-%m-%d %H:%M")
                        ))
                );
                for u in &s.units {
                    let state = match u.state {
                        State::Computed => "computed",
                        State::Submitted if u.late => "submitted (late)",
                        State::Submitted => "submitted",
                        State::Missing => "missing",
                        State::Overdue => "OVERDUE",
                    };
                    println!(
                        "  {} {:<24} {:<17} {}",
                        u.unit_code,
                        u.unit_name,
                        state,
                        u.version.map_or(String::new(), |v| format!(
                            "v{v}, {} case(s)",
                            u.total.unwrap_or(0)
                        ))
                    );
                }
            }
        }
        ReportsCommand::Disclose {
            quarter,
            format,
            out,
        } => {
            for p in disclose(&c, quarter, format, out).await? {
                println!("{p}");
            }
        }
        ReportsCommand::AllowSubmit { unit, client }
        | ReportsCommand::DenySubmit { unit, client }
        | ReportsCommand::AllowRead { unit, client }
        | ReportsCommand::DenyRead { unit, client } => {
            let path = match cmd {
                ReportsCommand::AllowSubmit { .. } => "submitters/allow",
                ReportsCommand::DenySubmit { .. } => "submitters/deny",
                ReportsCommand::AllowRead { .. } => "readers/allow",
                _ => "readers/deny",
            };
            let d: crate::admin::Done = c
                .post(
                    &format!("/reports/{path}"),
                    &crate::admin::PortRequest {
                        unit: unit.clone(),
                        client: client.clone(),
                        supervise: false,
                    },
                )
                .await?;
            println!("{}: {unit} for {client}", d.message);
        }
        ReportsCommand::Submit {
            unit,
            quarter,
            file,
            documents,
        } => {
            let a: crate::admin::reports::SubmitAnswer = c
                .post(
                    "/reports/submit",
                    &crate::admin::reports::SubmitRequest {
                        unit: unit.clone(),
                        quarter: quarter.clone(),
                        path: std::path::absolute(file)?.display().to_string(),
                        documents: documents
                            .as_ref()
                            .map(std::path::absolute)
                            .transpose()?
                            .map(|d| d.display().to_string()),
                    },
                )
                .await?;
            if a.new_version {
                println!(
                    "{unit} {quarter}: stored as version {} ({} case(s), {} document(s))",
                    a.version, a.cases, a.documents
                );
            } else {
                println!(
                    "{unit} {quarter}: identical to version {} already stored; nothing new",
                    a.version
                );
            }
        }
        ReportsCommand::Show {
            quarter,
            unit,
            version,
        } => {
            let mut path = format!("/reports/show?quarter={quarter}");
            if let Some(u) = unit {
                path.push_str(&format!("&unit={u}"));
            }
            if let Some(v) = version {
                path.push_str(&format!("&version={v}"));
            }
            let v: serde_json::Value = c.get(&path).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}
