//! The network and credential plumbing the gateway and the platform simulator share, so that the
//! simulator runs without the gateway and both serve HTTPS the same way:
//!
//! - [`tls`]: the only place that configures rustls (server and client configurations,
//!   certificate loading and checks, client certificate policy, reloading, fingerprints);
//! - [`serve`]: the HTTPS serving loop with its connection limits and body deadlines;
//! - [`shutdown`]: the stop signal every task and the serving loop take;
//! - [`secret`]: secret-holding types that never print their contents, and constant-time
//!   comparison.
//!
//! The gateway re-exports these as `xianjie::tls`, `xianjie::shutdown` and
//! `xianjie::keys::secret`, and the serving loop's pieces from `xianjie::api`.

pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod tls;
