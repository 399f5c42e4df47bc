//! The client side of a scenario's TLS requests, shared by the hosts: the ClientHello a client
//! sends (made by rustls, as the Envoy harness's client really sends it), and the name of the
//! certificate a passthrough backend serves.

use portico_core::tls::select::TlsVersion;

use crate::prepare::ClientTls;

/// What scenarios see as the certificate of a TLS passthrough backend (an echo server that
/// terminates TLS itself): it is none of the scenario's Secrets.
pub const BACKEND_CERTIFICATE: &str = "backend";

/// The first flight of a TLS client offering `tls` (SNI, highest version) and ALPN `h2` or
/// `http/1.1`: the bytes a proxy's TLS inspector reads.
///
/// # Errors
/// A name rustls refuses as an SNI.
pub fn client_hello(tls: &ClientTls, http2: bool) -> Result<Vec<u8>, String> {
    if tls.max_version < TlsVersion::V1_2 {
        return Ok(old_client_hello(tls));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.max_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let name = match &tls.sni {
        Some(sni) => rustls::pki_types::ServerName::try_from(sni.clone())
            .map_err(|e| format!("SNI {sni:?}: {e}"))?,
        None => {
            config.enable_sni = false;
            rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
        }
    };
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// A TLS 1.0/1.1-only ClientHello (no `supported_versions`), written by hand: rustls offers
/// nothing older than 1.2.
pub fn old_client_hello(tls: &ClientTls) -> Vec<u8> {
    let version: [u8; 2] = match tls.max_version {
        TlsVersion::V1_0 => [3, 1],
        _ => [3, 2],
    };
    let mut ext = Vec::new();
    if let Some(sni) = &tls.sni {
        let n = sni.as_bytes();
        let list_len = n.len() + 3;
        ext.extend([0, 0]);
        ext.extend(
            u16::try_from(list_len + 2)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        ext.extend(u16::try_from(list_len).unwrap_or(u16::MAX).to_be_bytes());
        ext.push(0);
        ext.extend(u16::try_from(n.len()).unwrap_or(u16::MAX).to_be_bytes());
        ext.extend(n);
    }
    let mut body = Vec::new();
    body.extend(version);
    body.extend([7u8; 32]);
    body.push(0);
    // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend([0, 4, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend([1, 0]);
    body.extend(u16::try_from(ext.len()).unwrap_or(u16::MAX).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![1];
    hs.extend(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
    hs.extend(body);
    let mut record = vec![22, 3, 1];
    record.extend(u16::try_from(hs.len()).unwrap_or(u16::MAX).to_be_bytes());
    record.extend(hs);
    record
}

/// What Envoy's TLS transport socket decides about a client certificate: valid when it chains
/// to `ca_pem` (and is in date, for client authentication), and — when `sans` is not empty —
/// carries one of them as a DNS SAN.
///
/// # Errors
/// Why the handshake fails.
pub fn verify_client(
    ca_pem: &str,
    client: &crate::prepare::ClientIdentity,
    sans: &[String],
) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| format!("CA bundle: {e}"))?;
        roots.add(c).map_err(|e| format!("CA bundle: {e}"))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    .map_err(|e| format!("CA bundle: {e}"))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(client.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("client certificate {}: {e}", client.name))?;
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(format!("client certificate {}: empty", client.name));
    };
    verifier
        .verify_client_cert(leaf, rest, rustls::pki_types::UnixTime::now())
        .map_err(|e| format!("client certificate {} rejected: {e}", client.name))?;
    if !sans.is_empty() {
        let names = portico_controller::translate::tls::subject_alt_names(leaf);
        if !names.iter().any(|n| sans.contains(n)) {
            return Err(format!(
                "client certificate {} carries none of the SANs {sans:?} (it has {names:?})",
                client.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::tls::client_hello::parse;

    #[test]
    fn hellos_carry_what_the_client_offers() {
        let tls = |sni: Option<&str>, v| ClientTls {
            sni: sni.map(str::to_owned),
            max_version: v,
            client: None,
        };
        let h =
            parse(&client_hello(&tls(Some("Shop.Example.com"), TlsVersion::V1_3), true).unwrap())
                .unwrap();
        assert_eq!(h.sni.as_deref(), Some("shop.example.com"));
        assert_eq!(h.alpn, ["h2"]);
        assert_eq!(h.max_version(), 0x0304);
        let h = parse(&client_hello(&tls(None, TlsVersion::V1_2), false).unwrap()).unwrap();
        assert_eq!((h.sni.clone(), h.max_version()), (None, 0x0303));
        let h =
            parse(&client_hello(&tls(Some("old.test"), TlsVersion::V1_1), false).unwrap()).unwrap();
        assert_eq!(
            (h.sni.as_deref(), h.max_version()),
            (Some("old.test"), 0x0302)
        );
    }
}
