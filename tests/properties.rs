//! Properties: no input makes parsing or evaluation panic. Arbitrary bytes,
//! mail-shaped garbage (encoded words, MIME boundaries, CR/LF, 8-bit), and
//! mangled configuration files.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use chrono::DateTime;
use mailwarden::config::{Config, parse_str};
use mailwarden::message::{Arrival, Message, Meta};
use mailwarden::rules::evaluate;
use proptest::prelude::*;

/// Configurations that together use every condition and action.
static CONFIGS: LazyLock<Vec<Config>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["rules.example.yaml", "tests/fixtures/golden/rules.yaml"]
        .iter()
        .map(|f| parse_str(&std::fs::read_to_string(root.join(f)).unwrap(), root).unwrap())
        .collect()
});

fn meta() -> Meta {
    Meta {
        arrival: Arrival::DateHeaderOr(DateTime::UNIX_EPOCH),
        flags: BTreeSet::new(),
        size: None,
    }
}

/// Parses `raw` every way (as a file, as a server's header fields, and as
/// a server's fields plus text, split a tenth in) and runs every rule of
/// every config over it.
fn evaluate_everything(configs: &[Config], raw: &[u8]) {
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let split = raw.len() / 10;
    let (fields, text) = raw.split_at(split);
    for msg in [
        Message::parse(raw, meta()),
        Message::from_server(raw, None, meta()),
        Message::from_server(fields, Some(text), meta()),
    ]
    .into_iter()
    .flatten()
    {
        for cfg in configs {
            let account = &cfg.accounts[0].name;
            for explain in [false, true] {
                let _ = evaluate(cfg.rules_for(account, "INBOX"), &msg, now, explain);
            }
        }
    }
}

fn header_line() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "From",
        "To",
        "Cc",
        "Bcc",
        "Sender",
        "Reply-To",
        "Subject",
        "Date",
        "List-Id",
        "Message-ID",
        "Content-Type",
        "Content-Disposition",
        "Content-Transfer-Encoding",
        "X-Spam-Flag",
        "X-GitHub-Reason",
        "List-Unsubscribe",
        "MIME-Version",
    ]);
    let pieces = prop::collection::vec(
        prop_oneof![
            "[ -~]{0,20}".prop_map(String::into_bytes),
            Just(b"=?UTF-8?Q?=C3=BC?=".to_vec()),
            Just(b"=?ISO-8859-1?B?/A==?=".to_vec()),
            Just(b"=?bogus?X?zz?=".to_vec()),
            Just(b"multipart/mixed; boundary=\"b\"".to_vec()),
            Just(b"<a@b>, \"x, y\" <c@d>, group: e@f;".to_vec()),
            Just(b"\r\n ".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            prop::collection::vec(128u8..=255, 1..4),
        ],
        0..6,
    );
    (names, pieces).prop_map(|(n, p)| {
        let mut line = format!("{n}: ").into_bytes();
        p.into_iter().for_each(|x| line.extend(x));
        line.extend(b"\r\n");
        line
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            "[ -~\n]{0,40}".prop_map(String::into_bytes),
            Just(b"\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>".to_vec()),
            Just(b"\r\n--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%".to_vec()),
            Just(b"\r\n--b--\r\n".to_vec()),
            Just(b"=\r\n=ZZ".to_vec()),
            prop::collection::vec(any::<u8>(), 0..16),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        evaluate_everything(&CONFIGS, &raw);
    }

    #[test]
    fn mail_shaped_garbage_never_panics(
        headers in prop::collection::vec(header_line(), 0..12),
        body in body(),
    ) {
        let mut raw = headers.concat();
        raw.extend(b"\r\n");
        raw.extend(body);
        evaluate_everything(&CONFIGS, &raw);
    }

    #[test]
    fn mangled_configurations_never_panic(
        cuts in prop::collection::vec((any::<prop::sample::Index>(), 0usize..8, "[ -~\n\t]{0,6}"), 1..4),
    ) {
        let mut text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.yaml"),
        )
        .unwrap();
        for (at, len, insert) in cuts {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + len).min(text.len());
            while !text.is_char_boundary(j) {
                j -= 1;
            }
            text.replace_range(i..j, &insert);
        }
        if let Err(diags) = parse_str(&text, Path::new(".")) {
            prop_assert!(!diags.is_empty());
            for d in diags {
                prop_assert!(d.pos.line >= 1 && d.pos.col >= 1, "{d}");
            }
        }
    }

    #[test]
    fn arbitrary_text_as_configuration_never_panics(text in "[ -~\n]{0,300}") {
        let _ = parse_str(&text, Path::new("."));
    }
}
