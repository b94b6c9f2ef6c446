# shellcheck shell=bash disable=SC2034 # conn_* are results, read by the scripts that source this file
# The source connection exactly as the PowerSync Service will use it: one reading, shared by preflight-dsn.sh
# and slot-watchdog.sh (lib/script.nix inlines this file into both; run from the repository they source it).
#
# Why not ask the service: its own `test-connection` command crashes in 1.25.0 before it checks anything
# (powersync-ja/powersync-service#751; the fix, PR #790, was still open in September 2026). Once the pinned image
# is proven to carry the fix, it could check the connection with the service's own parsing and TLS. Until then
# this reading must be right on its own.
#
# Three readers see PS_SOURCE_DSN:
#   - podman's --env-file hands the value to the container byte for byte (no unquoting; see env_lookup);
#   - the service parses it with uri-js 4.4.1 and takes `userinfo.split(':')`, WITHOUT percent-decoding, and
#     its URI parser alters  " # / : < > ? @ [ \ ] ^ ` { | }  and space (libs/lib-postgres/src/types/types.ts,
#     normalizeConnectionConfig); it ignores the query string;
#   - libpq (psql, and an operator testing the DSN) percent-decodes and reads the query string.
# The service decides: user, password and database are accepted exactly when the service reads them as
# written. A `%` before two hex digits is refused (uri-js decodes or upper-cases that octet, psql decodes it,
# and whoever wrote it may have meant either); any other `%` the service reads as written, and so does the
# watchdog, which hands psql the service's reading in PG* variables, never the URI (psql given the DSN
# itself would refuse such a `%`). Query parameters that would make libpq connect elsewhere or as someone
# else are refused, so that testing the DSN with psql tests what the service does.
#
# The connection's own keys win over the DSN, as in the service. The NixOS module passes the rendered ones:
#   SOURCE_HOSTNAME, SOURCE_PORT, SOURCE_USERNAME, SOURCE_DATABASE   a literal key
#   SOURCE_<KEY>_VAR                                                 the env-file variable of an `!env` key
#                                                                    (SOURCE_PASSWORD_VAR for `password: !env PS_…`)
# After `source_connection FILE...` succeeds, conn_host conn_port conn_user conn_password conn_database hold
# what the service connects with (conn_dsn_host and conn_dsn_port: the DSN's own, before the keys), and
# conn_notes what is worth a look but no mistake to the service; on failure it returns 1 with conn_error.
# Neither ever holds a secret.

# User, password and database characters the service reads as written, besides `%` (see conn_as_written).
conn_safe_re="^[A-Za-z0-9._~!\$&'()*+,;=-]*\$"
conn_safe_text="letters, digits and - . _ ~ ! \$ & ' ( ) * + , ; ="

