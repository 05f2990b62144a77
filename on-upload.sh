#!/usr/bin/env bash
# PowerView hook for SFTPGo (custom actions upload, rename, mkdir; optionally post-disconnect).
#
# SFTPGo clears the environment and sets only SFTPGO_ACTION* before calling this script, and
# kills it after 30 s. So the script finds everything from its own folder (symlinks resolved):
# the project's .env, the virtualenv (POWERVIEW_VENV, default <project>/envs/powerview).
#
# It does two things and returns in a few milliseconds, whatever the load:
#   1. records the event durably: the SFTPGO_ACTION* variables (SFTPGO_CONNECTION_* for the
#      post-disconnect hook; nothing else: that hook keeps SFTPGo's environment), NUL-separated, in
#      <spool>/incoming/<id>.event (written in <spool>/tmp/, synced, then renamed);
#   2. starts the worker (python -m powerview.cli.worker run) detached, unless one runs: it takes
#      the worker lock (flock) and hands the locked descriptor to the worker. First it checks
#      that the virtualenv has what requirements.txt pins (below): if not, it says so on stderr
#      and in uploads.log, with the fix, and starts nothing (the event waits in the spool).
# The worker checks each event (powerview/operations/hook.py: paths, names; refused or ignored events
# run nothing), logs it in uploads.log and queues its job. The script always exits 0: SFTPGo
# never fails an upload for a reason of ours. Docs: docs/integration-sftpgo-grafana.md

set -u
umask 027
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8 TZ=UTC

self=$(readlink -f -- "${BASH_SOURCE[0]}" 2>/dev/null) || self=${BASH_SOURCE[0]}
project=$(dirname -- "$self")

