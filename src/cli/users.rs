//! `xianjie users …`: the console's users, through the running gateway's admin socket. A new or
//! reset user's one-time password and TOTP enrolment are printed once, the enrolment also as a QR
//! code the authenticator app scans from the terminal.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use super::UsersCommand;
use super::ops::client;
use crate::admin::Done;
use crate::admin::users::{EnrolmentShown, UserRequest};
use crate::console::directory::UserInfo;

/// `xianjie users …`.
pub async fn users(cli: &super::Cli, cmd: &UsersCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        UsersCommand::Add {
            name,
            role,
            client,
            unit,
        } => {
            let e: EnrolmentShown = c
                .post(
                    "/users",
                    &UserRequest {
                        name: name.clone(),
                        role: role.clone(),
                        client: client.clone(),
                        unit: unit.clone(),
                    },
                )
                .await?;
            print_enrolment(&e);
        }
        UsersCommand::List { json } => {
            let list: Vec<UserInfo> = c.get("/users").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no console users (add one with `xianjie users add NAME --role admin`)");
            } else {
                for u in list {
                    let grant = u
                        .client
                        .as_deref()
                        .map(|c| format!(" client {c}"))
                        .or(u.unit.as_deref().map(|x| format!(" unit {x}")))
                        .unwrap_or_default();
                    let state = match (u.disabled_at, u.locked_until, u.must_change) {
                        (Some(t), _, _) => format!("disabled {}", t.to_rfc3339()),
                        (None, Some(t), _) => format!("locked until {}", t.to_rfc3339()),
                        (None, None, true) => "one-time password not yet replaced".into(),
                        (None, None, false) => "active".into(),
                    };
                    println!(
                        "{:<20} {:<8}{grant}  added by {} {}  {state}",
                        u.name,
                        u.role,
                        u.created_by,
                        u.created_at.to_rfc3339(),
                    );
                }
            }
        }
        UsersCommand::Reset { name } => {
            let e: EnrolmentShown = c
                .post(&format!("/users/{name}/reset"), &serde_json::json!({}))
                .await?;
            print_enrolment(&e);
        }
        UsersCommand::Disable { name } => {
            let d: Done = c
                .post(&format!("/users/{name}/disable"), &serde_json::json!({}))
                .await?;
            println!("{}", d.message);
        }
    }
    Ok(())
}

/// Prints a one-time password and the TOTP enrolment, with its QR code when the URI fits one.
fn print_enrolment(e: &EnrolmentShown) {
    println!("user:               {}", e.name);
    println!("one-time password:  {}", e.password);
    println!("TOTP enrolment:     {}", e.otpauth);
    match QrCode::new(e.otpauth.as_bytes()) {
        Ok(code) => {
            // Light modules drawn dark: terminals are usually dark, and a scanner wants dark
            // modules on a light ground.
            let image = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            println!("{image}");
        }
        Err(err) => eprintln!("(no QR code: {err}; type the URI's secret into the app instead)"),
    }
    eprintln!(
        "Shown once. Hand the password over in person; the user scans the code with an \
         authenticator app and chooses a new password at first sign-in."
    );
}
