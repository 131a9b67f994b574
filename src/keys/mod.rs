//! Keys and credentials under custody: the encrypted keystore file and the secret types.

pub mod keystore;
pub mod secret;