# setting NAME DEFAULT: the environment wins, then the last NAME=... line of <project>/.env.
# The hook and Python (python-dotenv, interpolate=False) read .env by one documented rule
# (docs/utilisation-parseur.md, "Le fichier .env"): NAME=value, optionally `export ` before it,
# the value bare, in single or in double quotes, a ` # comment` after it; no interpolation.
# The folders the hook reads must be plain absolute paths (plain(), below): a value the rule
# does not read the same way in both is refused by both.
setting() {
    local name=$1 value=${2-} line rest quote='' re
    if [[ -n ${!name:-} ]]; then
        printf '%s' "${!name}"
        return
    fi
    re="^[[:space:]]*(export[[:space:]]+)?('$name'|$name)[[:space:]]*=[[:space:]]*(.*)$"
    if [[ -r $project/.env ]]; then
        while IFS= read -r line || [[ -n $line ]]; do
            line=${line%$'\r'}
            if [[ -n $quote ]]; then   # inside another value's multi-line quotes: skip to their end
                [[ $line == *"$quote"* ]] && quote=''
                continue
            fi
            if [[ ! $line =~ $re ]]; then
                # a value of another name opening quotes it does not close on its line
                if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?[^=#[:space:]]+[[:space:]]*=[[:space:]]*([\"\'])(.*)$ ]]; then
                    rest=${BASH_REMATCH[3]}
                    [[ $rest == *"${BASH_REMATCH[2]}"* ]] || quote=${BASH_REMATCH[2]}
                fi
                continue
            fi
            rest=${BASH_REMATCH[3]}
            if [[ $rest =~ ^\"([^\"]*)\"[[:space:]]*(#.*)?$ || $rest =~ ^\'([^\']*)\'[[:space:]]*(#.*)?$ ]]; then
                value=${BASH_REMATCH[1]}
            elif [[ $rest == [\"\']* ]]; then
                if [[ ${rest:1} == *"${rest:0:1}"* ]]; then
                    continue      # text after the closing quote: python-dotenv skips the line too
                fi
                value=$rest       # quotes closed on a later line: a multi-line value, never plain
                quote=${rest:0:1}
            elif [[ $rest == '#'* && $line =~ =[[:space:]]+# ]]; then
                value=''      # NAME= # comment
            else
                value=${rest%%[[:space:]]#*}
                value=${value%"${value##*[![:space:]]}"}
            fi
        done <"$project/.env"
    fi
    printf '%s' "$value"
}

# plain PATH: an absolute path of letters, digits and / . _ + - only (the rule Python applies too).
plain() {
    [[ $1 =~ ^/[A-Za-z0-9_./+-]*$ ]]
}

# quote TEXT: TEXT in double quotes, JSON-style, so that a file name cannot break a log line.
quote() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[[:cntrl:]]/?}
    printf '"%s"' "$s"
}

# problem DETAIL: one line on stderr (SFTPGo's log) and in uploads.log.
problem() {
    local line
    line="$(printf '%(%Y-%m-%dT%H:%M:%S)T' -1).000Z action=$(quote "${SFTPGO_ACTION:-post-disconnect}")"
    line+=" path=$(quote "${SFTPGO_ACTION_PATH:-}") result=error detail=$(quote "$1")"
    printf 'powerview hook: %s\n' "$line" >&2
    { mkdir -p -- "$log_dir" && printf '%s\n' "$line" >>"$log_dir/uploads.log"; } 2>/dev/null || true
}

log_dir=$(setting POWERVIEW_LOG_DIR /srv/sftpgo/logs)
plain "$log_dir" || log_dir=/srv/sftpgo/logs
# DEBUG=1 (environment or .env), as the deployed hook: trace every command (set -x) into worker.log
if [[ $(setting DEBUG 0) == 1 ]] && mkdir -p -- "$log_dir" 2>/dev/null &&
    { exec {trace}>>"$log_dir/worker.log"; } 2>/dev/null; then
    BASH_XTRACEFD=$trace
    PS4='+ on-upload.sh[$$] line $LINENO: '
    set -x
fi
spool=$(setting POWERVIEW_SPOOL_DIR /srv/sftpgo/spool)
venv=$(setting POWERVIEW_VENV "$project/envs/powerview")
[[ $venv == /* ]] || venv=$project/$venv
python=$venv/bin/python
for checked in "POWERVIEW_SPOOL_DIR=$spool" "POWERVIEW_VENV=$venv"; do
    if ! plain "${checked#*=}"; then
        problem "${checked%%=*} is not a plain absolute path (letters, digits, / . _ + -): nothing recorded; fix .env"
        exit 0
    fi
done

# 1. the event, durably. Its id sorts by arrival: UTC time, microseconds, random, pid.
now=$EPOCHREALTIME
printf -v id '%(%Y%m%dT%H%M%S)T.%sZ-%04x%04x-%d' "${now%.*}" "${now#*.}" "$RANDOM" "$RANDOM" "$$"
tmp=$spool/tmp/$id.event
if ! {
    mkdir -p -- "$spool/tmp" "$spool/incoming" &&
        for name in "${!SFTPGO_ACTION@}" "${!SFTPGO_CONNECTION_@}"; do
            printf '%s=%s\0' "$name" "${!name}"
        done >"$tmp" &&
        sync -d -- "$tmp" && mv -- "$tmp" "$spool/incoming/$id.event" && sync -- "$spool/incoming"
} 2>/dev/null; then
    problem "cannot record the event in $spool (POWERVIEW_SPOOL_DIR): check it exists and is writable"
    rm -f -- "$tmp" 2>/dev/null
    exit 0
fi

# 2. the worker, unless one runs. Without Python the event waits in the spool for the timer.
fix="fix: cd $project && $venv/bin/pip install -r requirements.txt"
if [[ ! -x $python ]]; then
    problem "no Python in the virtualenv $venv (POWERVIEW_VENV): event $id kept in the spool; $fix"
    exit 0
fi
# Can the virtualenv run the worker? Checked again whenever something pip or git changes (the
# virtualenv's Python and site-packages, requirements.txt, powerview/) is newer than the last
# answer, kept in <spool>/venv.checked (its mtime: when that check started). Two checks, neither
# makes the hook wait for Python:
# - each NAME==VERSION of requirements.txt, and the project itself, has its .dist-info in the
#   virtualenv (a glob per line: a package uninstalled, or another version, is named at once);
# - then powerview/operations/venvcheck.py imports the worker, detached, started by the hook that starts
#   the worker: the next calls give its answer.
venv_changed() {
    local path
    [[ -f $spool/venv.checked ]] || return 0
    for path in "$python" "$venv"/lib/python3*/site-packages "$project/requirements.txt" "$project/powerview"; do
        [[ $path -nt $spool/venv.checked ]] && return 0
    done
    return 1
}

missing_requirement() {
    local line name version stem
    local -a sites found
    sites=("$venv"/lib/python3*/site-packages)
    if [[ ! -d ${sites[0]} ]]; then
        printf 'no site-packages in the virtualenv %s' "$venv"
        return
    fi
    if [[ ! -r $project/requirements.txt ]]; then
        printf 'cannot read %s' "$project/requirements.txt"
        return
    fi
    shopt -s nocaseglob nullglob
    found=("${sites[0]}"/powerview-*.dist-info)
    if ((${#found[@]} == 0)); then
        printf 'the project (powerview) is not installed in the virtualenv %s' "$venv"
        return
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^([A-Za-z0-9][A-Za-z0-9._-]*)[[:space:]]*==[[:space:]]*([^[:space:]\;#]+) ]] || continue
        name=${BASH_REMATCH[1]} version=${BASH_REMATCH[2]}
        stem=${name//[-.]/_}
        [[ -d ${sites[0]}/$stem-$version.dist-info || -d ${sites[0]}/${stem,,}-$version.dist-info ]] && continue
        found=("${sites[0]}/$stem"-*.dist-info)
        if ((${#found[@]} > 0)); then
            stem=${found[0]##*/}
            stem=${stem%.dist-info}
            printf '%s %s is installed in the virtualenv %s, requirements.txt pins %s' "$name" "${stem#*-}" \
                "$venv" "$version"
        else
            printf '%s is not installed in the virtualenv %s' "$name" "$venv"
        fi
        return
    done <"$project/requirements.txt"
}

# keep_answer TEXT START: TEXT as the answer of a check that started at START (epoch seconds)
keep_answer() {
    { printf '%s\n' "$1" >"$spool/tmp/venv.checked.$$" && touch -d "@$2" -- "$spool/tmp/venv.checked.$$" &&
        mv -- "$spool/tmp/venv.checked.$$" "$spool/venv.checked"; } 2>/dev/null
}

# venv_problem: sets `broken` to what the virtualenv lacks, or to '' (no subshell: the hot path forks nothing)
venv_problem() {
    local started=$EPOCHREALTIME answer=''
    broken=''
    if ! venv_changed; then
        IFS= read -r answer 2>/dev/null <"$spool/venv.checked"
        [[ $answer == ok ]] || broken=${answer:-unreadable $spool/venv.checked}
        return
    fi
    answer=$(missing_requirement)
    if [[ -n $answer ]]; then
        keep_answer "$answer" "$started"
        broken=$answer
        return
    fi
    check_started=$started   # the import check: by the hook that starts the worker, below
}

# check_imports: powerview/operations/venvcheck.py, detached, one at a time (flock -n), output in the spool only
check_imports() {
    # shellcheck disable=SC2016  # the script's variables are its own
    setsid -f flock -n "$spool/venv.lock" bash -c '
        out=$(timeout 60 "$1" -I "$2/powerview/operations/venvcheck.py" "$2" 2>&1 </dev/null)
        case $? in
            0) answer=ok ;;
            124 | 137) exit 0 ;;
            *) answer=${out//[[:cntrl:]]/ }; answer=${answer:-the virtualenv Python fails}; answer=${answer:0:500} ;;
        esac
        printf "%s\n" "$answer" >"$3/tmp/venv.checked.$$" && touch -d "@$4" -- "$3/tmp/venv.checked.$$" &&
            mv -- "$3/tmp/venv.checked.$$" "$3/venv.checked"
    ' venvcheck "$python" "$project" "$spool" "$check_started" </dev/null >/dev/null 2>&1
}

check_started=''
venv_problem
if [[ -n $broken ]]; then
    problem "worker not started: $broken; $fix; event $id kept in the spool, ingested once repaired"
    exit 0
fi
if { exec {lock}<>"$spool/worker.lock"; } 2>/dev/null; then
    if flock -n "$lock"; then
        mkdir -p -- "$log_dir" 2>/dev/null
        # (without the worker lock's descriptor: only the worker may hold it)
        [[ -z $check_started ]] || check_imports {lock}>&-
        # isolated mode (-I): no PYTHON* variable, no user site; powerview is installed in the venv
        setsid -f "$python" -I -m powerview.cli.worker --env-file "$project/.env" run --lock-fd "$lock" \
            </dev/null >>"$log_dir/worker.log" 2>&1 ||
            problem "cannot start the worker: event $id kept in the spool"
    fi
    exec {lock}>&-
fi
exit 0
