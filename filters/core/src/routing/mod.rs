//! The routing filter's decisions: the compiled routing table ([`router`]), its CORS policies
//! ([`cors`]) and what to do with one request ([`plan`]).

pub mod cors;
mod listed;
pub mod router;
