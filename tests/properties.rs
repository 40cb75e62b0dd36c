//! Properties: no input makes parsing or evaluation panic. Arbitrary bytes,
//! mail-shaped garbage (encoded words, MIME boundaries, CR/LF, 8-bit), and
//! mangled configuration files; and whatever a configuration file holds
//! (aliases of aliases, deep nesting), reading it takes little time.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::DateTime;
use mailwarden::config::yaml::{MAX_ALIAS_NODES, MAX_ALIAS_TEXT};
use mailwarden::config::{Config, Diagnostic, load, parse_str};
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

/// Much more than any input here needs (milliseconds each), much less than
/// one whose aliases or nesting were not bounded.
const QUICK: Duration = Duration::from_secs(2);

/// Parses and validates `text`, checking that it was quick and that every
/// problem has a position.
fn check_quickly(text: &str) -> Result<Config, Vec<Diagnostic>> {
    let start = Instant::now();
    let result = parse_str(text, Path::new("."));
    let took = start.elapsed();
    assert!(took < QUICK, "took {took:?}:\n{text}");
    if let Err(diags) = &result {
        assert!(!diags.is_empty());
        for d in diags {
            assert!(d.pos.line >= 1 && d.pos.col >= 1, "{d}");
        }
    }
    result
}

const HEADER: &str =
    "version: 1\naccounts:\n  p:\n    host: h\n    username: u\n    password_env: P\n";

/// Text made of YAML's syntax and the configuration's words: indentation,
/// flow brackets, block indicators, anchors, aliases, tags, scalars of each
/// style, documents, directives, comments and byte order marks.
fn yaml_ish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\n  ",
            "\n    ",
            "  ",
            "- ",
            ": ",
            ":",
            "? ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            ",",
            "---\n",
            "...\n",
            "%YAML 1.2\n",
            "# note\n",
            "|\n",
            ">-\n",
            "\t",
            "\u{feff}",
            "'",
            "\"",
            "\\",
            "&a ",
            "&b ",
            "*a",
            "*b",
            "!!str ",
            "!x ",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "version",
            "accounts",
            "rules",
            "host",
            "port",
            "tls",
            "username",
            "password_env",
            "oauth2",
            "token_command",
            "watch",
            "idle",
            "poll_interval",
            "name",
            "account",
            "mailbox",
            "match",
            "actions",
            "stop",
            "subject",
            "from",
            "regex",
            "glob",
            "domain",
            "all",
            "any",
            "not",
            "size",
            "over",
            "move",
            "copy",
            "flag",
            "delete",
            "expunge",
            "archive",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "1",
            "0",
            "-5",
            "99999",
            "true",
            "no",
            "~",
            "maybe",
            "starttls",
            "none",
            "90d",
            "-5m",
            "5MB",
            "INBOX",
            "A//B",
            "{x}",
            "'q'",
            "\"d\\u00e9\"",
            "'(unclosed'",
            "\"\\x\"",
            "seen",
        ])
        .prop_map(String::from),
        "[ -~]{0,8}",
    ];
    (any::<bool>(), prop::collection::vec(token, 0..200)).prop_map(|(header, tokens)| {
        let body = tokens.concat();
        if header {
            format!("{HEADER}{body}")
        } else {
            body
        }
    })
}

/// `levels` anchors, each a list of `fanout` aliases of the one before (the
/// first, of `fanout` words of `word` letters), put
/// where validation reads them (a subject, an account's watch list), where
/// it does not (an unknown key), or as a key.
fn laughs(levels: usize, fanout: usize, word: usize, place: usize) -> String {
    let leaf = "l".repeat(word);
    let mut items = vec![format!("&l0 [{}]", vec![leaf; fanout].join(", "))];
    for i in 1..levels {
        let alias = format!("*l{}", i - 1);
        items.push(format!("&l{i} [{}]", vec![alias; fanout].join(", ")));
    }
    let list = format!("[{}]", items.join(", "));
    let last = format!("*l{}", levels - 1);
    match place {
        0 => format!(
            "{HEADER}rules:\n  - name: r\n    match: {{subject: {list}}}\n    actions: [stop]\n"
        ),
        1 => format!("{HEADER}    watch: {list}\nrules: []\n"),
        2 => format!(
            "{HEADER}x: {list}\nrules:\n  - name: r\n    match: {{subject: {last}}}\n    actions: [stop]\n"
        ),
        // `*a: 1` would be an alias named "a:".
        _ => format!("{HEADER}x: {list}\n{last} : 1\nrules: []\n"),
    }
}

