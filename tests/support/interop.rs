//! Test support: real Cyrus IMAP 3.6 (with Debian's naming and with
//! upstream's) and Courier-IMAP 5, as Debian packages them, each started at
//! most once per test binary on free loopback ports in a temporary
//! directory, with a fresh user per test. `tests/servers/install.sh` installs
//! them (the daemons are unpacked under /opt: as packages they conflict with
//! dovecot-imapd).
//!
//! - Cyrus: cyrus-common's `master` runs the unpacked `imapd` on a plain port
//!   (STARTTLS offered) and an implicit-TLS port, and drops to the `cyrus`
//!   user itself. Users live in the instance's own sasldb (`saslpasswd2 -f`);
//!   each user's mailbox is created by the instance's admin over IMAP.
//! - Courier: `authdaemond` (userdb module) and two `couriertcpd` (plain with
//!   STARTTLS, and implicit TLS through `couriertls`) run `imaplogin` and the
//!   unpacked `imapd`, which drops to uid/gid 8 (`mail`). courier-authlib has
//!   its configuration (`/etc/courier/authdaemonrc`, `/etc/courier/userdb.dat`)
//!   and its socket (`/run/courier/authdaemon/socket`) compiled in, with no
//!   option or variable to move them. So these processes run in a private
//!   mount namespace (`unshare --mount`) in which the instance's own `etc`
//!   directory is bind-mounted over `/etc/courier` and its own `run` directory
//!   over `/run`. Nothing under /etc (or /run) is written, and no other process
//!   sees the change; a system authdaemond, if one runs, is left alone. This
//!   needs root with CAP_SYS_ADMIN (a container must allow mounts).
//!
//! With a user, [`Interop::snapshot`] reads every personal mailbox through
//! the tiny client below, and [`Interop::agent`] points mailwarden at the
//! user (`run`, `log`, `watch` with its log kept) with a state folder of its
//! own.
//!
//! Each server runs under a watchdog shell that stops it (and removes its
//! directory) when the test binary ends: statics are never dropped. IDLE
//! announces new mail only when the server polls, every 60 s by default, as
//! Debian ships both; `MAILWARDEN_INTEROP_IDLE_POLL=<seconds>` changes that
//! for the shared servers, [`Interop::start`] for one instance.

#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::scenario::Snapshot;

/// Where every server listens.
pub const HOST: &str = "127.0.0.1";

const CYRUS_MASTER: &str = "/usr/lib/cyrus/bin/master";
const CYRUS_CTL_CYRUSDB: &str = "/usr/lib/cyrus/bin/ctl_cyrusdb";
const CYRUS_IMAPD: &str = "/opt/cyrus-imapd/usr/lib/cyrus/bin/imapd";
const COURIER_AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";
const COURIER_IMAPLOGIN: &str = "/opt/courier-imap/usr/lib/courier/courier/imaplogin";
const COURIER_IMAPD: &str = "/opt/courier-imap/usr/bin/imapd";
const INSTALL_HINT: &str = "run tests/servers/install.sh (as root) to install the servers";

/// Courier's users are all written before it starts, in one userdb: a user
/// then costs no `makeuserdb` run (a Perl script) and no password hashing;
/// hashing them is most of Courier's start-up time.
const COURIER_USERS: u32 = 64;
/// Courier's mail belongs to `mail`, as Debian's virtual-user setup has it.
const MAIL_UID: u32 = 8;
const MAIL_GID: u32 = 8;
/// How long the tiny client waits for any answer.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a start: the servers are up in well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Marks a directory the watchdog may remove.
const MARKER: &str = ".mailwarden-interop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Cyrus with Debian's imapd.conf naming: `altnamespace: no`,
    /// `unixhierarchysep: no`, so `.` and personal folders under `INBOX.`.
    CyrusDebian,
    /// Cyrus with upstream 3.6 defaults: `altnamespace: yes`,
    /// `unixhierarchysep: yes`, so `/` and folders beside INBOX.
    CyrusUpstream,
    /// Courier-IMAP with Debian's settings: `.`, folders under `INBOX.`, no
    /// MOVE, no SPECIAL-USE.
    Courier,
}

impl Flavour {
    pub const ALL: [Flavour; 3] = [
        Flavour::CyrusDebian,
        Flavour::CyrusUpstream,
        Flavour::Courier,
    ];

    pub fn is_cyrus(self) -> bool {
        self != Flavour::Courier
    }

    /// The personal namespace's hierarchy separator.
    pub fn separator(self) -> char {
        match self {
            Flavour::CyrusUpstream => '/',
            _ => '.',
        }
    }

    /// The personal namespace's prefix: every folder a user makes is under it.
    pub fn personal_prefix(self) -> &'static str {
        match self {
            Flavour::CyrusUpstream => "",
            _ => "INBOX.",
        }
    }

    /// The full name of the personal folder whose path is `parts`.
    pub fn folder(self, parts: &[&str]) -> String {
        let sep = self.separator().to_string();
        format!("{}{}", self.personal_prefix(), parts.join(&sep))
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::CyrusDebian => "Cyrus (Debian naming)",
            Flavour::CyrusUpstream => "Cyrus (upstream naming)",
            Flavour::Courier => "Courier",
        })
    }
}

static CYRUS_DEBIAN: LazyLock<Interop> =
    LazyLock::new(|| Interop::start(Flavour::CyrusDebian, default_idle_poll()));
static CYRUS_UPSTREAM: LazyLock<Interop> =
    LazyLock::new(|| Interop::start(Flavour::CyrusUpstream, default_idle_poll()));
static COURIER: LazyLock<Interop> =
    LazyLock::new(|| Interop::start(Flavour::Courier, default_idle_poll()));

/// The server of this flavour for this test binary, started on first use.
pub fn server(flavour: Flavour) -> &'static Interop {
    match flavour {
        Flavour::CyrusDebian => &CYRUS_DEBIAN,
        Flavour::CyrusUpstream => &CYRUS_UPSTREAM,
        Flavour::Courier => &COURIER,
    }
}

