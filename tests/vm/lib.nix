# Shared pieces of the VM tests: the image archive, a test CA, a sops file encrypted at build time for a
# throwaway age key, and the server node built from the flake's modules the way web-arm uses them.
#
# Upstream pieces used, each read in the nixpkgs (or sops-nix) source; where the stored version is older
# than nixos-26.05, the note says what it rests on:
#   pkgs.testers.runNixOSTest {name, nodes, testScript}      nixos/lib/testing/{nodes,testScript,driver}.nix:
#       nodes.<n> is a module, and node modules get `nodes` as an argument; testScript is a string, checked
#       before boot (see tests/vm/scripts.nix); node names are Python globals, `machine` too for a lone node
#   the test network: vlan 1 gives 192.168.1.<n> and 2001:db8:1::<n> by sorted node name, and /etc/hosts
#       names every node in both families       nixos/lib/testing/network.nix
#   dockerTools.pullImage {imageName, imageDigest, hash, arch, os, finalImageName, finalImageTag}
#                                                            doc/build-helpers/images/dockertools.section.md
#   virtualisation.{memorySize,diskSize} (MiB; diskSize 1024 by default in test VMs)
#                                                            nixos/modules/virtualisation/qemu-vm.nix
#   system.activationScripts.<name>.{text,deps}              nixos/modules/system/activation/activation-script.nix
#   systemd.services.<name>.{preStart,wantedBy,serviceConfig}  nixos/lib/systemd-unit-options.nix
#   security.pki.certificateFiles                            nixos/modules/security/ca.nix
#   specialisation.<name>.configuration                      nixos/modules/system/activation/specialisation.nix
#   networking.{hosts,interfaces.<if>.ipv6.addresses}        nixos/modules/config/networking.nix, tasks/network-interfaces.nix
#   services.nginx.virtualHosts.<n>.{enableACME,sslCertificate,sslCertificateKey}
#                                                            nixos/modules/services/web-servers/nginx/vhost-options.nix
#   services.postgresql.{enable,enableTCPIP,settings,authentication,initialScript}: enableTCPIP defines
#       listen_addresses = "*"                               nixos/modules/services/databases/postgresql.nix
#   sops.{defaultSopsFile,validateSopsFiles,age.keyFile,age.sshKeyPaths,useSystemdActivation}, the
#       `setupSecrets` activation script and the `sops-install-secrets` unit
#                                                            Mic92/sops-nix modules/sops/default.nix
#   boot.initrd.systemd.enable is the 26.05 default (nixpkgs PR #435781); its module asserts the scripted
#       stage-1 hooks (boot.initrd.*Commands) empty          nixos/modules/system/boot/systemd/initrd.nix
{
  pkgs,
  self,
  sops-nix,
}: let
  # The pin and the archive hash for this system: lib/image.nix checks both and throws the exact command that
  # computes a missing hash.
  imageLib = import ../../lib/image.nix;
  pin = ../../modules/powersync/image.nix;
  system = pkgs.stdenv.hostPlatform.system;
  inherit (pkgs) lib;
