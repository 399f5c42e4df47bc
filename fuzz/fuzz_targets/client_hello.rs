//! `portico_core::tls::client_hello::parse` on arbitrary bytes, and on every prefix of them.
//!
//! Beyond "never panics" (overflow checks and debug assertions are on in fuzz builds), this
//! checks what the parser promises (see its module docs):
//! * monotonic: once a prefix gets an answer other than `Incomplete`, every longer prefix, and
//!   the whole input, gets the same answer; in particular a prefix is never `Ok` with other data;
//! * `Incomplete { needed }` is at least 1 and, when the whole input parses, never overshoots it;
//! * an `Ok` hello is internally consistent (normalised SNI, no GREASE, `max_version`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_core::tls::client_hello::{is_grease, parse, ClientHello, HelloError};

fuzz_target!(|data: &[u8]| {
    let full = parse(data);
    let mut settled: Option<(usize, Result<ClientHello, HelloError>)> = None;
    for end in 0..=data.len() {
        let got = parse(&data[..end]);
        if let Some((at, answer)) = &settled {
            assert_eq!(&got, answer, "prefix {end} disagrees with prefix {at}");
            continue;
        }
        match &got {
            Err(HelloError::Incomplete { needed }) => {
                assert!(*needed >= 1, "prefix {end}: needed 0");
                if full.is_ok() {
                    assert!(
                        end + needed <= data.len(),
                        "prefix {end}: needed {needed} overshoots {}",
                        data.len()
                    );
                }
            }
            _ => settled = Some((end, got)),
        }
    }
    if let Ok(hello) = &full {
        if let Some(sni) = &hello.sni {
            assert!(!sni.is_empty());
            assert!(sni
                .bytes()
                .all(|b| b.is_ascii() && b != 0 && !b.is_ascii_uppercase()));
        }
        assert!(!hello.supported_versions.iter().any(|&v| is_grease(v)));
        assert!(!hello.cipher_suites.iter().any(|&v| is_grease(v)));
        assert_eq!(hello.legacy_version >> 8, 0x03);
        let max = hello.max_version();
        assert!(hello.supported_versions.iter().all(|&v| v <= max));
        assert!(hello.alpn.iter().all(|p| !p.is_empty()));
    }
});
