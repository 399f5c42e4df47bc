//! TLS: the certificate / passthrough choice by SNI (`select`).
pub mod select;
