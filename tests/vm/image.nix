# The PowerSync image for the VM tests, which have no registry: dockerTools.pullImage per architecture, at
# the index digest of modules/powersync/image.nix. A fixed-output hash can only be learnt on a networked
# machine; until it is known for a system, the VM tests of that system fail at evaluation with how to fill
# it in (never a silent skip). `cargo xtask bump` keeps imageDigest and finalImageTag in step with the pin.
{
  imageName = "journeyapps/powersync-service";
  imageDigest = "sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
  finalImageName = "docker.io/journeyapps/powersync-service";
  finalImageTag = "1.26.1";
  # nix hash of each architecture's image archive (SRI). null = not yet known.
  hashes = {
    x86_64-linux = null;
    aarch64-linux = null;
  };
}
