//! The web console for procuratorate analysts, unit staff and district administrators (issue
//! 15), served under `/console/` on the gateway's own listener. So far: how a person's sign-in is
//! checked ([`auth`]), how its session is held ([`session`]), and who may sign in ([`users`]); the
//! pages and the user store come next.

pub mod auth;
pub mod directory;
pub mod district;
pub mod pages;
pub mod session;
pub mod users;
pub mod web;
