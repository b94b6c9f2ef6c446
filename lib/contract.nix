# The config contract: mistakes the PowerSync Service silently ignores or only reports at run time (and its
# JSON schema does not catch), found at evaluation time. `checkSettings settings` returns
# `{ errors = [ … ]; warnings = [ … ]; }`; the NixOS module turns them into assertions and warnings, so each
# text says what is wrong and what to set instead.
let
  inherit (builtins) attrNames concatLists concatMap elem filter genList head isAttrs isInt isList isString length match stringLength substring;
  inherit (import ./yaml.nix) isEnv;

  knownTopLevel = ["replication" "storage" "port" "sync_config" "sync_rules" "client_auth" "api" "metadata" "migrations" "telemetry" "healthcheck" "system" "parameters"];
  sslmodes = ["verify-full" "verify-ca" "disable"];

  # PostgreSQL slot names are lower-case letters, digits and `_`, at most 63 bytes; the service appends
  # `<sync config id>_<4 hex>`, so leave it 11 of them.
  maxSlotPrefix = 52;

  when = condition: message:
    if condition
    then [message]
    else [];

  # Every `!env` reference in a value, with where it sits (e.g. "storage.password").
  envRefs = path: value:
    if isEnv value
    then [
      {
        inherit path;
        name = head (builtins.split "::" value._env);
        conversion = let
          parts = filter isString (builtins.split "::" value._env);
        in
          if length parts > 1
          then builtins.elemAt parts 1
          else null;
      }
    ]
    else if isAttrs value
    then concatMap (name: envRefs "${path}.${name}" value.${name}) (attrNames value)
    else if isList value
    then concatLists (genList (i: envRefs "${path}[${toString i}]" (builtins.elemAt value i)) (length value))
    else [];

  envErrors = settings:
    concatMap (ref:
      when (match "PS_.*" ref.name == null)
      "${ref.path}: `!env ${ref.name}` does not start with PS_; the service only substitutes PS_* variables and refuses to start (exit 150). Rename the variable to PS_${ref.name}."
      ++ when (ref.conversion != null && !(elem ref.conversion ["number" "boolean"]))
      "${ref.path}: `!env ${ref.name}::${ref.conversion}` has an unknown conversion; the service knows ::number and ::boolean.")
    (concatMap (name: envRefs name settings.${name}) (attrNames settings));

  isLiteral = value: isString value;

  connectionErrors = where: connection:
    when (connection ? slot_name)
    "${where}.slot_name is not a PowerSync option (the service ignores it and names slots itself); set `slot_name_prefix` (services.powersync.replication.slotNamePrefix) instead."
    ++ when (connection ? sslmode && !(elem connection.sslmode sslmodes))
    "${where}.sslmode = ${builtins.toJSON connection.sslmode} is refused by the service (exit 150); use one of verify-full (the default), verify-ca (with `cacert`) or disable."
    ++ when ((connection.sslmode or null) == "verify-ca" && !(connection ? cacert))
    "${where}.sslmode = verify-ca needs `cacert` (the CA certificate that signed the server's certificate); set it, or use verify-full."
    ++ when (connection ? hostname && isLiteral connection.hostname && substring 0 1 connection.hostname == "/")
    "${where}.hostname ${builtins.toJSON connection.hostname} is a Unix socket directory; the service connects over TCP only. Point it at a TCP address."
    ++ when (connection ? uri && isLiteral connection.uri && match ".*(host=/|@/|@%2[Ff]).*" connection.uri != null)
    "${where}.uri names a Unix socket; the service connects over TCP only. Point it at a TCP address."
    ++ when (connection ? password && isLiteral connection.password)
    "${where}.password is a literal: it would be written to the world-readable Nix store. Use `!env PS_…` (lib.env \"PS_…\") and pass the value in an environment file."
    ++ when (connection ? uri && isLiteral connection.uri && match "[a-z]+://[^/@:]*:[^/@]+@.*" connection.uri != null)
    "${where}.uri contains a password: it would be written to the world-readable Nix store. Use `!env PS_…` (lib.env \"PS_…\") for the URI."
    ++ (
      let
        prefix = connection.slot_name_prefix or null;
      in
        when (prefix != null && (!(isString prefix) || match "[a-z0-9_]+" prefix == null || stringLength prefix > maxSlotPrefix))
        "${where}.slot_name_prefix = ${builtins.toJSON prefix} is not a valid PostgreSQL slot name prefix: use lower-case letters, digits and `_` only, at most ${toString maxSlotPrefix} characters (the service appends `<id>_<hex>`). The service would only fail when it creates the slot (PSYNC_S1120), with probes still green."
    );

  connectionWarnings = where: connection:
    when (connection ? uri && isLiteral connection.uri && match ".*[?&]sslmode=.*" connection.uri != null)
    "${where}.uri carries `sslmode=` in its query, which the service ignores: TLS follows the `sslmode` key only (default verify-full)."
    ++ when (connection ? uri && isLiteral connection.uri && match ".*[?&]replication=database.*" connection.uri != null)
    "${where}.uri carries `replication=database`; remove it (the service opens its own replication connection).";

  connectionsOf = settings: let
    replication = settings.replication.connections or [];
  in
    genList (i: {
      where = "replication.connections[${toString i}]";
      connection = builtins.elemAt replication i;
    }) (length replication)
    ++ (
      if isAttrs (settings.storage or null)
      then [
        {
          where = "storage";
          connection = settings.storage;
        }
      ]
      else []
    );

  portErrors = settings: let
    port = settings.port or null;
  in
    if port == null || isEnv port
    then []
    else if !(isInt port) || port < 1 || port > 65535
    then ["port = ${builtins.toJSON port} is not a TCP port number."]
    else
      when (port < 1024)
      "port = ${toString port}: the service runs as an unprivileged user (uid 901) and cannot bind ports below 1024 (exit 150, EACCES). Use 1024 or above, e.g. 8080.";
  # pg_hba.conf, read the way PostgreSQL reads it (src/backend/libpq/hba.c): `#` starts a comment outside
  # double quotes, a trailing backslash continues the line (PostgreSQL 16+), fields are separated by blanks
  # and may be quoted. A quoted keyword such as "trust" still names the method.
  hbaComment = line: let
    kept = match "(([^\"#]|\"[^\"]*\")*)#.*" line;
  in
    if kept == null
    then line
    else head kept;
  hbaFields = line: let
    next = match "[[:space:]]*(([^[:space:]\"]|\"[^\"]*\")+)(.*)" line;
  in
    if next == null
    then []
    else [(builtins.replaceStrings ["\""] [""] (builtins.elemAt next 0))] ++ hbaFields (builtins.elemAt next 2);
  hbaRecords = authentication:
    filter (record: record.fields != []) (map (line: {
      inherit line;
      fields = hbaFields (hbaComment line);
    }) (filter isString (builtins.split "\n" (builtins.replaceStrings ["\\\n"] [" "] authentication))));

  # Methods that let a client in by a password it sends, or without anything.
  passwordOrTrust = ["trust" "password" "md5" "scram-sha-256" "pam" "ldap" "radius" "bsd"];

  # Entries of listen_addresses that bind the proxy's address and port too: the wildcards, and the address itself.
  wildcards = ["*" "0.0.0.0" "::"];