in rec {
  # Each test's script exactly as the driver gets it (builtins only: `cargo xtask test` checks the same
  # strings offline with the driver's type checker and linter).
  scripts = import ./scripts.nix;
  # The addresses of the test network (vlan 1): the source is reachable over IPv6 only.
  sourceAddress = "fd00:5ca1:ab1e::1";
  serverAddress = "fd00:5ca1:ab1e::2";
  replicationPassword = "replication-test-password";
  rotatedPassword = "replication-rotated-password";
  domain = "powersync.reptide.eu";

  image = pkgs.dockerTools.pullImage (imageLib.vmImage {
    inherit pin system;
    hashes = import ./image.nix;
  });
  # A loaded archive has no registry digest: the container must name exactly the archive's name:tag.
  imageReference = imageLib.vmImageReference pin;

  # A CA and a certificate for the vhost's domain, made at build time; the client trusts the CA.
  certificates = pkgs.runCommand "powersync-test-certificates" {nativeBuildInputs = [pkgs.openssl];} ''
    mkdir $out
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=powersync-nix test CA" -keyout $out/ca.key -out $out/ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=${domain}" -keyout $out/server.key -out server.csr
    printf 'subjectAltName=DNS:${domain}\n' > san.ext
    openssl x509 -req -in server.csr -CA $out/ca.crt -CAkey $out/ca.key -CAcreateserial \
      -days 3650 -extfile san.ext -out $out/server.crt
  '';

  # A throwaway age key, generated at build time: it never enters the repository.
  ageKey = pkgs.runCommand "powersync-test-age-key" {nativeBuildInputs = [pkgs.age];} ''
    mkdir $out
    age-keygen -o $out/age-key.txt 2>/dev/null
  '';

  # The host's secrets, encrypted at build time for that key; `dsn` is the source DSN the secret holds
  # (the rotation and preflight tests vary it).
  secrets = dsn:
    pkgs.runCommand "powersync-test-secrets" {nativeBuildInputs = [pkgs.age pkgs.sops];} ''
      mkdir $out
      printf 'reptide-powersync-source-dsn: %s\n' ${lib.escapeShellArg dsn} > plain.yaml
      SOPS_AGE_RECIPIENTS=$(age-keygen -y ${ageKey}/age-key.txt) \
        sops --encrypt --input-type yaml --output-type yaml plain.yaml > $out/secrets.yaml
    '';
  installAgeKey = ''
    install -D -m 0400 ${ageKey}/age-key.txt /run/age-key.txt
  '';
  dsnWith = password: "postgresql://powersync_repl:${password}@[${sourceAddress}]:5432/postgres";

  # The PowerSync server as web-arm runs it: the flake's module, web-arm's own powersync.nix and
  # postgresql.nix, sops-nix; then only what a VM test must change (source, TLS, image, JWKS).
  server = {
    secretsFile,
    jwksUri,
  }: {
    config,
    lib,
    ...
  }: {
    imports = [
      self.nixosModules.powersync
      sops-nix.nixosModules.sops
      ../../hosts/web-arm/modules/powersync.nix
      ../../hosts/web-arm/modules/postgresql.nix
    ];
    virtualisation = {
      memorySize = 2048;
      diskSize = 6144;
    };
    networking.interfaces.eth1.ipv6.addresses = [
      {
        address = serverAddress;
        prefixLength = 64;
      }
    ];
    networking.v6egress.uplink.ipv6 = "static";
    # No firewall line here: web-arm's powersync.nix opens 80/443 (services.powersync.nginx.openFirewall),
    # and the e2e test checks from the client that 443 is open and 8080/9464 are not.

    # The age key reaches the VM outside the store-backed secrets file. nixos-26.05 boots with systemd stage 1,
    # which asserts every boot.initrd.*Commands empty, so the key is written by stage 2's activation instead,
    # ordered before whatever installs the secrets: sops-nix's `setupSecrets` activation script, or, when
    # sops.useSystemdActivation is on (sysusers or userborn), its `sops-install-secrets` unit. Either way the
    # key is in place before the first decryption, on every boot and every switch.
    system.activationScripts.powersyncTestAgeKey = lib.stringAfter ["specialfs"] installAgeKey;
    system.activationScripts.setupSecrets = lib.mkIf (!config.sops.useSystemdActivation) {
      deps = ["powersyncTestAgeKey"];
    };
    systemd.services.sops-install-secrets = lib.mkIf config.sops.useSystemdActivation {
      preStart = installAgeKey;
    };
    sops = {
      defaultSopsFile = "${secretsFile}/secrets.yaml";
      # Validation would hash a build output during evaluation (import from derivation); the file is
      # made by sops itself two lines above, and the test reads the decrypted result.
      validateSopsFiles = false;
      age.keyFile = "/run/age-key.txt";
      age.sshKeyPaths = [];
    };

    services.powersync = {
      image = imageReference;
      imageFile = image;
      # The test source stands for db.<project>.supabase.co: its IPv6 address, and no TLS (the one change
      # from web-arm's connection, which verifies Supabase's certificate).
      replication.hostname = lib.mkForce sourceAddress;
      settings.replication.connections = [
        {
          type = "postgresql";
          uri = self.lib.env "PS_SOURCE_DSN";
          hostname = sourceAddress;
          port = 5432;
          sslmode = "disable";
          slot_name_prefix = config.services.powersync.replication.slotNamePrefix;
        }
      ];
      auth.jwksUri = lib.mkForce jwksUri;
    };
    services.nginx.virtualHosts.${domain} = {
      enableACME = false;
      sslCertificate = "${certificates}/server.crt";
      sslCertificateKey = "${certificates}/server.key";
    };
  };

  # The JWT signing key and its JWKS, made at build time (test material, never in the repository).
  python = pkgs.python3.withPackages (ps: [ps.pyjwt ps.cryptography]);
  jwtKeys = pkgs.runCommand "powersync-test-jwt-keys" {nativeBuildInputs = [python];} ''
    python3 ${./make-jwks.py} $out
  '';

  # The client: trusts the test CA, finds the vhost's domain on the server, serves the JWKS from boot (so the
  # service finds keys from its first fetch) and signs JWTs with the matching key.
  client = serverIPv4: {pkgs, ...}: {
    virtualisation.memorySize = 512;
    security.pki.certificateFiles = ["${certificates}/ca.crt"];
    networking.hosts.${serverIPv4} = [domain];
    networking.firewall.allowedTCPPorts = [8000];
    systemd.services.jwks = {
      wantedBy = ["multi-user.target"];
      serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 -m http.server 8000 --bind 0.0.0.0 --directory ${jwtKeys}/public";
    };
    environment.systemPackages = [pkgs.curl python];
  };

  # A PostgreSQL reachable over IPv6 only, prepared for logical replication the way Supabase is.
  source = {pkgs, ...}: {
    virtualisation.memorySize = 1024;
    networking.interfaces.eth1.ipv6.addresses = [
      {
        address = sourceAddress;
        prefixLength = 64;
      }
    ];
    networking.firewall.allowedTCPPorts = [5432];
    services.postgresql = {
      enable = true;
      # enableTCPIP listens on every address ("*"). Binding the IPv6 address alone would race its duplicate
      # address detection at boot, and postgresql-setup.service is not retried after a failed start. Only the
      # server's IPv6 address is admitted (authentication below), so the replication path is still IPv6-only.
      enableTCPIP = true;
      settings = {
        wal_level = "logical";
        max_replication_slots = 10;
        max_wal_senders = 10;
      };
      authentication = ''
        host postgres powersync_repl ${serverAddress}/128 scram-sha-256
      '';
      initialScript = pkgs.writeText "source-init.sql" ''
        CREATE ROLE powersync_repl WITH LOGIN REPLICATION PASSWORD '${replicationPassword}';
        CREATE TABLE profiles (id text PRIMARY KEY, name text NOT NULL);
        GRANT SELECT ON profiles TO powersync_repl;
        CREATE PUBLICATION powersync FOR ALL TABLES;
      '';
    };
  };
}
