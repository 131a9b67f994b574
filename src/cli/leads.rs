//! `leads` commands (through the admin socket).

use super::ops::client;
use super::{Cli, LeadsCommand};
use crate::admin::leads::RebuildAnswer;

/// `leads …`.
pub async fn leads(cli: &Cli, cmd: &LeadsCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        LeadsCommand::Rebuild { json } => {
            let a: RebuildAnswer = c.post("/leads/rebuild", &serde_json::json!({})).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!(
                    "{} case(s) evaluated under {} rule(s); {} lead(s) open",
                    a.cases, a.rules, a.open
                );
            }
        }
    }
    Ok(())
}