/// 60 s, what both servers do out of the box, unless
/// `MAILWARDEN_INTEROP_IDLE_POLL` says otherwise (in seconds).
fn default_idle_poll() -> Duration {
    match std::env::var("MAILWARDEN_INTEROP_IDLE_POLL") {
        Ok(s) => {
            let secs: u64 = s
                .trim()
                .parse()
                .expect("MAILWARDEN_INTEROP_IDLE_POLL: whole seconds");
            assert!(secs >= 1, "MAILWARDEN_INTEROP_IDLE_POLL: at least 1");
            Duration::from_secs(secs)
        }
        Err(_) => Duration::from_secs(60),
    }
}

/// A user of one server: an empty INBOX and no other mailbox.
#[derive(Debug, Clone)]
pub struct InteropUser {
    pub name: String,
    pub password: String,
}

/// How a client reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The plain port, left in clear text (loopback only).
    Plain,
    /// The plain port, upgraded with STARTTLS.
    StartTls,
    /// The implicit-TLS port.
    Tls,
}

/// One running server.
pub struct Interop {
    pub flavour: Flavour,
    pub host: &'static str,
    pub plain_port: u16,
    pub tls_port: u16,
    dir: tempfile::TempDir,
    watchdog: Mutex<Option<Child>>,
    idle_poll: Duration,
    startup: Duration,
    next_user: AtomicU32,
    /// Cyrus's administrator, who creates the users' mailboxes.
    admin: Option<InteropUser>,
    /// saslpasswd2 runs one at a time on the shared sasldb.
    sasldb: Mutex<()>,
    /// Courier's users, made before the start.
    passwords: Vec<String>,
}