/// `depth` levels of lists and mappings in the shape `shape` picks; a few
/// levels carry an anchor that a later level repeats.
fn nested(depth: usize, shape: u8, picks: &[u8]) -> String {
    let level = |i: usize| picks.get(i).copied().unwrap_or(0);
    match shape % 4 {
        // Block sequences, which the YAML scanner does not limit.
        0 => format!("{}x\n", "- ".repeat(depth)),
        // Flow, each level a list or a mapping.
        1 => {
            let (mut open, mut close) = (String::new(), String::new());
            for i in 0..depth {
                let (o, c) = if level(i) % 2 == 0 {
                    ("[", "]")
                } else {
                    ("{k: ", "}")
                };
                open.push_str(o);
                close.insert_str(0, c);
            }
            format!("{open}x{close}\n")
        }
        // Block mappings, one indentation step a level.
        2 => (0..depth.min(500))
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect(),
        // An anchored nest repeated inside another.
        _ => {
            let half = depth / 2;
            format!(
                "a: &a {}x{}\nb: {}*a{}\n",
                "[".repeat(half),
                "]".repeat(half),
                "[".repeat(half),
                "]".repeat(half)
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_a_configuration_file_are_read_quickly(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        bom in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let bytes = if bom { [b"\xEF\xBB\xBF".as_slice(), &bytes].concat() } else { bytes };
        std::fs::write(&path, &bytes).unwrap();
        let start = Instant::now();
        let _ = load(&path);
        prop_assert!(start.elapsed() < QUICK, "{:?}", start.elapsed());
        let _ = check_quickly(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yaml_ish_text_is_read_quickly(text in yaml_ish()) {
        let _ = check_quickly(&text);
    }

    #[test]
    fn aliases_of_aliases_are_refused_exactly_past_the_limits(
        levels in 1usize..=8,
        fanout in 1usize..=6,
        // One letter: the count of values binds first; long: the text.
        word in prop_oneof![Just(1usize), 1usize..=300],
        place in 0usize..4,
    ) {
        // What the aliases stand for: level 0 is a list of `fanout` words,
        // level i a list of `fanout` aliases of level i-1.
        let (mut nodes, mut text) = (1 + fanout, word * fanout);
        let (mut expanded_nodes, mut expanded_text) = (0, 0);
        for _ in 1..levels {
            expanded_nodes += fanout * nodes;
            expanded_text += fanout * text;
            nodes = 1 + fanout * nodes;
            text *= fanout;
        }
        if place >= 2 {
            expanded_nodes += nodes;
            expanded_text += text;
        }
        let over = expanded_nodes > MAX_ALIAS_NODES || expanded_text > MAX_ALIAS_TEXT;
        let got = check_quickly(&laughs(levels, fanout, word, place))
            .map(|_| ())
            .map_err(|d| d.iter().map(|d| d.to_string()).collect::<Vec<_>>());
        if over {
            let errors = got.unwrap_err();
            prop_assert_eq!(errors.len(), 1, "{:?}", errors);
            prop_assert!(errors[0].contains(": aliases expand to more than "), "{}", errors[0]);
        } else {
            // Under the limits, the file is read whole.
            match place {
                0 => prop_assert_eq!(got, Ok(())),
                2 => prop_assert_eq!(
                    got,
                    Err(vec!["7:1: unknown key \"x\" (expected one of: version, accounts, rules)".to_string()])
                ),
                _ => prop_assert!(got.is_err()),
            }
        }
    }

    #[test]
    fn deep_nesting_of_any_shape_is_refused_quickly(
        depth in 0usize..5000,
        shape in any::<u8>(),
        picks in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let text = nested(depth, shape, &picks);
        if let Err(diags) = check_quickly(&text)
            && depth > 2 * 64
        {
            prop_assert!(
                diags.iter().any(|d| d.message.contains("nest more than 64 levels deep")),
                "{:?}",
                diags
            );
        }
    }
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
