# The PowerSync Service image: a stable tag and its multi-arch index digest (never a per-platform digest: the
# index serves both amd64 and web-arm's arm64). One field per line, so an image bump is a two-line diff.
{
  name = "docker.io/journeyapps/powersync-service";
  tag = "1.26.1";
  digest = "sha256:413a0c813e96935ebe7203b5759f8a594a7b7cd8aa42134713e63af637e0f079";
}
