//! Authentication: credentials from files, JSON or settings; the RS256 service-account
//! assertion; cached access tokens refreshed before they expire.

pub mod credentials;
pub mod jwt;
pub mod token;

pub use credentials::{Credentials, ServiceAccountKey, DEFAULT_TOKEN_URL};
pub use token::TokenSource;
