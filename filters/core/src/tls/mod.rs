//! TLS: the ClientHello parser (`client_hello`), the certificate / passthrough choice by SNI
//! (`select`), and the `tls` network filter's passthrough policy (`passthrough`).
pub mod client_hello;
pub mod passthrough;
pub mod select;
