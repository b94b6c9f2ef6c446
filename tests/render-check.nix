# `checks.<system>.render-web-arm`: the two paths to a host's config file agree. One is the module's
# (services.powersync.finalSettings, rendered into the file the container mounts), the other what
# `cargo xtask render` evaluates offline from the host's instance.nix. Compared at evaluation time, so the
# aarch64 host's file needs no aarch64 builder.
{
  pkgs,
  lib,
  host,
  instance,
}: let
  fromModule = lib.renderConfig host.config.services.powersync.finalSettings;
  fromRender = lib.renderInstance instance;
in
  if fromModule == fromRender
  then pkgs.writeText "render-web-arm-agrees" fromRender
  else throw "cargo xtask render web-arm and the module's config file differ:\n--- module\n${fromModule}\n--- render\n${fromRender}"
