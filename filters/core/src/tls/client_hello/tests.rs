use super::*;

// Captured on loopback (see testdata/README.md).
const OPENSSL_TLS12_SNI: &[u8] = include_bytes!("../testdata/openssl-tls12-sni.bin");
const OPENSSL_TLS12_NOSNI: &[u8] = include_bytes!("../testdata/openssl-tls12-nosni.bin");
const OPENSSL_TLS13_ALPN: &[u8] = include_bytes!("../testdata/openssl-tls13-alpn.bin");
const OPENSSL_TLS10_SNI: &[u8] = include_bytes!("../testdata/openssl-tls10-sni.bin");
const PYTHON_TLS13_ALPN: &[u8] = include_bytes!("../testdata/python-tls13-alpn.bin");

const FIXTURES: &[(&str, &[u8])] = &[
    ("openssl-tls12-sni", OPENSSL_TLS12_SNI),
    ("openssl-tls12-nosni", OPENSSL_TLS12_NOSNI),
    ("openssl-tls13-alpn", OPENSSL_TLS13_ALPN),
    ("openssl-tls10-sni", OPENSSL_TLS10_SNI),
    ("python-tls13-alpn", PYTHON_TLS13_ALPN),
];

const TLS13_AES_128_GCM_SHA256: u16 = 0x1301;
const ECDHE_RSA_AES128_GCM_SHA256: u16 = 0xc02f;

/// A hand-built ClientHello.
#[derive(Debug, Clone)]
struct Hello {
    legacy_version: u16,
    session_id: Vec<u8>,
    suites: Vec<u16>,
    compression: Vec<u8>,
    /// `None`: no extensions block at all (TLS 1.0 style).
    extensions: Option<Vec<(u16, Vec<u8>)>>,
}

impl Hello {
    fn new() -> Self {
        Hello {
            legacy_version: 0x0303,
            session_id: vec![0x55; 32],
            suites: vec![TLS13_AES_128_GCM_SHA256, ECDHE_RSA_AES128_GCM_SHA256],
            compression: vec![0],
            extensions: Some(Vec::new()),
        }
    }

    fn ext(mut self, ext_type: u16, data: Vec<u8>) -> Self {
        self.extensions
            .get_or_insert_with(Vec::new)
            .push((ext_type, data));
        self
    }

    fn sni(self, name: &str) -> Self {
        self.ext(EXT_SERVER_NAME, server_name_ext(&[(0, name.as_bytes())]))
    }

    fn body(&self) -> Vec<u8> {
        let mut b = self.legacy_version.to_be_bytes().to_vec();
        b.extend((0..32).map(|i| i as u8));
        b.push(self.session_id.len() as u8);
        b.extend(&self.session_id);
        b.extend(((self.suites.len() * 2) as u16).to_be_bytes());
        for s in &self.suites {
            b.extend(s.to_be_bytes());
        }
        b.push(self.compression.len() as u8);
        b.extend(&self.compression);
        if let Some(exts) = &self.extensions {
            let mut e = Vec::new();
            for (t, data) in exts {
                e.extend(t.to_be_bytes());
                e.extend((data.len() as u16).to_be_bytes());
                e.extend(data);
            }
            b.extend((e.len() as u16).to_be_bytes());
            b.extend(e);
        }
        b
    }

    /// The handshake message: type, 24-bit length, body.
    fn message(&self) -> Vec<u8> {
        message(&self.body())
    }

    /// The message in one record.
    fn bytes(&self) -> Vec<u8> {
        records(&self.message(), &[usize::MAX])
    }
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = vec![HANDSHAKE_CLIENT_HELLO];
    m.extend(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend(body);
    m
}

/// Splits `message` into handshake records of the given sizes (the last size repeats; capped at
/// 2^14 per record).
fn records(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i.min(sizes.len() - 1)]
            .min(rest.len())
            .min(MAX_RECORD);
        let (frag, tail) = rest.split_at(size);
        out.extend([CONTENT_HANDSHAKE, 0x03, 0x01]);
        out.extend((frag.len() as u16).to_be_bytes());
        out.extend(frag);
        rest = tail;
        i += 1;
    }
    out
}

/// The handshake message inside well-formed records (undoes `records`).
fn unrecord(mut bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    while bytes.len() >= 5 {
        let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
        m.extend(&bytes[5..5 + len]);
        bytes = &bytes[5 + len..];
    }
    m
}

