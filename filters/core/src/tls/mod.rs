//! TLS: the ClientHello parser and (in `select`) the certificate / passthrough choice by SNI.
pub mod client_hello;
