# The alert rules as services.powersync installs them with its option defaults, as JSON text for promtool:
# `cargo xtask test --only alerts` checks them and runs the tests in tests/alerts/*.test.yml against them.
let
  lib = import ../../lib;
  inherit (lib.defaults) operations;
in
  builtins.toJSON (lib.alertRules {
    inherit (lib.defaults.replication) slotNamePrefix;
    inherit (operations.alerts) maxLagSeconds;
    inherit (operations.watchdog) maxRetainedBytes intervalSeconds;
    watchdog = true;
    compact = true;
    jwks = true;
    jwksUri = "https://example.supabase.co/auth/v1/.well-known/jwks.json";
  })
