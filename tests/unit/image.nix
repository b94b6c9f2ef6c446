# lib.imagePin: the pin file's fields and the reference podman runs.
{lib}: let
  good = {
    name = "docker.io/journeyapps/powersync-service";
    tag = "1.26.1";
    digest = "sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
  };
in {
  testImagePinReferenceIsNameTagAtDigest = {
    expr = (lib.imagePin good).reference;
    expected = "docker.io/journeyapps/powersync-service:1.26.1@sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
  };
  testImagePinCommittedFileIsValid = {
    expr = (lib.imagePin (import ../../modules/powersync/image.nix)).tag;
    expected = "1.26.1";
  };
  testImagePinRefusesANextTag = {
    expr = lib.imagePin (good // {tag = "1.26.1-next";});
    expectThrow = true;
  };
  testImagePinRefusesAShortDigest = {
    expr = lib.imagePin (good // {digest = "sha256:413a0c81";});
    expectThrow = true;
  };
  testImagePinRefusesAnUppercaseDigest = {
    expr = lib.imagePin (good // {digest = "sha256:413A0C813E96935EBE7203B5759F8A594A7B7CD8AA42134713E63AF637E0F079";});
    expectThrow = true;
  };
  testImagePinRefusesAMissingField = {
    expr = lib.imagePin (removeAttrs good ["digest"]);
    expectThrow = true;
  };
  testImagePinRefusesUnknownFields = {
    expr = lib.imagePin (good // {platform = "linux/arm64";});
    expectThrow = true;
  };
  testImagePinRefusesANameWithATag = {
    expr = lib.imagePin (good // {name = "journeyapps/powersync-service:latest";});
    expectThrow = true;
  };
}