impl Interop {
    /// Starts a server of this flavour that polls for new mail during IDLE
    /// every `idle_poll`, owned by the caller: dropping it stops it. Tries
    /// new ports twice more if the first ones were taken meanwhile.
    pub fn start(flavour: Flavour, idle_poll: Duration) -> Interop {
        assert!(idle_poll >= Duration::from_secs(1), "idle_poll under 1 s");
        check_installed(flavour);
        let begun = Instant::now();
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Interop::try_start(flavour, idle_poll) {
                Ok(mut server) => {
                    server.startup = begun.elapsed();
                    return server;
                }
                Err(log) => failures.push(log),
            }
        }
        let namespace = if flavour.is_cyrus() {
            ""
        } else {
            "; Courier runs in a private mount namespace, which needs root with CAP_SYS_ADMIN"
        };
        panic!(
            "{flavour} did not start (if it is not installed: {INSTALL_HINT}{namespace}):\n{}",
            failures.join("\n---- next attempt ----\n")
        );
    }

    fn try_start(flavour: Flavour, idle_poll: Duration) -> Result<Interop, String> {
        let dir = tempfile::Builder::new()
            .prefix(match flavour {
                Flavour::CyrusDebian => "mailwarden-cyrus-debian-",
                Flavour::CyrusUpstream => "mailwarden-cyrus-upstream-",
                Flavour::Courier => "mailwarden-courier-",
            })
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        // The servers' own users (cyrus, mail) must reach into it.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join(MARKER), "").unwrap();
        let (cert, key) = certificate();
        std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
        let (plain_port, tls_port) = free_ports();
        let mut server = Interop {
            flavour,
            host: HOST,
            plain_port,
            tls_port,
            dir,
            watchdog: Mutex::new(None),
            idle_poll,
            startup: Duration::ZERO,
            next_user: AtomicU32::new(1),
            admin: None,
            sasldb: Mutex::new(()),
            passwords: Vec::new(),
        };
        let child = if flavour.is_cyrus() {
            server.spawn_cyrus(&key)?
        } else {
            server.spawn_courier(&cert, &key)?
        };
        *server.watchdog.lock().unwrap() = Some(child);
        server.wait_ready()?;
        Ok(server)
    }

    /// The certificate to trust: a self-signed leaf for 127.0.0.1 marked
    /// CA:FALSE, so that it can be trusted directly as a root.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// How long the server may take to announce new mail to an idling
    /// client: it looks only this often (neither idled nor FAM runs).
    pub fn idle_poll(&self) -> Duration {
        self.idle_poll
    }

    /// How long the start took, until both ports answered.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The server's working directory (configuration, logs, mail).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged, for failure messages. Cyrus logs only to
    /// syslog: its part is what `master` printed.
    pub fn log(&self) -> String {
        logs(self.dir.path())
    }

    /// The port a client of `kind` connects to.
    pub fn port(&self, kind: Port) -> u16 {
        match kind {
            Port::Plain | Port::StartTls => self.plain_port,
            Port::Tls => self.tls_port,
        }
    }

    /// A client connected as `kind` says, the certificate checked against
    /// [`Interop::ca_file`]; not logged in.
    pub fn client(&self, kind: Port) -> Client {
        let result = match kind {
            Port::Plain => Client::plain(self.host, self.plain_port),
            Port::StartTls => Client::plain(self.host, self.plain_port)
                .and_then(|c| c.starttls(self.host, &self.ca_file())),
            Port::Tls => Client::tls(self.host, self.tls_port, &self.ca_file()),
        };
        result.unwrap_or_else(|e| {
            panic!(
                "{} {kind:?} connection to {}:{}: {e}\n{}",
                self.flavour,
                self.host,
                self.port(kind),
                self.log()
            )
        })
    }

    /// A client of `kind` logged in as `user`.
    pub fn login(&self, user: &InteropUser, kind: Port) -> Client {
        let mut client = self.client(kind);
        let reply = client.login(&user.name, &user.password).unwrap();
        assert!(
            reply.is_ok(),
            "{} login of {}: {reply:?}",
            self.flavour,
            user.name
        );
        client
    }

    /// A new user, unique to this call, with an empty INBOX and no other
    /// mailbox.
    pub fn user(&self) -> InteropUser {
        let n = self.next_user.fetch_add(1, Ordering::SeqCst);
        if self.flavour.is_cyrus() {
            self.cyrus_user(n)
        } else {
            self.courier_user(n)
        }
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ended = match self.watchdog.lock().unwrap().as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = ended {
                return Err(format!(
                    "the watchdog ended ({status}) before the server answered\n{}",
                    self.log()
                ));
            }
            if self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                // Dropping the instance stops it, after the log is read.
                return Err(format!(
                    "no answer on {}:{} and :{} within {START_TIMEOUT:?}\n{}",
                    self.host,
                    self.plain_port,
                    self.tls_port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Both ports accept, the plain one greets, and Courier's
    /// authentication daemon listens.
    fn answers(&self) -> bool {
        if !self.flavour.is_cyrus()
            && !self
                .dir
                .path()
                .join("run/courier/authdaemon/socket")
                .exists()
        {
            return false;
        }
        greets(self.host, self.plain_port) && TcpStream::connect((self.host, self.tls_port)).is_ok()
    }

    /// Asks the watchdog to stop the server; waits for it, bounded.
    fn stop(&self) {
        let mut guard = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        let Some(child) = guard.as_mut() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    // ---- Cyrus

    fn spawn_cyrus(&mut self, key: &str) -> Result<Child, String> {
        let root = self.dir.path().to_path_buf();
        let r = root.display();
        // imapd binds its own IDLE socket under config/socket whatever
        // idlesocket says.
        for sub in ["config/socket", "spool", "proc", "lock", "socket"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("key.pem"), key).unwrap();
        std::fs::set_permissions(root.join("key.pem"), PermissionsExt::from_mode(0o600)).unwrap();
        let (alt, unix) = match self.flavour {
            Flavour::CyrusDebian => ("no", "no"),
            _ => ("yes", "yes"),
        };
        let poll = self.idle_poll.as_secs();
        // Debian's imapd.conf, reduced to what a throwaway instance needs;
        // no autocreate: the admin creates each INBOX, as a site would.
        let imapd_conf = format!(
            "configdirectory: {r}/config
partition-default: {r}/spool
defaultpartition: default
proc_path: {r}/proc
mboxname_lockpath: {r}/lock
lmtpsocket: {r}/socket/lmtp
idlesocket: {r}/socket/idle
notifysocket: {r}/socket/notify
servername: localhost
admins: admin
altnamespace: {alt}
unixhierarchysep: {unix}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {r}/sasldb2
sasl_mech_list: PLAIN LOGIN
tls_server_cert: {r}/cert.pem
tls_server_key: {r}/key.pem
hashimapspool: true
specialusealways: 1
syslog_prefix: mailwarden-{}
imapidlepoll: {poll}
",
            root.file_name().unwrap().to_string_lossy()
        );
        let (p1, p2) = (self.plain_port, self.tls_port);
        let cyrus_conf = format!(
            r#"START {{
  recover cmd="{CYRUS_CTL_CYRUSDB} -C {r}/imapd.conf -r"
}}
SERVICES {{
  imap  cmd="{CYRUS_IMAPD} -C {r}/imapd.conf" listen="{HOST}:{p1}" prefork=0 maxchild=100
  imaps cmd="{CYRUS_IMAPD} -s -C {r}/imapd.conf" listen="{HOST}:{p2}" prefork=0 maxchild=100
}}
EVENTS {{
}}
"#
        );
        std::fs::write(root.join("imapd.conf"), imapd_conf).unwrap();
        std::fs::write(root.join("cyrus.conf"), cyrus_conf).unwrap();
        let admin = InteropUser {
            name: "admin".into(),
            password: password("admin"),
        };
        saslpasswd2(&root, &admin)?;
        let (uid, gid) =
            passwd_entry("cyrus").ok_or("no user cyrus: is cyrus-common installed?")?;
        chown_tree(&root, uid, gid);
        std::fs::set_permissions(root.join("sasldb2"), PermissionsExt::from_mode(0o640)).unwrap();
        self.admin = Some(admin);
        // master stays in the foreground (no -d) so that the watchdog owns
        // it; -D keeps its stderr, the only log that does not go to syslog.
        let script = format!(
            r#"{WATCHDOG_COMMON}
"$MW_MASTER" -C "$MW_DIR/imapd.conf" -M "$MW_DIR/cyrus.conf" -p "$MW_DIR/master.pid" -D >>"$MW_DIR/master.log" 2>&1 &
servers=$!
watch
"#
        );
        // Its own process group: master stops by signalling its group,
        // which reaches every process the `cyrus` user may signal there:
        // in the test binary's group that would include the other instance.
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .env("MW_DIR", &root)
            .env("MW_TEST", std::process::id().to_string())
            .env("MW_MASTER", CYRUS_MASTER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("watchdog.log")).unwrap())
            .spawn()
            .map_err(|e| format!("spawning the watchdog: {e}"))
    }

    fn cyrus_user(&self, n: u32) -> InteropUser {
        let user = InteropUser {
            name: format!("mw{n}"),
            password: password(&format!("mw{n}")),
        };
        {
            let _one = self.sasldb.lock().unwrap_or_else(|e| e.into_inner());
            saslpasswd2(self.dir.path(), &user).unwrap_or_else(|e| panic!("{e}"));
        }
        let admin = self.admin.as_ref().unwrap();
        let mut c = self.client(Port::Plain);
        let reply = c.login(&admin.name, &admin.password).unwrap();
        assert!(reply.is_ok(), "admin login: {reply:?}\n{}", self.log());
        // The admin sees users' mailboxes under `user` with the server's
        // separator, whatever the naming.
        let inbox = format!("user{}{}", self.flavour.separator(), user.name);
        let reply = c.command(&format!("CREATE {}", quote(&inbox))).unwrap();
        assert!(
            reply.is_ok(),
            "admin CREATE {inbox}: {reply:?}\n{}",
            self.log()
        );
        let _ = c.command("LOGOUT");
        user
    }

    // ---- Courier

    fn spawn_courier(&mut self, cert: &str, key: &str) -> Result<Child, String> {
        let root = self.dir.path().to_path_buf();
        let etc = root.join("etc");
        let authdaemon = root.join("run/courier/authdaemon");
        for d in [etc.join("shared"), authdaemon.clone(), root.join("home")] {
            std::fs::create_dir_all(&d).unwrap();
        }
        // imaplogin reads the certificate after dropping privileges.
        std::fs::write(root.join("server.pem"), format!("{cert}{key}")).unwrap();
        std::fs::set_permissions(root.join("server.pem"), PermissionsExt::from_mode(0o644))
            .unwrap();
        // Seen as /etc/courier/authdaemonrc inside the namespace.
        std::fs::write(
            etc.join("authdaemonrc"),
            "authmodulelist=\"authuserdb\"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\n\
             DEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\nLOGGEROPTS=\"\"\n",
        )
        .unwrap();
        // Every user up front (see COURIER_USERS), with unique passwords,
        // hashed in one `openssl passwd` run.
        let names: Vec<String> = (1..=COURIER_USERS).map(|n| format!("mw{n}")).collect();
        self.passwords = names.iter().map(|n| password(n)).collect();
        let hashes = sha512_crypt(&self.passwords)?;
        let mut userdb = String::new();
        for (name, hash) in names.iter().zip(&hashes) {
            let home = root.join("home").join(name);
            userdb.push_str(&format!(
                "{name}\tuid={MAIL_UID}|gid={MAIL_GID}|home={}|mail={}|systempw={hash}\n",
                home.display(),
                home.join("Maildir").display()
            ));
        }
        std::fs::write(etc.join("userdb"), userdb).unwrap();
        std::fs::set_permissions(etc.join("userdb"), PermissionsExt::from_mode(0o600)).unwrap();
        let out = Command::new("makeuserdb")
            .arg("-f")
            .arg(etc.join("userdb"))
            .output()
            .map_err(|e| format!("makeuserdb: {e} ({INSTALL_HINT})"))?;
        if !out.status.success() {
            return Err(format!(
                "makeuserdb: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let caps = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT \
                    THREAD=REFERENCES SORT QUOTA IDLE";
        // Debian's /etc/courier/imapd and imapd-ssl, with this instance's
        // certificate and poll interval. IMAP_ENHANCEDIDLE=0: IDLE polls.
        let env: Vec<(&str, String)> = vec![
            ("PATH", "/usr/bin:/bin:/usr/sbin:/sbin".into()),
            ("MW_DIR", root.display().to_string()),
            ("MW_TEST", std::process::id().to_string()),
            ("MW_PLAIN", self.plain_port.to_string()),
            ("MW_TLS", self.tls_port.to_string()),
            ("MW_AUTHDAEMOND", COURIER_AUTHDAEMOND.into()),
            ("MW_IMAPLOGIN", COURIER_IMAPLOGIN.into()),
            ("MW_IMAPD", COURIER_IMAPD.into()),
            ("IMAP_CAPABILITY", caps.into()),
            ("IMAP_CAPABILITY_TLS", format!("{caps} AUTH=PLAIN")),
            ("IMAP_KEYWORDS", "1".into()),
            ("IMAP_ACL", "1".into()),
            ("IMAP_IDLE_TIMEOUT", self.idle_poll.as_secs().to_string()),
            ("IMAP_MAILBOX_SANITY_CHECK", "1".into()),
            ("IMAP_UMASK", "022".into()),
            ("IMAP_USELOCKS", "1".into()),
            ("IMAP_ENHANCEDIDLE", "0".into()),
            ("IMAP_TRASHFOLDERNAME", "Trash".into()),
            ("IMAP_EMPTYTRASH", "Trash:7".into()),
            ("IMAP_MOVE_EXPUNGE_TO_TRASH", "0".into()),
            ("IMAP_SHAREDINDEXFILE", "/etc/courier/shared/index".into()),
            ("IMAP_TLS_REQUIRED", "0".into()),
            ("COURIERTLS", "/usr/bin/couriertls".into()),
            (
                "TLS_CERTFILE",
                root.join("server.pem").display().to_string(),
            ),
            ("TLS_VERIFYPEER", "NONE".into()),
            ("MAILDIRPATH", "Maildir".into()),
        ];
        // `unshare` gives the watchdog, and so all the servers, a private
        // mount namespace: see the module's documentation.
        let script = format!(
            r#"{WATCHDOG_COMMON}
mount --bind "$MW_DIR/etc" /etc/courier && mount --bind "$MW_DIR/run" /run || {{
  echo "mount namespace: cannot bind-mount over /etc/courier and /run (needs root with CAP_SYS_ADMIN)" >&2
  exit 71
}}
"$MW_AUTHDAEMOND" >>"$MW_DIR/authdaemond.log" 2>&1 &
a=$!
tcpd="couriertcpd -address={HOST} -nodnslookup -noidentlookup -maxprocs=100 -maxperip=100"
IMAP_STARTTLS=YES $tcpd "$MW_PLAIN" "$MW_IMAPLOGIN" "$MW_IMAPD" Maildir >>"$MW_DIR/plain.log" 2>&1 &
p=$!
IMAP_TLS=1 IMAP_STARTTLS=NO $tcpd "$MW_TLS" /usr/bin/couriertls -server -tcpd "$MW_IMAPLOGIN" "$MW_IMAPD" Maildir >>"$MW_DIR/tls.log" 2>&1 &
servers="$a $p $!"
watch
"#
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .process_group(0)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("watchdog.log")).unwrap())
            .spawn()
            .map_err(|e| format!("spawning the watchdog (unshare): {e}"))
    }

    fn courier_user(&self, n: u32) -> InteropUser {
        assert!(
            n <= COURIER_USERS,
            "more than {COURIER_USERS} Courier users in one test binary"
        );
        let name = format!("mw{n}");
        // Made now, not at the start: the user's mail starts empty whatever
        // happened before.
        let home = self.dir.path().join("home").join(&name);
        let maildir = home.join("Maildir");
        for d in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(d)).unwrap();
        }
        for d in [&home, &maildir] {
            std::fs::set_permissions(d, PermissionsExt::from_mode(0o700)).unwrap();
        }
        chown_tree(&home, MAIL_UID, MAIL_GID);
        InteropUser {
            name,
            password: self.passwords[n as usize - 1].clone(),
        }
    }
}

