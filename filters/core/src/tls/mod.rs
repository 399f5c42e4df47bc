//! TLS: the ClientHello parser (`client_hello`) and the certificate / passthrough choice by SNI
//! (`select`).
pub mod client_hello;
pub mod select;
