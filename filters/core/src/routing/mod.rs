//! The routing filter's decisions: the compiled routing table ([`router`]), its CORS policies
//! ([`cors`]) and what to do with one request ([`plan`]).

pub mod cors;
pub mod nginx_var;
pub mod plan;
pub mod router;

mod listed;