impl Drop for Interop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The watchdog's shell functions. `$servers` are the servers' process
/// ids; `watch` waits until the test binary ($MW_TEST) or a server ends,
/// then stops them all and, once the tests are over or on SIGTERM (sent
/// when an owned instance is dropped), removes the directory. A server that
/// died on its own leaves the directory for the failure message.
const WATCHDOG_COMMON: &str = r#"
servers=
# Zombies count as gone: where pid 1 does not reap, orphans stay zombies.
running() { local s; { read -r _ _ s _ </proc/"$1"/stat; } 2>/dev/null && [ "$s" != Z ]; }
alive() { for p in $servers; do running "$p" || return 1; done; }
any_alive() { for p; do running "$p" && return 0; done; return 1; }
descendants() {
  local p c
  for p; do
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done
  done
}
# The servers' sessions too: a session still writing would keep the
# directory from being removed.
halt() {
  [ -n "$servers" ] || return 0
  all="$servers $(descendants $servers)"
  kill $servers 2>/dev/null
  i=0
  while [ $i -lt 50 ] && any_alive $all; do sleep 0.1; i=$((i + 1)); done
  kill -KILL $all 2>/dev/null
  wait
}
clean() { [ -f "$MW_DIR/.mailwarden-interop" ] && rm -rf "$MW_DIR"; }
trap 'trap "" TERM; halt; clean; exit 0' TERM
watch() {
  while running "$MW_TEST" && alive; do sleep 0.5; done
  halt
  running "$MW_TEST" || clean
}
"#;