# conn_as_written VALUE: whether the service's URI parser keeps VALUE as written (a userinfo or path part).
conn_as_written() {
  [[ ! $1 =~ %[0-9A-Fa-f]{2} && ${1//%/} =~ $conn_safe_re ]]
}
# libpq query parameters that change where or as whom it connects; the service never reads them.
# A query parameter libpq reads as key=value, without & = % in the value.
conn_param_re="^[A-Za-z_]+=[A-Za-z0-9._~!\$'()*+,;:/-]*\$"
conn_identity_params=" host hostaddr port dbname user password passfile service "

# env_lookup NAME FILE...: NAME as the container gets it from podman's --env-file (podman >= 4.7.1,
# pkg/env/env.go): lines end at \n, a trailing \r is dropped, leading blanks and tabs are dropped, `#` lines
# are comments, the name ends at the first `=`, the value is the rest byte for byte (quotes included); the
# last assignment in the last file wins. Sets env_set (true/false) and env_value; an unreadable file is an
# error (podman would refuse it too, less clearly).
env_lookup() {
  local name=$1 file line
  shift
  env_set=false env_value=""
  for file in "$@"; do
    if [ ! -r "$file" ]; then
      conn_error="cannot read the environment file $file (is the sops secret or template deployed?)"
      return 1
    fi
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line%$'\r'}
      line=${line#"${line%%[![:blank:]]*}"}
      case $line in
        "$name="*) env_set=true env_value=${line#"$name="} ;;
      esac
    done <"$file"
  done
}

# env_required NAME WHAT FILE...: like env_lookup, but a missing or empty value is an error (the service
# exits 150 on an unset `!env` variable, and refuses an empty host, user, password or database).
env_required() {
  local name=$1 what=$2
  shift 2
  env_lookup "$name" "$@" || return 1
  if ! $env_set; then
    conn_error="$name is not set in $*; it must hold $what"
    return 1
  fi
  if [ -z "$env_value" ]; then
    conn_error="$name is empty in $*; set it to $what"
    return 1
  fi
}

# Podman's --env-file does not remove quotes: what the container gets is the value with them.
quote_text="podman's --env-file does not remove quotes, so the service receives them as part of the value"

conn_refuse() {
  conn_error=$1
  return 1
}

# source_connection FILE...: read PS_SOURCE_DSN from the env files and apply the connection's keys.
source_connection() {
  local dsn rest userinfo="" hostpart authority remainder path query="" param key value
  local host="" port="" port_given=false user="" password="" database="" name var ref
  local userinfo_error="the user or password in PS_SOURCE_DSN holds a character the PowerSync Service does not read as written: its URI parser alters or splits on space \" # / : < > ? @ [ \\ ] ^ \` { | } (a : only separates user and password), and it reads a %XX octet (% and two hex digits) differently from psql, decoding some and keeping or upper-casing others. Choose a password of $conn_safe_text only (and % where no two hex digits follow it), or give the service the password another way: a \`password: !env PS_SOURCE_PASSWORD\` key on the connection, with PS_SOURCE_PASSWORD=<password> in the environment file"
  conn_error="" conn_notes=()

  env_required PS_SOURCE_DSN "postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres" "$@" || return 1
  dsn=$env_value
  case $dsn in
    \"* | \'*) conn_refuse "PS_SOURCE_DSN in $* starts with a quote: $quote_text, and refuses a URI that does not start with its scheme. Write PS_SOURCE_DSN=<value> without quotes" || return 1 ;;
  esac
  case $dsn in
    postgresql://* | postgres://*) ;;
    *) conn_refuse "PS_SOURCE_DSN is not a postgres:// or postgresql:// URI; use postgresql://<user>:<pw>@db.<project>.supabase.co:5432/postgres" || return 1 ;;
  esac
  rest=${dsn#*://}

  # The service's parser ends the userinfo at its first @, and only if no / ? # comes before it; libpq ends
  # it at the last @ before the first /. They agree only on a single @ with none of / ? # before it.
  case $rest in
    *@*)
      userinfo=${rest%%@*}
      hostpart=${rest#*@}
      case $userinfo in *[/?#]*) conn_refuse "$userinfo_error" || return 1 ;; esac
      case $hostpart in *@*) conn_refuse "$userinfo_error" || return 1 ;; esac
      ;;
    *) hostpart=$rest ;;
  esac
  user=${userinfo%%:*}
  case $userinfo in *:*) password=${userinfo#*:} ;; esac
  case $password in *:*) conn_refuse "$userinfo_error" || return 1 ;; esac
  conn_as_written "$user" && conn_as_written "$password" || conn_refuse "$userinfo_error" || return 1

  case $hostpart in
    *'#'*) conn_refuse "PS_SOURCE_DSN has a #fragment, which the service drops and psql keeps; remove it" || return 1 ;;
  esac
  authority=${hostpart%%[/?]*}
  remainder=${hostpart#"$authority"}
  path=${remainder%%\?*}
  case $remainder in *\?*) query=${remainder#*\?} ;; esac
  case $authority$query in
    *%*) conn_refuse "PS_SOURCE_DSN has a % in its host, port or query, which psql percent-decodes and the service does not; write them without %" || return 1 ;;
  esac

  case $authority in
    \[*\]) host=${authority#\[} host=${host%\]} ;;
    \[*\]:*) host=${authority%%\]:*} host=${host#\[} port=${authority##*\]:} port_given=true ;;
    *:*) host=${authority%%:*} port=${authority#*:} port_given=true ;;
    *) host=$authority ;;
  esac
  case $authority in
    \[*) [[ $host =~ ^[0-9A-Fa-f:.]+$ ]] || conn_refuse "PS_SOURCE_DSN's [IPv6 address] is not one (hex digits, : and . only)" || return 1 ;;
    *) [[ $host =~ ^[A-Za-z0-9._-]*$ ]] || conn_refuse "PS_SOURCE_DSN's host is not a host name (letters, digits, . - _), an IPv4 address or an [IPv6 address]; one host only" || return 1 ;;
  esac
  # Host names are case-insensitive; the service's parser lowers them.
  host=${host,,}
  if $port_given && ! [[ $port =~ ^[0-9]+$ ]]; then
    conn_refuse "PS_SOURCE_DSN's port is not a number; write host:5432 (an empty port is not a default to the service)" || return 1
  fi

  database=${path#/}
  conn_as_written "$database" || conn_refuse "PS_SOURCE_DSN's database name holds a character the service does not read as written; use $conn_safe_text (and % where no two hex digits follow it)" || return 1

  # The service ignores the query; libpq reads it. Refuse what would make the two connect differently.
  if [ -n "$query" ]; then
    local -a params
    IFS='&' read -r -a params <<<"$query"
    for param in "${params[@]}"; do
      key=${param%%=*}
      value=${param#*=}
      [[ $param =~ $conn_param_re ]] ||
        conn_refuse "PS_SOURCE_DSN has a query parameter psql cannot read as key=value (letters in the key; $conn_safe_text except & = in the value)" || return 1
      key=${key,,}
      case $key in
        replication) conn_refuse "PS_SOURCE_DSN carries replication=$value; remove it (the service opens its own replication connection)" || return 1 ;;
        password) conn_refuse "PS_SOURCE_DSN passes password= in its query string, which the service never reads (it exits 150, PSYNC_S1108 password required) while psql does; put the password in the DSN (postgresql://<user>:<pw>@…) or a \`password: !env PS_SOURCE_PASSWORD\` key on the connection" || return 1 ;;
      esac
      case $conn_identity_params in
        *" $key "*) conn_refuse "PS_SOURCE_DSN passes $key= in its query string, which the service ignores and psql obeys; write it in the URI itself (or as the connection's own key)" || return 1 ;;
      esac
    done
  fi

  # The DSN's own host and port, before the keys: a pooler DSN is a mistake even where a key overrides its host
  # (its user is the pooler's, `<user>.<project>`, which the direct endpoint does not know).
  # shellcheck disable=SC2034 # read by the preflight only
  {
    conn_dsn_host=$host conn_dsn_port=$port
    $port_given || conn_dsn_port=5432
  }

  # The connection's own keys win, each on its own (normalizeConnectionConfig).
  for name in hostname port username database password; do
    var=SOURCE_${name^^}
    ref=${var}_VAR
    if [ -n "${!ref:-}" ]; then
      env_required "${!ref}" "the connection's $name" "$@" || return 1
      value=$env_value
      case $value in
        \"* | \'*) conn_notes+=("${!ref} starts with a quote: $quote_text (right only if the quote is part of the $name)") ;;
      esac
    elif [ -n "${!var:-}" ]; then
      value=${!var}
    else
      continue
    fi
    case $name in
      hostname) host=$value ;;
      port) port=$value port_given=true ;;
      username) user=$value ;;
      database) database=$value ;;
      password) password=$value ;;
    esac
  done

  # What the service itself refuses at start (exit 150), said before the container starts.
  [ -n "$host" ] || conn_refuse "PS_SOURCE_DSN names no host (the service exits with PSYNC_S1106); use the direct endpoint db.<project>.supabase.co:5432" || return 1
  [ -n "$user" ] || conn_refuse "PS_SOURCE_DSN names no user (the service exits with PSYNC_S1107); use postgresql://<user>:<pw>@…" || return 1
  [ -n "$password" ] || conn_refuse "PS_SOURCE_DSN has no password (the service exits with PSYNC_S1108, password required); use postgresql://<user>:<pw>@… or a \`password: !env PS_SOURCE_PASSWORD\` key" || return 1
  [ -n "$database" ] || conn_refuse "PS_SOURCE_DSN names no database (the service exits with PSYNC_S1105); end it with /postgres" || return 1
  $port_given || port=5432
  [[ $port =~ ^[0-9]{1,5}$ ]] && port=$((10#$port)) || conn_refuse "the source port is not a port number" || return 1
  [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] ||
    conn_refuse "the source port $port is outside 1024-65535, which the service refuses (PSYNC_S1110); Supabase's direct endpoint uses 5432" || return 1

  # shellcheck disable=SC2034 # a script may not read every field
  conn_host=$host conn_port=$port conn_user=$user conn_password=$password conn_database=$database
}
