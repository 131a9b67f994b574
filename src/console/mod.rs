//! The web console for procuratorate analysts, unit staff and district administrators (issue
//! 15), served under `/console/` on the gateway's own listener. So far: how a person's sign-in is
//! checked ([`auth`]); the pages, sessions and user store come next.

pub mod auth;
