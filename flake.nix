{
  description = "Self-host the PowerSync Service on NixOS: modules, a host, checks and an xtask";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  # Wiring only. Every output that needs nixpkgs sits behind its own attribute, so `nix eval .#lib.<name>`
  # evaluates without fetching any input (Nix fetches inputs lazily).
  outputs = {
    self,
    nixpkgs,
    sops-nix,
  }: let
    systems = ["x86_64-linux" "aarch64-linux"];
    eachSystem = f:
      builtins.listToAttrs (map (system: {
          name = system;
          value = f nixpkgs.legacyPackages.${system};
        })
        systems);
  in {
    # Pure helpers (builtins only): config rendering, the image pin, the config contract.
    lib = import ./lib;

    # Each module is an attribute set that imports its file: error messages still name the file, and
    # `nix flake check` accepts it on every Nix version. A bare path is refused by Nix before 2.14 ("module
    # must be a function or an attribute set", fixed by NixOS/nix#7559), which includes Debian 12's 2.8.
    nixosModules = {
      powersync = {imports = [./modules/powersync];};
      v6egress = {imports = [./modules/v6egress];};
      default = self.nixosModules.powersync;
    };

    nixosConfigurations.web-arm = nixpkgs.lib.nixosSystem {
      modules = [
        self.nixosModules.powersync
        sops-nix.nixosModules.sops
        ./hosts/web-arm/configuration.nix
        # Platform, disks and boot: what VM tests leave out (they boot the build machine's architecture).
        ./hosts/web-arm/hardware.nix
      ];
    };

    # The VM tests are the entries of tests/vm/scripts.nix (tests/vm/default.nix); the rest are other checks.
    checks = eachSystem (pkgs:
      {
        # The same Nix unit tests `cargo xtask test` runs, so `nix flake check` covers them too.
        unit-tests = import ./tests/unit-check.nix {inherit pkgs;};
        # `cargo xtask render web-arm` (lib, offline) and the module's config file must be the same bytes.
        render-web-arm = import ./tests/render-check.nix {
          inherit pkgs;
          inherit (self) lib;
          host = self.nixosConfigurations.web-arm;
          instance = import ./hosts/web-arm/modules/powersync/instance.nix;
        };
      }
      // import ./tests/vm {inherit pkgs self sops-nix;});

    # The xtask as a package, for machines without a Rust toolchain and for the VM tests (the load probe runs
    # on their client): `nix run .#xtask -- load https://… --jwt-file …`. Commands that need this repository's
    # files (test, render, bump) still belong in a checkout, under `cargo xtask`.
    packages = eachSystem (pkgs: {
      xtask = pkgs.rustPlatform.buildRustPackage {
        pname = "powersync-nix-xtask";
        version = "0.1.0";
        src = pkgs.lib.fileset.toSource {
          root = ./.;
          # bump compiles in the pin grammar that lib/image.nix reads.
          fileset = pkgs.lib.fileset.unions [./Cargo.toml ./Cargo.lock ./xtask ./lib/image-pin.json];
        };
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = ["--package" "xtask"];
        # The tests need the whole repository and local services; `cargo xtask test` runs them.
        doCheck = false;
        meta.mainProgram = "xtask";
      };
    });

    devShells = eachSystem (pkgs: {
      default = pkgs.mkShell {
        packages = [
          pkgs.cargo
          pkgs.rustc
          pkgs.rustfmt
          pkgs.clippy
          pkgs.nix
          pkgs.alejandra
          pkgs.deadnix
          pkgs.skopeo
          pkgs.sops
          pkgs.age
          pkgs.nodejs
          pkgs.git
          # What the tests start or call: a registry (its binary is `registry`), PostgreSQL, the ops tools.
          pkgs.distribution
          pkgs.postgresql
          pkgs.curl
          pkgs.jq
          pkgs.python3
          pkgs.shellcheck
          pkgs.prometheus # promtool
          pkgs.tinyproxy # a forward proxy for bump's proxy test
          pkgs.strace # bump's test that the pin is flushed before its rename
        ];
      };
    });

    # `nix fmt` runs `cargo xtask fmt`, so it uses the alejandra pinned in Cargo.lock: the one the tests check
    # with. nixpkgs' alejandra binary (in the dev shell) is a newer major version and may format differently.
    formatter = eachSystem (pkgs:
      pkgs.writeShellApplication {
        name = "powersync-nix-fmt";
        runtimeInputs = [pkgs.cargo pkgs.rustc pkgs.rustfmt pkgs.git];
        text = ''
          root=$(git rev-parse --show-toplevel)
          exec cargo run --quiet --manifest-path "$root/Cargo.toml" --package xtask --bin xtask -- fmt "$@"
        '';
      });
  };
}
