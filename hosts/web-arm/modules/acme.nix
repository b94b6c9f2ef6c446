# Certificates: Let's Encrypt over DNS-01 (nginx vhosts set acmeRoot = null), as web-arm already does.
# acmeRoot = null only evaluates with a dnsProvider (security.acme asserts exactly one of dnsProvider,
# webroot, listenHTTP, s3Bucket), and the provider needs its API credentials.
#
# Upstream options used: security.acme.{acceptTerms,defaults.email,defaults.dnsProvider,
# defaults.environmentFile} (nixos/modules/security/acme/default.nix); sops.secrets.<name>.
{
  config,
  lib,
  ...
}: let
  cfg = config.webArm.acme;
in {
  options.webArm.acme = {
    dnsProvider = lib.mkOption {
      type = lib.types.str;
      default = "hetzner";
      example = "cloudflare";
      description = ''
        The lego DNS provider code for the zone of reptide.eu (https://go-acme.github.io/lego/dns/). Set it
        to yours; the credentials it needs go in the sops secret `acme-dns-credentials` as an env file
        (e.g. HETZNER_API_KEY=…).
      '';
    };

    email = lib.mkOption {
      type = lib.types.str;
      default = "admin@reptide.eu";
      description = "Account email for Let's Encrypt (expiry notices).";
    };
  };

  config = {
    sops.secrets.acme-dns-credentials = {};

    security.acme = {
      acceptTerms = true;
      defaults = {
        inherit (cfg) email dnsProvider;
        environmentFile = config.sops.secrets.acme-dns-credentials.path;
      };
    };
  };
}
