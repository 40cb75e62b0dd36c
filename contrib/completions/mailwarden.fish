# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mailwarden_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_mailwarden_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mailwarden_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mailwarden_using_subcommand
    set -l cmd (__fish_mailwarden_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mailwarden -n "__fish_mailwarden_needs_command" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_needs_command" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -s V -l version -d 'Print version'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "check" -d 'Validate the configuration; print every error as FILE:LINE:COL'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "test" -d 'Evaluate the rules on message files, offline'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "run" -d 'One pass over the mail now in the rules\' mailboxes'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "watch" -d 'Daemon: a pass, then follow new mail by IDLE or polling'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "log" -d 'Show the action journal: what moved where, and why'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "undo" -d 'Take back journaled actions, newest first'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "import" -d 'Write rules from a Gmail filter export or a Sieve script'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "status" -d 'How each account of `watch` is doing, from the state file'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "auth" -d 'One-time OAuth2 consent for an account; stores its refresh token'
complete -c mailwarden -n "__fish_mailwarden_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand check" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand check" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand check" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l now -d 'The time rules compare against [default: the current time]' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l received -d 'Arrival time of every message [default: its Date header; in a Maildir, the file\'s mtime]' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l format -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l account -d 'Evaluate as this account [default: the only, or first, account]' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l mailbox -d 'Evaluate as if the messages were in this mailbox' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l max-size -d 'Larger files are reported, not read' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -l explain -d 'Show which conditions of each rule held'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand test" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l account -d 'Only this account' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l mailbox -d 'Only this source mailbox' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l format -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l now -d 'The time rules compare against [default: the current time]' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l state -d 'State file [default: $XDG_STATE_HOME/mailwarden/state.db]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l dry-run -d 'Print the plan and change nothing (mailboxes are opened read-only)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -l no-limit -d 'Go ahead even where a pass acts on more messages than the account\'s max_actions (check them with --dry-run first)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand run" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand watch" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand watch" -l state -d 'State file [default: $XDG_STATE_HOME/mailwarden/state.db]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand watch" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics; a port alone listens on 127.0.0.1' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand watch" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand watch" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l since -d 'Only entries from this time on' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l rule -d 'Only entries of this rule' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l format -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l state -d 'State file [default: $XDG_STATE_HOME/mailwarden/state.db]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l prune-before -d 'Delete the entries from before this time (or this long ago: 400d) instead of showing any; undo can no longer take those back, and actions still unfinished are kept' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand log" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l since -d 'Only actions from this time on' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l rule -d 'Only actions of this rule' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l account -d 'Only this account' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l state -d 'State file [default: $XDG_STATE_HOME/mailwarden/state.db]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -l dry-run -d 'Print what would be taken back and change nothing'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand undo" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and not __fish_seen_subcommand_from gmail sieve help" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and not __fish_seen_subcommand_from gmail sieve help" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and not __fish_seen_subcommand_from gmail sieve help" -f -a "gmail" -d 'Gmail\'s filter export (Settings, Filters and Blocked Addresses, Export)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and not __fish_seen_subcommand_from gmail sieve help" -f -a "sieve" -d 'A Sieve script (RFC 5228)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and not __fish_seen_subcommand_from gmail sieve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from gmail" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from gmail" -l rules-only -d 'Write only the rules, to paste under `rules:`, not a whole configuration'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from gmail" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from sieve" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from sieve" -l rules-only -d 'Write only the rules, to paste under `rules:`, not a whole configuration'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from sieve" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "gmail" -d 'Gmail\'s filter export (Settings, Filters and Blocked Addresses, Export)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "sieve" -d 'A Sieve script (RFC 5228)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand status" -l format -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand status" -l state -d 'State file [default: $XDG_STATE_HOME/mailwarden/state.db]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand status" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand status" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand completions" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -s c -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]' -r -F
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -l timeout -d 'How long to wait for the consent' -r
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -l log-format -d 'Log lines (standard error) as text or as one JSON object each' -r -f -a "text\t''
json\t''"
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -l device -d 'Device flow: enter a code on any device\'s browser (where the provider has one)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -l browser -d 'Browser flow: open a URL in a browser on this machine, which comes back to 127.0.0.1'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand auth" -s h -l help -d 'Print help'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "check" -d 'Validate the configuration; print every error as FILE:LINE:COL'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "test" -d 'Evaluate the rules on message files, offline'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "run" -d 'One pass over the mail now in the rules\' mailboxes'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "watch" -d 'Daemon: a pass, then follow new mail by IDLE or polling'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "log" -d 'Show the action journal: what moved where, and why'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "undo" -d 'Take back journaled actions, newest first'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "import" -d 'Write rules from a Gmail filter export or a Sieve script'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "status" -d 'How each account of `watch` is doing, from the state file'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "auth" -d 'One-time OAuth2 consent for an account; stores its refresh token'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and not __fish_seen_subcommand_from check test run watch log undo import status completions auth help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and __fish_seen_subcommand_from import" -f -a "gmail" -d 'Gmail\'s filter export (Settings, Filters and Blocked Addresses, Export)'
complete -c mailwarden -n "__fish_mailwarden_using_subcommand help; and __fish_seen_subcommand_from import" -f -a "sieve" -d 'A Sieve script (RFC 5228)'
