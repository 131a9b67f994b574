//! Keys and credentials under custody: the encrypted keystore file, the secret types, and the
//! running gateway's custody of them (sealed until unlocked).

pub mod custody;
pub mod keystore;
pub use xianjie_net::secret;
