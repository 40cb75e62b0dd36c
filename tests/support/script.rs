//! A scripted IMAP server for what no real server can be made to do: a
//! greeting that never comes, a LOGIN never answered, an endless stream of
//! responses nobody asked for, a line that never ends, a literal announced
//! at 5 GB, a BYE or a close in the middle of a command. It listens on
//! 127.0.0.1:0 and answers every command from a small fake account (INBOX
//! and Archive, a few messages) unless the script says otherwise for that
//! command's verb, or for its nth use.
//!
//! Everything it does is bounded: a stream is generated lazily, a chunk at
//! a time, and ends when the client goes away or after [`FLOOD_LIMIT`]; a
//! connection ends after [`MAX_COMMANDS`] commands or [`READ_LIMIT`] of
//! silence from the client; at most [`MAX_CONNECTIONS`] are accepted. The
//! server's tasks end when its [`Server`] is dropped, and with the test's
//! runtime in any case.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;

/// How long one endless stream goes on if the client keeps reading it.
pub const FLOOD_LIMIT: Duration = Duration::from_secs(60);
/// How long a connection waits for the client's next command.
pub const READ_LIMIT: Duration = Duration::from_secs(120);
pub const MAX_COMMANDS: usize = 10_000;
pub const MAX_CONNECTIONS: usize = 50;
/// The longest command line read; a longer one ends the connection.
const MAX_LINE: usize = 1 << 20;

/// What the server does in answer to a command, or on connecting (the
/// greeting).
#[derive(Debug, Clone)]
pub enum Answer {
    /// What a plain server would say, from the fake account.
    Normal,
    /// Nothing, ever: the connection stays open, and later commands on it
    /// are read (and logged) but go unanswered too.
    Silence,
    /// These bytes, with `{tag}` replaced by the command's tag.
    Text(String),
    /// The untagged part of the normal answer, then the stream; the tagged
    /// end never comes.
    NormalThen(Flood),
    /// Only the stream.
    Flood(Flood),
    /// `* BYE` with this text, then the connection is closed.
    Bye(String),
    /// The connection is closed at once.
    Close,
}

impl Answer {
    /// A tagged answer: `Answer::tagged("NO [SERVERBUG] broken")`.
    pub fn tagged(status_and_text: &str) -> Answer {
        Answer::Text(format!("{{tag}} {status_and_text}\r\n"))
    }
}

/// An endless stream, generated as it is sent: never held whole.
#[derive(Debug, Clone)]
pub enum Flood {
    /// This line over and over; `{n}` counts 1, 2, 3..., `{u}` is
    /// `n + 1_000_000` (a UID the fake account does not have).
    Lines(String),
    /// `* OK ` and then `x` without end: a line that never ends.
    Unending,
    /// `* 1 FETCH (UID 1 BODY[] {size}`, then `size` bytes of it.
    Literal(u64),
}

/// A message of the fake account.
#[derive(Debug, Clone)]
pub struct Message {
    pub uid: u32,
    pub flags: Vec<String>,
    pub raw: String,
}

/// A message from `from`, with a Message-ID made of `id`.
pub fn message(uid: u32, id: &str, from: &str) -> Message {
    Message {
        uid,
        flags: Vec::new(),
        raw: format!(
            "Message-ID: <{id}>\r\nFrom: {from}\r\nSubject: message {id}\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
        ),
    }
}

#[derive(Debug, Clone)]
struct Rule {
    verb: String,
    /// Only the nth command with this verb (from 1, over all connections).
    nth: Option<usize>,
    answer: Answer,
}

/// Decides an AUTHENTICATE from its mechanism and the client's decoded
/// response: `Ok(alive)` lets the client in, and ends the session with a
/// BYE at the first command once `alive` says no (as servers do whose
/// OAuth2 token has expired); `Err(text)` refuses it with
/// `NO [AUTHENTICATIONFAILED]`.
pub type AuthCheck = dyn Fn(&str, &str) -> Result<Option<Alive>, String> + Send + Sync;

/// Whether a session's login still holds.
pub type Alive = Box<dyn Fn() -> bool + Send + Sync>;

