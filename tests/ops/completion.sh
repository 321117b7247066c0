#!/bin/bash
# completion.sh BUILD_DIR - completion/connaudit, sourced in bash with
# bash-completion's helpers and called as bash calls it (COMP_WORDS,
# COMP_CWORD): commands, each command's options, service names from the
# services file, values of options; and it agrees with the command's own
# list of commands, options and built-in services. Needs no root.
set -u
. "$(dirname "$0")/lib.sh"
ops_init completion "$@"

COMPLETION=$OPS_ROOT/completion/connaudit
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
CONF=$TMP/services.conf
NS=connaudit-ops-$$-completion
NS_MADE=

suite_cleanup() {
	[ -z "$NS_MADE" ] || ip netns del "$NS"
}

# complete WORD...: the candidates, sorted, on one line, for the command
# line connaudit WORD..., the last WORD being the one completed.
complete_line() {
	CONNAUDIT_CONFIG=$CONF bash --norc --noprofile -c '
		. "$1" && . "$2" || exit 1
		shift 2
		COMP_WORDS=(connaudit "$@")
		COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		_connaudit connaudit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd " "' _ "$BASH_COMPLETION" "$COMPLETION" "$@"
}

# has LINE WORD...: every WORD is a word of LINE.
has() {
	local line=" $1 " w

	shift
	for w; do [[ $line == *" $w "* ]] || return 1; done
}

# lacks LINE WORD...: no WORD is a word of LINE.
lacks() {
	local line=" $1 " w

	shift
	for w; do [[ $line != *" $w "* ]] || return 1; done
}

check_commands() {
	local got

	got=$(complete_line '')
	check "the commands: $got" has "$got" load unload status count dump top metrics
	check_eq "st completes to status" status "$(complete_line st)"
	check_eq "after an option and its value, still the command" metrics \
		"$(complete_line --pin-dir /tmp met)"
	check "help COMMAND: the commands" has "$(complete_line help '')" load status top
	check "--version at the top" has "$(complete_line --v)" --version
}

check_options() {
	local got

	got=$(complete_line load --)
	check "load's options: $got" has "$got" --cgroup --prefixes --max-peers --max-sessions \
		--ports --all-ports --group --mode --replace --quiet --pin-dir
	check "... and not other commands' (--json, --watch)" lacks "$got" --json --watch
	got=$(complete_line status --)
	check "status: $got" has "$got" --json --watch --pin-dir
	check "... not load's" lacks "$got" --cgroup --max-peers
	check_eq "count --p: --peer --pin-dir" "--peer --pin-dir" "$(complete_line count --p)"
	check "load --group: group names" has "$(complete_line load --group ro)" root
	check_eq "load --mode: the usual modes" "0640 0644" "$(complete_line load --mode '')"
	check_eq "no candidates for a value of -n" "" "$(complete_line top SMTP -n '')"
	if [ "$(id -u)" -eq 0 ] && ip netns add "$NS"; then
		NS_MADE=1
		check_eq "--netns NAME: the names in /run/netns" "$NS" \
			"$(complete_line count --netns "${NS%-*}")"
	else
		skip "--netns NAME: making a namespace needs root"
	fi
	mkdir "$TMP/pins.d"
	check_eq "--pin-dir: directories" "$TMP/pins.d" "$(complete_line status --pin-dir "$TMP/pins")"
}

check_services() {
	local got other=$TMP/other.conf

	printf '# a comment\nSubmission 587\nMine\t2525 # trailing comment\r\n\n' > "$CONF"
	printf 'Elsewhere 2626\n' > "$other"
	got=$(complete_line count /24 '')
	check "count CIDR SERVICE: the built-ins and \$CONNAUDIT_CONFIG's names: $got" \
		has "$got" SMTP Control ECStream ECCluster Submission Mine
	check "... no comment words" lacks "$got" '#' a comment
	check_eq "count /24 Sub: Submission" Submission "$(complete_line count /24 Sub)"
	check_eq "top's SERVICE too" "Mine" "$(complete_line top Mi)"
	check_eq "--config FILE on the line wins" Elsewhere \
		"$(complete_line count --config "$other" /24 Else)"
	check "the first argument of count is a CIDR" has "$(complete_line count '')" /24 /0
	check_eq "nothing after the last argument" "" "$(complete_line count /24 SMTP '')"
}

# help_options CMD: the options `connaudit CMD --help` lists (but -h), sorted.
help_options() {
	"$BIN" "$1" --help | sed -n '/^Options:/,/^$/p' |
		grep -oE '(^|[ ,;(])--[a-z-]+|^  -[a-z]' | sed 's/^[ ,;(]*//' | grep -vx -- -h |
		sort -u | paste -sd ' '

}

# The completion's lists against the command's own words.
check_agrees() {
	local cmd cmds builtins

	cmds=$("$BIN" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z]\+\) .*/\1/p' | paste -sd ' ')
	check_eq "its commands are those of connaudit --help" "$cmds" \
		"$(bash -c '. "$1"; echo $_connaudit_commands' _ "$COMPLETION")"
	for cmd in $cmds; do
		check_eq "$cmd: its options are those of connaudit $cmd --help" \
			"$(help_options "$cmd")" \
			"$(bash -c '. "$1"; _connaudit_options "$2"' _ "$COMPLETION" "$cmd" |
				tr ' ' '\n' | sort | paste -sd ' ')"
	done
	builtins=$("$BIN" count /0 NoSuchService --config /dev/null 2>&1 |
		sed -n 's/.*known services: //p' | tr -d ,)
	check_eq "its built-in services are the command's" "$builtins" \
		"$(bash -c '. "$1"; echo $_connaudit_builtin_services' _ "$COMPLETION")"
}

if [ ! -r "$BASH_COMPLETION" ]; then
	skip "bash completion: $BASH_COMPLETION is missing (Debian package bash-completion)"
	summary
	exit
fi
check_commands
check_options
check_services
check_agrees
summary