in {
  # The `local` lines of pg_hba text (services.postgresql.authentication) that a client reaching PostgreSQL
  # through the storage proxy could match with a password or trust method, other than `own` (the module's
  # own line, as fields). The proxy turns every connection from the container network into a `local` one,
  # so such a line would admit a container as whichever role it names (with its password, or none).
  # `include*` directives are listed too: what they pull in cannot be checked here.
  exposedLocalHbaLines = {
    authentication,
    own,
  }:
    map (record: record.line) (filter (record: let
      type = head record.fields;
      method =
        if length record.fields >= 4
        then builtins.elemAt record.fields 3
        else null;
    in
      (match "include(_if_exists|_dir)?" type != null)
      || (type == "local" && record.fields != own && elem method passwordOrTrust))
    (hbaRecords authentication));

  # Whether PostgreSQL's own listener (listen_addresses, comma separated, on `postgresPort`) takes the address
  # and port the storage proxy binds: then one of the two fails to start, whichever comes second.
  storageProxyCollides = {
    listenAddresses,
    postgresPort,
    proxyAddress,
    proxyPort,
  }: let
    entries = filter (entry: entry != "") (map (entry: let
      trimmed = match "[[:space:]]*([^[:space:]]*)[[:space:]]*" entry;
    in
      if trimmed == null
      then entry
      else head trimmed) (filter isString (builtins.split "," listenAddresses)));
  in
    postgresPort == proxyPort && builtins.any (entry: elem entry wildcards || entry == proxyAddress) entries;

  # What the final settings of a host on shared storage (services.powersync.storage.remote) must not do: the
  # storage is reached over the network, its TLS comes from storage.remote.sslmode, and the operator's
  # `settings` win over that key by key, so `settings.storage.sslmode = "disable"` would send the storage
  # role's password and every bucket in plain text, silently.
  remoteStorageErrors = settings:
    when (isAttrs (settings.storage or null) && (settings.storage.sslmode or null) == "disable")
    "services.powersync.settings.storage.sslmode = \"disable\" turns off TLS to the shared storage (storage.remote, ${builtins.toJSON (settings.storage.hostname or null)}): the storage password and every bucket would cross the network in plain text. Remove it; storage.remote.sslmode sets the TLS mode (verify-full, or verify-ca with storage.remote.caCertificate).";

  checkSettings = settings: {
    errors =
      when ((settings.api or {}) ? port)
      "api.port is ignored by the service, which listens on the top-level `port`; set `port` (services.powersync.settings.port) instead."
      ++ when (settings ? sync_rules && settings ? sync_config)
      "Both sync_rules and sync_config are set; the service refuses to start (exit 150). Keep only sync_config (sync_rules is its deprecated name)."
      ++ when (!(settings ? sync_rules) && !(settings ? sync_config))
      "No sync_config: set services.powersync.syncConfig to your sync config YAML."
      ++ when ((settings.replication.connections or []) == [])
      "No replication connection (replication.connections is empty): the service would serve nothing. Keep the generated source connection or add one."
      ++ when (!(settings ? storage))
      "No storage block: the service needs bucket storage (exit 150 without it)."
      ++ when (isAttrs (settings.storage or null) && !(settings.storage ? type))
      "storage.type is missing; use \"postgresql\" (or \"mongodb\")."
      ++ when (isAttrs (settings.storage or null) && settings.storage ? type && !(elem settings.storage.type ["postgresql" "mongodb"]))
      "storage.type = ${builtins.toJSON (settings.storage.type or null)} is not a storage the service knows; use \"postgresql\" or \"mongodb\"."
      ++ when (!((settings.telemetry or {}) ? disable_telemetry_sharing))
      "telemetry.disable_telemetry_sharing is not set: without it the service shares anonymous usage telemetry. Set it explicitly (services.powersync.settings.telemetry.disable_telemetry_sharing)."
      ++ when ((settings.healthcheck or {}) ? probes && ((settings.healthcheck.probes.use_http or false) != true))
      "healthcheck.probes is set without use_http = true: the service then stops serving /probes/*, which the container health check and the nginx liveness probe use. Add use_http = true or drop the healthcheck block."
      ++ portErrors settings
      ++ concatMap (c: connectionErrors c.where c.connection) (connectionsOf settings)
      ++ envErrors settings;
    warnings =
      map (name: "Unknown top-level key `${name}`: the service ignores unknown keys silently. Known keys: ${builtins.concatStringsSep ", " knownTopLevel}.")
      (filter (name: !(elem name knownTopLevel)) (attrNames settings))
      ++ when (settings ? sync_rules && !(settings ? sync_config))
      "sync_rules is the deprecated name of sync_config; rename it."
      ++ concatMap (c: connectionWarnings c.where c.connection) (connectionsOf settings);
  };
}
