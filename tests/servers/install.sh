#!/bin/bash
# Installs what the interoperability tests (tests/interop.rs) need to start Cyrus IMAP 3.6 and
# Courier-IMAP 5 from Debian's packages beside Dovecot. Run as root; idempotent; quiet; fails loudly.
#
# cyrus-imapd, courier-imap and dovecot-imapd conflict as packages (each provides imap-server, and
# installing one removes the others), so the two daemons are unpacked with `dpkg -x` under /opt and
# never registered with dpkg; their support packages are installed normally. Nothing is configured:
# the test support writes every configuration into its own temporary directory.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CYRUS=/opt/cyrus-imapd
COURIER=/opt/courier-imap
# What the test support runs, beyond the two unpacked daemons.
SUPPORT="cyrus-common sasl2-bin libsasl2-modules-db courier-base courier-authdaemon courier-authlib-userdb openssl mount util-linux"
COMMANDS="/usr/lib/cyrus/bin/master /usr/lib/cyrus/bin/ctl_cyrusdb saslpasswd2 couriertcpd couriertls
  makeuserdb /usr/lib/courier/courier-authlib/authdaemond openssl unshare mount dovecot"

have_all() {
  [ -x "$CYRUS/usr/lib/cyrus/bin/imapd" ] && [ -x "$COURIER/usr/bin/imapd" ] \
    && [ -x "$COURIER/usr/lib/courier/courier/imaplogin" ] || return 1
  for c in $COMMANDS; do command -v "$c" >/dev/null || return 1; done
}

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
have_all && exit 0

apt_quiet() {
  # apt's own output is noise when all goes well, and the whole story when it does not.
  local log
  log=$(mktemp)
  if ! apt-get "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

# The caller has usually refreshed the package lists; refresh them once if that was not enough.
install_packages() { apt_quiet install -y -qq --no-install-recommends "$@"; }
install_packages $SUPPORT || { apt_quiet update -qq && install_packages $SUPPORT; }
# The project's own tests need Dovecot; it stays installed (only the two daemons are unpacked).
command -v dovecot >/dev/null || install_packages dovecot-imapd

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt_quiet -o APT::Sandbox::User=root download cyrus-imapd courier-imap)

unpack() { # package directory expected-version-prefix
  local deb version
  deb=$(ls "$work"/"$1"_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  case $version in
    "$3"*) ;;
    *) echo "install.sh: warning: $1 $version is not the $3 the interop tests were written against" >&2 ;;
  esac
  rm -rf "$2"
  mkdir -p "$2"
  dpkg -x "$deb" "$2"
}
unpack cyrus-imapd "$CYRUS" 3.6
unpack courier-imap "$COURIER" 5.

have_all || { echo "install.sh: something is still missing after installing" >&2; exit 1; }