/// What the server will do; built, then [`Script::start`]ed.
#[derive(Clone)]
pub struct Script {
    greeting: Answer,
    greeting_caps: bool,
    caps: String,
    rules: Vec<Rule>,
    folders: Vec<(String, Vec<Message>)>,
    auth: Option<Arc<AuthCheck>>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("greeting", &self.greeting)
            .field("caps", &self.caps)
            .field("rules", &self.rules)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

/// Capabilities of the fake server: LOGIN (no AUTH=PLAIN), MOVE and
/// UIDPLUS, so a move is one UID MOVE with COPYUID (RFC 6851, RFC 4315).
pub const CAPS: &str = "IMAP4rev1 LITERAL+ NAMESPACE MOVE UIDPLUS IDLE";

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// A greeting with capabilities, INBOX with three messages from
    /// `news@example.org` (UIDs 1 to 3) and an empty Archive; every command
    /// answered normally.
    pub fn new() -> Script {
        Script {
            greeting: Answer::Normal,
            greeting_caps: true,
            caps: CAPS.into(),
            rules: Vec::new(),
            auth: None,
            folders: vec![
                (
                    "INBOX".into(),
                    (1..=3)
                        .map(|u| message(u, &format!("m{u}@x"), "news@example.org"))
                        .collect(),
                ),
                ("Archive".into(), Vec::new()),
            ],
        }
    }

    pub fn caps(mut self, caps: &str) -> Script {
        self.caps = caps.into();
        self
    }

    /// What happens on connecting; `Answer::Normal` greets with `* OK`.
    pub fn greeting(mut self, answer: Answer) -> Script {
        self.greeting = answer;
        self
    }

    /// A greeting without capabilities: the client has to ask with
    /// CAPABILITY before it logs in.
    pub fn plain_greeting(mut self) -> Script {
        self.greeting_caps = false;
        self
    }

    /// Every command with this verb (`LOGIN`, `UID FETCH`) is answered so.
    pub fn on(mut self, verb: &str, answer: Answer) -> Script {
        self.rules.push(Rule {
            verb: verb.to_ascii_uppercase(),
            nth: None,
            answer,
        });
        self
    }

    /// Only the nth command with this verb is answered so (counting from 1
    /// over every connection); a rule for one use comes before one for all.
    pub fn on_nth(mut self, verb: &str, nth: usize, answer: Answer) -> Script {
        self.rules.insert(
            0,
            Rule {
                verb: verb.to_ascii_uppercase(),
                nth: Some(nth),
                answer,
            },
        );
        self
    }

    /// AUTHENTICATE responses are judged by `check` (by default every one
    /// is let in).
    pub fn check_auth(
        mut self,
        check: impl Fn(&str, &str) -> Result<Option<Alive>, String> + Send + Sync + 'static,
    ) -> Script {
        self.auth = Some(Arc::new(check));
        self
    }

    /// A folder and its messages, replacing one of the same name.
    pub fn folder(mut self, name: &str, messages: Vec<Message>) -> Script {
        self.folders.retain(|(n, _)| n != name);
        self.folders.push((name.into(), messages));
        self
    }

    fn answer(&self, verb: &str, nth: usize) -> Answer {
        self.rules
            .iter()
            .find(|r| r.verb == verb && r.nth.is_none_or(|n| n == nth))
            .map_or(Answer::Normal, |r| r.answer.clone())
    }

    /// Listens on 127.0.0.1:0 and serves until the [`Server`] is dropped.
    pub async fn start(self) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            folders: self.folders.clone(),
            ..Shared::default()
        }));
        let script = Arc::new(self);
        let log = shared.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) ends every
            // connection too.
            let mut connections = tokio::task::JoinSet::new();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let _ = sock.set_nodelay(true);
                shared.lock().unwrap().connections.push(Instant::now());
                connections.spawn(serve(sock, script.clone(), shared.clone()));
            }
            while connections.join_next().await.is_some() {}
        });
        Server { port, log, task }
    }
}

/// What every connection of one server shares: the fake account, how often
/// each verb was used, and what was received.
#[derive(Debug, Default)]
struct Shared {
    folders: Vec<(String, Vec<Message>)>,
    uses: HashMap<String, usize>,
    commands: Vec<String>,
    connections: Vec<Instant>,
    /// Each AUTHENTICATE: when, the mechanism, the decoded response, and
    /// whether it was let in.
    logins: Vec<Login>,
    /// Sessions ended because their login had expired.
    expired: usize,
}