/// Whether an IMAP server greets on `port` within a second: briefly, so
/// that something else holding the port cannot stall the start.
fn greets(host: &str, port: u16) -> bool {
    let Ok(addr) = format!("{host}:{port}").parse() else {
        return false;
    };
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let mut start = [0u8; 4];
    sock.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
        && sock.read_exact(&mut start).is_ok()
        && &start == b"* OK"
}

fn check_installed(flavour: Flavour) {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid());
    assert!(
        uid.is_ok_and(|u| u == 0),
        "{flavour}: the interoperability servers start as root (they drop privileges \
         themselves): run these tests as root"
    );
    let needed: &[&str] = if flavour.is_cyrus() {
        &[
            CYRUS_MASTER,
            CYRUS_CTL_CYRUSDB,
            CYRUS_IMAPD,
            "/usr/sbin/saslpasswd2",
        ]
    } else {
        &[
            COURIER_AUTHDAEMOND,
            COURIER_IMAPLOGIN,
            COURIER_IMAPD,
            "/usr/sbin/couriertcpd",
            "/usr/bin/couriertls",
            "/usr/sbin/makeuserdb",
        ]
    };
    let missing: Vec<&&str> = needed.iter().filter(|p| !Path::new(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "{flavour}: missing {missing:?}: {INSTALL_HINT}"
    );
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for name in [
        "watchdog.log",
        "master.log",
        "authdaemond.log",
        "plain.log",
        "tls.log",
    ] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            let text = text.trim();
            if !text.is_empty() {
                out.push_str(&format!("== {name}\n{text}\n"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("(the server logged nothing)\n");
    }
    out
}

/// Two distinct free ports. The listeners are dropped just before the
/// server binds; another process may take a port in between, which is why
/// a start is retried.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind((HOST, 0)).unwrap();
    let b = TcpListener::bind((HOST, 0)).unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// A self-signed leaf certificate and its key (PEM) for 127.0.0.1 and
/// localhost, CA:FALSE as `ca_file` wants it.
fn certificate() -> (String, String) {
    use rcgen::{CertificateParams, DnType, IsCa, KeyPair, SanType};
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(HOST.parse().unwrap()));
    params.distinguished_name.push(DnType::CommonName, HOST);
    params.is_ca = IsCa::ExplicitNoCa;
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A password no other run shares.
fn password(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("pw-{name}-{}-{nanos}", std::process::id())
}

fn saslpasswd2(dir: &Path, user: &InteropUser) -> Result<(), String> {
    let mut child = Command::new("saslpasswd2")
        .args(["-p", "-c", "-u", "localhost", "-f"])
        .arg(dir.join("sasldb2"))
        .arg(&user.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("saslpasswd2: {e} ({INSTALL_HINT})"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(user.password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "saslpasswd2 {}: {}",
            user.name,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// SHA-512 crypt hashes (`$6$`), as userdb's `systempw` takes them.
fn sha512_crypt(passwords: &[String]) -> Result<Vec<String>, String> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("openssl: {e}"))?;
    let input: String = passwords.iter().map(|p| format!("{p}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hashes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if out.status.success() && hashes.len() == passwords.len() {
        Ok(hashes)
    } else {
        Err(format!(
            "openssl passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// (uid, gid) of a system user, from /etc/passwd.
fn passwd_entry(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let fields: Vec<&str> = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)?;
    Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// `s` as an IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---- mailwarden against a user of a server

impl Interop {
    /// Every mailbox of `user`'s personal namespace (its name decoded from
    /// modified UTF-7) with its messages as (Message-ID, sorted flags),
    /// each mailbox opened read-only. Levels that cannot be opened
    /// (`\Noselect`) and folders of other users' and shared namespaces
    /// are left out; `\Recent` is the session's, not the message's, and is
    /// left out too.
    pub fn snapshot(&self, user: &InteropUser) -> Snapshot {
        let mut c = self.login(user, Port::Plain);
        let fail = |what: &str, e: &dyn fmt::Debug| -> ! {
            panic!("{} snapshot of {}: {what}: {e:?}", self.flavour, user.name)
        };
        let namespaces = c.namespaces().unwrap_or_else(|e| fail("NAMESPACE", &e));
        let listed = c.list().unwrap_or_else(|e| fail("LIST", &e));
        let mut out = Snapshot::new();
        for entry in listed {
            if entry.has("\\Noselect")
                || entry.has("\\NonExistent")
                || !is_personal(&entry.name, &namespaces)
            {
                continue;
            }
            let examine = format!("EXAMINE {}", quote(&entry.name));
            let status = c.command(&examine).unwrap_or_else(|e| fail(&examine, &e));
            if !status.is_ok() {
                fail(&examine, &status);
            }
            let exists: usize = status
                .untagged
                .iter()
                .find_map(|l| l.strip_suffix(" EXISTS")?.parse().ok())
                .unwrap_or_else(|| fail(&examine, &status));
            let mut messages = Vec::new();
            if exists > 0 {
                let fetch = "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])";
                let reply = c.command(fetch).unwrap_or_else(|e| fail(fetch, &e));
                if !reply.is_ok() {
                    fail(fetch, &reply);
                }
                for line in reply.untagged.iter().filter(|l| l.contains(" FETCH (")) {
                    messages.push(fetched(line).unwrap_or_else(|| fail(fetch, line)));
                }
                assert_eq!(
                    messages.len(),
                    exists,
                    "{}: {}: FETCH answers {:?}",
                    self.flavour,
                    entry.name,
                    reply.untagged
                );
            }
            messages.sort();
            // Names as mailwarden shows them: decoded from modified UTF-7.
            let name = if entry.name.contains('&') {
                utf7_imap::decode_utf7_imap(entry.name)
            } else {
                entry.name
            };
            out.insert(name, messages);
        }
        let _ = c.command("LOGOUT");
        out
    }

    /// mailwarden configured for `user` with these rules, connecting as
    /// `kind` says (STARTTLS and implicit TLS checking the certificate
    /// against [`Interop::ca_file`]), with a state folder of its own.
    /// `extra` is added to the account's settings (indented by four).
    pub fn agent(&self, user: &InteropUser, kind: Port, extra: &str, rules: &str) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("mailwarden-agent-")
            .tempdir()
            .unwrap();
        let tls = match kind {
            Port::Plain => "none".to_string(),
            Port::StartTls => format!("starttls\n    ca_file: {:?}", self.ca_file()),
            Port::Tls => format!("implicit\n    ca_file: {:?}", self.ca_file()),
        };
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "version: 1\naccounts:\n  test:\n    host: \"{}\"\n    port: {}\n    tls: {tls}\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n{extra}rules:\n{rules}",
                self.host,
                self.port(kind),
                user.name
            ),
        )
        .unwrap();
        Agent {
            config,
            password: user.password.clone(),
            dir,
        }
    }
}

/// (Message-ID, sorted flags) of one FETCH answer with FLAGS and the
/// Message-ID header field (its literal inline).
fn fetched(line: &str) -> Option<(String, Vec<String>)> {
    let flags = line.split_once("FLAGS (")?.1.split_once(')')?.0;
    let mut flags: Vec<String> = flags
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_string)
        .collect();
    flags.sort();
    let lower = line.to_ascii_lowercase();
    let at = lower.find("message-id:")? + "message-id:".len();
    let id = line[at..].split("\r\n").next()?.trim().to_string();
    Some((id, flags))
}

/// mailwarden with a configuration for one user and a state folder
/// (`XDG_STATE_HOME`) of its own; both go when it is dropped.
pub struct Agent {
    pub config: PathBuf,
    password: String,
    dir: tempfile::TempDir,
}

impl Agent {
    fn command(&self, args: &[&str], with_config: bool) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
        c.args(args);
        if with_config {
            c.arg("-c").arg(&self.config);
        }
        c.env("MAILWARDEN_TEST_PASSWORD", &self.password)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env_remove("MAILWARDEN_LOG");
        c
    }

    /// `mailwarden <args> -c <config>`, run to its end.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args, true).output().unwrap()
    }

    /// `mailwarden <args>` without a configuration (`log`).
    pub fn bare(&self, args: &[&str]) -> std::process::Output {
        self.command(args, false).output().unwrap()
    }

    /// `mailwarden watch`, logging at debug level.
    pub fn watch(&self) -> Watcher {
        let mut child = self
            .command(&["watch"], true)
            .env("MAILWARDEN_LOG", "mailwarden=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in io::BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Watcher { child, lines }
    }
}

/// A running `mailwarden watch`; its standard error is kept, each line
/// with when it came. Dropped, it is killed.
pub struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Watcher {
    /// When the first line containing `needle` came after `since`, waiting
    /// for one at most `within`.
    pub fn wait_log(&self, needle: &str, since: Instant, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|(at, l)| *at >= since && l.contains(needle))
                .map(|(at, _)| *at);
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lines it logged so far.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Everything it logged so far, for failure messages.
    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// SIGTERM, then its exit code, waiting at most 10 s (it must stop
    /// within 2 s).
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- A tiny blocking IMAP client

/// A tagged command's outcome: the untagged lines before it (without
/// `* `, literals inline) and the tagged status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub untagged: Vec<String>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The rest of the tagged line.
    pub text: String,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// The untagged responses of one kind (`NAMESPACE`, `LIST`, ...), each
    /// without its keyword.
    pub fn data(&self, kind: &str) -> Vec<&str> {
        self.untagged
            .iter()
            .filter_map(|l| {
                let (word, rest) = l.split_once(' ').unwrap_or((l, ""));
                word.eq_ignore_ascii_case(kind).then_some(rest)
            })
            .collect()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Just enough IMAP for the harness's admin steps and the smoke tests:
/// commands one at a time, answers read line by line, literals inline,
/// every read bounded by a timeout.
pub struct Client {
    stream: Stream,
    /// Read but not yet consumed.
    buf: Vec<u8>,
    tags: u32,
    /// The tag of a running IDLE.
    idling: Option<String>,
    /// The server's greeting line.
    pub greeting: String,
}

fn io_error(e: impl fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let sock = TcpStream::connect((host, port))?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(sock)
}

/// TLS over `sock`, trusting only the certificates in `ca_file`; the
/// handshake (and so the certificate check) happens here.
fn handshake(sock: TcpStream, host: &str, ca_file: &Path) -> io::Result<Stream> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(io_error)? {
        roots.add(cert.map_err(io_error)?).map_err(io_error)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(io_error)?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io_error)?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(Stream::Tls(Box::new(tls)))
}

impl Client {
    /// Connects in clear text and reads the greeting.
    pub fn plain(host: &str, port: u16) -> io::Result<Client> {
        Client::greeted(Stream::Plain(connect(host, port)?))
    }

    /// Connects with implicit TLS and reads the greeting.
    pub fn tls(host: &str, port: u16, ca_file: &Path) -> io::Result<Client> {
        Client::greeted(handshake(connect(host, port)?, host, ca_file)?)
    }

    fn greeted(stream: Stream) -> io::Result<Client> {
        let mut client = Client {
            stream,
            buf: Vec::new(),
            tags: 0,
            idling: None,
            greeting: String::new(),
        };
        client.greeting = client.read_line()?;
        Ok(client)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// STARTTLS, then the handshake; fails if the server refuses.
    pub fn starttls(mut self, host: &str, ca_file: &Path) -> io::Result<Client> {
        let reply = self.command("STARTTLS")?;
        if !reply.is_ok() {
            return Err(io_error(format!("STARTTLS refused: {reply:?}")));
        }
        // Anything read past the OK came before TLS: an injection.
        if !self.buf.is_empty() {
            return Err(io_error("data after the STARTTLS OK"));
        }
        let Stream::Plain(sock) = self.stream else {
            return Err(io_error("STARTTLS inside TLS"));
        };
        Ok(Client {
            stream: handshake(sock, host, ca_file)?,
            buf: Vec::new(),
            tags: self.tags,
            idling: None,
            greeting: self.greeting,
        })
    }

    /// Sends one command (without tag or CRLF) and reads up to its tagged
    /// answer.
    pub fn command(&mut self, text: &str) -> io::Result<Reply> {
        let tag = self.send(text)?;
        self.answer(&tag)
    }

    /// LOGIN with quoted strings.
    pub fn login(&mut self, name: &str, password: &str) -> io::Result<Reply> {
        self.command(&format!("LOGIN {} {}", quote(name), quote(password)))
    }

    /// APPENDs `message` with a synchronizing literal (Courier has no
    /// LITERAL+).
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> io::Result<Reply> {
        self.append_with(mailbox, &[], None, message)
    }

    /// Like [`Client::append`], with flags (`\\Seen`, `$Invoice`) and an
    /// arrival time (INTERNALDATE), as the scenario's messages have them.
    pub fn append_with(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        arrival: Option<DateTime<Utc>>,
        message: &[u8],
    ) -> io::Result<Reply> {
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(" "))
        };
        let date = arrival
            .map(|t| format!(" \"{}\"", t.format("%d-%b-%Y %H:%M:%S +0000")))
            .unwrap_or_default();
        let tag = self.send(&format!(
            "APPEND {}{flags}{date} {{{}}}",
            quote(mailbox),
            message.len()
        ))?;
        let line = self.read_line()?;
        if !line.starts_with('+') {
            return Ok(tagged(&line, &tag).unwrap_or_else(|| Reply {
                untagged: vec![line.clone()],
                status: "BAD".into(),
                text: "no continuation".into(),
            }));
        }
        self.stream.write_all(message)?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()?;
        self.answer(&tag)
    }

    /// Starts IDLE and returns the server's first line (`+ idling` or the
    /// refusal); then [`Client::read_line`] reads what it announces.
    pub fn start_idle(&mut self) -> io::Result<String> {
        self.idling = Some(self.send("IDLE")?);
        self.read_line()
    }

    /// Ends IDLE: DONE, then the tagged answer.
    pub fn done_idle(&mut self) -> io::Result<Reply> {
        let tag = self
            .idling
            .take()
            .ok_or_else(|| io_error("DONE without IDLE"))?;
        self.stream.write_all(b"DONE\r\n")?;
        self.stream.flush()?;
        self.answer(&tag)
    }

    /// The capabilities the server lists now, upper-cased.
    pub fn capabilities(&mut self) -> io::Result<Vec<String>> {
        let reply = self.command("CAPABILITY")?;
        let line = reply
            .data("CAPABILITY")
            .first()
            .ok_or_else(|| io_error(format!("no CAPABILITY in {reply:?}")))?
            .to_string();
        Ok(line
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect())
    }

    /// The next response line if one arrives within `wait`, `None` if
    /// none does. Plain connections only: a TLS stream cut by a read
    /// timeout is not to be trusted afterwards.
    pub fn read_line_within(&mut self, wait: Duration) -> io::Result<Option<String>> {
        if !self.buf.windows(2).any(|w| w == b"\r\n") {
            let Stream::Plain(sock) = &self.stream else {
                return Err(io_error("read_line_within needs a plain connection"));
            };
            let sock = sock.try_clone()?;
            sock.set_read_timeout(Some(wait))?;
            let filled = self.fill();
            sock.set_read_timeout(Some(IO_TIMEOUT))?;
            match filled {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        self.read_line().map(Some)
    }

    /// Every mailbox LIST "" "*" shows.
    pub fn list(&mut self) -> io::Result<Vec<Listed>> {
        let reply = self.command(r#"LIST "" "*""#)?;
        if !reply.is_ok() {
            return Err(io_error(format!("LIST: {reply:?}")));
        }
        reply
            .data("LIST")
            .into_iter()
            .map(|l| Listed::parse(l).ok_or_else(|| io_error(format!("LIST answer {l:?}"))))
            .collect()
    }

    /// The prefixes of the personal, other users' and shared namespaces
    /// (RFC 2342), in that order.
    pub fn namespaces(&mut self) -> io::Result<[Vec<String>; 3]> {
        let reply = self.command("NAMESPACE")?;
        let line = reply
            .data("NAMESPACE")
            .first()
            .ok_or_else(|| io_error(format!("no NAMESPACE in {reply:?}")))?
            .to_string();
        namespace_prefixes(&line).ok_or_else(|| io_error(format!("NAMESPACE answer {line:?}")))
    }

    fn send(&mut self, text: &str) -> io::Result<String> {
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        self.stream
            .write_all(format!("{tag} {text}\r\n").as_bytes())?;
        self.stream.flush()?;
        Ok(tag)
    }

    fn answer(&mut self, tag: &str) -> io::Result<Reply> {
        let mut untagged = Vec::new();
        // Bounded: no test reads more than a few thousand lines.
        for _ in 0..1_000_000 {
            let line = self.read_line()?;
            if let Some(mut reply) = tagged(&line, tag) {
                reply.untagged = untagged;
                return Ok(reply);
            }
            match line.strip_prefix("* ") {
                Some(rest) => untagged.push(rest.to_string()),
                None => untagged.push(line),
            }
        }
        Err(io_error(format!("no tagged answer for {tag}")))
    }

    /// One response line without its CRLF, with any literals it announces
    /// read into it.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            let part = self.read_until_crlf()?;
            line.extend_from_slice(&part);
            match literal_length(&part) {
                Some(n) => line.extend_from_slice(&self.read_exact_bytes(n)?),
                None => break,
            }
        }
        let text = String::from_utf8_lossy(&line);
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_until_crlf(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            self.fill()?;
        }
    }

    fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// The reply if `line` is the tagged answer for `tag`.
fn tagged(line: &str, tag: &str) -> Option<Reply> {
    let rest = line.strip_prefix(tag)?.strip_prefix(' ')?;
    let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Reply {
        untagged: Vec::new(),
        status: status.to_ascii_uppercase(),
        text: text.to_string(),
    })
}

/// `n` if the line ends by announcing a literal `{n}` (or `{n+}`).
fn literal_length(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let inner = text.strip_suffix('}')?;
    let (_, n) = inner.rsplit_once('{')?;
    n.trim_end_matches('+').parse().ok()
}

/// One LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// As the server wrote them (`\HasNoChildren`, `\Trash`).
    pub attributes: Vec<String>,
    /// `None`: NIL, a flat server.
    pub separator: Option<char>,
    pub name: String,
}

impl Listed {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    /// `(attrs) "sep" name`, the name an atom, a quoted string or a literal
    /// (which [`Client::read_line`] has put inline after its CRLF).
    pub fn parse(line: &str) -> Option<Listed> {
        let rest = line.strip_prefix('(')?;
        let (attrs, rest) = rest.split_once(')')?;
        let rest = rest.trim_start();
        let (separator, rest) = if let Some(r) = rest.strip_prefix("NIL") {
            (None, r)
        } else {
            let (sep, r) = unquote(rest)?;
            (Some(sep.chars().next()?), r)
        };
        let rest = rest.trim_start();
        let name = if rest.starts_with('"') {
            unquote(rest)?.0
        } else if rest.starts_with('{') {
            rest.split_once("\r\n")?.1.to_string()
        } else {
            rest.trim_end().to_string()
        };
        Some(Listed {
            attributes: attrs.split_whitespace().map(str::to_string).collect(),
            separator,
            name,
        })
    }
}

/// A quoted string at the start of `s`, unescaped, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 2..])),
            c => out.push(c),
        }
    }
    None
}

/// The namespace prefixes of a NAMESPACE answer: three groups, each NIL or
/// a list of `(prefix separator ...)` descriptors.
pub fn namespace_prefixes(line: &str) -> Option<[Vec<String>; 3]> {
    let mut out: [Vec<String>; 3] = Default::default();
    let (mut kind, mut depth, mut wants_prefix) = (0usize, 0u32, false);
    let mut rest = line.trim();
    while !rest.is_empty() && kind < 3 {
        if let Some(r) = rest.strip_prefix('(') {
            depth += 1;
            // A descriptor's first string is its prefix.
            wants_prefix = depth == 2;
            rest = r;
        } else if let Some(r) = rest.strip_prefix(')') {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                kind += 1;
            }
            rest = r;
        } else if let Some(r) = rest.strip_prefix("NIL") {
            if depth == 0 {
                kind += 1;
            }
            wants_prefix = false;
            rest = r;
        } else if rest.starts_with('"') {
            let (text, r) = unquote(rest)?;
            if std::mem::take(&mut wants_prefix) {
                out[kind].push(text);
            }
            rest = r;
        } else if let Some(r) = rest.strip_prefix(' ') {
            rest = r;
        } else {
            // An extension's atom.
            let end = rest.find([' ', '(', ')']).unwrap_or(rest.len());
            wants_prefix = false;
            rest = &rest[end..];
        }
    }
    (kind == 3).then_some(out)
}

/// Whether `name` belongs to the personal namespace: INBOX always does;
/// any other name to the namespace with the longest prefix it starts with.
pub fn is_personal(name: &str, namespaces: &[Vec<String>; 3]) -> bool {
    if name.eq_ignore_ascii_case("INBOX") {
        return true;
    }
    let longest = |prefixes: &Vec<String>| {
        prefixes
            .iter()
            .filter(|p| name.starts_with(p.as_str()))
            .map(String::len)
            .max()
    };
    match longest(&namespaces[0]) {
        Some(personal) => namespaces[1..]
            .iter()
            .filter_map(longest)
            .all(|other| other < personal),
        None => false,
    }
}