fn server_name_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (t, name) in entries {
        list.push(*t);
        list.extend((name.len() as u16).to_be_bytes());
        list.extend(*name);
    }
    let mut e = (list.len() as u16).to_be_bytes().to_vec();
    e.extend(list);
    e
}

fn alpn_ext(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for n in names {
        list.push(n.len() as u8);
        list.extend(*n);
    }
    let mut e = (list.len() as u16).to_be_bytes().to_vec();
    e.extend(list);
    e
}

fn versions_ext(versions: &[u16]) -> Vec<u8> {
    let mut e = vec![(versions.len() * 2) as u8];
    for v in versions {
        e.extend(v.to_be_bytes());
    }
    e
}

/// The properties `parse` promises, checked on `input` and every prefix of it: no panic; once an
/// answer other than `Incomplete` is given, every longer prefix gives the same answer; an
/// `Incomplete { needed }` is never contradicted by an `Ok` fewer than `needed` bytes later.
/// Returns the answer for the whole input. (The fuzz target checks the same.)
fn check_prefixes(input: &[u8]) -> Result<ClientHello, HelloError> {
    let full = parse(input);
    let mut settled: Option<(usize, Result<ClientHello, HelloError>)> = None;
    for end in 0..=input.len() {
        let got = parse(&input[..end]);
        if let Some((at, answer)) = &settled {
            assert_eq!(&got, answer, "prefix {end} disagrees with prefix {at}");
            continue;
        }
        match &got {
            Err(HelloError::Incomplete { needed }) => {
                assert!(*needed >= 1, "prefix {end}: needed 0");
                if full.is_ok() {
                    assert!(
                        end + needed <= input.len(),
                        "prefix {end}: needed {needed} overshoots {}",
                        input.len()
                    );
                }
            }
            _ => settled = Some((end, got)),
        }
    }
    full
}

fn fixture(name: &str) -> ClientHello {
    let (_, bytes) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
    parse(bytes).unwrap()
}

#[test]
fn openssl_tls12_with_sni() {
    let h = fixture("openssl-tls12-sni");
    assert_eq!(h.legacy_version, 0x0303);
    assert_eq!(h.sni.as_deref(), Some("shop.example.com"));
    assert!(h.alpn.is_empty());
    assert!(h.supported_versions.is_empty(), "{h:?}");
    assert_eq!(h.max_version(), 0x0303);
    assert!(h.cipher_suites.contains(&ECDHE_RSA_AES128_GCM_SHA256));
}

#[test]
fn openssl_tls12_without_sni() {
    let h = fixture("openssl-tls12-nosni");
    assert_eq!(h.sni, None);
    assert_eq!(h.max_version(), 0x0303);
}

#[test]
fn openssl_tls13_normalises_sni_and_keeps_alpn() {
    // Sent as `-servername Shop.Example.COM. -alpn h2,http/1.1`.
    let h = fixture("openssl-tls13-alpn");
    assert_eq!(h.legacy_version, 0x0303);
    assert_eq!(h.sni.as_deref(), Some("shop.example.com"));
    assert_eq!(h.alpn, ["h2", "http/1.1"]);
    assert_eq!(h.supported_versions, [0x0304]);
    assert_eq!(h.max_version(), 0x0304);
    assert!(h.cipher_suites.contains(&TLS13_AES_128_GCM_SHA256));
}

#[test]
fn openssl_tls10() {
    let h = fixture("openssl-tls10-sni");
    assert_eq!(h.legacy_version, 0x0301);
    assert_eq!(h.sni.as_deref(), Some("legacy.example.net"));
    assert_eq!(h.max_version(), 0x0301);
}

#[test]
fn python_tls13() {
    let h = fixture("python-tls13-alpn");
    assert_eq!(h.sni.as_deref(), Some("api.example.org"));
    assert_eq!(h.alpn, ["h2", "http/1.1"]);
    assert_eq!(h.supported_versions, [0x0304]);
    assert_eq!(h.max_version(), 0x0304);
}

#[test]
fn every_prefix_of_every_fixture_is_incomplete() {
    for (name, bytes) in FIXTURES {
        let full = parse(bytes).unwrap();
        for end in 0..bytes.len() {
            match parse(&bytes[..end]) {
                Err(HelloError::Incomplete { needed }) => {
                    assert!(
                        needed >= 1 && end + needed <= bytes.len(),
                        "{name} at {end}"
                    )
                }
                other => panic!("{name}: prefix of {end} bytes gave {other:?}"),
            }
        }
        assert_eq!(check_prefixes(bytes), Ok(full));
    }
}