/// One AUTHENTICATE as the server saw it.
#[derive(Debug, Clone)]
pub struct Login {
    pub at: Instant,
    pub mechanism: String,
    pub response: String,
    pub accepted: bool,
}

/// A running scripted server.
pub struct Server {
    pub port: u16,
    log: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Every command line received, without its tag, in order.
    pub fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().commands.clone()
    }

    /// How many commands with this verb were received.
    pub fn count(&self, verb: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .uses
            .get(&verb.to_ascii_uppercase())
            .copied()
            .unwrap_or(0)
    }

    /// Every AUTHENTICATE, in order.
    pub fn logins(&self) -> Vec<Login> {
        self.log.lock().unwrap().logins.clone()
    }

    /// How many sessions were ended because their login had expired.
    pub fn expired(&self) -> usize {
        self.log.lock().unwrap().expired
    }

    /// When each connection was accepted.
    pub fn connections(&self) -> Vec<Instant> {
        self.log.lock().unwrap().connections.clone()
    }

    /// The messages of a folder of the fake account, as UID and Message-ID.
    pub fn folder(&self, name: &str) -> Vec<(u32, String)> {
        let log = self.log.lock().unwrap();
        log.folders
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, msgs)| {
                msgs.iter()
                    .map(|m| {
                        let id = m
                            .raw
                            .lines()
                            .find_map(|l| l.strip_prefix("Message-ID: "))
                            .unwrap_or("")
                            .to_string();
                        (m.uid, id)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The verb of a command line after its tag: `UID FETCH`, `LOGIN`.
fn verb(rest: &str) -> String {
    let mut words = rest.split(' ');
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    if first == "UID" {
        format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase())
    } else {
        first
    }
}

/// What one connection is in the middle of.
#[derive(Default)]
struct Conn {
    selected: Option<String>,
    /// After a silent answer nothing more is said.
    silent: bool,
    /// The tag of an AUTHENTICATE waiting for the client's response, or of
    /// an IDLE waiting for DONE.
    pending: Option<(String, &'static str)>,
    /// The mechanism of that AUTHENTICATE.
    mechanism: String,
    /// Whether the login of this session still holds.
    alive: Option<Alive>,
}

async fn serve(sock: tokio::net::TcpStream, script: Arc<Script>, shared: Arc<Mutex<Shared>>) {
    let (mut r, mut w) = sock.into_split();
    let mut conn = Conn::default();
    let greeting = match &script.greeting {
        Answer::Normal if script.greeting_caps => {
            format!(
                "* OK [CAPABILITY {}] scripted server ready\r\n",
                script.caps
            )
        }
        Answer::Normal => "* OK scripted server ready\r\n".to_string(),
        other => match act(other, "*", String::new(), &mut w, &mut conn).await {
            Some(text) => text,
            None => return,
        },
    };
    if !conn.silent && w.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    for _ in 0..MAX_COMMANDS {
        let line = loop {
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                break String::from_utf8_lossy(&line).trim_end().to_string();
            }
            if buf.len() > MAX_LINE {
                return;
            }
            match tokio::time::timeout(READ_LIMIT, r.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if conn.alive.as_ref().is_some_and(|alive| !alive()) {
            shared.lock().unwrap().expired += 1;
            let _ = w
                .write_all(b"* BYE [UNAVAILABLE] the session's access token has expired\r\n")
                .await;
            return;
        }
        if let Some((pending, what)) = conn.pending.take() {
            // The client's SASL response, or the DONE that ends IDLE.
            shared.lock().unwrap().commands.push(line.clone());
            if conn.silent {
                continue;
            }
            let mut text = format!("{pending} OK {what} done\r\n");
            if what == "AUTHENTICATE"
                && let Some(check) = &script.auth
            {
                use base64::Engine as _;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let verdict = check(&conn.mechanism, &decoded);
                shared.lock().unwrap().logins.push(Login {
                    at: Instant::now(),
                    mechanism: conn.mechanism.clone(),
                    response: decoded,
                    accepted: verdict.is_ok(),
                });
                match verdict {
                    Ok(alive) => conn.alive = alive,
                    Err(why) => text = format!("{pending} NO [AUTHENTICATIONFAILED] {why}\r\n"),
                }
            }
            if w.write_all(text.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let verb = verb(rest);
        let nth = {
            let mut s = shared.lock().unwrap();
            s.commands.push(rest.to_string());
            let n = s.uses.entry(verb.clone()).or_default();
            *n += 1;
            *n
        };
        if conn.silent {
            continue;
        }
        let answer = script.answer(&verb, nth);
        let text = match &answer {
            Answer::Normal | Answer::NormalThen(_) => {
                let mut s = shared.lock().unwrap();
                let (untagged, tagged) = normal(&script, &mut s, &mut conn, tag, &verb, rest);
                if matches!(answer, Answer::Normal) {
                    untagged + &tagged
                } else {
                    untagged
                }
            }
            _ => String::new(),
        };
        let Some(text) = act(&answer, tag, text, &mut w, &mut conn).await else {
            return;
        };
        if !text.is_empty() && w.write_all(text.as_bytes()).await.is_err() {
            return;
        }
        if verb == "LOGOUT" {
            return;
        }
    }
}

/// Carries out `answer` beyond the normal text (`text`, already made):
/// returns what is left to send, or `None` when the connection is to end.
async fn act(
    answer: &Answer,
    tag: &str,
    text: String,
    w: &mut OwnedWriteHalf,
    conn: &mut Conn,
) -> Option<String> {
    match answer {
        Answer::Normal => Some(text),
        Answer::Silence => {
            conn.silent = true;
            Some(String::new())
        }
        Answer::Text(t) => Some(t.replace("{tag}", tag)),
        Answer::NormalThen(flood) => {
            if w.write_all(text.as_bytes()).await.is_ok() {
                stream(w, flood).await;
            }
            None
        }
        Answer::Flood(flood) => {
            stream(w, flood).await;
            None
        }
        Answer::Bye(t) => {
            let _ = w.write_all(format!("* BYE {t}\r\n").as_bytes()).await;
            None
        }
        Answer::Close => None,
    }
}

/// Sends `flood` until the client goes away or [`FLOOD_LIMIT`] passes, a
/// chunk of about 64 KiB at a time.
async fn stream(w: &mut OwnedWriteHalf, flood: &Flood) {
    let deadline = tokio::time::Instant::now() + FLOOD_LIMIT;
    async fn send(w: &mut OwnedWriteHalf, bytes: Vec<u8>, deadline: tokio::time::Instant) -> bool {
        tokio::time::timeout_at(deadline, w.write_all(&bytes))
            .await
            .is_ok_and(|r| r.is_ok())
    }
    const CHUNK: usize = 64 << 10;
    match flood {
        Flood::Lines(template) => {
            let mut n: u64 = 1;
            loop {
                let mut chunk = String::with_capacity(CHUNK + 256);
                while chunk.len() < CHUNK {
                    chunk.push_str(
                        &template
                            .replace("{n}", &n.to_string())
                            .replace("{u}", &(n + 1_000_000).to_string()),
                    );
                    n += 1;
                }
                if !send(w, chunk.into_bytes(), deadline).await {
                    return;
                }
            }
        }
        Flood::Unending => {
            if !send(w, b"* OK ".to_vec(), deadline).await {
                return;
            }
            loop {
                if !send(w, vec![b'x'; CHUNK], deadline).await {
                    return;
                }
            }
        }
        Flood::Literal(size) => {
            let head = format!("* 1 FETCH (UID 1 BODY[] {{{size}}}\r\n");
            if !send(w, head.into_bytes(), deadline).await {
                return;
            }
            let mut left = *size;
            while left > 0 {
                let n = left.min(CHUNK as u64);
                if !send(w, vec![b'a'; n as usize], deadline).await {
                    return;
                }
                left -= n;
            }
            let _ = send(w, b")\r\n".to_vec(), deadline).await;
        }
    }
}

/// A UID set (`1:3,7,9:*`) as ranges; `*` is the largest UID.
fn uid_set(text: &str) -> Vec<(u32, u32)> {
    let num = |s: &str| {
        if s == "*" {
            u32::MAX
        } else {
            s.parse().unwrap_or(0)
        }
    };
    text.split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let (a, b) = (num(a), num(b));
                (a.min(b), a.max(b))
            }
            None => (num(part), num(part)),
        })
        .collect()
}

fn in_set(set: &[(u32, u32)], uid: u32) -> bool {
    set.iter().any(|&(a, b)| a <= uid && uid <= b)
}

/// An argument as the client wrote it: quotes removed.
fn unquote(s: &str) -> String {
    s.trim()
        .trim_matches('"')
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

/// The normal answer to a command: its untagged responses and its tagged
/// end, from the fake account (RFC 3501 6 and 7, RFC 6851 for MOVE, RFC
/// 4315 for COPYUID).
fn normal(
    script: &Script,
    s: &mut Shared,
    conn: &mut Conn,
    tag: &str,
    verb: &str,
    rest: &str,
) -> (String, String) {
    let args = rest.split_once(' ').map_or("", |(_, a)| a);
    let args = if verb.starts_with("UID ") {
        args.split_once(' ').map_or("", |(_, a)| a)
    } else {
        args
    };
    let ok = |text: &str| format!("{tag} OK {text}\r\n");
    let mut out = String::new();
    const VALIDITY: u32 = 7;
    let selected = conn
        .selected
        .clone()
        .and_then(|name| s.folders.iter().position(|(n, _)| *n == name));
    match verb {
        "CAPABILITY" => {
            let _ = write!(out, "* CAPABILITY {}\r\n", script.caps);
            (out, ok("done"))
        }
        "LOGIN" => (out, ok("logged in")),
        "AUTHENTICATE" => {
            if args.split(' ').nth(1).is_some() {
                (out, ok("logged in"))
            } else {
                conn.mechanism = args.trim().to_ascii_uppercase();
                conn.pending = Some((tag.to_string(), "AUTHENTICATE"));
                ("+ \r\n".into(), String::new())
            }
        }
        "IDLE" => {
            conn.pending = Some((tag.to_string(), "IDLE"));
            ("+ idling\r\n".into(), String::new())
        }
        "STARTTLS" => (out, ok("begin TLS now")),
        "NAMESPACE" => ("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n".into(), ok("done")),
        "LIST" => {
            if args.ends_with("\"\" \"\"") {
                out.push_str("* LIST (\\Noselect) \"/\" \"\"\r\n");
            } else {
                for (name, _) in &s.folders {
                    let _ = write!(out, "* LIST (\\HasNoChildren) \"/\" \"{name}\"\r\n");
                }
            }
            (out, ok("done"))
        }
        "SELECT" | "EXAMINE" => {
            let name = unquote(args.split(" (").next().unwrap_or(args));
            let Some((_, msgs)) = s.folders.iter().find(|(n, _)| *n == name) else {
                conn.selected = None;
                return (out, format!("{tag} NO [NONEXISTENT] no such mailbox\r\n"));
            };
            let next = msgs.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
            let _ = write!(
                out,
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {VALIDITY}] ok\r\n* OK [UIDNEXT {next}] ok\r\n",
                msgs.len()
            );
            conn.selected = Some(name);
            let access = if verb == "SELECT" {
                "READ-WRITE"
            } else {
                "READ-ONLY"
            };
            (out, ok(&format!("[{access}] selected")))
        }
        "CREATE" => {
            let name = unquote(args);
            if !s.folders.iter().any(|(n, _)| *n == name) {
                s.folders.push((name, Vec::new()));
            }
            (out, ok("created"))
        }
        "SUBSCRIBE" | "NOOP" | "ENABLE" | "ID" | "CHECK" => (out, ok("done")),
        "LOGOUT" => ("* BYE logging out\r\n".into(), ok("bye")),
        "UID SEARCH" | "UID FETCH" | "UID STORE" | "UID MOVE" | "UID COPY" | "UID EXPUNGE" => {
            let Some(i) = selected else {
                return (out, format!("{tag} BAD no mailbox selected\r\n"));
            };
            mailbox_command(&mut s.folders, i, verb, args, tag, VALIDITY)
        }
        _ => (out, format!("{tag} BAD not in this script\r\n")),
    }
}

/// The UID commands on the selected folder (number `i`).
fn mailbox_command(
    folders: &mut [(String, Vec<Message>)],
    i: usize,
    verb: &str,
    args: &str,
    tag: &str,
    validity: u32,
) -> (String, String) {
    let ok = |text: &str| format!("{tag} OK {text}\r\n");
    let mut out = String::new();
    let words: Vec<&str> = args.split(' ').collect();
    let set = uid_set(words.first().copied().unwrap_or(""));
    match verb {
        "UID SEARCH" => {
            // Every message, or those of the `UID set` among the keys: the
            // rules are evaluated on what FETCH returns anyway.
            let within = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("UID"))
                .and_then(|p| words.get(p + 1))
                .map(|w| uid_set(w));
            out.push_str("* SEARCH");
            for m in &folders[i].1 {
                if within.as_ref().is_none_or(|s| in_set(s, m.uid)) {
                    let _ = write!(out, " {}", m.uid);
                }
            }
            out.push_str("\r\n");
            (out, ok("searched"))
        }
        "UID FETCH" => {
            for (seq, m) in folders[i].1.iter().enumerate() {
                if !in_set(&set, m.uid) {
                    continue;
                }
                let header = m.raw.split("\r\n\r\n").next().unwrap_or("").to_string() + "\r\n\r\n";
                let _ = write!(
                    out,
                    "* {} FETCH (UID {} FLAGS ({}) INTERNALDATE \"05-Jan-2026 10:00:00 +0000\" RFC822.SIZE {} BODY[HEADER] {{{}}}\r\n{header}",
                    seq + 1,
                    m.uid,
                    m.flags.join(" "),
                    m.raw.len(),
                    header.len(),
                );
                if args.contains("[TEXT]") {
                    let text = m.raw.split_once("\r\n\r\n").map_or("", |(_, t)| t);
                    let _ = write!(out, " BODY[TEXT]<0> {{{}}}\r\n{text}", text.len());
                }
                out.push_str(")\r\n");
            }
            (out, ok("fetched"))
        }
        "UID STORE" => {
            let add = args.contains("+FLAGS");
            let flags: Vec<String> = args
                .split_once('(')
                .map_or("", |(_, f)| f.trim_end_matches(')'))
                .split(' ')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            for (seq, m) in folders[i].1.iter_mut().enumerate() {
                if !in_set(&set, m.uid) {
                    continue;
                }
                for f in &flags {
                    m.flags.retain(|x| x != f);
                    if add {
                        m.flags.push(f.clone());
                    }
                }
                let _ = write!(
                    out,
                    "* {} FETCH (UID {} FLAGS ({}))\r\n",
                    seq + 1,
                    m.uid,
                    m.flags.join(" ")
                );
            }
            (out, ok("stored"))
        }
        "UID MOVE" | "UID COPY" => {
            let target = unquote(&words[1..].join(" "));
            let Some(t) = folders.iter().position(|(n, _)| *n == target) else {
                return (out, format!("{tag} NO [TRYCREATE] no such mailbox\r\n"));
            };
            let mut next = folders[t].1.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
            let (mut from, mut to) = (Vec::new(), Vec::new());
            let mut gone = Vec::new();
            let mut copies = Vec::new();
            for (seq, m) in folders[i].1.iter().enumerate() {
                if in_set(&set, m.uid) {
                    from.push(m.uid.to_string());
                    to.push(next.to_string());
                    let mut copy = m.clone();
                    copy.uid = next;
                    copies.push(copy);
                    next += 1;
                    gone.push(seq + 1);
                }
            }
            folders[t].1.extend(copies);
            let code = format!("COPYUID {validity} {} {}", from.join(","), to.join(","));
            if from.is_empty() {
                return (out, ok("nothing to do"));
            }
            if verb == "UID COPY" {
                return (out, ok(&format!("[{code}] copied")));
            }
            let _ = write!(out, "* OK [{code}] moving\r\n");
            // RFC 3501 7.4.1: each EXPUNGE renumbers the rest, so from the
            // highest sequence number down.
            for seq in gone.iter().rev() {
                let _ = write!(out, "* {seq} EXPUNGE\r\n");
            }
            folders[i].1.retain(|m| !in_set(&set, m.uid));
            (out, ok("moved"))
        }
        "UID EXPUNGE" => {
            let mut gone = Vec::new();
            for (seq, m) in folders[i].1.iter().enumerate() {
                if in_set(&set, m.uid) && m.flags.iter().any(|f| f == "\\Deleted") {
                    gone.push(seq + 1);
                }
            }
            for seq in gone.iter().rev() {
                let _ = write!(out, "* {seq} EXPUNGE\r\n");
            }
            folders[i]
                .1
                .retain(|m| !(in_set(&set, m.uid) && m.flags.iter().any(|f| f == "\\Deleted")));
            (out, ok("expunged"))
        }
        _ => (out, format!("{tag} BAD not in this script\r\n")),
    }
}
