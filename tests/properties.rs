//! Properties: no input makes parsing or evaluation panic. Arbitrary bytes,
//! mail-shaped garbage (encoded words, MIME boundaries, CR/LF, 8-bit), and
//! mangled configuration files; and whatever a configuration file holds
//! (aliases of aliases, deep nesting), reading it takes little time. On the
//! IMAP side, whatever a server sends: the framer (`imap::wire`) cut at any
//! point, the response parser (`imap::response`) on arbitrary and on
//! mutated real responses, and a whole session over an in-memory stream,
//! which must also end (by its timeout at the latest) whatever it is fed.
//!
//! Each property runs 400 cases (the IMAP ones 256) in a plain
//! `cargo test`. To fuzz for longer, raise the count; proptest reads it
//! from the environment, and a release build runs far more per second:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --test properties
//! ```

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

/// `default` cases, or PROPTEST_CASES where set (a `proptest_config`
/// given in the code would otherwise override it).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

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
    #![proptest_config(ProptestConfig::with_cases(cases(400)))]

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

// --- What a server sends ----------------------------------------------------

use mailwarden::imap::command::{FetchItems, SearchKey, StoreMode};
use mailwarden::imap::response::parse;
use mailwarden::imap::types::{Mailbox, Uid, UidSet};
use mailwarden::imap::wire::{Framer, Limits};
use mailwarden::imap::{Access, Session};

/// Responses as real servers write them (Dovecot, Cyrus, Courier, Gmail),
/// one of each kind the session reads.
const REAL: &[&[u8]] = &[
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n",
    b"* CAPABILITY IMAP4rev1 LITERAL+ MOVE UIDPLUS CONDSTORE NAMESPACE SPECIAL-USE LIST-EXTENDED\r\n",
    b"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))\r\n",
    b"* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted &AOQ-\"\r\n",
    b"* LIST (\\Noselect) \".\" \"\"\r\n",
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
    b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n",
    b"* 172 EXISTS\r\n",
    b"* 1 RECENT\r\n",
    b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
    b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
    b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
    b"m3 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
    b"* SEARCH 2 84 882\r\n",
    b"* 12 FETCH (UID 4827 FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 BODY[HEADER.FIELDS (FROM SUBJECT)] {44}\r\nFrom: a@example.org\r\nSubject: hello there\r\n\r\n)\r\n",
    b"* 3 FETCH (UID 17 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 100 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\n",
    b"* 4 FETCH (UID 18 MODSEQ (12345) FLAGS (\\Flagged))\r\n",
    b"* OK [COPYUID 38505 304,319:320 3956:3958] Moved\r\n",
    b"* 9 EXPUNGE\r\n",
    b"m7 NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n",
    b"m8 NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n",
    b"m9 BAD Error in IMAP command UID FETCH: Invalid uidset\r\n",
    b"m2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
    b"+ idling\r\n",
    b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
    b"* BYE Server shutting down.\r\n",
    b"* PREAUTH IMAP4rev1 server logged in\r\n",
];

/// A real response, changed in a few places: bytes replaced, inserted or
/// removed, or cut short.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(REAL),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 0..6),
    )
        .prop_map(|(real, edits)| {
            let mut b = real.to_vec();
            for (at, kind, byte) in edits {
                let i = at.index(b.len() + 1);
                match kind {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i, byte),
                    2 if i < b.len() => {
                        b.remove(i);
                    }
                    _ => b.truncate(i),
                }
            }
            b
        })
}

