//! Test support: one real Dovecot per test binary, started on free loopback
//! ports with a throwaway configuration and a generated certificate, and a
//! fresh user (own mailboxes) per test. The server listens on three loopback
//! addresses with three capability sets: 127.0.0.1 full, 127.0.0.2 without
//! MOVE, 127.0.0.3 without MOVE and UIDPLUS.

#![allow(dead_code)]

pub mod interop;
pub mod layout;
pub mod oauth;
pub mod scenario;
pub mod script;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use std::time::Instant;

use chrono::{DateTime, Utc};
use mailwarden::config::{Account, SecretSource, Tls};
use mailwarden::imap::command::{FetchItems, SearchKey};
use mailwarden::imap::types::Mailbox;
use mailwarden::imap::{Access, Session, connect};
use mailwarden::rules::Flag;
use mailwarden::secret::{Credential, Secret};

pub use layout::Layout;

pub const FULL: &str = "127.0.0.1";
pub const NO_MOVE: &str = "127.0.0.2";
pub const NO_MOVE_NO_UIDPLUS: &str = "127.0.0.3";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub plain_port: u16,
    pub tls_port: u16,
    child: Mutex<Child>,
    uid: u32,
    gid: u32,
}

static SERVER: LazyLock<Dovecot> = LazyLock::new(Dovecot::start);
static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How this binary's Dovecot is made, where the defaults do not serve (a
/// benchmark with a thousand sessions).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Users made up front (each also as a `dot` user).
    pub users: u32,
    /// Configuration added at the end of Dovecot's.
    pub extra: String,
}

/// Sets up this binary's Dovecot; before its first use only.
pub fn configure(settings: Settings) {
    assert!(
        SETTINGS.set(settings).is_ok() && !STARTED.load(Ordering::SeqCst),
        "configure() comes before the server's first use, once"
    );
}

fn users() -> u32 {
    SETTINGS.get().map_or(USERS, |s| s.users)
}
static NEXT_USER: AtomicU32 = AtomicU32::new(1);

