# lib/image.nix: the pin file's layout (the corpus bump's pin.rs reads too), the reference podman runs, and the
# VM tests' pullImage arguments keyed by index digest, with the hint a missing hash throws.
{lib}: let
  image = import ../../lib/image.nix;
  inherit (builtins) attrNames filter map readDir substring tryEval deepSeq;
  corpus = ../../xtask/tests/fixtures/pins;
  files = attrNames (readDir corpus);
  accepted = file: let
    result = tryEval (deepSeq (image.imagePin (corpus + "/${file}")) true);
  in
    result.success;

  digest = "sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
  other = "sha256:${builtins.concatStringsSep "" (builtins.genList (_: "b") 64)}";
  good = {
    name = "docker.io/journeyapps/powersync-service";
    tag = "1.26.1";
    inherit digest;
  };
  hash = "sha256-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG=";
  vmImage = hashes: system:
    image.vmImage {
      inherit hashes system;
      pin = good;
    };
  # tests/vm/lib.nix itself, with a stand-in pkgs whose pullImage returns its arguments.
  vmLib = import ../vm/lib.nix {
    pkgs = {
      stdenv.hostPlatform.system = "aarch64-linux";
      dockerTools.pullImage = args: args;
      lib = {};
    };
    self = {};
    sops-nix = {};
  };
in {
  testImagePinCorpusBothReadersAgreeOn = {
    # pin.rs runs the same files (xtask/src/bump/pin.rs, every_pin_in_the_corpus_…).
    expr = map (file: {
      inherit file;
      accepted = accepted file;
    }) (filter (f: f != "README") files);
    expected = map (file: {
      inherit file;
      accepted = substring 0 5 file == "good-";
    }) (filter (f: f != "README") files);
  };
  testImagePinCorpusHasBothKinds = {
    expr = map (prefix: builtins.length (filter (f: substring 0 (builtins.stringLength prefix) f == prefix) files) > 3) ["good-" "bad-"];
    expected = [true true];
  };
  testImagePinGoodFilesMeanTheSameToNixItself = {
    # What the layout reader returns is what Nix makes of the file: the layout is a subset of Nix, read alike.
    expr = map (file: let p = image.imagePin (corpus + "/${file}"); in {inherit (p) name tag digest;} == import (corpus + "/${file}")) (filter (f: substring 0 5 f == "good-") files);
    expected = map (_: true) (filter (f: substring 0 5 f == "good-") files);
  };
  testImagePinCommittedFileIsValid = {
    expr = (image.imagePin ../../modules/powersync/image.nix).reference;
    expected = "docker.io/journeyapps/powersync-service:1.26.1@${digest}";
  };
  testImagePinValueReferenceIsNameTagAtDigest = {
    expr = (lib.imagePin good).reference;
    expected = "docker.io/journeyapps/powersync-service:1.26.1@${digest}";
  };
  testImagePinValueRefusesUnknownFields = {
    expr = image.imagePin (good // {platform = "linux/arm64";});
    expectThrow = true;
  };
  testImagePinValueRefusesANextTag = {
    expr = image.imagePin (good // {tag = "1.26.1-next";});
    expectThrow = true;
  };

  testVmImageIsExactlyWhatPullImageChecks = {
    expr = vmImage {${digest}.aarch64-linux = hash;} "aarch64-linux";
    expected = {
      imageName = "docker.io/journeyapps/powersync-service";
      imageDigest = digest;
      finalImageName = "docker.io/journeyapps/powersync-service";
      finalImageTag = "1.26.1";
      arch = "arm64";
      os = "linux";
      inherit hash;
    };
  };
  testVmImageAmd64 = {
    expr = (vmImage {${digest}.x86_64-linux = hash;} "x86_64-linux").arch;
    expected = "amd64";
  };
  testVmImageMissesAHashOfAnotherDigest = {
    # A bump moved the pin; the old image's hash must not be used for the new one.
    expr = vmImage {${other}.aarch64-linux = hash;} "aarch64-linux";
    expectThrow = true;
  };
  testVmImageMissesAHashOfAnotherSystem = {
    expr = vmImage {${digest}.x86_64-linux = hash;} "aarch64-linux";
    expectThrow = true;
  };
  testVmImageRefusesABase32Hash = {
    expr = vmImage {${digest}.aarch64-linux = "0v3bs3m4s3jyq8dz8c4p5ar3xkpavqvaj3xwyd7q7i5ycd9h9r6y";} "aarch64-linux";
    expectThrow = true;
  };
  testVmImageRefusesAKeyThatIsNotADigest = {
    expr = vmImage {"1.26.1".aarch64-linux = hash;} "aarch64-linux";
    expectThrow = true;
  };
  testVmImageHintIsTheCommandThatGivesPullImagesHash = {
    expr = image.imageHashHint {
      pin = good;
      system = "aarch64-linux";
    };
    expected = ''
      tests/vm/image.nix has no archive hash for ${digest} on aarch64-linux (the pin is docker.io/journeyapps/powersync-service:1.26.1).
      On a networked machine with Nix (any system), compute it:
        nix --extra-experimental-features 'nix-command flakes' shell nixpkgs#nix-prefetch-docker nixpkgs#jq --command sh -c 'nix --extra-experimental-features nix-command hash to-sri --type sha256 "$(nix-prefetch-docker --quiet --json --image-name docker.io/journeyapps/powersync-service --image-digest ${digest} --final-image-name docker.io/journeyapps/powersync-service --final-image-tag 1.26.1 --arch arm64 --os linux | jq -r ".hash // .sha256")"'
      and add what it prints to tests/vm/image.nix:
        "${digest}".aarch64-linux = "sha256-...";
      `cargo xtask vm-test` and `nix build .#checks.aarch64-linux.<test>` need this system's hash only. `nix flake check`
      before Nix 2.17 evaluates the checks of every system, so there it needs the aarch64-linux and x86_64-linux hashes
      both, on any machine (from 2.17 only with --all-systems).
      An entry for another digest belongs to an older pin and can be deleted.'';
  };
  testVmLibNamesTheArchivesNameAndTag = {
    expr = vmLib.imageReference;
    expected = "docker.io/journeyapps/powersync-service:1.26.1";
  };
  testVmLibThrowsWhileTheCommittedFileLacksTheHash = {
    # Its message is checked by xtask (bump::pin tests: the_vm_tests_throw_the_exact_hint).
    expr = vmLib.image;
    expectThrow = true;
  };
  testVmHashesFileIsValid = {
    # The committed file parses and only holds digest keys; a miss there is the hint, not a wrong build.
    expr = builtins.all (key: builtins.match "sha256:[0-9a-f]{64}" key != null) (attrNames (import ../vm/image.nix));
    expected = true;
  };
}