/// What a server might send: real responses, mutated ones, tagged
/// answers to the session's first commands, literals announced at any
/// size, and plain garbage, in any order.
fn server_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(REAL).prop_map(<[u8]>::to_vec),
        mutated(),
        (1u32..8, prop::sample::select(vec!["OK", "NO", "BAD"]))
            .prop_map(|(n, s)| format!("m{n} {s} done\r\n").into_bytes()),
        any::<u32>().prop_map(|n| format!("* 1 FETCH (UID 1 BODY[] {{{n}}}\r\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// Drives a session through the commands `run` and `watch` send, over an
/// in-memory stream whose other end writes `bytes` in `chunk`-sized
/// pieces and then closes or stays silent. The clock is paused, so every
/// wait on the silent server ends at once by the session's timeout.
/// Returns when every command has ended, one way or the other.
fn drive_session(bytes: Vec<u8>, chunk: usize, close: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(16 << 10);
        let (mut r, mut w) = tokio::io::split(server);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            for piece in bytes.chunks(chunk.max(1)) {
                if w.write_all(piece).await.is_err() {
                    return;
                }
            }
            if close {
                drop(w);
            } else {
                std::future::pending::<()>().await;
            }
        });
        let mut s = Session::new(Box::new(client), std::time::Duration::from_secs(2));
        let uid = |n| Uid::new(n).unwrap();
        let set = UidSet::new([uid(1), uid(2), uid(17)]);
        let inbox = Mailbox::inbox();
        let items = FetchItems {
            header_fields: vec!["FROM".into(), "SUBJECT".into()],
            structure: true,
            text: Some(1000),
            modseq: false,
        };
        let (_stop, mut stop) = tokio::sync::watch::channel(false);
        // Every command in turn until one ends the session; each must
        // return (an error is fine), not panic and not hang.
        macro_rules! step {
            ($e:expr) => {
                if let Err(e) = $e {
                    if e.ends_session() {
                        return;
                    }
                }
            };
        }
        step!(s.refresh_capabilities().await);
        step!(
            s.authenticate("PLAIN", &mailwarden::secret::Secret::new("\0me\0pw"))
                .await
        );
        step!(s.namespace().await);
        step!(s.list_all().await);
        step!(s.separator().await);
        step!(s.open(&inbox, Access::ReadWrite).await);
        step!(s.search(&SearchKey::All).await);
        step!(s.search_among(&set, &SearchKey::Undeleted).await);
        step!(s.fetch(&set, &items, |_| {}).await);
        step!(s.changed_since(1).await);
        step!(
            s.store(&set, StoreMode::Add, &[mailwarden::rules::Flag::Deleted])
                .await
        );
        step!(s.transfer(&set, &Mailbox::verbatim("Archive"), true).await);
        step!(s.transfer(&set, &Mailbox::verbatim("Archive"), false).await);
        step!(s.expunge(&set).await);
        step!(s.create(&Mailbox::verbatim("Archive")).await);
        step!(
            s.append(&inbox, &[], None, b"Subject: x\r\n\r\nhi\r\n")
                .await
        );
        step!(s.noop().await);
        step!(s.idle(std::time::Duration::from_secs(300), &mut stop).await);
        s.logout().await;
    });
}

/// Runs [`drive_session`] on its own thread and fails if it has not ended
/// within 30 s of real time (the paused clock cannot tell a hang).
fn session_ends(bytes: Vec<u8>, chunk: usize, close: bool) -> Result<(), TestCaseError> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let input = bytes.clone();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| drive_session(input, chunk, close));
        let _ = done_tx.send(outcome.is_ok());
    });
    match done_rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TestCaseError::fail(format!(
            "the session panicked on {:?}",
            String::from_utf8_lossy(&bytes)
        ))),
        Err(_) => Err(TestCaseError::fail(format!(
            "the session never ended on {:?}",
            String::from_utf8_lossy(&bytes)
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn the_framer_cuts_any_bytes_into_whole_lines_without_panicking(
        bytes in prop_oneof![server_bytes(), prop::collection::vec(any::<u8>(), 0..4096)],
        cuts in prop::collection::vec(1usize..512, 1..16),
        small in any::<bool>(),
    ) {
        // Small limits too, so that every limit is reached now and then.
        let limits = if small {
            Limits { line: 64, literal: 100, frame: 300 }
        } else {
            Limits::DEFAULT
        };
        let mut framer = Framer::new(limits);
        let mut framed = Vec::new();
        let mut rest = bytes.as_slice();
        'feed: for cut in cuts.iter().cycle().take(bytes.len() + 1) {
            let (piece, after) = rest.split_at((*cut).min(rest.len()));
            rest = after;
            framer.feed(piece);
            loop {
                match framer.next_frame() {
                    Ok(Some(frame)) => {
                        prop_assert_eq!(frame.last(), Some(&b'\n'), "{:?}", String::from_utf8_lossy(&frame));
                        framed.extend_from_slice(&frame);
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            if rest.is_empty() {
                break;
            }
        }
        // Frames are the input, in order, nothing left out or added.
        prop_assert!(bytes.starts_with(&framed));
    }

    #[test]
    fn the_parser_reads_any_bytes_without_panicking(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            mutated(),
            server_bytes(),
        ],
    ) {
        let _ = parse(&bytes);
    }

    #[test]
    fn a_session_fed_anything_ends_without_panicking(
        bytes in server_bytes(),
        chunk in 1usize..4096,
        close in any::<bool>(),
    ) {
        session_ends(bytes, chunk, close)?;
    }
}