#[test]
fn incomplete_needed_is_exact_where_it_can_be() {
    assert_eq!(parse(&[]), Err(HelloError::Incomplete { needed: 50 }));
    assert_eq!(parse(&[0x16]), Err(HelloError::Incomplete { needed: 49 }));
    let bytes = Hello::new().bytes();
    // Header of record and of handshake in: exactly the rest of the record.
    assert_eq!(
        parse(&bytes[..9]),
        Err(HelloError::Incomplete {
            needed: bytes.len() - 9
        })
    );
    assert_eq!(
        parse(&bytes[..bytes.len() - 1]),
        Err(HelloError::Incomplete { needed: 1 })
    );
}

#[test]
fn one_byte_records_are_reassembled() {
    for (name, bytes) in FIXTURES {
        let full = parse(bytes).unwrap();
        let split = records(&unrecord(bytes), &[1]);
        assert_eq!(split.len(), bytes.len() - 5 + 5 * unrecord(bytes).len());
        assert_eq!(check_prefixes(&split), Ok(full), "{name}");
    }
}

#[test]
fn handshake_split_across_three_records() {
    let m = unrecord(PYTHON_TLS13_ALPN);
    let third = m.len() / 3;
    let split = records(&m, &[third, third, usize::MAX]);
    assert_eq!(split.len(), PYTHON_TLS13_ALPN.len() + 10);
    assert_eq!(check_prefixes(&split), Ok(fixture("python-tls13-alpn")));
    // Also with the 4-byte handshake header itself split over records.
    let split = records(&m, &[1, 2, 3, usize::MAX]);
    assert_eq!(check_prefixes(&split), Ok(fixture("python-tls13-alpn")));
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut bytes = OPENSSL_TLS13_ALPN.to_vec();
    // A middlebox-compatibility change_cipher_spec, then early data.
    bytes.extend([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    bytes.extend([0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb]);
    assert_eq!(parse(&bytes), Ok(fixture("openssl-tls13-alpn")));
    // Extra bytes inside the hello's own last record, complete or not, too.
    let mut m = Hello::new().sni("a.example").message();
    let hello_len = m.len();
    m.extend([0x02, 0x00]);
    let bytes = records(&m, &[usize::MAX]);
    assert_eq!(parse(&bytes).unwrap().sni.as_deref(), Some("a.example"));
    assert!(parse(&bytes[..5 + hello_len]).is_ok());
    assert!(parse(&bytes[..5 + hello_len - 1]).is_err());
}

#[test]
fn hand_built_without_sni() {
    let h = parse(&Hello::new().bytes()).unwrap();
    assert_eq!(
        h,
        ClientHello {
            legacy_version: 0x0303,
            sni: None,
            alpn: vec![],
            supported_versions: vec![],
            cipher_suites: vec![TLS13_AES_128_GCM_SHA256, ECDHE_RSA_AES128_GCM_SHA256],
        }
    );
}

#[test]
fn tls10_without_extensions_block() {
    let mut hello = Hello::new();
    hello.legacy_version = 0x0301;
    hello.extensions = None;
    let h = check_prefixes(&hello.bytes()).unwrap();
    assert_eq!(h.legacy_version, 0x0301);
    assert_eq!(h.max_version(), 0x0301);
    assert_eq!(h.sni, None);
}

#[test]
fn grease_is_ignored_in_versions_suites_and_extensions() {
    let mut hello = Hello::new()
        .ext(0x0a0a, vec![])
        .sni("shop.example.com")
        .ext(EXT_ALPN, alpn_ext(&[b"h2", b"http/1.1"]))
        .ext(
            EXT_SUPPORTED_VERSIONS,
            versions_ext(&[0x7a7a, 0x0304, 0x0303, 0xfafa]),
        )
        // A GREASE extension's contents are not parsed, and a second one is not a duplicate.
        .ext(0x1a1a, vec![0])
        .ext(0x3a3a, vec![]);
    hello.suites.insert(0, 0x2a2a);
    let h = check_prefixes(&hello.bytes()).unwrap();
    assert_eq!(h.supported_versions, [0x0304, 0x0303]);
    assert_eq!(h.max_version(), 0x0304);
    assert_eq!(
        h.cipher_suites,
        [TLS13_AES_128_GCM_SHA256, ECDHE_RSA_AES128_GCM_SHA256]
    );
    assert_eq!(h.alpn, ["h2", "http/1.1"]);
    assert_eq!(h.sni.as_deref(), Some("shop.example.com"));

    // Only GREASE in supported_versions: fall back to legacy_version.
    let h = parse(
        &Hello::new()
            .ext(EXT_SUPPORTED_VERSIONS, versions_ext(&[0xdada]))
            .bytes(),
    )
    .unwrap();
    assert!(h.supported_versions.is_empty());
    assert_eq!(h.max_version(), 0x0303);
}

#[test]
fn grease_values() {
    let all: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
    let want: Vec<u16> = (0..16).map(|i| 0x0a0a | (i << 12) | (i << 4)).collect();
    assert_eq!(all, want);
    assert!(!is_grease(0x0a1a) && !is_grease(0x0304));
}

#[test]
fn alpn_is_kept_as_sent() {
    let h = parse(
        &Hello::new()
            .ext(EXT_ALPN, alpn_ext(&[b"http/1.1", b"H2", b"\xffx"]))
            .bytes(),
    )
    .unwrap();
    assert_eq!(h.alpn, ["http/1.1", "H2", "\u{fffd}x"]);
    for bad in [vec![0, 0], vec![0, 1, 0], vec![0, 3, 2, b'h'], vec![], {
        let mut e = alpn_ext(&[b"h2"]);
        e.push(0);
        e
    }] {
        assert_eq!(
            parse(&Hello::new().ext(EXT_ALPN, bad.clone()).bytes()),
            Err(HelloError::Malformed("alpn")),
            "{bad:?}"
        );
    }
}

#[test]
fn sni_is_normalised() {
    for (sent, want) in [
        ("Shop.Example.COM.", "shop.example.com"),
        ("shop.example.com", "shop.example.com"),
        ("a..", "a."),
        ("LOCALHOST", "localhost"),
    ] {
        let h = parse(&Hello::new().sni(sent).bytes()).unwrap();
        assert_eq!(h.sni.as_deref(), Some(want), "{sent}");
    }
    assert_eq!(normalize_sni("WWW.Example.org."), "www.example.org");
    assert_eq!(normalize_sni("x.."), "x.");
    assert_eq!(normalize_sni(""), "");
}

#[test]
fn sni_first_host_name_wins_other_types_skipped() {
    let ext = server_name_ext(&[
        (7, b"\x00\xffopaque"),
        (0, b"First.example"),
        (0, b"second"),
    ]);
    let h = parse(&Hello::new().ext(EXT_SERVER_NAME, ext).bytes()).unwrap();
    assert_eq!(h.sni.as_deref(), Some("first.example"));
    let ext = server_name_ext(&[(7, b"only-another-type")]);
    let h = parse(&Hello::new().ext(EXT_SERVER_NAME, ext).bytes()).unwrap();
    assert_eq!(h.sni, None);
}

#[test]
fn bad_sni_is_malformed() {
    for name in [
        &b"shop\0.example.com"[..],
        b"caf\xc3\xa9.example",
        b"",
        b".",
    ] {
        assert_eq!(
            parse(
                &Hello::new()
                    .ext(EXT_SERVER_NAME, server_name_ext(&[(0, name)]))
                    .bytes()
            ),
            Err(HelloError::Malformed("server_name host_name")),
            "{name:?}"
        );
    }
    let mut trailing = server_name_ext(&[(0, b"a")]);
    trailing.push(0);
    // Empty extension (legal only in a ServerHello), empty list, short entry, trailing byte.
    for ext in [vec![], vec![0, 0], vec![0, 3, 0, 0, 5], trailing] {
        assert_eq!(
            parse(&Hello::new().ext(EXT_SERVER_NAME, ext.clone()).bytes()),
            Err(HelloError::Malformed("server_name")),
            "{ext:?}"
        );
    }
}

#[test]
fn duplicate_extensions_are_malformed() {
    let bytes = Hello::new()
        .sni("a")
        .ext(EXT_SERVER_NAME, server_name_ext(&[(0, b"b")]))
        .bytes();
    assert_eq!(
        parse(&bytes),
        Err(HelloError::Malformed("duplicate extension"))
    );
    let bytes = Hello::new()
        .ext(0x1234, vec![])
        .ext(EXT_ALPN, alpn_ext(&[b"h2"]))
        .ext(0x1234, vec![1])
        .bytes();
    assert_eq!(
        parse(&bytes),
        Err(HelloError::Malformed("duplicate extension"))
    );
}

#[test]
fn bad_supported_versions_are_malformed() {
    for ext in [vec![], vec![0], vec![1, 3], vec![2, 3, 4, 0], vec![4, 3, 4]] {
        assert_eq!(
            parse(
                &Hello::new()
                    .ext(EXT_SUPPORTED_VERSIONS, ext.clone())
                    .bytes()
            ),
            Err(HelloError::Malformed("supported_versions")),
            "{ext:?}"
        );
    }
}

#[test]
fn bad_hello_fields_are_malformed() {
    let mut h = Hello::new();
    h.legacy_version = 0x0200;
    assert_eq!(
        parse(&h.bytes()),
        Err(HelloError::Malformed("legacy_version"))
    );
    let mut h = Hello::new();
    h.session_id = vec![0; 33];
    assert_eq!(
        parse(&h.bytes()),
        Err(HelloError::Malformed("legacy_session_id"))
    );
    let mut h = Hello::new();
    h.suites.clear();
    assert_eq!(
        parse(&h.bytes()),
        Err(HelloError::Malformed("cipher_suites"))
    );
    let mut h = Hello::new();
    h.compression.clear();
    assert_eq!(
        parse(&h.bytes()),
        Err(HelloError::Malformed("legacy_compression_methods"))
    );
    // Odd cipher_suites length.
    let mut body = Hello::new().body();
    body[2 + 32 + 1 + 32 + 1] = 3;
    assert_eq!(
        parse(&records(&message(&body), &[usize::MAX])),
        Err(HelloError::Malformed("cipher_suites"))
    );
    // Trailing bytes after the extensions block, or a one-byte stub of one.
    for extra in [&[0u8, 0, 9][..], &[0]] {
        let mut body = Hello::new().body();
        if extra.len() == 1 {
            body.truncate(body.len() - 2);
        }
        body.extend(extra);
        assert_eq!(
            parse(&records(&message(&body), &[usize::MAX])),
            Err(HelloError::Malformed("extensions")),
            "{extra:?}"
        );
    }
    // Extension length past the block.
    let mut body = Hello::new().ext(0x1234, vec![1, 2]).body();
    let n = body.len();
    body[n - 3] = 9;
    assert_eq!(
        parse(&records(&message(&body), &[usize::MAX])),
        Err(HelloError::Malformed("extension length"))
    );
    // A body shorter than its fixed fields.
    assert_eq!(
        parse(&records(&message(&[3, 3, 0]), &[usize::MAX])),
        Err(HelloError::Malformed("random"))
    );
}

#[test]
fn http_and_sslv2_are_not_tls() {
    let http = b"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n";
    assert_eq!(parse(http), Err(HelloError::NotTls));
    assert_eq!(parse(&http[..1]), Err(HelloError::NotTls));
    assert_eq!(
        parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Err(HelloError::NotTls)
    );
    // SSLv2-compatible ClientHello: 2-byte header with the top bit set, msg type 1, version 3.1.
    let sslv2 = [
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    assert_eq!(parse(&sslv2), Err(HelloError::NotTls));
    // Handshake content type, but not a 0x03xx record version.
    assert_eq!(parse(&[0x16, 0x02]), Err(HelloError::NotTls));
    assert_eq!(
        parse(&[0x16, 0x03]),
        Err(HelloError::Incomplete { needed: 48 })
    );
    // An alert or application data first.
    assert_eq!(
        parse(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
        Err(HelloError::NotTls)
    );
    assert_eq!(parse(&[0x17]), Err(HelloError::NotTls));
}

#[test]
fn record_layer_errors() {
    let m = Hello::new().sni("a.example").message();
    let split = records(&m, &[10, usize::MAX]);
    // A change_cipher_spec record between two fragments of the hello.
    let mut bad = split[..15].to_vec();
    bad.extend([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    bad.extend(&split[15..]);
    assert_eq!(parse(&bad), Err(HelloError::Malformed("record type")));
    assert_eq!(parse(&bad[..16]), Err(HelloError::Malformed("record type")));
    let mut bad = split.clone();
    bad[16] = 0x02;
    assert_eq!(parse(&bad), Err(HelloError::Malformed("record version")));
    // Zero-length and over-2^14 records.
    assert_eq!(
        parse(&[0x16, 0x03, 0x01, 0x00, 0x00]),
        Err(HelloError::Malformed("record length"))
    );
    let mut zero_then = split[..15].to_vec();
    zero_then.extend([0x16, 0x03, 0x01, 0x00, 0x00]);
    assert_eq!(
        parse(&zero_then),
        Err(HelloError::Malformed("record length"))
    );
    assert_eq!(
        parse(&[0x16, 0x03, 0x01, 0x40, 0x01]),
        Err(HelloError::Malformed("record length"))
    );
    // Not a ClientHello (a ServerHello), judged on its first byte.
    assert_eq!(
        parse(&[0x16, 0x03, 0x03, 0x00, 0x50, 0x02]),
        Err(HelloError::Malformed("handshake type"))
    );
}

#[test]
fn oversized_hello_is_too_large_from_its_header() {
    let mut header = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01];
    header.extend(&((MAX_HELLO + 1) as u32).to_be_bytes()[1..]);
    assert_eq!(parse(&header), Err(HelloError::TooLarge));
    assert_eq!(
        parse(&[0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff]),
        Err(HelloError::TooLarge)
    );
    // Header split over 1-byte records.
    assert_eq!(
        parse(&records(&[1, 0x01, 0x00, 0x01], &[1])),
        Err(HelloError::TooLarge)
    );

    // Exactly MAX_HELLO is accepted (five records), one byte more is not.
    let base = Hello::new()
        .sni("big.example")
        .ext(0x1234, vec![])
        .body()
        .len();
    let pad = MAX_HELLO - base;
    let big = Hello::new().sni("big.example").ext(0x1234, vec![7; pad]);
    assert_eq!(big.body().len(), MAX_HELLO);
    let bytes = big.bytes();
    assert_eq!(bytes.len(), MAX_HELLO + 4 + 5 * 5);
    assert_eq!(parse(&bytes).unwrap().sni.as_deref(), Some("big.example"));
    let bigger = Hello::new()
        .sni("big.example")
        .ext(0x1234, vec![7; pad + 1]);
    assert_eq!(parse(&bigger.bytes()), Err(HelloError::TooLarge));
    assert_eq!(parse(&bigger.bytes()[..9]), Err(HelloError::TooLarge));
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn junk_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let len = rng.below(260);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Every other one starts like a TLS 1.0 ClientHello, so that the parser gets past the
        // record and handshake headers.
        if round % 2 == 0 && junk.len() >= 10 {
            let body = (len - 9) as u8;
            junk[..9].copy_from_slice(&[0x16, 0x03, 0x01, 0x00, (len - 5) as u8, 0x01, 0, 0, body]);
            junk[9] = 0x03;
        }
        let _ = check_prefixes(&junk);
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(42);
    for (_, bytes) in FIXTURES {
        for _ in 0..150 {
            let mut m = bytes.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                match rng.below(3) {
                    0 => m[at] ^= 1 << rng.below(8),
                    1 => m[at] = rng.next() as u8,
                    _ => m[at] = [0x00, 0xff, 0x01, 0x7f][rng.below(4)],
                }
            }
            let _ = check_prefixes(&m);
        }
    }
}

#[test]
fn errors_display_their_field() {
    assert_eq!(
        HelloError::Malformed("server_name").to_string(),
        "malformed ClientHello: server_name"
    );
    assert_eq!(
        HelloError::Incomplete { needed: 3 }.to_string(),
        "incomplete ClientHello: at least 3 more bytes needed"
    );
    assert_eq!(HelloError::NotTls.to_string(), "not a TLS handshake");
    assert_eq!(
        HelloError::TooLarge.to_string(),
        "ClientHello larger than 65536 bytes"
    );
    assert_eq!(HelloError::TooLarge.metric_label(), "too_large");
}

/// The fuzz target's seed corpus (`fuzz/corpus/client_hello`), checked the way the fuzz target
/// checks every input, so `cargo test` exercises it without nightly or cargo-fuzz.
#[test]
fn fuzz_seed_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/client_hello");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "seed corpus missing in {}", dir.display());
    let mut ok = 0;
    for path in &files {
        let input = std::fs::read(path).unwrap();
        if check_prefixes(&input).is_ok() {
            ok += 1;
        }
    }
    assert!(ok >= 10, "only {ok} seeds parse");
}