pub fn server() -> &'static Dovecot {
    &SERVER
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed leaf certificate for the three loopback addresses, marked
/// CA:FALSE so that it can be trusted directly as a root.
pub fn certificate() -> (String, String) {
    use rcgen::{CertificateParams, IsCa, KeyPair, SanType};
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    for ip in [FULL, NO_MOVE, NO_MOVE_NO_UIDPLUS] {
        params
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

const NO_MOVE_CAPS: &str = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE ESEARCH SEARCHRES WITHIN LIST-STATUS BINARY SPECIAL-USE";
const BARE_CAPS: &str =
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE SPECIAL-USE";

impl Dovecot {
    fn start() -> Dovecot {
        STARTED.store(true, Ordering::SeqCst);
        let binary = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Dovecot is needed for the IMAP tests: apt-get install dovecot-imapd");
        let dir = tempfile::Builder::new()
            .prefix("mailwarden-dovecot-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let me = std::fs::metadata("/proc/self").unwrap();
        let is_root = me.uid() == 0;
        // As root, mail is stored as the `mail` user and logins run as
        // dovenull, as Debian's Dovecot expects; otherwise all is ours.
        let (uid, gid, login_user, internal_user) = if is_root {
            (8, 8, "dovenull".to_string(), "dovecot".to_string())
        } else {
            let user = std::env::var("USER").unwrap_or_else(|_| {
                String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                    .unwrap()
                    .trim()
                    .to_string()
            });
            (me.uid(), me.gid(), user.clone(), user)
        };
        let (cert, key) = certificate();
        std::fs::write(root.join("cert.pem"), cert).unwrap();
        std::fs::write(root.join("key.pem"), key).unwrap();
        // Users are made up front: Dovecot notices a changed passwd-file by
        // its mtime, which two quick additions can share.
        // `dotN` users name their folders as hosting panels, Courier and
        // Cyrus do: personal folders under `INBOX.`, separator `.` (userdb
        // fields override the namespace settings, the shared one too).
        let mut passwd = String::new();
        for n in 1..=users() {
            for (kind, extra) in [
                ("user", ""),
                (
                    "dot",
                    "userdb_namespace/inbox/prefix=INBOX. userdb_namespace/inbox/separator=. userdb_namespace/public/prefix=Public. userdb_namespace/public/separator=.",
                ),
            ] {
                let home = root.join("home").join(format!("{kind}{n}"));
                std::fs::create_dir_all(&home).unwrap();
                passwd.push_str(&format!(
                    "{kind}{n}:{{PLAIN}}{}:{uid}:{gid}::{}::{extra}\n",
                    password(n),
                    home.display()
                ));
            }
        }
        // A shared folder every user sees, outside their personal namespace.
        for d in [
            "cur",
            "new",
            "tmp",
            ".shared-lists/cur",
            ".shared-lists/new",
            ".shared-lists/tmp",
        ] {
            std::fs::create_dir_all(root.join("public").join(d)).unwrap();
        }
        std::fs::write(root.join("passwd"), passwd).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::create_dir_all(root.join("run")).unwrap();
        let (plain_port, tls_port) = (free_port(), free_port());
        let r = root.display();
        let conf = format!(
            r#"base_dir = {r}/run
state_dir = {r}/run/state
log_path = {r}/dovecot.log
protocols = imap
listen = {FULL}, {NO_MOVE}, {NO_MOVE_NO_UIDPLUS}
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = {r}/passwd
}}
namespace public {{
  type = public
  separator = /
  prefix = Public/
  location = maildir:{r}/public:INDEXPVT=~/public-index
  list = yes
  subscriptions = no
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    special_use = \Archive
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {plain_port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
local {NO_MOVE} {{
  protocol imap {{
    imap_capability = {NO_MOVE_CAPS}
  }}
}}
local {NO_MOVE_NO_UIDPLUS} {{
  protocol imap {{
    imap_capability = {BARE_CAPS}
  }}
}}
{extra}"#,
            extra = SETTINGS.get().map_or("", |s| s.extra.as_str())
        );
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        if is_root {
            for p in ["home", "run"] {
                std::os::unix::fs::chown(root.join(p), Some(uid), Some(gid)).unwrap();
            }
            for n in 1..=users() {
                for kind in ["user", "dot"] {
                    std::os::unix::fs::chown(
                        root.join("home").join(format!("{kind}{n}")),
                        Some(uid),
                        Some(gid),
                    )
                    .unwrap();
                }
            }
            let chown = |p: &Path| std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            chown(&root.join("public"));
            for d in [
                "cur",
                "new",
                "tmp",
                ".shared-lists",
                ".shared-lists/cur",
                ".shared-lists/new",
                ".shared-lists/tmp",
            ] {
                chown(&root.join("public").join(d));
            }
        }
        // A watchdog ends the server when this test binary ends: statics are
        // never dropped, and a stray server must not outlive the tests.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#""$1" -F -c "$2" & d=$!; while kill -0 "$3" 2>/dev/null && kill -0 "$d" 2>/dev/null; do sleep 0.5; done; kill "$d" 2>/dev/null; wait"#)
            .arg("sh")
            .arg(binary)
            .arg(&conf_path)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let server = Dovecot {
            dir,
            plain_port,
            tls_port,
            child: Mutex::new(child),
            uid,
            gid,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect((FULL, self.plain_port)) {
                use std::io::Read;
                let mut buf = [0u8; 256];
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                if let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"* OK")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let log2 = std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default();
        panic!("Dovecot did not start:\n{log}\n{log2}");
    }

    /// Stops the server and starts it again on the same ports (for the
    /// restart test; other tests of the same binary would notice). The new
    /// server is not a child of the watchdog: the returned guard stops it.
    pub fn restart(&self) -> RestartedServer {
        // Stopping the master leaves running sessions alone here, so they
        // are ended first, as a restart that drops its clients would.
        Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["kick", "*"])
            .output()
            .unwrap();
        let pid_file = self.dir.path().join("run").join("master.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect((FULL, self.plain_port)).is_err() && !pid_file.exists()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let binary = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        let status = Command::new(binary)
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .status()
            .unwrap();
        assert!(status.success(), "Dovecot did not start again");
        self.wait_ready();
        RestartedServer { pid_file }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// A new user with an empty mailbox set, in Dovecot's default layout.
    pub fn user(&self) -> User {
        let n = NEXT_USER.fetch_add(1, Ordering::SeqCst);
        assert!(
            n <= users(),
            "more than {} users in one test binary",
            users()
        );
        User {
            name: format!("user{n}"),
            password: password(n),
            layout: Layout::Plain,
        }
    }

    /// A new user in `layout`, with the folders a fresh account of that
    /// kind has.
    pub async fn user_in(&self, layout: Layout) -> User {
        let mut user = self.user();
        if layout == Layout::Dotted {
            user.name = user.name.replace("user", "dot");
        }
        user.layout = layout;
        if !layout.initial_folders().is_empty() {
            let mut c = user.conn(FULL).await;
            for f in layout.initial_folders() {
                c.create(&Mailbox::verbatim(*f)).await.unwrap();
            }
            c.logout().await;
        }
        user
    }
}

const USERS: u32 = 64;

fn password(n: u32) -> String {
    format!("pw-{n}-{}", std::process::id())
}

/// Stops a server started by [`Dovecot::restart`] when dropped.
pub struct RestartedServer {
    pid_file: PathBuf,
}

impl Drop for RestartedServer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.lock().map(|mut c| c.kill());
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub layout: Layout,
}

impl User {
    /// The port mailwarden is pointed at for this user on `ip`: Dovecot's,
    /// or for a dressed layout its proxy's (which speaks to 127.0.0.1).
    fn port(&self, ip: &str) -> u16 {
        match self.layout {
            Layout::Plain | Layout::Dotted => server().plain_port,
            dressed => {
                assert_eq!(ip, FULL, "a dressed server stands in front of {FULL} only");
                dressed.port()
            }
        }
    }

    /// An account for this user on `ip` over plain IMAP (loopback only),
    /// straight to Dovecot: what the test support uses to fill and read
    /// mailboxes, whatever the layout.
    pub fn account(&self, ip: &str) -> Account {
        Account {
            name: "test".into(),
            host: ip.into(),
            port: server().plain_port,
            tls: Tls::None,
            ca_file: None,
            username: self.name.clone(),
            secret: SecretSource::Env("MAILWARDEN_TEST_PASSWORD".into()),
            provider: None,
            preset_filled: Vec::new(),
            allow_plaintext: false,
            create_folders: true,
            watch: vec!["INBOX".into()],
            poll_interval: Duration::from_secs(60),
            idle: true,
            sweep: Duration::from_secs(3600),
            idle_renewal: Duration::from_secs(300),
            timeout: Duration::from_secs(60),
            max_actions: None,
        }
    }

    pub async fn conn(&self, ip: &str) -> Session {
        connect(
            &self.account(ip),
            &Credential::Password(Secret::new(&self.password)),
        )
        .await
        .unwrap()
    }

    /// Appends `raw` with flags and arrival time.
    pub async fn append(
        &self,
        mailbox: &str,
        raw: &[u8],
        flags: &[&str],
        arrival: Option<DateTime<Utc>>,
    ) {
        let mut c = self.conn(FULL).await;
        let flags: Vec<Flag> = flags.iter().map(|f| Flag::parse(f).unwrap()).collect();
        let mailbox = Mailbox::verbatim(mailbox);
        if !mailbox.is_inbox() {
            c.create(&mailbox).await.unwrap();
        }
        c.append(&mailbox, &flags, arrival, raw).await.unwrap();
        c.logout().await;
    }

    /// Appends `raw` with no flags, arriving now.
    pub async fn deliver(&self, mailbox: &str, raw: &[u8]) {
        self.append(mailbox, raw, &[], None).await;
    }

    /// Appends many messages to `mailbox` quickly: MULTIAPPEND (RFC 3502),
    /// a thousand per command, no flags, arriving now.
    pub fn deliver_many(&self, mailbox: &str, msgs: &[Vec<u8>]) {
        let msgs: Vec<Appendix> = msgs.iter().map(|m| (m.as_slice(), &[][..], None)).collect();
        self.append_many(mailbox, &msgs);
    }

    /// Like [`User::deliver_many`], each message with its flags and
    /// arrival time (now if none).
    pub fn append_many(&self, mailbox: &str, msgs: &[Appendix]) {
        let mut raw = Raw::login(self);
        for batch in msgs.chunks(1_000) {
            let prefixes: Vec<String> = batch
                .iter()
                .map(|(_, flags, arrival)| {
                    let date = arrival
                        .map(|t| format!("\"{}\" ", t.format("%d-%b-%Y %H:%M:%S +0000")))
                        .unwrap_or_default();
                    format!(" ({}) {date}", flags.join(" "))
                })
                .collect();
            let literals: Vec<(&[u8], &str)> = batch
                .iter()
                .zip(&prefixes)
                .map(|((m, _, _), p)| (*m, p.as_str()))
                .collect();
            raw.command(&format!("APPEND \"{mailbox}\""), &literals);
        }
        raw.command("LOGOUT", &[]);
    }

    /// Every mailbox with its messages as (Message-ID, sorted flags), sorted.
    pub async fn snapshot(&self) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
        let mut c = self.conn(FULL).await;
        let out = snapshot_with(&mut c).await;
        c.logout().await;
        out
    }
}

/// [`User::snapshot`] over a session already open (where the server would
/// refuse another).
pub async fn snapshot_with(c: &mut Session) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let mut out = BTreeMap::new();
    for entry in c.list_all().await.unwrap() {
        // The shared namespace is every user's; its folders are not
        // this user's mail.
        if entry.has("\\Noselect") || entry.has("\\NonExistent") || entry.name.starts_with("Public")
        {
            continue;
        }
        let status = c
            .open(&Mailbox::verbatim(entry.name.as_str()), Access::ReadOnly)
            .await
            .unwrap();
        let mut msgs = Vec::new();
        if status.exists > 0 {
            let uids = c.search(&SearchKey::All).await.unwrap();
            let items = FetchItems {
                header_fields: vec!["MESSAGE-ID".into()],
                ..FetchItems::default()
            };
            c.fetch(&uids, &items, |m| {
                let header = String::from_utf8_lossy(m.header.as_deref().unwrap_or_default())
                    .trim()
                    .to_string();
                let id = header
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                let flags: Vec<String> =
                    m.flags.unwrap_or_default().iter().map(Flag::imap).collect();
                msgs.push((id, flags));
            })
            .await
            .unwrap();
        }
        msgs.sort();
        out.insert(entry.name, msgs);
    }
    out
}

impl User {
    /// Writes a configuration for this user (plain IMAP on `ip`) with the
    /// given rules, and returns its path.
    pub fn config(&self, dir: &Path, ip: &str, extra_account: &str, rules: &str) -> PathBuf {
        let path = dir.join("config.yaml");
        let text = format!(
            "version: 1\naccounts:\n  test:\n    host: \"{ip}\"\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n{extra_account}rules:\n{rules}",
            self.port(ip),
            self.name
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs the binary with this user's password in the environment.
    pub fn mailwarden(&self, args: &[&str], config: &Path) -> Output {
        self.command(args, config).output().unwrap()
    }

    /// Like [`User::mailwarden`], logging at `level` (MAILWARDEN_LOG) to
    /// standard error.
    pub fn mailwarden_logged(&self, args: &[&str], config: &Path, level: &str) -> Output {
        self.command(args, config)
            .env("MAILWARDEN_LOG", level)
            .output()
            .unwrap()
    }

    /// The command `mailwarden` runs, to add to (an environment variable).
    pub fn command(&self, args: &[&str], config: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
        c.args(args)
            .arg("-c")
            .arg(config)
            .env("MAILWARDEN_TEST_PASSWORD", &self.password)
            .env("XDG_STATE_HOME", self.state_home());
        c
    }

    /// Runs the binary with this user's state, without a configuration.
    pub fn mailwarden_bare(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(args)
            .env("XDG_STATE_HOME", self.state_home())
            .output()
            .unwrap()
    }

    /// This user's state folder (journal and marks), apart from others'.
    pub fn state_home(&self) -> PathBuf {
        server().dir.path().join("state").join(&self.name)
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_home().join("mailwarden").join("state.db")
    }
}

/// Total messages over all mailboxes of a snapshot.
pub fn total(s: &BTreeMap<String, Vec<(String, Vec<String>)>>) -> usize {
    s.values().map(Vec::len).sum()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Where a [`Proxy`] cuts the connection, once.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// When the client sends this command: it never reaches the server.
    Before(&'static str),
    /// After the server carried out this command, instead of passing on its
    /// tagged answer: the server did it, the client cannot know.
    AfterReplyTo(&'static str),
    /// After this command and the server's first answer to it, nothing more
    /// passes either way, but the connection stays open: a NAT that forgot
    /// it.
    Blackhole(&'static str),
    /// Not a cut: on every connection, the server's `.0` becomes `.1`, so
    /// the server seems to send what Dovecot never would.
    Garble(&'static str, &'static str),
    /// Not a cut: everything passes (see [`Proxy::with_hook`]).
    Never,
    /// On every connection, a command starting with `.0` (`UID MOVE`) whose
    /// UID set names more than `.1` UIDs: the connection ends before the
    /// server sees it, as a server whose process ran out of memory under a
    /// long command ends it.
    Longer(&'static str, usize),
}

/// How many UIDs the set that follows `verb ` in a command line names.
fn uids_named(rest: &str, verb: &str) -> usize {
    let set = rest[verb.len()..]
        .trim_start()
        .split(' ')
        .next()
        .unwrap_or("");
    set.split(',')
        .map(|r| match r.split_once(':') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                a.abs_diff(b) + 1
            }
            None => 1,
        })
        .sum()
}

/// `data` with every `needle` replaced by `with`.
fn replace_bytes(data: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// A message to append: its bytes, flags (`\\Seen`) and arrival time.
pub type Appendix<'a> = (&'a [u8], &'a [&'a str], Option<DateTime<Utc>>);

/// A bare IMAP client on the plain loopback port: fills mailboxes fast
/// (MULTIAPPEND with LITERAL+) and sends hand-written commands.
pub struct Raw {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::io::BufWriter<std::net::TcpStream>,
    tags: usize,
}

impl Raw {
    pub fn login(user: &User) -> Raw {
        use std::io::BufRead;
        let stream = std::net::TcpStream::connect((FULL, server().plain_port)).unwrap();
        let mut raw = Raw {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            writer: std::io::BufWriter::new(stream),
            tags: 0,
        };
        let mut greeting = String::new();
        raw.reader.read_line(&mut greeting).unwrap();
        raw.command(&format!("LOGIN {} {}", user.name, user.password), &[]);
        raw
    }

    /// Sends `text`, then each literal as `{n+}` (LITERAL+, RFC 7888) with
    /// its `suffix`, and waits for the tagged OK, skipping every literal in
    /// the answer.
    pub fn command(&mut self, text: &str, literals: &[(&[u8], &str)]) {
        use std::io::{BufRead, Read, Write};
        self.tags += 1;
        let tag = format!("r{}", self.tags);
        write!(self.writer, "{tag} {text}").unwrap();
        for (data, prefix) in literals {
            write!(self.writer, "{prefix}{{{}+}}\r\n", data.len()).unwrap();
            self.writer.write_all(data).unwrap();
        }
        self.writer.write_all(b"\r\n").unwrap();
        self.writer.flush().unwrap();
        let mut line = Vec::new();
        // Bounded: one line per message at most, and the server answers.
        for _ in 0..10_000_000 {
            line.clear();
            assert!(
                self.reader.read_until(b'\n', &mut line).unwrap() > 0,
                "server hung up"
            );
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{tag} {rest}");
                return;
            }
            if let Some(n) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<u64>().ok())
            {
                std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink()).unwrap();
            }
        }
        panic!("no answer to {tag}");
    }
}

/// Something done on the side when the client sends a command: given the
/// command line, it runs to its end before the line is passed on.
pub type Hook = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// A loopback proxy to Dovecot on `ip` that cuts the first connection as
/// told and passes later ones through. Serves at most 20 connections.
pub struct Proxy {
    pub port: u16,
    pub cut_done: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    pub async fn start(ip: &'static str, cut: Cut) -> Proxy {
        Proxy::start_inner(ip, cut, None).await
    }

    /// A proxy that cuts nothing and, the first time the client sends a
    /// command starting with `verb` (`UID MOVE`), runs `hook` before the
    /// server sees the command: another client acting in between.
    /// `cut_done` tells that the hook ran.
    pub async fn with_hook(ip: &'static str, verb: &'static str, hook: Hook) -> Proxy {
        Proxy::start_inner(ip, Cut::Never, Some((verb, hook))).await
    }

    async fn start_inner(ip: &'static str, cut: Cut, hook: Option<(&'static str, Hook)>) -> Proxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = cut_done.clone();
        let upstream = server().plain_port;
        tokio::spawn(async move {
            for _ in 0..20 {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let server = tokio::net::TcpStream::connect((ip, upstream))
                    .await
                    .unwrap();
                let armed = !done.load(Ordering::SeqCst);
                let done = done.clone();
                let hook = hook.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    // The tag of the command whose answer is to be dropped.
                    let tag: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
                    let (tag_up, tag_down) = (tag.clone(), tag);
                    let holed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let (holed_up, holed_down) = (holed.clone(), holed);
                    let (done_up, done_down) = (done.clone(), done);
                    let up = async move {
                        let mut buf = vec![0u8; 65536];
                        // Commands arrive in pieces; decide on whole lines.
                        let mut line = String::new();
                        // How many UIDs the client has saved as `$` (RFC
                        // 5182) for a command to name.
                        let mut saved = 0;
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            line.push_str(&String::from_utf8_lossy(&buf[..n]));
                            while let Some(end) = line.find("\r\n") {
                                let complete: String = line.drain(..end + 2).collect();
                                if let Some((verb, hook)) = &hook {
                                    let rest = complete.split_once(' ').map_or("", |(_, r)| r);
                                    if rest.starts_with(verb)
                                        && !done_up.swap(true, Ordering::SeqCst)
                                    {
                                        hook(complete.clone()).await;
                                    }
                                    continue;
                                }
                                if let Cut::Longer(cmd, max) = cut {
                                    let rest = complete.split_once(' ').map_or("", |(_, r)| r);
                                    let save = "UID SEARCH RETURN (SAVE) ";
                                    if let Some(keys) = rest.strip_prefix(save) {
                                        let (extend, keys) = match keys.strip_prefix("OR $ ") {
                                            Some(k) => (true, k),
                                            None => (false, keys),
                                        };
                                        let n = uids_named(keys, "UID");
                                        saved = if extend { saved + n } else { n };
                                    }
                                    let named = if rest.starts_with(cmd)
                                        && rest[cmd.len()..].trim_start().starts_with('$')
                                    {
                                        saved
                                    } else {
                                        uids_named(rest, cmd)
                                    };
                                    if rest.starts_with(cmd) && named > max {
                                        done_up.store(true, Ordering::SeqCst);
                                        return;
                                    }
                                }
                                if armed && !done_up.load(Ordering::SeqCst) {
                                    let mut words = complete.trim_end().splitn(2, ' ');
                                    let (t, rest) =
                                        (words.next().unwrap_or(""), words.next().unwrap_or(""));
                                    match cut {
                                        // The line's end has not been passed
                                        // on: the server never runs it.
                                        Cut::Before(cmd) if rest.starts_with(cmd) => {
                                            done_up.store(true, Ordering::SeqCst);
                                            return;
                                        }
                                        Cut::AfterReplyTo(cmd) if rest.starts_with(cmd) => {
                                            *tag_up.lock().unwrap() = Some(t.to_string());
                                        }
                                        Cut::Blackhole(cmd) if rest.starts_with(cmd) => {
                                            holed_up.store(true, Ordering::SeqCst);
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            if holed_up.load(Ordering::SeqCst) {
                                // Hold the sockets open; pass nothing more.
                                std::future::pending::<()>().await;
                            }
                        }
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 65536];
                        let mut pending = Vec::new();
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            pending.extend_from_slice(&buf[..n]);
                            if let Cut::Garble(needle, with) = cut {
                                // Whole lines only: a needle is never split
                                // between two reads.
                                let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
                                    continue;
                                };
                                let lines: Vec<u8> = pending.drain(..=end).collect();
                                let text =
                                    replace_bytes(&lines, needle.as_bytes(), with.as_bytes());
                                if cw.write_all(&text).await.is_err() {
                                    return;
                                }
                                continue;
                            }
                            if holed_down.load(Ordering::SeqCst) {
                                // The answer to the command goes through
                                // ("+ idling"); then silence.
                                let _ = cw.write_all(&pending).await;
                                done_down.store(true, Ordering::SeqCst);
                                std::future::pending::<()>().await;
                            }
                            let tag = tag_down.lock().unwrap().clone();
                            if let Some(t) = tag {
                                let text = String::from_utf8_lossy(&pending);
                                if text.starts_with(&format!("{t} "))
                                    || text.contains(&format!("\r\n{t} "))
                                {
                                    done_down.store(true, Ordering::SeqCst);
                                    return;
                                }
                                // Hold back until the answer's line is complete.
                                continue;
                            }
                            if cw.write_all(&pending).await.is_err() {
                                return;
                            }
                            pending.clear();
                        }
                    };
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
            }
        });
        Proxy { port, cut_done }
    }
}

/// A running `mailwarden watch` whose standard error is collected.
pub struct Daemon {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(user: &User, config: &std::path::Path) -> Daemon {
        Daemon::start_with(user, config, &[], &[])
    }

    /// [`Daemon::start`] with more arguments to `watch` and more
    /// environment variables.
    pub fn start_with(
        user: &User,
        config: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["watch", "-c"])
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .env("MAILWARDEN_TEST_PASSWORD", &user.password)
            .env("XDG_STATE_HOME", user.state_home())
            .env("MAILWARDEN_LOG", "mailwarden=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Daemon { child, log }
    }

    pub fn log_has(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits up to `secs` for a log line containing `needle`.
    pub async fn expect_log(&self, needle: &str, secs: u64) {
        let seen = eventually(Duration::from_secs(secs), || async { self.log_has(needle) }).await;
        assert!(seen, "no log line with {needle:?}:\n{}", self.log());
    }

    /// Waits up to `secs` until `folder` holds `count` messages.
    pub async fn expect_in_folder(&self, user: &User, folder: &str, count: usize, secs: u64) {
        let done = eventually(Duration::from_secs(secs), || async {
            in_folder(user, folder).await == count
        })
        .await;
        assert!(
            done,
            "{folder} never held {count} messages:\n{}",
            self.log()
        );
    }

    /// SIGTERM, then the exit code (bounded wait).
    pub fn stop(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Waits (at most `max`) until `done` holds.
pub async fn eventually<F, Fut>(max: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < max {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

pub async fn in_folder(user: &User, folder: &str) -> usize {
    user.snapshot().await.get(folder).map_or(0, Vec::len)
}
