//! TLS: the ClientHello parser (`client_hello`), the certificate / passthrough choice by SNI
//! (`select`), and the `tls` network filter's passthrough policy (`passthrough`).
pub mod client_hello;
pub mod passthrough;
pub mod select;

/// A minimal TLS 1.2 ClientHello in one record, with one SNI entry or none.
#[cfg(test)]
pub(crate) fn test_hello(sni: Option<&str>) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(sni) = sni {
        let name = sni.as_bytes();
        let list = name.len() + 3;
        exts.extend([0, 0]);
        exts.extend(((list + 2) as u16).to_be_bytes());
        exts.extend((list as u16).to_be_bytes());
        exts.push(0);
        exts.extend((name.len() as u16).to_be_bytes());
        exts.extend(name);
    }
    let mut body = vec![3, 3];
    body.extend([0u8; 32]);
    body.push(0);
    body.extend([0, 2, 0x13, 0x01, 1, 0]);
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut hs = vec![1];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}
